"""Parameter averaging: every partition trains a copy locally, the copies' parameters are averaged.

Each round, the copy of every data partition starts from the current global
parameters, runs `local_epochs` passes of ``partial_fit`` over its partition
where the partition lives, and returns its parameters scaled by the
partition's share of the samples; the scaled parameters are added pairwise
where the tasks run (a tree reduction), which gives the new global parameters.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, RegressorMixin
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._base import (ParallelEstimatorMixin, blockwise_if_dask, check_task_of,
                     estimator_instance, fill_doc)
from .._delayed import seeded_clone
from .._execution import is_dask_collection
from ..utils import Interval, set_random_states, spawn_seeds
from ..utils._dask_data import check_dask_inputs, dask_partitions, row_bounds, set_input_features
from ..utils._data import (allows_nan, check_fit_data, check_n_partitions, check_predict_data,
                           take_rows)

#: Number of partitions of in-memory data when n_partitions is None (the same on every backend).
DEFAULT_N_PARTITIONS = 4


def model_parameters(estimator, owner: str = "ParameterAveragingClassifier") -> list:
    """The learned parameters of `estimator` as a list of arrays.

    ``coefs_ + intercepts_`` for multi-layer perceptrons, ``[coef_, intercept_]``
    for linear models (SGD and friends).

    Raises
    ------
    TypeError
        Naming 'estimator' when it learned neither.

    Examples
    --------
    >>> from sklearn.linear_model import SGDRegressor
    >>> model = SGDRegressor().partial_fit([[0.0], [1.0]], [0.0, 1.0])
    >>> [p.shape for p in model_parameters(model)]
    [(1,), (1,)]
    """
    if hasattr(estimator, "coefs_") and hasattr(estimator, "intercepts_"):
        return [*estimator.coefs_, *estimator.intercepts_]
    if hasattr(estimator, "coef_") and hasattr(estimator, "intercept_"):
        return [np.asarray(estimator.coef_), np.asarray(estimator.intercept_)]
    raise TypeError(
        f"The 'estimator' parameter of {owner} must learn coef_ and intercept_ (like "
        "SGDClassifier and SGDRegressor) or coefs_ and intercepts_ (like MLPClassifier and "
        f"MLPRegressor) in partial_fit. Got {type(estimator).__name__}, which learns neither."
    )


def set_model_parameters(estimator, parameters) -> None:
    """Give `estimator` fresh copies of `parameters` (shapes and dtypes kept), in place.

    Copies, because ``partial_fit`` updates some parameters in place and the
    global parameters must not change.
    """
    current = model_parameters(estimator)
    fresh = [np.array(new, dtype=old.dtype).reshape(old.shape)
             for old, new in zip(current, parameters)]
    if hasattr(estimator, "coefs_"):
        n_layers = len(estimator.coefs_)
        estimator.coefs_, estimator.intercepts_ = fresh[:n_layers], fresh[n_layers:]
    else:
        estimator.coef_, estimator.intercept_ = fresh


def train_partition(model, partition, global_parameters, seed: int, classes, local_epochs: int):
    """One round of one partition: start from the global parameters, run partial_fit passes.

    This is the task that runs where the partition lives. `model` is the
    partition's copy from the previous round (or a fresh clone in the first
    round, when `global_parameters` is None); it is copied, never changed.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDRegressor
    >>> part = (np.array([[0.0], [1.0]]), np.array([0.0, 1.0]))
    >>> model = train_partition(SGDRegressor(), part, None, 0, None, 2)
    >>> model.t_
    5.0
    """
    model = set_random_states(copy.deepcopy(model), seed)
    if global_parameters is not None:
        set_model_parameters(model, global_parameters)
    X, y = partition
    for _ in range(local_epochs):
        if classes is None:
            model.partial_fit(X, y)
        else:
            model.partial_fit(X, y, classes=classes)
    return model


def weighted_parameters(model, weight: float, owner: str) -> list:
    """The parameters of `model` times `weight` (its partition's share of the samples)."""
    return [weight * np.asarray(p, dtype=np.float64) for p in model_parameters(model, owner)]


def add_parameters(a, b) -> list:
    """Add two lists of parameter arrays: the combine step of the tree reduction."""
    return [x + y for x, y in zip(a, b)]


#: The Parameters section both estimators share (substituted for ``%(shared)s``).
_SHARED_PARAMETERS = """estimator : estimator object
        The model to train; it must have ``partial_fit``.
    n_partitions : int or None, default=None
        Number of partitions. In-memory data: None means 4 (at most one per
        sample; never the number of workers, so the result is the same on every
        backend); a number larger than the number of samples is refused. Dask input: None means one partition per block; an int joins
        consecutive blocks into that many partitions (blocks are never split).
    rounds : int, default=10
        Number of train-then-average rounds.
    local_epochs : int, default=1
        Passes of ``partial_fit`` over its partition by each copy per round.
    shuffle : bool, default=True
        Assign the rows of in-memory data to partitions at random (each
        partition keeps the original row order); False cuts consecutive rows.
    %(random_state)s
    %(use_dask)s
    %(client)s
    %(n_jobs)s"""


class _BaseParameterAveraging(ParallelEstimatorMixin, MetaEstimatorMixin, BaseEstimator):
    """Train copies on partitions with partial_fit, average them each round; subclasses predict."""

    _parameter_constraints: dict = {
        "estimator": [estimator_instance("partial_fit", "predict")],
        "n_partitions": [Interval(numbers.Integral, 1, None), None],
        "rounds": [Interval(numbers.Integral, 1, None)],
        "local_epochs": [Interval(numbers.Integral, 1, None)],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
    }
    _classification = False

    def __init__(self, estimator, *, n_partitions=None, rounds=10, local_epochs=1, shuffle=True,
                 random_state=None, use_dask=False, client=None, n_jobs=None):
        self.estimator = estimator
        self.n_partitions = n_partitions
        self.rounds = rounds
        self.local_epochs = local_epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.use_dask = use_dask
        self.client = client
        self.n_jobs = n_jobs

    def _check_estimator(self) -> None:
        check_task_of(type(self).__name__, self.estimator,
                      "classification" if self._classification else "regression",
                      "ParameterAveragingRegressor" if self._classification
                      else "ParameterAveragingClassifier")
        average = self.estimator.get_params(deep=False).get("average", False)
        if average is not False and average != 0:
            raise ValueError(
                f"The 'estimator' parameter of {type(self).__name__} must not average its own "
                f"iterates (average={average!r}): partial_fit continues from its internal "
                "iterate, not from the averaged coef_ that would be set. Use average=False."
            )

    def _set_classes(self, classes):
        if classes is None:
            return None
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but "
                f"the data contains only one class: {classes[0]}."
            )
        self.classes_ = classes
        return classes

    def _in_memory_partitions(self, backend, X, y, n_parts: int, seed: int):
        n_samples = X.shape[0]
        order = (np.random.default_rng(seed).permutation(n_samples) if self.shuffle
                 else np.arange(n_samples))
        indices = [np.sort(order[a:b]) for a, b in row_bounds(n_samples, n_parts)]
        parts = [backend.scatter((take_rows(X, index), take_rows(y, index)), cache=False)
                 for index in indices]
        return parts, [len(index) for index in indices]

    def fit(self, X, y):
        """Train one copy of `estimator` per partition, averaging the copies after every round.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)
            Training data. In-memory data is cut into `n_partitions` partitions
            (rows assigned at random when `shuffle`); a dask collection keeps
            its blocks on the workers, one partition per block (or per group of
            consecutive blocks with `n_partitions`).
        y : array-like, dask array or dask series of shape (n_samples,)
            Targets, with the same row blocks as X when X is a dask collection.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        self._check_estimator()
        owner = type(self).__name__
        multi_output = (not self._classification
                        and get_tags(self.estimator).target_tags.multi_output)
        dask_input = is_dask_collection(X) or is_dask_collection(y)
        if dask_input:
            X, y = check_dask_inputs(X, y, owner=owner, multi_output=multi_output)
            set_input_features(self, X)
        else:
            X, y = check_fit_data(self, self.estimator, X, y,
                                  task="classification" if self._classification
                                  else "regression")
            check_n_partitions(owner, self.n_partitions, X.shape[0])
            classes = self._set_classes(np.unique(y) if self._classification else None)
        with self._execution_backend() as backend:
            if dask_input:
                parts, sizes, classes = dask_partitions(
                    backend, X, y, n_partitions=self.n_partitions,
                    classification=self._classification,
                    check_finite=not allows_nan(self.estimator), as_float=False, owner=owner)
                classes = self._set_classes(classes)
                split_seed, *seeds = spawn_seeds(self.random_state, len(parts) + 1)
            else:
                n_parts = min(self.n_partitions or DEFAULT_N_PARTITIONS, X.shape[0])
                split_seed, *seeds = spawn_seeds(self.random_state, n_parts + 1)
                parts, sizes = self._in_memory_partitions(backend, X, y, n_parts, split_seed)
            weights = np.asarray(sizes, dtype=np.float64) / sum(sizes)
            models = [seeded_clone(self.estimator, seeds[0]) for _ in parts]
            global_parameters = None
            for round_index in range(self.rounds):
                # In the first round every copy has the same seed, so that all start from the
                # same initial parameters (MLP weights are drawn from random_state).
                models = [
                    backend.submit(train_partition, model, part, global_parameters,
                                   seed if round_index else seeds[0], classes,
                                   self.local_epochs)
                    for model, part, seed in zip(models, parts, seeds)
                ]
                weighted = [backend.submit(weighted_parameters, model, float(weight), owner)
                            for model, weight in zip(models, weights)]
                global_parameters = backend.tree_reduce(weighted, add_parameters)
                averaged = global_parameters.result()  # one round at a time; errors surface here
            final = backend.gather(models[:1])[0]
        set_model_parameters(final, averaged)
        self.estimator_ = final
        self.partition_sizes_ = np.asarray(sizes)
        return self

    def _check_predict(self, X):
        check_is_fitted(self)
        return check_predict_data(self, self.estimator, X)

    @blockwise_if_dask
    def predict(self, X):
        """Predict with the averaged model.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            For dask input: a dask array for a dask array, a dask series or
            dataframe for a dask dataframe (computed lazily, block by block).
        """
        X = self._check_predict(X)
        return self.estimator_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags


def _estimator_has(method: str):
    def check(self):
        return hasattr(getattr(self, "estimator_", self.estimator), method)

    return check


class ParameterAveragingClassifier(ClassifierMixin, _BaseParameterAveraging):
    """A classifier trained by averaging the parameters of copies trained on data partitions.

    Each round, the copy of every partition starts from the current global
    parameters, runs `local_epochs` passes of ``partial_fit`` over its
    partition where the partition lives (``classes=`` given, so every copy
    knows every class), and the global parameters become the copies' average,
    weighted by partition size. Works with estimators whose ``partial_fit``
    learns ``coef_`` and ``intercept_`` (SGDClassifier, Perceptron,
    PassiveAggressiveClassifier) or ``coefs_`` and ``intercepts_``
    (MLPClassifier).

    Parameters
    ----------
    %(shared)s

    Attributes
    ----------
    estimator_ : estimator object
        The averaged model (a copy of `estimator` carrying the average parameters).
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    partition_sizes_ : ndarray of shape (n_partitions,)
        Number of samples of each partition (the averaging weights).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    ParameterAveragingRegressor : The same for regression.
    dasktrain.linear_model.DistributedLogisticRegression : Exact full-batch training instead.

    Notes
    -----
    Seeds: ``spawn_seeds(random_state, n_partitions + 1)`` gives the seed of the
    row assignment, then one seed per partition; every ``random_state`` of a
    partition's copy is set from its seed by ``set_random_states``. In the first
    round all copies use partition 0's seed so that they start from the same
    initial parameters. With one partition the result is therefore the model
    that ``set_random_states(clone(estimator), spawn_seeds(random_state, 2)[1])``
    reaches after ``rounds * local_epochs`` calls of ``partial_fit`` on all the
    data.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import SGDClassifier
    >>> from dasktrain.ensemble import ParameterAveragingClassifier
    >>> X, y = make_classification(n_samples=400, random_state=0)
    >>> clf = ParameterAveragingClassifier(SGDClassifier(random_state=0), n_partitions=4,
    ...                                    rounds=5, random_state=0).fit(X, y)
    >>> clf.partition_sizes_
    array([100, 100, 100, 100])
    >>> bool(clf.score(X, y) > 0.8)
    True
    """

    _classification = True

    @available_if(_estimator_has("predict_proba"))
    @blockwise_if_dask
    def predict_proba(self, X):
        """Class probabilities of the averaged model.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        X = self._check_predict(X)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log of the class probabilities of the averaged model.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        X = self._check_predict(X)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    @blockwise_if_dask
    def decision_function(self, X):
        """Decision scores of the averaged model.

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask dataframe of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        X = self._check_predict(X)
        return self.estimator_.decision_function(X)


class ParameterAveragingRegressor(RegressorMixin, _BaseParameterAveraging):
    """A regressor trained by averaging the parameters of copies trained on data partitions.

    Each round, the copy of every partition starts from the current global
    parameters, runs `local_epochs` passes of ``partial_fit`` over its
    partition where the partition lives, and the global parameters become the
    copies' average, weighted by partition size. Works with estimators whose
    ``partial_fit`` learns ``coef_`` and ``intercept_`` (SGDRegressor,
    PassiveAggressiveRegressor) or ``coefs_`` and ``intercepts_`` (MLPRegressor).

    Parameters
    ----------
    %(shared)s

    Attributes
    ----------
    estimator_ : estimator object
        The averaged model (a copy of `estimator` carrying the average parameters).
    partition_sizes_ : ndarray of shape (n_partitions,)
        Number of samples of each partition (the averaging weights).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    ParameterAveragingClassifier : The same for classification.
    dasktrain.linear_model.DistributedLinearRegression : Exact full-batch training instead.

    Notes
    -----
    Seeds are drawn as in :class:`ParameterAveragingClassifier`.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.linear_model import SGDRegressor
    >>> from dasktrain.ensemble import ParameterAveragingRegressor
    >>> X, y = make_regression(n_samples=400, n_features=5, noise=1.0, random_state=0)
    >>> reg = ParameterAveragingRegressor(SGDRegressor(random_state=0), n_partitions=4,
    ...                                   rounds=20, random_state=0).fit(X, y)
    >>> bool(reg.score(X, y) > 0.99)
    True
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = get_tags(self.estimator).target_tags.multi_output
        return tags


for _estimator in (ParameterAveragingClassifier, ParameterAveragingRegressor):
    _estimator.__doc__ = _estimator.__doc__.replace("%(shared)s", _SHARED_PARAMETERS)
    fill_doc(_estimator)
del _estimator
