"""Linear models trained data-parallel: each block computes its loss and gradient where it lives.

The client holds the parameter vector and runs the optimiser (SciPy's L-BFGS-B,
or plain gradient descent). At every step it broadcasts the parameters once,
runs one task per data block that returns the block's summed (loss, gradient),
and adds the partial results pairwise where the tasks run
(:meth:`~dasktrain._execution.Backend.tree_reduce`), so that one (loss,
gradient) pair reaches the client per step. The blocks themselves are sent once
per fit (numpy and pandas inputs) or never leave the workers (dask inputs).
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from scipy import optimize
from scipy.special import expit, logsumexp, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import ParallelEstimatorMixin, blockwise_if_dask, fill_doc
from .._execution import is_dask_collection
from ..utils import Interval, Options
from ..utils._dask_data import check_dask_inputs, dask_partitions, row_bounds, set_input_features
from ..utils._data import check_n_partitions, take_rows

#: In-memory data is cut into blocks of about this many bytes when n_partitions is None.
TARGET_BLOCK_BYTES = 32 * 2**20


# ---------------------------------------------------------------------------------------------
# Tasks: module-level functions that run where a block lives.
# ---------------------------------------------------------------------------------------------

def _split_parameters(params, n_outputs: int, n_features: int, fit_intercept: bool):
    coef = params[: n_outputs * n_features].reshape(n_outputs, n_features)
    intercept = params[n_outputs * n_features:] if fit_intercept else np.zeros(n_outputs)
    return coef, intercept


def _gradient_from_residual(X, residual, fit_intercept: bool):
    """Gradient of a linear model's loss from d(loss)/d(scores), raveled like the parameters."""
    grad_coef = np.asarray(X.T @ residual).T.ravel()
    if fit_intercept:
        return np.concatenate([grad_coef, residual.sum(axis=0)])
    return grad_coef


def logistic_loss_gradient(block, params, n_classes: int, fit_intercept: bool):
    """Summed log-loss of one block and its gradient with respect to `params`.

    Parameters
    ----------
    block : tuple (X, y)
        Float features (dense or CSR) and encoded targets: 0/1 floats for two
        classes, class indices otherwise.
    params : ndarray of shape (n_outputs * n_features + n_outputs * fit_intercept,)
        Coefficients (row-major, one row per output) then intercepts; one output
        for two classes, `n_classes` outputs otherwise (multinomial).

    Returns
    -------
    loss : float
    gradient : ndarray, shaped like `params`

    Examples
    --------
    >>> import numpy as np
    >>> block = (np.array([[0.0], [1.0]]), np.array([0.0, 1.0]))
    >>> loss, grad = logistic_loss_gradient(block, np.zeros(2), 2, True)
    >>> round(loss, 4), grad.tolist()
    (1.3863, [-0.5, 0.0])
    """
    X, y = block
    n_outputs = 1 if n_classes == 2 else n_classes
    coef, intercept = _split_parameters(params, n_outputs, X.shape[1], fit_intercept)
    scores = np.asarray(X @ coef.T) + intercept
    if n_outputs == 1:
        z = scores[:, 0]
        loss = np.sum(np.logaddexp(0.0, z) - y * z)
        residual = (expit(z) - y)[:, np.newaxis]
    else:
        rows = np.arange(len(y))
        log_norm = logsumexp(scores, axis=1)
        loss = np.sum(log_norm - scores[rows, y])
        residual = np.exp(scores - log_norm[:, np.newaxis])
        residual[rows, y] -= 1.0
    return float(loss), _gradient_from_residual(X, residual, fit_intercept)


def squared_loss_gradient(block, params, n_targets: int, fit_intercept: bool):
    """Half the summed squared error of one block and its gradient with respect to `params`.

    `block` is ``(X, Y)`` with `Y` of shape (n_rows, n_targets).

    Examples
    --------
    >>> import numpy as np
    >>> block = (np.array([[1.0], [2.0]]), np.array([[1.0], [2.0]]))
    >>> squared_loss_gradient(block, np.array([1.0, 0.0]), 1, True)[0]
    0.0
    """
    X, Y = block
    coef, intercept = _split_parameters(params, n_targets, X.shape[1], fit_intercept)
    residual = np.asarray(X @ coef.T) + intercept - Y
    return 0.5 * float(np.sum(residual**2)), _gradient_from_residual(X, residual, fit_intercept)


def add_loss_gradients(a, b):
    """Add two (loss, gradient) pairs: the combine step of the tree reduction."""
    return a[0] + b[0], a[1] + b[1]


def pairwise_sum(items, combine=add_loss_gradients):
    """Reduce `items` in the same pairwise order as ``Backend.tree_reduce``, here.

    Gathering the partial results and adding them on the client this way gives
    exactly the same floating-point sums as the tree reduction on the workers.

    Examples
    --------
    >>> pairwise_sum([(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)])
    (6.0, 6.0)
    """
    level = list(items)
    while len(level) > 1:
        paired = [combine(a, b) for a, b in zip(level[::2], level[1::2])]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def encode_partition(partition, target: str, classes):
    """Encode a partition's targets for the loss: 0/1, class indices, or a float matrix."""
    X, y = partition
    if target == "regression":
        y = np.asarray(y, dtype=np.float64)
        return X, y.reshape(len(y), -1)
    codes = np.searchsorted(classes, np.asarray(y))
    return X, (codes.astype(np.float64) if target == "binary" else codes)


# ---------------------------------------------------------------------------------------------
# Data: in-memory inputs cut into blocks and scattered once; dask inputs kept on the workers.
# ---------------------------------------------------------------------------------------------

def default_n_blocks(X) -> int:
    """Blocks of about TARGET_BLOCK_BYTES each: the same number on every backend.

    Examples
    --------
    >>> import numpy as np
    >>> default_n_blocks(np.zeros((10, 2))), default_n_blocks(np.zeros((10**6, 50)))
    (1, 12)
    """
    if hasattr(X, "nnz"):  # sparse: the bytes actually stored
        nbytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    else:
        nbytes = X.shape[0] * max(X.shape[1], 1) * 8
    return max(1, min(X.shape[0], math.ceil(nbytes / TARGET_BLOCK_BYTES)))


def scatter_row_blocks(backend, X, y, bounds) -> list:
    """Scatter ``(X[a:b], y[a:b])`` for each row range, once; returns one future per block."""
    return [backend.scatter((take_rows(X, slice(a, b)), take_rows(y, slice(a, b))), cache=False)
            for a, b in bounds]


# ---------------------------------------------------------------------------------------------
# Optimisers: run on the client, calling the distributed objective once per step.
# ---------------------------------------------------------------------------------------------

def gradient_descent(objective, x0, max_iter: int, tol: float):
    """Gradient descent with a backtracking (Armijo) step size.

    Stops when the largest gradient component is at most `tol`, after
    `max_iter` steps, or when no step decreases the objective.

    Returns
    -------
    x, n_iter, converged

    Examples
    --------
    >>> import numpy as np
    >>> x, n_iter, converged = gradient_descent(lambda x: (x @ x, 2 * x), np.ones(2), 100, 1e-8)
    >>> np.abs(x).max() < 1e-8, converged
    (np.True_, True)
    """
    x = np.asarray(x0, dtype=np.float64)
    value, grad = objective(x)
    step, n_iter = 1.0, 0
    while np.max(np.abs(grad), initial=0.0) > tol:
        if n_iter >= max_iter:
            return x, n_iter, False
        squared_norm = float(grad @ grad)
        for n_tries in range(50):
            candidate = x - step * grad
            new_value, new_grad = objective(candidate)
            if new_value <= value - 1e-4 * step * squared_norm:
                break
            step *= 0.5
        else:
            return x, n_iter, False
        x, value, grad = candidate, new_value, new_grad
        n_iter += 1
        if n_tries == 0:
            step *= 2.0
    return x, n_iter, True


_SHARED_PARAMETERS = """fit_intercept : bool, default=True
        Whether to fit an intercept (never penalised).
    max_iter : int, default=100
        Maximum number of optimiser iterations (each needs at least one
        distributed step).
    tol : float, default=1e-4
        Stop when the largest component of the gradient of the (averaged)
        objective is at most `tol` (L-BFGS-B's ``gtol``).
    solver : {"lbfgs", "gd"}, default="lbfgs"
        "lbfgs": SciPy's L-BFGS-B on the client; "gd": gradient descent with
        a backtracking step size.
    reduction : {"tree", "gather"}, default="tree"
        How the blocks' partial (loss, gradient) pairs are added: "tree" adds
        them pairwise where the tasks run, so one pair reaches the client per
        step; "gather" sends every partial pair to the client and adds them
        there (in the same order, so the result is identical).
    n_partitions : int or None, default=None
        Number of blocks. In-memory data is cut into this many row blocks
        (None: blocks of about 32 MiB, so the result never depends on the
        number of workers; more blocks than samples are refused). Dask inputs keep their own blocks (None), or have
        consecutive blocks joined into at most this many partitions once per
        fit; blocks are never split.
    %(use_dask)s
    %(client)s
    %(n_jobs)s"""


class _DistributedLinearModel(ParallelEstimatorMixin, BaseEstimator):
    """Shared fit of the distributed linear models; subclasses choose the loss and targets."""

    _parameter_constraints: dict = {
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None)],
        "tol": [Interval(numbers.Real, 0, None)],
        "solver": [Options(("lbfgs", "gd"))],
        "reduction": [Options(("tree", "gather"))],
        "n_partitions": [Interval(numbers.Integral, 1, None), None],
    }
    _classification = False

    # hooks ------------------------------------------------------------------------------------
    def _penalty(self) -> float:
        raise NotImplementedError

    def _check_targets(self, y):
        """Checked, encoded targets of in-memory data; sets classes_ for classifiers."""
        raise NotImplementedError

    def _loss_setup(self, n_outputs_hint):
        raise NotImplementedError

    # fit --------------------------------------------------------------------------------------
    def fit(self, X, y):
        """Fit the model: each block's loss and gradient are computed where the block lives.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)
            Training data; numeric.
        y : array-like, dask array or dask series of shape (n_samples,) or (n_samples, n_targets)
            Targets (several columns for regression only); when X is a dask
            collection, y is one with the same row blocks (a numpy y is cut
            like a dask array X).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        if is_dask_collection(X) or is_dask_collection(y):
            owner = type(self).__name__
            X, y = check_dask_inputs(X, y, owner=owner, multi_output=not self._classification)
            set_input_features(self, X)
            with self._execution_backend() as backend:
                parts, n_rows, classes = dask_partitions(
                    backend, X, y, n_partitions=self.n_partitions,
                    classification=self._classification, check_finite=True, as_float=True,
                    owner=owner)
                target = self._set_dask_targets(classes, y)
                blocks = [backend.submit(encode_partition, part, target, classes)
                          for part in parts]
                params = self._minimize(backend, blocks, sum(n_rows))
        else:
            X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64,
                                 multi_output=not self._classification,
                                 y_numeric=not self._classification)
            check_n_partitions(type(self).__name__, self.n_partitions, X.shape[0])
            y = self._check_targets(y)
            n_blocks = self.n_partitions or default_n_blocks(X)
            with self._execution_backend() as backend:
                blocks = scatter_row_blocks(backend, X, y, row_bounds(X.shape[0], n_blocks))
                params = self._minimize(backend, blocks, X.shape[0])
        self._set_coefficients(params)
        return self

    def _evaluate(self, backend, blocks, params):
        """The summed (loss, gradient) over all blocks: one distributed step."""
        shared = backend.scatter(params, broadcast=True, cache=False)
        partials = [backend.submit(self._loss_function, block, shared, self._n_loss_outputs,
                                   self.fit_intercept) for block in blocks]
        if self.reduction == "tree":
            return backend.tree_reduce(partials, add_loss_gradients).result()
        return pairwise_sum(backend.gather(partials))

    def _minimize(self, backend, blocks, n_samples: int):
        n_coef = self._n_outputs * self.n_features_in_
        n_params = n_coef + (self._n_outputs if self.fit_intercept else 0)
        penalty = self._penalty()
        self.n_partitions_ = len(blocks)
        self.loss_curve_ = []

        def objective(params):
            loss, grad = self._evaluate(backend, blocks, params)
            coef = params[:n_coef]
            loss = (loss + 0.5 * penalty * float(coef @ coef)) / n_samples
            grad = np.array(grad, dtype=np.float64)
            grad[:n_coef] += penalty * coef
            grad /= n_samples
            self.loss_curve_.append(loss)
            return loss, grad

        x0 = np.zeros(n_params)
        if self.solver == "lbfgs":
            result = optimize.minimize(
                objective, x0, method="L-BFGS-B", jac=True,
                options={"maxiter": self.max_iter, "maxls": 50, "gtol": self.tol,
                         "ftol": 64 * np.finfo(float).eps},
            )
            params, n_iter, converged = result.x, int(result.nit), result.status == 0
            detail = f" ({result.message})"
        else:
            params, n_iter, converged = gradient_descent(objective, x0, self.max_iter, self.tol)
            detail = ""
        self.n_iter_ = min(n_iter, self.max_iter)
        if not converged:
            warnings.warn(
                f"{type(self).__name__} did not converge after {self.n_iter_} iterations"
                f"{detail}. Increase max_iter, loosen tol, or scale the data.",
                ConvergenceWarning, stacklevel=3,
            )
        return params

    def _set_coefficients(self, params) -> None:
        coef, intercept = _split_parameters(params, self._n_outputs, self.n_features_in_,
                                            self.fit_intercept)
        self.coef_, self.intercept_ = coef, np.array(intercept, dtype=np.float64)

    def _linear_scores(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        return np.asarray(X @ np.atleast_2d(self.coef_).T) + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class DistributedLogisticRegression(ClassifierMixin, _DistributedLinearModel):
    """L2-regularised logistic regression trained data-parallel over blocks of the data.

    Minimises the same objective as scikit-learn's
    :class:`~sklearn.linear_model.LogisticRegression` with its default L2
    penalty: ``C * sum_i log_loss_i + ||W||^2 / 2`` (the intercept is not
    penalised), binomial for two classes and multinomial (one coefficient row
    per class) for more, so both reach the same optimum. Each data block
    computes its own loss and gradient where it lives; the parameters are
    broadcast once per step and the partial results are summed by a tree
    reduction on the workers; SciPy's L-BFGS-B runs on the client.

    Parameters
    ----------
    C : float, default=1.0
        Inverse of the regularisation strength, as in scikit-learn.
    %(shared)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients (one row for two classes, for ``classes_[1]``).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts (zeros when ``fit_intercept=False``).
    n_iter_ : int
        Number of optimiser iterations.
    n_partitions_ : int
        Number of data blocks that computed losses and gradients.
    loss_curve_ : list of float
        The objective (divided by ``C * n_samples``) at every distributed step.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The same model, trained in memory.
    DistributedLinearRegression : Ridge regression trained the same way.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from dasktrain.linear_model import DistributedLogisticRegression
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = DistributedLogisticRegression(C=1.0, n_partitions=4, tol=1e-8).fit(X, y)
    >>> clf.coef_.shape, clf.n_partitions_
    ((1, 20), 4)
    >>> round(clf.score(X, y), 2)
    0.95

    The optimum is scikit-learn's:

    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> reference = LogisticRegression(C=1.0, tol=1e-8).fit(X, y)
    >>> bool(np.allclose(clf.coef_, reference.coef_, rtol=1e-5))
    True
    """

    _parameter_constraints: dict = {
        **_DistributedLinearModel._parameter_constraints,
        "C": [Interval(numbers.Real, 0, None, closed="neither")],
    }
    _classification = True
    _loss_function = staticmethod(logistic_loss_gradient)

    def __init__(self, C=1.0, *, fit_intercept=True, max_iter=100, tol=1e-4, solver="lbfgs",
                 reduction="tree", n_partitions=None, use_dask=False, client=None, n_jobs=None):
        self.C = C
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.reduction = reduction
        self.n_partitions = n_partitions
        self.use_dask = use_dask
        self.client = client
        self.n_jobs = n_jobs

    def _penalty(self) -> float:
        return 1.0 / self.C

    def _set_classes(self, classes) -> str:
        if len(classes) < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {classes[0]}."
            )
        self.classes_ = classes
        self._n_outputs = self._n_loss_outputs = len(classes)
        if len(classes) == 2:
            self._n_outputs = 1
            return "binary"
        return "multinomial"

    def _check_targets(self, y):
        check_classification_targets(y)
        target = self._set_classes(np.unique(y))
        return encode_partition((None, y), target, self.classes_)[1]

    def _set_dask_targets(self, classes, y) -> str:
        return self._set_classes(classes)

    def _set_coefficients(self, params) -> None:
        super()._set_coefficients(params)
        del self._n_outputs, self._n_loss_outputs

    @blockwise_if_dask
    def decision_function(self, X):
        """Signed scores: ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) for two classes, else (n_samples, n_classes)
            For dask input: a dask array for a dask array, a dask series or
            dataframe for a dask dataframe (computed lazily, block by block).
        """
        scores = self._linear_scores(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    @blockwise_if_dask
    def predict_proba(self, X):
        """Class probabilities (sigmoid for two classes, softmax otherwise).

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        scores = self._linear_scores(X)
        if scores.shape[1] == 1:
            positive = expit(scores[:, 0])
            return np.column_stack([1.0 - positive, positive])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return np.log(self.predict_proba(X))

    @blockwise_if_dask
    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        scores = self._linear_scores(X)
        if scores.shape[1] == 1:
            return self.classes_[(scores[:, 0] > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]


class DistributedLinearRegression(RegressorMixin, _DistributedLinearModel):
    """Ridge regression trained data-parallel over blocks of the data.

    Minimises the same objective as scikit-learn's
    :class:`~sklearn.linear_model.Ridge`: ``||y - X w - b||^2 + alpha * ||w||^2``
    (the intercept `b` is not penalised; ``alpha=0`` is ordinary least
    squares), so both reach the same optimum. Each data block computes its own
    loss and gradient where it lives; the parameters are broadcast once per
    step and the partial results are summed by a tree reduction on the workers;
    SciPy's L-BFGS-B runs on the client.

    Parameters
    ----------
    alpha : float, default=1.0
        L2 regularisation strength, as in scikit-learn's Ridge.
    %(shared)s

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Coefficients.
    intercept_ : float or ndarray of shape (n_targets,)
        Intercept(s) (zero when ``fit_intercept=False``).
    n_iter_ : int
        Number of optimiser iterations.
    n_partitions_ : int
        Number of data blocks that computed losses and gradients.
    loss_curve_ : list of float
        The objective (divided by ``n_samples``, halved) at every distributed step.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.linear_model.Ridge : The same model, solved in memory.
    DistributedLogisticRegression : Logistic regression trained the same way.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from dasktrain.linear_model import DistributedLinearRegression
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    >>> reg = DistributedLinearRegression(alpha=1.0, n_partitions=4, tol=1e-8).fit(X, y)
    >>> reg.coef_.shape, round(reg.score(X, y), 3)
    ((5,), 1.0)
    """

    _parameter_constraints: dict = {
        **_DistributedLinearModel._parameter_constraints,
        "alpha": [Interval(numbers.Real, 0, None)],
    }
    _loss_function = staticmethod(squared_loss_gradient)

    def __init__(self, alpha=1.0, *, fit_intercept=True, max_iter=100, tol=1e-4,
                 solver="lbfgs", reduction="tree", n_partitions=None, use_dask=False,
                 client=None, n_jobs=None):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.reduction = reduction
        self.n_partitions = n_partitions
        self.use_dask = use_dask
        self.client = client
        self.n_jobs = n_jobs

    def _penalty(self) -> float:
        return float(self.alpha)

    def _set_outputs(self, y_ndim: int, n_targets: int) -> None:
        self._single_target = y_ndim == 1
        self._n_outputs = self._n_loss_outputs = n_targets

    def _check_targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        self._set_outputs(y.ndim, 1 if y.ndim == 1 else y.shape[1])
        return y.reshape(len(y), -1)

    def _set_dask_targets(self, classes, y) -> str:
        self._set_outputs(y.ndim, 1 if y.ndim == 1 else y.shape[1])
        return "regression"

    def _set_coefficients(self, params) -> None:
        super()._set_coefficients(params)
        if self._single_target:
            self.coef_, self.intercept_ = self.coef_[0], float(self.intercept_[0])
        del self._n_outputs, self._n_loss_outputs, self._single_target

    @blockwise_if_dask
    def predict(self, X):
        """Predicted targets: ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            For dask input: a dask array for a dask array, a dask series or
            dataframe for a dask dataframe (computed lazily, block by block).
        """
        scores = self._linear_scores(X)
        return scores[:, 0] if np.ndim(self.coef_) == 1 else scores

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


for _estimator in (DistributedLogisticRegression, DistributedLinearRegression):
    _estimator.__doc__ = _estimator.__doc__.replace("%(shared)s", _SHARED_PARAMETERS)
    fill_doc(_estimator)
del _estimator
