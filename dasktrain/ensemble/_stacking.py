"""StackingEnsemble: out-of-fold stacking (or voting) whose fits all run in parallel."""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import check_cv
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, ClassifierTags, RegressorTags, TransformerTags, get_tags
from sklearn.utils.metaestimators import _BaseComposition, available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from .._base import ParallelEstimatorMixin, blockwise_if_dask, estimator_instance, fill_doc
from .._delayed import (FitGraph, check_sample_weight_support, fit_clone, is_seeded,
                        seeded_clone)
from .._execution import is_dask_collection
from ..utils import HasMethods, Interval, Options, Predicate, spawn_seeds
from ..utils._data import (allows_nan, check_fit_data, check_predict_data, check_sample_weight,
                           take_rows)
from ._combine import average, hard_vote, soft_vote

__all__ = ["StackingEnsemble"]

#: The order in which ``stack_method="auto"`` tries the response methods (as scikit-learn).
_AUTO_METHODS = ("predict_proba", "decision_function", "predict")
#: Methods whose outputs have one column per class, so folds must agree on the columns.
_PER_CLASS_METHODS = ("predict_proba", "decision_function", "predict_log_proba")


# --------------------------------------------------------------------------------------
# Tasks: module-level functions, so that workers import them by name.
# --------------------------------------------------------------------------------------


def enforce_class_columns(fold_classes, predictions, n_classes: int, method: str):
    """Give the predictions of a fold's model one column per class of the whole data.

    A fold whose training part misses a class yields fewer columns; they are
    placed at their class's position and the missing ones filled as
    scikit-learn's ``cross_val_predict`` does (0 for probabilities, the lowest
    float for decision values), with the same warning and errors.
    """
    n_fold_classes = len(fold_classes)
    if n_fold_classes == n_classes:
        return predictions
    advice = "To fix this, use a cross-validation technique resulting in properly stratified folds"
    warnings.warn(
        f"Number of classes in training fold ({n_fold_classes}) does not match total number "
        f"of classes ({n_classes}). Results may not be appropriate for your use case. {advice}",
        RuntimeWarning,
    )
    if method == "decision_function":
        if predictions.ndim == 2 and predictions.shape[1] != n_fold_classes:
            raise ValueError(
                f"Output shape {predictions.shape} of {method} does not match number of "
                f"classes ({n_fold_classes}) in fold. Irregular decision_function outputs "
                "are not supported by out-of-fold stacking."
            )
        if n_fold_classes <= 2:
            raise ValueError(
                f"Only {n_fold_classes} class/es in training fold, but {n_classes} in overall "
                f"dataset. This is not supported for decision_function with imbalanced "
                f"folds. {advice}"
            )
    fill = 0 if method == "predict_proba" else np.finfo(predictions.dtype).min
    complete = np.full((predictions.shape[0], n_classes), fill, dtype=predictions.dtype)
    complete[:, np.asarray(fold_classes, dtype=int)] = predictions
    return complete


def fit_fold_and_predict(estimator, X, y, train, test, method: str, n_classes,
                         sample_weight=None):
    """Fit a clone of `estimator` on the rows `train`; return its `method` output on `test`.

    `n_classes` is None for regression and multilabel targets, whose outputs
    need no class columns put in place.
    """
    model = fit_clone(estimator, X, y, rows=train, sample_weight=sample_weight)
    predictions = getattr(model, method)(take_rows(X, test))
    if n_classes is not None and method in _PER_CLASS_METHODS and not isinstance(
            predictions, list):
        predictions = enforce_class_columns(model.classes_, predictions, n_classes, method)
    return predictions


def predict_all(estimator, X, method: str):
    """``estimator.method(X)``: the meta-features of a prefitted base estimator (cv="prefit")."""
    return getattr(estimator, method)(X)


def stack_predictions(X, predictions, methods, n_classes, passthrough: bool):
    """The meta-features: the base predictions side by side (and `X` with passthrough).

    Columns follow scikit-learn's stacking: a 1-D output becomes one column and
    binary ``predict_proba`` keeps only the second column (the two are
    collinear). Returns ``(X_meta, n_columns_per_estimator)``.
    """
    blocks = []
    for preds, method in zip(predictions, methods):
        if isinstance(preds, list):
            blocks.extend(pred[:, 1:] for pred in preds)
        elif preds.ndim == 1:
            blocks.append(preds.reshape(-1, 1))
        elif method == "predict_proba" and n_classes == 2:
            blocks.append(preds[:, 1:])
        else:
            blocks.append(preds)
    n_columns = [block.shape[1] for block in blocks]
    if passthrough:
        if sp.issparse(X):
            return sp.hstack([*blocks, X], format=X.format), n_columns
        blocks.append(np.asarray(X))
    return np.hstack(blocks), n_columns


def fit_final_estimator(final_estimator, fold_predictions, test_folds, X, y, methods,
                        n_classes, passthrough: bool, sample_weight=None):
    """Put the out-of-fold predictions back in sample order and fit `final_estimator` on them.

    `fold_predictions` holds, for each base estimator, its predictions on each
    test fold; `test_folds` the test indices of each fold. Runs where the
    tasks run, so the out-of-fold predictions never travel to the client.
    Returns ``(fitted final estimator, n_columns_per_estimator)``.
    """
    order = np.concatenate(test_folds)
    inverse = np.empty(len(order), dtype=int)
    inverse[order] = np.arange(len(order))
    out_of_fold = []
    for per_fold in fold_predictions:
        if sp.issparse(per_fold[0]):
            out_of_fold.append(sp.vstack(per_fold, format=per_fold[0].format)[inverse])
        elif isinstance(per_fold[0], list):
            out_of_fold.append([np.concatenate([fold[i] for fold in per_fold])[inverse]
                                for i in range(len(per_fold[0]))])
        else:
            out_of_fold.append(np.concatenate(per_fold)[inverse])
    X_meta, n_columns = stack_predictions(X, out_of_fold, methods, n_classes, passthrough)
    return fit_clone(final_estimator, X_meta, y, sample_weight=sample_weight), n_columns


# --------------------------------------------------------------------------------------
# Base estimators: validation, Repeated* expansion, task detection.
# --------------------------------------------------------------------------------------


def _repeated_members(estimator):
    """The members of a RepeatedClassifier/RepeatedRegressor, or None for other estimators.

    A fitted Repeated* gives unfitted clones of its members (each keeps its
    seed); an unfitted one gives the members it would fit: clones of its
    estimator seeded from ``spawn_seeds(random_state, n_repeats)``.
    """
    from ._repeated import RepeatedClassifier, RepeatedRegressor

    if not isinstance(estimator, (RepeatedClassifier, RepeatedRegressor)):
        return None
    fitted = getattr(estimator, "estimators_", None)
    if fitted is not None:
        return [clone(member) for member in fitted]
    seeds = spawn_seeds(estimator.random_state, estimator.n_repeats)
    return [seeded_clone(estimator.estimator, seed) for seed in seeds]


def _is_estimator_pair(item) -> bool:
    return (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
            and (_is_drop(item[1]) or (not isinstance(item[1], type)
                                       and callable(getattr(item[1], "fit", None)))))


def _first_estimator(estimators):
    """The first base estimator that is not ``"drop"``, or None when there is none."""
    for item in estimators if isinstance(estimators, (list, tuple)) else ():
        if _is_estimator_pair(item) and not _is_drop(item[1]):
            return item[1]
    return None


def _is_multilabel(y) -> bool:
    """Whether `y` is a multilabel indicator matrix (bad targets are left to the input checks)."""
    try:
        return y is not None and type_of_target(y) == "multilabel-indicator"
    except (TypeError, ValueError):
        return False


def _is_drop(estimator) -> bool:
    return isinstance(estimator, str) and estimator == "drop"


def _is_stacking(ensemble) -> bool:
    return ensemble.combine == "stacking"


def _final_has(method: str):
    """For available_if: stacking whose (fitted or default) final estimator has `method`."""

    def check(ensemble) -> bool:
        if ensemble.combine != "stacking":
            return False
        final = getattr(ensemble, "final_estimator_", None)
        if final is None:
            final = ensemble.final_estimator
        if final is None:
            final = LogisticRegression() if ensemble._is_classification() else RidgeCV()
        getattr(final, method)  # its AttributeError becomes the cause of available_if's
        return True

    return check


def _can_predict_proba(ensemble) -> bool:
    if not ensemble._is_classification():
        return False
    if ensemble.combine == "voting":
        return ensemble.voting == "soft"
    return _final_has("predict_proba")(ensemble)


@fill_doc
class StackingEnsemble(ParallelEstimatorMixin, _BaseComposition):
    """Stack (or vote over) several estimators, fitting every fold of every one in parallel.

    Out-of-fold stacking as scikit-learn's :class:`~sklearn.ensemble.StackingClassifier`
    and :class:`~sklearn.ensemble.StackingRegressor` do it, with the same
    predictions for the same estimators and folds: each base estimator is
    fitted on every training fold and predicts its test fold, the final
    estimator learns from these out-of-fold predictions, and each base
    estimator is also fitted on all the data for prediction. Every one of
    these fits is its own task, all submitted at once, with the data sent to
    the workers once; the final estimator is fitted where the tasks run.

    The task follows the base estimators: classification when they are
    classifiers, regression when they are regressors (mixing both is an error).
    With ``combine="voting"`` there is no final estimator and no
    cross-validation: the base estimators are fitted on all the data and their
    predictions averaged (regression) or voted on (classification, see `voting`).

    Parameters
    ----------
    estimators : list of (str, estimator) tuples
        The base estimators, each with a name; an estimator may be ``"drop"``.
        A :class:`~dasktrain.RepeatedClassifier` or
        :class:`~dasktrain.RepeatedRegressor` contributes each of its members as
        a base estimator of its own, named ``"<name>_<i>"``.
    final_estimator : estimator or None, default=None
        The estimator fitted on the base predictions. None means
        :class:`~sklearn.linear_model.LogisticRegression` for classification and
        :class:`~sklearn.linear_model.RidgeCV` for regression. Not used with
        ``combine="voting"``.
    cv : int, cross-validation generator, iterable of splits or None, default=5
        The folds of the out-of-fold predictions, as in scikit-learn: an int or
        None (5) means :class:`~sklearn.model_selection.StratifiedKFold` for
        classification and :class:`~sklearn.model_selection.KFold` for
        regression. The folds must partition the samples.
    stack_method : {"auto", "predict_proba", "decision_function", "predict"}, default="auto"
        The method of each base estimator whose output the final estimator
        sees; "auto" tries ``predict_proba``, ``decision_function`` and
        ``predict`` in that order (regressors use ``predict``). For binary
        classification the first column of ``predict_proba`` is dropped.
    passthrough : bool, default=False
        Whether the final estimator also sees the original features.
    combine : {"stacking", "voting"}, default="stacking"
        "stacking" fits `final_estimator` on out-of-fold predictions; "voting"
        averages the base estimators instead (no final estimator, no `cv`).
    voting : {"soft", "hard"}, default="soft"
        With ``combine="voting"`` and classifiers: "soft" averages the members'
        ``predict_proba``; "hard" predicts the majority class of their
        predictions (ties go to the first class) and has no ``predict_proba``.
    random_state : int, RandomState instance or None, default=None
        Seeds the splitter when `cv` shuffles and has no ``random_state`` of its
        own; an int gives the same folds, and so the same model, on every
        backend. The base estimators keep their own ``random_state``.
    %(use_dask)s
    %(client)s
    %(n_jobs)s

    Attributes
    ----------
    estimators_ : list of estimators
        The base estimators fitted on all the data (dropped ones left out,
        Repeated* members in their place).
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The fitted base estimators by name (``"drop"`` for dropped ones).
    final_estimator_ : estimator
        The fitted final estimator (``combine="stacking"`` only).
    stack_method_ : list of str
        The method used of each base estimator.
    classes_ : ndarray of shape (n_classes,)
        The class labels (classification only).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when `X` has string column names.

    See Also
    --------
    sklearn.ensemble.StackingClassifier : The same stacking, one fit after another.
    sklearn.ensemble.StackingRegressor : Its regression twin.
    sklearn.ensemble.VotingClassifier : Voting, as with ``combine="voting"``.
    RepeatedClassifier : Members that differ only by their seed, to stack with
        :meth:`from_repeated`.
    PartitionedEnsemble : One model per part of the data.

    Notes
    -----
    The base estimators are fitted on the labels encoded as 0..n_classes-1, as
    scikit-learn's stacking does, so that any label type works. Dask arrays and
    dataframes given to ``predict``, ``predict_proba``, ``decision_function``
    and ``transform`` are handled block by block and give a dask collection.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from dasktrain import StackingEnsemble
    >>> X, y = load_iris(return_X_y=True)
    >>> stack = StackingEnsemble(
    ...     [("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
    ...      ("logistic", LogisticRegression(max_iter=500))], cv=3)
    >>> stack.fit(X, y).stack_method_
    ['predict_proba', 'predict_proba']
    >>> round(stack.score(X, y), 2)
    0.97
    >>> StackingEnsemble([("tree", DecisionTreeClassifier(random_state=0))],
    ...                  combine="voting").fit(X, y).predict(X[:3])
    array([0, 0, 0])
    """

    _parameter_constraints: dict = {
        "estimators": [list],
        "final_estimator": [None, estimator_instance("fit")],
        "cv": [
            None,
            Options(("prefit",)),
            Interval(numbers.Integral, 2, None),
            HasMethods("split", "get_n_splits"),
            Predicate(lambda value: not isinstance(value, str) and iter(value) is not None,
                      "an iterable of (train, test) splits"),
        ],
        "stack_method": [Options(("auto", "predict_proba", "decision_function", "predict"))],
        "passthrough": ["boolean"],
        "combine": [Options(("stacking", "voting"))],
        "voting": [Options(("soft", "hard"))],
        "random_state": ["random_state"],
    }

    def __init__(self, estimators, final_estimator=None, *, cv=5, stack_method="auto",
                 passthrough=False, combine="stacking", voting="soft", random_state=None,
                 use_dask=False, client=None, n_jobs=None):
        self.estimators = estimators
        self.final_estimator = final_estimator
        self.cv = cv
        self.stack_method = stack_method
        self.passthrough = passthrough
        self.combine = combine
        self.voting = voting
        self.random_state = random_state
        self.use_dask = use_dask
        self.client = client
        self.n_jobs = n_jobs

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_repeated(cls, repeated, final_estimator=None, **kwargs):
        """Stack the members of a RepeatedClassifier or RepeatedRegressor.

        As carefree-learn's ``Ensemble.stacking``: the members (clones of the
        fitted ones, or those an unfitted one would fit, each with its seed)
        become the base estimators ``"repeat_0"``, ``"repeat_1"``, ... and a
        final estimator learns how to combine them. ``combine="voting"`` in
        `kwargs` averages them instead.

        Parameters
        ----------
        repeated : RepeatedClassifier or RepeatedRegressor
            Fitted or not; it is not modified.
        final_estimator : estimator or None, default=None
            As in :class:`StackingEnsemble`.
        **kwargs
            Other parameters of :class:`StackingEnsemble`.

        Returns
        -------
        stack : StackingEnsemble
            Not fitted.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> from dasktrain import RepeatedClassifier, StackingEnsemble
        >>> X, y = load_iris(return_X_y=True)
        >>> rep = RepeatedClassifier(DecisionTreeClassifier(max_depth=2), n_repeats=3,
        ...                          random_state=0)
        >>> stack = StackingEnsemble.from_repeated(rep, cv=3).fit(X, y)
        >>> list(stack.named_estimators_)
        ['repeat_0', 'repeat_1', 'repeat_2']
        """
        members = _repeated_members(repeated)
        if members is None:
            raise TypeError(
                "StackingEnsemble.from_repeated needs a RepeatedClassifier or "
                f"RepeatedRegressor. Got {repeated!r} instead."
            )
        return cls([(f"repeat_{i}", member) for i, member in enumerate(members)],
                   final_estimator=final_estimator, **kwargs)

    # ---------------------------------------------------------------- parameters

    # _BaseComposition (scikit-learn's own base of StackingClassifier, VotingClassifier and
    # Pipeline) gives the `estimators` list scikit-learn's exact semantics: each base
    # estimator is a parameter by its name, nested ones as "name__param", "drop" allowed,
    # and its name checks. It is private API, but there is no public one for this, and
    # writing our own copy would drift from scikit-learn's (tests/test_stacking.py checks
    # that the semantics stay those of StackingClassifier).
    def get_params(self, deep=True):
        """Parameters of this estimator; with ``deep=True`` also each base estimator by its
        name and their parameters as ``<name>__<param>``, as scikit-learn's stacking."""
        return self._get_params("estimators", deep=deep)

    def set_params(self, **params):
        """Set parameters; a base estimator is replaced by its name (or ``"drop"``), nested
        ones set as ``<name>__<param>``.

        Returns
        -------
        self : StackingEnsemble
        """
        self._set_params("estimators", **params)
        return self

    # ---------------------------------------------------------------- task and tags

    def _is_classification(self) -> bool:
        first = _first_estimator(self.estimators)
        return first is not None and is_classifier(first)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        first = _first_estimator(self.estimators)
        tags.target_tags.required = True
        if first is None:
            return tags
        if is_classifier(first):
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
            tags.regressor_tags = None
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.classifier_tags = None
            tags.target_tags.multi_output = True
        if self.combine == "stacking":
            tags.transformer_tags = TransformerTags()
        estimators = [item[1] for item in self.estimators
                      if _is_estimator_pair(item) and not _is_drop(item[1])]
        tags.input_tags.allow_nan = all(allows_nan(estimator) for estimator in estimators)
        tags.input_tags.sparse = all(_get_sparse_tag(estimator) for estimator in estimators)
        return tags

    def _expanded_estimators(self):
        """Validate `estimators` and return (names, estimators) with Repeated* members expanded."""
        owner = type(self).__name__
        for item in self.estimators if isinstance(self.estimators, list) else ():
            if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], type):
                raise TypeError(
                    f"The estimator {item[0]!r} in the 'estimators' parameter of {owner} is the "
                    f"class {item[1].__name__}, not an instance of it. Pass "
                    f"{item[1].__name__}() instead."
                )
        if not self.estimators or not all(_is_estimator_pair(item) for item in self.estimators):
            raise ValueError(
                f"The 'estimators' parameter of {owner} must be a non-empty list of (str, "
                "estimator) tuples, where each estimator has a 'fit' method or is 'drop'. "
                f"Got {self.estimators!r} instead."
            )
        given_names = [name for name, _ in self.estimators]
        self._check_names(given_names)
        names, estimators = [], []
        for name, estimator in self.estimators:
            members = None if _is_drop(estimator) else _repeated_members(estimator)
            if members is None:
                names.append(name)
                estimators.append(estimator)
            else:
                names.extend(f"{name}_{i}" for i in range(len(members)))
                estimators.extend(members)
        if len(set(names)) != len(names):
            raise ValueError(
                f"The base estimator names of {owner} are not unique once the members of "
                f"Repeated* estimators are named '<name>_<i>': {names!r}. Rename the "
                "estimators."
            )
        kept = [estimator for estimator in estimators if not _is_drop(estimator)]
        if not kept:
            raise ValueError(
                f"All estimators of {owner} are 'drop'. At least one is required to be an "
                "estimator."
            )
        classification = is_classifier(kept[0])
        for name, estimator in zip(names, estimators):
            if _is_drop(estimator):
                continue
            if classification and not is_classifier(estimator):
                raise ValueError(
                    f"The base estimators of {owner} must all be classifiers or all be "
                    f"regressors: the first one is a classifier but {name!r} "
                    f"({type(estimator).__name__}) is not."
                )
            if not classification and is_classifier(estimator):
                raise ValueError(
                    f"The base estimators of {owner} must all be classifiers or all be "
                    f"regressors: the first one is not a classifier but {name!r} "
                    f"({type(estimator).__name__}) is."
                )
        return names, estimators, classification

    def _check_names(self, names):
        owner = type(self).__name__
        if len(set(names)) != len(names):
            raise ValueError(f"The names of the estimators of {owner} are not unique: {names!r}")
        try:
            self._validate_names(names)
        except ValueError as error:
            raise ValueError(
                f"The 'estimators' parameter of {owner} has bad names: {error}"
            ) from None

    def _final_estimator(self, classification: bool):
        owner = type(self).__name__
        if self.combine == "voting":
            if self.final_estimator is not None:
                raise ValueError(
                    f"The 'final_estimator' parameter of {owner} is only used with "
                    "combine='stacking'. Got a final estimator with combine='voting'; "
                    "leave it None or use combine='stacking'."
                )
            return None
        if self.final_estimator is None:
            return LogisticRegression() if classification else RidgeCV()
        final = clone(self.final_estimator)
        if classification and not is_classifier(final):
            raise ValueError(
                f"The 'final_estimator' parameter of {owner} must be a classifier when the "
                f"base estimators are classifiers. Got {self.final_estimator!r} instead."
            )
        if not classification and not is_regressor(final):
            raise ValueError(
                f"The 'final_estimator' parameter of {owner} must be a regressor when the "
                f"base estimators are regressors. Got {self.final_estimator!r} instead."
            )
        return final

    def _methods(self, names, estimators, classification: bool):
        """The response method of each base estimator (None for dropped ones)."""
        owner = type(self).__name__
        if self.combine == "voting":
            if not classification:
                wanted = "predict"
            else:
                wanted = "predict_proba" if self.voting == "soft" else "predict"
            choices = [wanted]
        elif self.stack_method == "auto":
            choices = list(_AUTO_METHODS) if classification else ["predict"]
        else:
            choices = [self.stack_method]
        methods = []
        for name, estimator in zip(names, estimators):
            if _is_drop(estimator):
                methods.append(None)
                continue
            method = next((choice for choice in choices if hasattr(estimator, choice)), None)
            if method is None:
                if self.combine == "voting" and classification and self.voting == "soft":
                    raise ValueError(
                        f"The 'voting' parameter of {owner} is 'soft', but the estimator "
                        f"{name!r} ({type(estimator).__name__}) has no predict_proba. Use "
                        "voting='hard' or an estimator with predict_proba."
                    )
                raise ValueError(
                    f"The estimator {name!r} ({type(estimator).__name__}) of {owner} does not "
                    f"implement the method {' or '.join(choices)} (stack_method="
                    f"{self.stack_method!r})."
                )
            methods.append(method)
        return methods

    def _folds(self, X, y, classification: bool):
        """The (train, test) index pairs, computed here on the client from `cv`."""
        cv = check_cv(5 if self.cv is None else self.cv, y, classifier=classification)
        if getattr(cv, "random_state", False) is None:
            cv = copy.deepcopy(cv)  # the user's splitter stays as it was
            cv.random_state = spawn_seeds(self.random_state, 1)[0]
        folds = [(np.asarray(train), np.asarray(test)) for train, test in cv.split(X, y)]
        tests = np.concatenate([test for _, test in folds]) if folds else np.array([], int)
        if len(tests) != y.shape[0] or not np.array_equal(np.sort(tests), np.arange(y.shape[0])):
            raise ValueError(
                f"The 'cv' parameter of {type(self).__name__} must give folds whose test parts "
                "partition the samples (each sample in exactly one test fold), as out-of-fold "
                f"stacking needs. Got {self.cv!r}, which does not."
            )
        return folds

    # ---------------------------------------------------------------- fit

    def fit(self, X, y, sample_weight=None):
        """Fit the base estimators (on every fold and on all the data) and the final one.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; a pandas DataFrame is passed to the estimators as is.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets: several outputs for regression, or a multilabel indicator
            matrix for classification (stacked per label, as scikit-learn does).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Passed to every fit: the base estimators' (their rows of it on each
            fold) and the final estimator's. Every estimator must accept it.

        Returns
        -------
        self : StackingEnsemble
            The fitted ensemble.
        """
        return self._fit_by_graph(X, y, sample_weight=sample_weight)

    def _fit_graph(self, X, y, *, n_workers, sample_weight=None):
        """Check everything, then describe every (estimator, fold) fit, the full fits and the
        final fit as tasks; the final estimator is fitted where the tasks run."""
        self._validate_params()
        owner = type(self).__name__
        names, estimators, classification = self._expanded_estimators()
        final = self._final_estimator(classification)
        prefit = self.cv == "prefit"
        fitted_idx = [i for i, estimator in enumerate(estimators) if not _is_drop(estimator)]
        if sample_weight is not None:
            described = [] if prefit else [(f"estimator {names[i]!r}", estimators[i])
                                           for i in fitted_idx]
            if final is not None:
                described.append(("final_estimator", final))
            check_sample_weight_support(described, owner)
        methods = self._methods(names, estimators, classification)
        if prefit and self.combine == "voting":
            raise ValueError(
                f"The 'cv' parameter of {owner} is 'prefit', which is only used with "
                "combine='stacking'. Got combine='voting'."
            )
        if is_dask_collection(X) or is_dask_collection(y):
            raise TypeError(
                f"{owner}.fit needs X and y in memory (numpy, scipy sparse or "
                f"pandas): out-of-fold stacking takes rows from anywhere in the data. Got X "
                f"of type {type(X).__name__} and y of type {type(y).__name__}; compute them "
                "first, or fit one model per block with PartitionedEnsemble. Prediction "
                "accepts dask collections."
            )
        kept = [estimators[i] for i in fitted_idx]
        if prefit:
            for i in fitted_idx:
                check_is_fitted(estimators[i])
        strict = next((estimator for estimator in kept if not allows_nan(estimator)), kept[0])
        multilabel = classification and _is_multilabel(y)
        if multilabel and self.combine == "voting":
            raise ValueError(
                f"{owner} with combine='voting' needs one label per sample. Got a multilabel "
                "indicator matrix; use combine='stacking', which stacks per label."
            )
        task = ("multilabel" if multilabel else
                "classification" if classification else "regression")
        X, y = check_fit_data(self, strict, X, y, task=task)
        sample_weight = check_sample_weight(sample_weight, y.shape[0], owner)
        for name in ("classes_", "final_estimator_", "_n_feature_outs", "_label_encoders"):
            self.__dict__.pop(name, None)
        n_classes = None
        if multilabel:
            encoders = [LabelEncoder().fit(column) for column in y.T]
            self._label_encoders = encoders
            self.classes_ = [encoder.classes_ for encoder in encoders]
            y = np.column_stack([encoder.transform(column)
                                 for encoder, column in zip(encoders, y.T)])
        elif classification:
            encoder = LabelEncoder().fit(y)
            self.classes_ = encoder.classes_
            y = encoder.transform(y)
            n_classes = len(self.classes_)
        self._n_classes = n_classes
        kept_methods = [methods[i] for i in fitted_idx]
        self.stack_method_ = kept_methods
        self._names = names
        self._fitted_idx = fitted_idx
        self._estimator_names = [names[i] for i in fitted_idx]
        self._prefitted = kept if prefit else None

        graph = FitGraph()
        X_data, y_data = graph.data("X", X), graph.data("y", y)
        weights = graph.data("sample_weight", sample_weight)
        if prefit:
            fold_predictions = [[graph.task(predict_all, estimators[i], X_data, methods[i])]
                                for i in fitted_idx]
            test_folds = [np.arange(y.shape[0])]
            full = []
        else:
            folds = self._folds(X, y, classification) if self.combine == "stacking" else []
            fold_predictions = [
                [graph.task(fit_fold_and_predict, estimators[i], X_data, y_data, train, test,
                            methods[i], n_classes, sample_weight=weights,
                            pure=is_seeded(estimators[i]))
                 for train, test in folds]
                for i in fitted_idx
            ]
            test_folds = [test for _, test in folds]
            full = [graph.task(fit_clone, estimators[i], X_data, y_data, sample_weight=weights,
                               pure=is_seeded(estimators[i]))
                    for i in fitted_idx]
        outputs = list(full)
        if final is not None:
            outputs.append(graph.task(fit_final_estimator, final, fold_predictions, test_folds,
                                      X_data, y_data, kept_methods, n_classes, self.passthrough,
                                      sample_weight=weights, pure=is_seeded(final)))
        return graph, outputs

    def _assemble(self, results):
        if self.combine == "stacking":
            *results, (self.final_estimator_, self._n_feature_outs) = results
        fitted = list(results) if self._prefitted is None else self._prefitted
        self.estimators_ = fitted
        self.named_estimators_ = Bunch()
        by_index = dict(zip(self._fitted_idx, fitted))
        for i, name in enumerate(self._names):
            self.named_estimators_[name] = by_index.get(i, "drop")
        del self._names, self._fitted_idx, self._prefitted
        return self

    # ---------------------------------------------------------------- predict

    def _fitted_classifier(self) -> bool:
        return hasattr(self, "classes_")

    def _base_predictions(self, X):
        X = check_predict_data(self, self.estimators_[0], X)
        return X, [getattr(estimator, method)(X)
                   for estimator, method in zip(self.estimators_, self.stack_method_)]

    @available_if(_is_stacking)
    @blockwise_if_dask
    def transform(self, X):
        """The meta-features of `X`: the base predictions side by side (and `X` with passthrough).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array or dataframe} of shape (n_samples, n_features)

        Returns
        -------
        X_meta : ndarray of shape (n_samples, n_meta_features)
        """
        check_is_fitted(self)
        given = X
        X, predictions = self._base_predictions(X)
        if sp.issparse(given):  # passthrough keeps the caller's sparse format, as scikit-learn
            X = given
        return stack_predictions(X, predictions, self.stack_method_, self._n_classes,
                                 self.passthrough and self.combine == "stacking")[0]

    @available_if(_is_stacking)
    def fit_transform(self, X, y, sample_weight=None):
        """Fit, then return :meth:`transform` of `X` (the full-data base predictions).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,) or None, default=None
            As in :meth:`fit`.

        Returns
        -------
        X_meta : ndarray of shape (n_samples, n_meta_features)
        """
        return self.fit(X, y, sample_weight=sample_weight).transform(X)

    def _vote(self, X):
        """Encoded predictions (hard voting) or averaged outputs (soft voting, regression)."""
        check_is_fitted(self)
        X, predictions = self._base_predictions(X)
        if not self._fitted_classifier():
            return average(predictions)
        if self.voting == "soft":
            return soft_vote(predictions)
        return hard_vote(predictions, len(self.classes_))

    @blockwise_if_dask
    def predict(self, X, **predict_params):
        """Predict targets (classes for classification) for `X`.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array or dataframe} of shape (n_samples, n_features)
        **predict_params : dict
            Passed to the final estimator's ``predict`` (stacking, in-memory `X`
            only), e.g. ``return_std=True`` for a regressor that offers it; its
            output is then returned as the final estimator gives it.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            For dask input: a dask array for a dask array, a dask series or
            dataframe for a dask dataframe (computed lazily, block by block).
        """
        check_is_fitted(self)
        if self.combine == "voting":
            if predict_params:
                raise TypeError(
                    f"{type(self).__name__}.predict takes parameters for the final estimator "
                    f"only, and combine='voting' has none. Got {sorted(predict_params)}."
                )
            voted = self._vote(X)
            if not self._fitted_classifier():
                return voted
            if self.voting == "soft":
                voted = np.argmax(voted, axis=1)
            return self.classes_[voted]
        y_pred = self.final_estimator_.predict(self.transform(X), **predict_params)
        if isinstance(self.classes_ if self._fitted_classifier() else None, list):
            return np.column_stack([classes[np.asarray(column, dtype=int)] for classes, column
                                    in zip(self.classes_, np.asarray(y_pred).T)])
        if self._fitted_classifier():
            return self.classes_[np.asarray(y_pred, dtype=int)]
        return y_pred

    @available_if(_can_predict_proba)
    @blockwise_if_dask
    def predict_proba(self, X):
        """Class probabilities for `X` (classification).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array or dataframe} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            In the order of ``classes_``. For dask input: a dask array for a
            dask array, a dask dataframe for a dask dataframe (lazily, block by block).
        """
        check_is_fitted(self)
        if self.combine == "voting":
            return self._vote(X)
        proba = self.final_estimator_.predict_proba(self.transform(X))
        if isinstance(self.classes_, list) and isinstance(proba, list):
            # multilabel, a final estimator with one (n_samples, 2) array per label: one
            # column per label, the first of each, exactly as scikit-learn's stacking gives
            return np.array([label_proba[:, 0] for label_proba in proba]).T
        return proba

    @available_if(_final_has("decision_function"))
    @blockwise_if_dask
    def decision_function(self, X):
        """Decision values of the final estimator for `X` (stacking of classifiers).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array or dataframe} of shape (n_samples, n_features)

        Returns
        -------
        decisions : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.final_estimator_.decision_function(self.transform(X))

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
        if self._fitted_classifier():
            return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
        return r2_score(y, self.predict(X), sample_weight=sample_weight)

    @available_if(_is_stacking)
    def get_feature_names_out(self, input_features=None):
        """Names of the columns of :meth:`transform`.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            The input feature names, used with ``passthrough=True``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        prefix = type(self).__name__.lower()
        names = []
        for name, n_columns in zip(self._estimator_names, self._n_feature_outs):
            if n_columns == 1:
                names.append(f"{prefix}_{name}")
            else:
                names.extend(f"{prefix}_{name}{i}" for i in range(n_columns))
        if self.passthrough:
            if input_features is None:
                input_features = getattr(self, "feature_names_in_", None)
            if input_features is None:
                input_features = [f"x{i}" for i in range(self.n_features_in_)]
            names.extend(input_features)
        return np.asarray(names, dtype=object)


def _get_sparse_tag(estimator) -> bool:
    try:
        return bool(get_tags(estimator).input_tags.sparse)
    except Exception:  # an estimator without tags is assumed not to accept sparse input
        return False
