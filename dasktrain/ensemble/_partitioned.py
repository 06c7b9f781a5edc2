"""PartitionedEnsemble: one model per part of the data, fitted in parallel, combined by voting."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import ClassifierTags, RegressorTags, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._base import ParallelEstimatorMixin, blockwise_if_dask, estimator_instance, fill_doc
from .._delayed import FitGraph, check_sample_weight_support, fit_clone
from .._execution import is_dask_collection
from ..utils import Interval, Options, spawn_seeds
from ..utils._dask_data import (check_aligned_blocks, check_block_rows, n_row_blocks,
                                one_column_per_block, row_chunks, set_input_features)
from ..utils._data import (allows_nan, check_fit_data, check_n_partitions, check_predict_data,
                           check_sample_weight)
from ._combine import average, hard_vote, soft_vote

__all__ = ["PartitionedEnsemble"]


# --------------------------------------------------------------------------------------
# Tasks: module-level functions, so that workers import them by name.
# --------------------------------------------------------------------------------------


def _as_target(y_block):
    """A block of `y` as a numpy array: 1-D, or 2-D for several outputs."""
    values = y_block.to_numpy() if hasattr(y_block, "to_numpy") else np.asarray(y_block)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.ravel()
    return values


def summarize_block(X_block, y_block, classification: bool):
    """What the client needs to know about one block: its row counts and its classes.

    Runs where the block lives; only these few numbers (and the block's
    distinct labels for classification) travel to the client.
    """
    y_values = _as_target(y_block)
    classes = None
    if classification:
        check_classification_targets(y_values)
        classes = np.unique(y_values)
    return X_block.shape[0], y_values.shape[0], classes


def check_block_summaries(summaries, classification: bool, owner: str):
    """Check the row counts and classes of every block; return ``(classes or None, sizes)``.

    Runs before any block is fitted (a gate of the fit's graph).
    """
    for index, (n_X, n_y, _) in enumerate(summaries):
        check_block_rows(index, n_X, n_y, owner)
        if n_X == 0:
            raise ValueError(
                f"Block {index} of the data given to {owner} is empty; every partition "
                "needs samples. Drop empty partitions (e.g. with repartition) first."
            )
    sizes = [int(n_rows) for n_rows, _, _ in summaries]
    if not classification:
        return None, sizes
    classes = np.unique(np.concatenate([block_classes for _, _, block_classes in summaries]))
    for index, (_, _, block_classes) in enumerate(summaries):
        missing = np.setdiff1d(classes, block_classes)
        if len(missing):
            raise ValueError(
                f"Block {index} of the data given to {owner} has no sample of class "
                f"{_label(missing[0])}; every partition must see every class. Shuffle "
                "the rows before chunking, or use fewer, larger blocks."
            )
    return classes, sizes


def fit_block(estimator, seed: int, X_block, y_block, checked):
    """Fit a seeded clone of `estimator` on one block; labels encoded as indices of the classes.

    `checked` is what :func:`check_block_summaries` returned.
    """
    classes, _ = checked
    y_values = _as_target(y_block)
    if classes is not None:
        y_values = np.searchsorted(classes, y_values)
    else:
        y_values = y_values.astype(np.float64)
    return fit_clone(estimator, X_block, y_values, seed)


# --------------------------------------------------------------------------------------
# Partitions of in-memory data.
# --------------------------------------------------------------------------------------


def partition_indices(n_samples: int, n_partitions: int, seed: int, y_encoded=None):
    """Shuffle the rows with `seed` and deal them into `n_partitions` parts.

    With `y_encoded` (classification) the rows are dealt class by class, so
    that every class is spread as evenly as it can be over the parts (as
    :class:`~sklearn.model_selection.StratifiedKFold` does); otherwise the
    shuffled rows are cut into consecutive parts. Part sizes differ by at most
    one, and each part keeps the shuffled order.

    Examples
    --------
    >>> parts = partition_indices(6, 2, seed=0, y_encoded=[0, 0, 0, 1, 1, 1])
    >>> [sorted(int(i) // 3 for i in part) for part in parts]
    [[0, 0, 1], [0, 1, 1]]
    """
    order = np.random.default_rng(seed).permutation(n_samples)
    if y_encoded is None:
        return np.array_split(order, n_partitions)
    y_encoded = np.asarray(y_encoded)
    by_class = order[np.argsort(y_encoded[order], kind="stable")]
    part_of = np.empty(n_samples, dtype=int)
    part_of[by_class] = np.arange(n_samples) % n_partitions
    return [order[part_of[order] == part] for part in range(n_partitions)]


# --------------------------------------------------------------------------------------
# Checks of dask inputs that need no computation.
# --------------------------------------------------------------------------------------


def _label(value) -> str:
    """A class label as users write it (``0``, ``'cat'``), not as numpy shows it."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _soft_voting(ensemble) -> bool:
    return is_classifier(ensemble.estimator) and ensemble.voting == "soft"


@fill_doc
class PartitionedEnsemble(ParallelEstimatorMixin, BaseEstimator):
    """Fit one clone of an estimator per part of the data, in parallel, and combine them.

    The training rows are split into `n_partitions` parts and a clone of
    `estimator`, with its own seed, is fitted on each part as its own task.
    Classifiers are combined by soft or hard voting (labels are encoded, so
    any label type works) and regressors by averaging. Each model sees only
    its part: fitting costs a fraction of one model on all the data, and the
    data need never be in one place.

    In-memory data (numpy, scipy sparse, pandas) is shuffled with
    `random_state` and dealt into the parts, stratified by class for
    classification so that every part sees every class; it is sent to the
    workers once and each task receives its part's row indices. A dask array
    or dataframe is used as it is: each block is one part, computed and kept
    on the workers, and never gathered to the client.

    Parameters
    ----------
    estimator : estimator
        The estimator to fit on each part (a classifier or a regressor).
    n_partitions : int or None, default=None
        Number of parts. None means one per block of a dask input, and one per
        worker of the backend otherwise (``backend.n_workers``: 1 for
        ``use_dask=False`` with ``n_jobs=None``), lowered if needed to the
        number of samples and to the size of the smallest class. With a dask
        array whose block sizes are known, another number rechunks `X` and `y`
        lazily into that many blocks; a dask dataframe needs ``None`` or its
        number of partitions.
    voting : {"soft", "hard"}, default="soft"
        For classifiers: "soft" predicts the class of largest mean probability
        (the estimator needs ``predict_proba``); "hard" the majority class of
        the members' predictions (ties go to the first class), and then there
        is no ``predict_proba``. Ignored for regressors.
    %(random_state)s
    %(use_dask)s
    %(client)s
    %(n_jobs)s

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members, one per part, in part order.
    seeds_ : list of int
        The seed of each member (every nested ``random_state`` set from it).
    n_partitions_ : int
        Number of parts used.
    partition_sizes_ : list of int
        Number of training rows of each part.
    partition_indices_ : list of ndarray or None
        The rows of each part for in-memory data (None for dask inputs).
    classes_ : ndarray of shape (n_classes,)
        The class labels (classification only).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when `X` has string column names.

    Raises
    ------
    ValueError
        Before any fit is sent: more parts than samples, a class with fewer
        samples than parts, `y` not a dask collection when `X` is one, blocks
        of `X` and `y` that do not line up (compared when their sizes are
        known, else counted on the workers first), an empty block, or a block
        without some class.

    See Also
    --------
    RepeatedClassifier : Many models on all the data, differing only by their seed.
    StackingEnsemble : Different models whose combination is learnt.

    Notes
    -----
    The same `random_state` and `n_partitions` give the same model on every
    backend; leaving ``n_partitions=None`` makes the number of parts follow the
    backend. Datasets too small for the requested parts (as in some of
    scikit-learn's estimator checks) get a clear error with an explicit
    `n_partitions`, and fewer parts with ``n_partitions=None``.
    ``predict``, ``predict_proba`` and ``predict_log_proba`` on a dask array
    or dataframe work block by block and return a dask collection.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from dasktrain import PartitionedEnsemble
    >>> X, y = make_classification(n_samples=400, random_state=0)
    >>> ensemble = PartitionedEnsemble(LogisticRegression(), n_partitions=4, random_state=0)
    >>> ensemble.fit(X, y).partition_sizes_
    [100, 100, 100, 100]
    >>> round(ensemble.score(X, y), 2)
    0.86
    """

    _parameter_constraints: dict = {
        "estimator": [estimator_instance("fit")],
        "n_partitions": [None, Interval(numbers.Integral, 1, None)],
        "voting": [Options(("soft", "hard"))],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, n_partitions=None, voting="soft", random_state=None,
                 use_dask=False, client=None, n_jobs=None):
        self.estimator = estimator
        self.n_partitions = n_partitions
        self.voting = voting
        self.random_state = random_state
        self.use_dask = use_dask
        self.client = client
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        if is_classifier(self.estimator):
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
            tags.regressor_tags = None
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.classifier_tags = None
        tags.input_tags.allow_nan = allows_nan(self.estimator)
        try:
            tags.input_tags.sparse = bool(get_tags(self.estimator).input_tags.sparse)
        except Exception:  # an estimator without tags is assumed not to accept sparse input
            tags.input_tags.sparse = False
        return tags

    # ---------------------------------------------------------------- fit

    def fit(self, X, y, sample_weight=None):
        """Fit one clone of `estimator` per part of the data.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array or dataframe} of shape (n_samples, n_features)
            Training data.
        y : {array-like, dask array, series or dataframe} of shape (n_samples,) or \
(n_samples, n_outputs)
            Targets; a dask collection (with blocks matching those of `X`) when
            `X` is one.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            In-memory data only: each member's fit gets the weights of its rows.

        Returns
        -------
        self : PartitionedEnsemble
            The fitted ensemble.
        """
        return self._fit_by_graph(X, y, sample_weight=sample_weight)

    def _fit_graph(self, X, y, *, n_workers, sample_weight=None):
        """Check everything, then describe one task per part (after the block checks)."""
        self._validate_params()
        owner = type(self).__name__
        classification = is_classifier(self.estimator)
        if classification and self.voting == "soft" and not hasattr(self.estimator,
                                                                      "predict_proba"):
            raise ValueError(
                f"The 'voting' parameter of {owner} is 'soft', but {self.estimator!r} has no "
                "predict_proba. Use voting='hard' or an estimator with predict_proba."
            )
        if sample_weight is not None:
            check_sample_weight_support([("estimator", self.estimator)], owner)
        for name in ("estimators_", "classes_", "feature_names_in_"):
            self.__dict__.pop(name, None)
        if is_dask_collection(X) or is_dask_collection(y):
            if sample_weight is not None:
                raise ValueError(
                    f"The 'sample_weight' of {owner}.fit is only used with in-memory data. Got "
                    "sample weights with dask inputs; fit without them, or compute the data."
                )
            return self._dask_graph(X, y, classification)
        return self._in_memory_graph(X, y, classification, n_workers, sample_weight)

    def _in_memory_graph(self, X, y, classification: bool, n_workers, sample_weight):
        owner = type(self).__name__
        X, y = check_fit_data(self, self.estimator, X, y,
                              task="classification" if classification else "regression")
        n_samples = y.shape[0]
        sample_weight = check_sample_weight(sample_weight, n_samples, owner)
        class_counts = None
        if classification:
            encoder = LabelEncoder().fit(y)
            self.classes_ = encoder.classes_
            y = encoder.transform(y)
            class_counts = np.bincount(y, minlength=len(self.classes_))
        n_partitions = self.n_partitions
        if n_partitions is not None:
            self._check_spread(n_partitions, n_samples, class_counts)
        elif n_workers is None:
            raise ValueError(
                f"delayed_fit of {owner} on in-memory data needs an explicit n_partitions: "
                "None means one part per worker of the backend, and a delayed graph has no "
                "backend. Set n_partitions."
            )
        else:
            n_partitions = min(n_workers(), n_samples)
            if class_counts is not None:
                n_partitions = max(1, min(n_partitions, int(class_counts.min())))
        seeds = spawn_seeds(self.random_state, n_partitions + 1)
        parts = partition_indices(n_samples, n_partitions, seeds[0],
                                  y if classification else None)
        self.seeds_ = seeds[1:]
        self.n_partitions_ = n_partitions
        self.partition_indices_ = parts
        self.partition_sizes_ = [len(part) for part in parts]
        graph = FitGraph()
        X_data, y_data = graph.data("X", X), graph.data("y", y)
        weights = graph.data("sample_weight", sample_weight)
        outputs = [graph.task(fit_clone, self.estimator, X_data, y_data, seed, rows=part,
                              sample_weight=weights)
                   for seed, part in zip(self.seeds_, parts)]
        return graph, outputs

    def _check_spread(self, n_partitions: int, n_samples: int, class_counts) -> None:
        """Raise a clear error when the data cannot fill `n_partitions` parts."""
        owner = type(self).__name__
        check_n_partitions(owner, n_partitions, n_samples)
        if class_counts is not None and class_counts.min() < n_partitions:
            rare = int(np.argmin(class_counts))
            raise ValueError(
                f"{owner} cannot spread class {_label(self.classes_[rare])} over "
                f"n_partitions={n_partitions} partitions: it has only {class_counts[rare]} "
                "sample(s), and every partition must see every class. Use at most "
                f"{int(class_counts.min())} partitions."
            )

    def _dask_graph(self, X, y, classification: bool):
        owner = type(self).__name__
        if not (is_dask_collection(X) and is_dask_collection(y)):
            raise ValueError(
                f"{owner} needs X and y both in memory or both as dask collections. Got "
                f"X of type {type(X).__name__} and y of type {type(y).__name__}."
            )
        if hasattr(X, "numblocks") and X.ndim != 2:
            raise ValueError(f"{owner} needs a 2-D X. Got a dask array of shape {X.shape}.")
        X, y = one_column_per_block(X), one_column_per_block(y)
        X, y = self._align_blocks(X, y)
        set_input_features(self, X)
        self.n_partitions_ = n_row_blocks(X)
        seeds = spawn_seeds(self.random_state, self.n_partitions_ + 1)
        self.seeds_ = seeds[1:]
        self.partition_indices_ = None
        graph = FitGraph()
        X_blocks, y_blocks = graph.blocks("X", X), graph.blocks("y", y)
        summaries = [graph.task(summarize_block, X_block, y_block, classification)
                     for X_block, y_block in zip(X_blocks, y_blocks)]
        checked = graph.task(check_block_summaries, summaries, classification, owner, gate=True)
        fits = [graph.task(fit_block, self.estimator, seed, X_block, y_block, checked)
                for seed, X_block, y_block in zip(self.seeds_, X_blocks, y_blocks)]
        return graph, [checked, *fits]

    def _assemble(self, results):
        if self.partition_indices_ is None:  # dask input: the block checks come first
            (classes, sizes), *results = results
            if classes is not None:
                self.classes_ = classes
            self.partition_sizes_ = sizes
        self.estimators_ = list(results)
        return self

    def _align_blocks(self, X, y):
        """Check (and, for dask arrays with known sizes, make) the blocks of X and y line up."""
        owner = type(self).__name__
        check_aligned_blocks(X, y, owner)
        n_X = n_row_blocks(X)
        X_chunks, y_chunks = row_chunks(X), row_chunks(y)
        wanted = self.n_partitions
        if wanted is None or wanted == n_X:
            return X, y
        if X_chunks is None or y_chunks is None:
            raise ValueError(
                f"{owner} got n_partitions={wanted}, but X has {n_X} partitions whose sizes "
                "are not known here. Use n_partitions=None (one per partition), or repartition "
                "X and y alike beforehand."
            )
        n_samples = sum(X_chunks)
        self._check_spread(wanted, n_samples, None)
        sizes = tuple(len(part) for part in np.array_split(np.arange(n_samples), wanted))
        return (X.rechunk({0: sizes, 1: -1}),
                y.rechunk({0: sizes} if y.ndim == 1 else {0: sizes, 1: -1}))

    # ---------------------------------------------------------------- predict


    def _member_outputs(self, method: str, X):
        check_is_fitted(self)
        X = check_predict_data(self, self.estimator, X)
        return [getattr(member, method)(X) for member in self.estimators_]

    @blockwise_if_dask
    def predict(self, X):
        """Predict by voting (classification) or averaging (regression) over the members.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array or dataframe} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            For dask input: a dask array for a dask array, a dask series or
            dataframe for a dask dataframe (computed lazily, block by block).
        """
        check_is_fitted(self)
        if not hasattr(self, "classes_"):
            return average(self._member_outputs("predict", X))
        if self.voting == "soft":
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return self.classes_[hard_vote(self._member_outputs("predict", X), len(self.classes_))]

    @available_if(_soft_voting)
    @blockwise_if_dask
    def predict_proba(self, X):
        """The mean of the members' class probabilities (``voting="soft"``).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array or dataframe} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            In the order of ``classes_``. For dask input: a dask array for a
            dask array, a dask dataframe for a dask dataframe (lazily, block by block).
        """
        return soft_vote(self._member_outputs("predict_proba", X))

    @available_if(_soft_voting)
    @blockwise_if_dask
    def predict_log_proba(self, X):
        """The log of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array or dataframe} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def score(self, X, y, sample_weight=None):
        """Accuracy (classification) or R² (regression) of ``predict(X)`` against `y`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,) or None, default=None

        Returns
        -------
        score : float
        """
        if is_classifier(self):
            return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
        return r2_score(y, self.predict(X), sample_weight=sample_weight)
