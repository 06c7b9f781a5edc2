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
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import (
    ParallelEstimatorMixin,
    apply_method,
    blockwise_if_dask,
    fill_doc,
    without_client,
)
from .._execution import is_dask_collection
from ..utils import Interval, Options

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


def join_blocks(X_blocks, y_blocks, first_index: int, as_float: bool):
    """Join consecutive row blocks of X and y into one partition, checking they line up.

    With `as_float`, X becomes a float64 ndarray and y an ndarray; otherwise
    pandas blocks stay pandas (column names matter to pipelines).
    """
    for offset, (X_block, y_block) in enumerate(zip(X_blocks, y_blocks)):
        if X_block.shape[0] != y_block.shape[0]:
            index = first_index + offset
            raise ValueError(
                f"X and y have misaligned blocks: block {index} of X has {X_block.shape[0]} "
                f"rows but block {index} of y has {y_block.shape[0]}. Give y the same row "
                "chunks (or partitions) as X."
            )
    if as_float:
        X_blocks = [np.asarray(block, dtype=np.float64) for block in X_blocks]
        y_blocks = [np.asarray(block) for block in y_blocks]
    if len(X_blocks) == 1:
        return X_blocks[0], y_blocks[0]
    if hasattr(X_blocks[0], "iloc"):
        import pandas as pd

        return pd.concat(X_blocks), pd.concat(y_blocks)
    return np.concatenate(X_blocks), np.concatenate(y_blocks)


def describe_partition(partition, classification: bool, check_finite: bool):
    """What the client must know about a partition before training: rows, classes, finiteness."""
    X, y = partition
    y_values = np.asarray(y)
    info = {"n_rows": int(X.shape[0]), "finite_X": True, "finite_y": True}
    if check_finite and X.shape[0]:
        info["finite_X"] = bool(np.isfinite(np.asarray(X, dtype=np.float64)).all())
    if classification:
        info["classes"] = np.unique(y_values) if len(y_values) else y_values
        info["target_type"] = type_of_target(y_values) if len(y_values) else "empty"
    elif len(y_values):
        info["finite_y"] = bool(np.isfinite(y_values.astype(np.float64)).all())
    return info


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

def row_bounds(n_rows: int, n_blocks: int) -> list[tuple[int, int]]:
    """(start, stop) of `n_blocks` consecutive row ranges of nearly equal size.

    Examples
    --------
    >>> row_bounds(10, 3)
    [(0, 3), (3, 7), (7, 10)]
    """
    n_blocks = max(1, min(n_blocks, n_rows))
    edges = np.linspace(0, n_rows, n_blocks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


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
    def rows(data, start, stop):
        return data.iloc[start:stop] if hasattr(data, "iloc") else data[start:stop]

    return [backend.scatter((rows(X, a, b), rows(y, a, b)), cache=False) for a, b in bounds]


def _dask_kind(obj) -> str:
    if hasattr(obj, "chunks") and hasattr(obj, "numblocks"):
        return "array"
    return "frame"


def _is_numeric_dtype(dtype) -> bool:
    return getattr(dtype, "kind", "O") in "biuf"


def check_dask_inputs(X, y, *, multi_output: bool = False):
    """Check dask inputs on the client, from their metadata, before any block is computed.

    Returns `X` and `y` as dask collections whose row blocks correspond (a
    numpy `y` is cut like a dask array `X`; column chunks are merged), and the
    feature names when X is a dataframe with string column names.
    """
    import dask.array as da

    if not is_dask_collection(X):
        raise ValueError(
            f"X must be a dask collection when y is one, so that their blocks match. Got "
            f"{type(X).__name__} for X; pass X as a dask array or dataframe too."
        )
    if _dask_kind(X) == "array":
        if X.ndim != 2:
            raise ValueError(f"Expected a 2D dask array for X, got an array of shape {X.shape}.")
        if not _is_numeric_dtype(X.dtype):
            raise ValueError(f"X must be numeric. Got a dask array of dtype {X.dtype}.")
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        names = None
    else:
        if getattr(X, "ndim", 2) != 2:
            raise ValueError("Expected a dask dataframe for X, got a dask series.")
        bad = [str(name) for name, dtype in X.dtypes.items() if not _is_numeric_dtype(dtype)]
        if bad:
            raise ValueError(
                f"X must be numeric. Column(s) {', '.join(map(repr, bad))} of the dask "
                "dataframe X are not numeric; encode them first."
            )
        columns = list(X.columns)
        names = (np.asarray(columns, dtype=object)
                 if columns and all(isinstance(name, str) for name in columns) else None)
    if not is_dask_collection(y):
        y = np.asarray(y)
        if _dask_kind(X) != "array" or any(math.isnan(c) for c in X.chunks[0]):
            raise ValueError(
                "y must be a dask array or series when X is a dask dataframe or a dask array "
                f"of unknown chunk sizes, so that its blocks match X's. Got {type(y).__name__}."
            )
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: "
                f"[{X.shape[0]}, {y.shape[0]}] (X and y)."
            )
        y = da.from_array(y, chunks=(X.chunks[0],) + tuple((n,) for n in y.shape[1:]))
    if _dask_kind(y) == "array":
        if y.ndim == 2 and multi_output:
            y = y.rechunk({1: -1})
        elif y.ndim != 1:
            raise ValueError(f"y must be 1D; got a dask array of shape {y.shape}.")
        n_y_blocks = y.numblocks[0]
    else:
        if getattr(y, "ndim", 1) == 2 and not multi_output:
            raise ValueError("y must be 1D; got a dask dataframe. Pass a dask series.")
        n_y_blocks = y.npartitions
    n_X_blocks = X.numblocks[0] if _dask_kind(X) == "array" else X.npartitions
    if n_X_blocks != n_y_blocks:
        raise ValueError(
            f"X and y have misaligned blocks: X has {n_X_blocks} row blocks and y has "
            f"{n_y_blocks}. Give y the same row chunks (or partitions) as X."
        )
    if _dask_kind(X) == "array" and _dask_kind(y) == "array":
        known = not any(math.isnan(c) for c in X.chunks[0] + y.chunks[0])
        if known and X.chunks[0] != y.chunks[0]:
            raise ValueError(
                f"X and y have misaligned blocks: X has row chunks {X.chunks[0]} and y has "
                f"{y.chunks[0]}. Rechunk y like X, e.g. y.rechunk({{0: X.chunks[0]}})."
            )
    return X, y, names


def group_blocks(n_blocks: int, n_partitions: int | None) -> list[list[int]]:
    """Consecutive groups of block indices: one per block, or `n_partitions` groups.

    Examples
    --------
    >>> group_blocks(5, 2)
    [[0, 1], [2, 3, 4]]
    """
    if n_partitions is None or n_partitions >= n_blocks:
        return [[index] for index in range(n_blocks)]
    return [list(range(a, b)) for a, b in row_bounds(n_blocks, n_partitions)]


def dask_partitions(backend, X, y, *, n_partitions, classification: bool, check_finite: bool,
                    as_float: bool):
    """Partitions of dask `X`, `y` that stay where they are computed, checked on the workers.

    Returns the futures of the non-empty ``(X_part, y_part)`` partitions, their
    row counts, and for classification the sorted classes over all partitions.
    Raises a clear ValueError for NaN or infinite values, unknown label types,
    empty data and misaligned blocks.
    """
    X_blocks, y_blocks = backend.blocks(X), backend.blocks(y)
    parts = [backend.submit(join_blocks, [X_blocks[i] for i in group],
                            [y_blocks[i] for i in group], group[0], as_float)
             for group in group_blocks(len(X_blocks), n_partitions)]
    infos = backend.gather([backend.submit(describe_partition, part, classification,
                                           check_finite) for part in parts])
    n_rows = [info["n_rows"] for info in infos]
    if sum(n_rows) == 0:
        raise ValueError("Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 "
                         "is required (the dask input X is empty).")
    for index, info in enumerate(infos):
        if not info["finite_X"]:
            raise ValueError(f"Input X contains NaN or infinity (in partition {index}).")
        if not info["finite_y"]:
            raise ValueError(f"Input y contains NaN or infinity (in partition {index}).")
    classes = None
    if classification:
        kinds = {info["target_type"] for info in infos} - {"empty"}
        unknown = kinds - {"binary", "multiclass"}
        if unknown:
            raise ValueError(f"Unknown label type: {sorted(unknown)[0]}. Classification needs "
                             "discrete labels in y.")
        classes = np.unique(np.concatenate([info["classes"] for info in infos]))
    keep = [index for index, rows in enumerate(n_rows) if rows]
    return [parts[i] for i in keep], [n_rows[i] for i in keep], classes


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
        number of workers). Dask inputs keep their own blocks (None), or have
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
            X, y, names = check_dask_inputs(X, y, multi_output=not self._classification)
            self._set_input_features(X, names)
            with self._execution_backend() as backend:
                parts, n_rows, classes = dask_partitions(
                    backend, X, y, n_partitions=self.n_partitions,
                    classification=self._classification, check_finite=True, as_float=True)
                target = self._set_dask_targets(classes, y)
                blocks = [backend.submit(encode_partition, part, target, classes)
                          for part in parts]
                params = self._minimize(backend, blocks, sum(n_rows))
        else:
            X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64,
                                 multi_output=not self._classification,
                                 y_numeric=not self._classification)
            y = self._check_targets(y)
            n_blocks = self.n_partitions or default_n_blocks(X)
            with self._execution_backend() as backend:
                blocks = scatter_row_blocks(backend, X, y, row_bounds(X.shape[0], n_blocks))
                params = self._minimize(backend, blocks, X.shape[0])
        self._set_coefficients(params)
        return self

    def _set_input_features(self, X, names) -> None:
        self.n_features_in_ = int(X.shape[1])
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

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


def _apply_to_frame(frame, estimator, method: str, n_columns):
    import pandas as pd

    if len(frame):
        values = getattr(estimator, method)(frame)
    else:  # an empty partition has nothing to predict
        values = np.empty((0,) if n_columns is None else (0, n_columns))
    if np.ndim(values) == 1:
        return pd.Series(values, index=frame.index)
    return pd.DataFrame(values, index=frame.index)


def classifier_output_layout(method: str, classes):
    """``(n_columns, dtype)`` of a fitted classifier's `method` output, for predict_blockwise.

    Labels for ``predict``; one float column per class otherwise, but a single
    one (1-D) for ``decision_function`` with two classes.

    Examples
    --------
    >>> import numpy as np
    >>> classifier_output_layout("decision_function", np.array(["a", "b"]))
    (None, <class 'numpy.float64'>)
    >>> classifier_output_layout("predict_proba", np.array(["a", "b"]))
    (2, <class 'numpy.float64'>)
    """
    if method == "predict":
        return None, classes.dtype
    n_classes = len(classes)
    return (None if method == "decision_function" and n_classes == 2 else n_classes), np.float64


def predict_blockwise(estimator, X, method: str, n_columns, dtype=np.float64):
    """``estimator.<method>(block)`` on each block of a dask collection, lazily.

    A dask array gives a dask array (one column chunk); a dask dataframe gives a
    dask series, or dataframe when `n_columns` is not None, with the same
    index and partitions (an empty partition gives an empty one). The
    estimator in the graph is a copy without its ``client``.

    The output layout (`n_columns`, `dtype`) comes from the caller, which is
    why this is not :func:`dasktrain._base.blockwise`: that one goes through
    dask-ml's ParallelPostFit, which returns dask arrays for dataframes, cannot
    give 2-D ``predict`` outputs (several regression targets) and fails on
    empty partitions.
    """
    predictor = without_client(estimator)
    if _dask_kind(X) != "array":
        import pandas as pd

        if n_columns is None:
            meta = pd.Series(np.empty(0, dtype=dtype))
        else:
            meta = pd.DataFrame(np.empty((0, n_columns), dtype=dtype))
        return X.map_partitions(_apply_to_frame, predictor, method, n_columns, meta=meta)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    if n_columns is None:
        return X.map_blocks(apply_method, predictor, method, dtype=dtype, drop_axis=1,
                            chunks=(X.chunks[0],))
    return X.map_blocks(apply_method, predictor, method, dtype=dtype,
                        chunks=(X.chunks[0], (n_columns,)))


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
            A dask array (computed lazily, block by block) for dask input.
        """
        scores = self._linear_scores(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def _blockwise(self, method: str, X):
        return predict_blockwise(self, X, method, *classifier_output_layout(method, self.classes_))

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
            A dask array (computed lazily, block by block) for dask input.
        """
        scores = self._linear_scores(X)
        return scores[:, 0] if np.ndim(self.coef_) == 1 else scores

    def _blockwise(self, method: str, X):
        n_columns = None if np.ndim(self.coef_) == 1 else self.coef_.shape[0]
        return predict_blockwise(self, X, method, n_columns)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


for _estimator in (DistributedLogisticRegression, DistributedLinearRegression):
    _estimator.__doc__ = _estimator.__doc__.replace("%(shared)s", _SHARED_PARAMETERS)
    fill_doc(_estimator)
del _estimator
