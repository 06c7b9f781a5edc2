"""GeneticFeatureSelectionCV: choose columns by a genetic search over feature masks.

A candidate is a feature mask, held as the sorted tuple of the selected column
indices (``{"features": (0, 3, 7)}``). It runs on the search engine of
:class:`~dasktrain.model_selection.GeneticSearchCV`: the data is sent once per
fit, each task receives a mask and selects the columns itself
(:class:`_SelectedColumns`), and NSGA-II (DEAP's sorting and crowding) trades
the cross-validated score against the number of features by default.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.feature_selection import SelectorMixin
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import ParallelEstimatorMixin, estimator_instance, fill_doc
from ..utils import Interval, Options, Predicate
from ..utils._data import allows_nan
from ._nsga import NSGA2_STRATEGIES, Objective, check_objectives
from ._surrogate import Surrogate
from ._search import (GeneticSearchCV, _is_cv, _is_path, _is_real, _is_scoring,
                      inherit_input_tags, inherit_tags)

__all__ = ["GeneticFeatureSelectionCV", "MaskOperators"]


# --------------------------------------------------------------------------- the candidate

def _inner_has(attr: str):
    def check(wrapper) -> bool:
        getattr(wrapper.estimator_ if hasattr(wrapper, "estimator_") else wrapper.estimator,
                attr)
        return True

    return check


class _SelectedColumns(MetaEstimatorMixin, BaseEstimator):
    """`estimator` fitted and used on the columns `features` of X only.

    The search's candidates are its `features` parameter: each task builds one
    from the mask it receives and selects the columns of the data it already
    has, so no column copy is ever sent.
    """

    def __init__(self, estimator, features=None):
        self.estimator = estimator
        self.features = features

    def _columns(self, X):
        return X if self.features is None else _safe_indexing(X, list(self.features), axis=1)

    def fit(self, X, y=None, **fit_params):
        self.estimator_ = clone(self.estimator)
        if y is None:
            self.estimator_.fit(self._columns(X), **fit_params)
        else:
            self.estimator_.fit(self._columns(X), y, **fit_params)
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    @available_if(_inner_has("predict"))
    def predict(self, X):
        return self.estimator_.predict(self._columns(X))

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X):
        return self.estimator_.predict_proba(self._columns(X))

    @available_if(_inner_has("predict_log_proba"))
    def predict_log_proba(self, X):
        return self.estimator_.predict_log_proba(self._columns(X))

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X):
        return self.estimator_.decision_function(self._columns(X))

    @available_if(_inner_has("transform"))
    def transform(self, X):
        return self.estimator_.transform(self._columns(X))

    @available_if(_inner_has("score"))
    def score(self, X, y=None, **params):
        return self.estimator_.score(self._columns(X), y, **params)

    def __sklearn_tags__(self):
        return inherit_tags(super().__sklearn_tags__(), self.estimator, pairwise=False)


def _n_selected(params: dict) -> float:
    return float(len(params["features"]))


#: The "n_features" objective of a feature selection (minimised).
N_FEATURES = Objective("n_features", False, "params", _n_selected)


#: The screening's optimism over masks (see :class:`~._nsga.NSGA2`): on the benchmark's
#: breast_cancer (5 seeds) the masks chosen with 0 kept 6.0 features scoring 0.9743 on other
#: folds, with 1 4.6 features scoring 0.9729.
MASK_OPTIMISM = 0.0


class MaskOperators:
    """Random masks, bit-flip mutation and uniform crossover, within a number of features.

    Candidates are ``{"features": tuple of selected column indices}``; every
    mask made here (and every child) keeps between `min_features` and
    `max_features` columns: a child with too many loses random selected
    columns, one with too few gains random others.

    Examples
    --------
    >>> import numpy as np
    >>> operators = MaskOperators(6, 2, 3)
    >>> rng = np.random.default_rng(0)
    >>> masks = [operators.sample(rng) for _ in range(20)]
    >>> all(2 <= len(mask["features"]) <= 3 for mask in masks), operators.size
    (True, 35)
    >>> child = operators.crossover(masks[0], masks[1], rng)
    >>> 2 <= len(operators.mutate(child, rng)["features"]) <= 3
    True
    """

    def __init__(self, n_features: int, min_features: int, max_features: int):
        self.n_features = int(n_features)
        self.min_features = int(min_features)
        self.max_features = int(max_features)

    @property
    def size(self) -> int:
        return sum(math.comb(self.n_features, k)
                   for k in range(self.min_features, self.max_features + 1))

    def _candidate(self, bits: np.ndarray) -> dict:
        return {"features": tuple(int(i) for i in np.flatnonzero(bits))}

    def _bits(self, candidate: dict) -> np.ndarray:
        bits = np.zeros(self.n_features, dtype=bool)
        bits[list(candidate["features"])] = True
        return bits

    def _repair(self, bits: np.ndarray, rng) -> np.ndarray:
        count = int(bits.sum())
        if count > self.max_features:
            on = np.flatnonzero(bits)
            bits[rng.choice(on, size=count - self.max_features, replace=False)] = False
        elif count < self.min_features:
            off = np.flatnonzero(~bits)
            bits[rng.choice(off, size=self.min_features - count, replace=False)] = True
        return bits

    def _of_size(self, k: int, rng) -> dict:
        bits = np.zeros(self.n_features, dtype=bool)
        bits[rng.choice(self.n_features, size=k, replace=False)] = True
        return self._candidate(bits)

    def sample(self, rng) -> dict:
        return self._of_size(int(rng.integers(self.min_features, self.max_features + 1)), rng)

    def surrogate(self) -> _MaskSurrogate:
        """A new surrogate of one objective over masks (screening)."""
        return _MaskSurrogate(self.n_features)

    def mutate(self, candidate: dict, rng) -> dict:
        """Balanced bit-flip, then repair.

        Each of the ``k`` selected bits is cleared with probability ``1 / k``
        and each of the ``n_features - k`` others set with probability
        ``1 / (n_features - k)``: one feature dropped and one added on
        average, whatever the mask's size (at least one bit flips). A flat
        ``1 / n_features`` per bit would mostly add features to a small mask
        and mostly drop them from a large one, so the masks would drift to
        half the features instead of exploring their own size.
        """
        bits = self._bits(candidate)
        on = int(bits.sum())
        chance = np.where(bits, 1.0 / max(on, 1), 1.0 / max(self.n_features - on, 1))
        flips = rng.random(self.n_features) < chance
        if not flips.any():
            flips[int(rng.integers(self.n_features))] = True
        return self._candidate(self._repair(bits ^ flips, rng))

    def crossover(self, first: dict, second: dict, rng) -> dict:
        """Each bit from either parent with probability 1/2, then repair."""
        a, b = self._bits(first), self._bits(second)
        take = rng.random(self.n_features) < 0.5
        return self._candidate(self._repair(np.where(take, b, a), rng))

    def __repr__(self):
        return (f"MaskOperators(n_features={self.n_features}, "
                f"min_features={self.min_features}, max_features={self.max_features})")


class _MaskSurrogate(Surrogate):
    """The screening surrogate of :mod:`._surrogate` over feature masks: each mask is
    encoded as its bits, one column per feature."""

    def __init__(self, n_features: int, n_estimators: int = 64):
        self.n_features = n_features
        self.n_estimators = n_estimators
        self._trees = None  # as Surrogate keeps them, once fitted

    def encode(self, candidates: list[dict]) -> np.ndarray:
        bits = np.zeros((len(candidates), self.n_features))
        for row, candidate in enumerate(candidates):
            bits[row, list(candidate["features"])] = 1.0
        return bits


class _MaskSearch(GeneticSearchCV):
    """The genetic search over feature masks that a GeneticFeatureSelectionCV runs."""

    def __init__(self, estimator, param_distributions, *, operators=None,
                 owner="GeneticFeatureSelectionCV", **options):
        super().__init__(estimator, param_distributions, **options)
        self.operators = operators
        self.owner = owner

    def _search_space(self):
        return self.operators

    def _extra_objectives(self) -> dict:
        return {"n_features": N_FEATURES}

    def _check_objectives(self, metrics):
        if self.objectives is None:  # the score alone
            return [Objective(metrics[0], True, "metric")]
        return check_objectives(self.objectives, metrics, self.owner, self._extra_objectives())

    def _make_strategy(self, space, rng, objectives):
        return NSGA2_STRATEGIES[self.strategy](
            space, rng, maximise=[objective.maximise for objective in objectives],
            known=[objective.function if objective.kind == "params" else None
                   for objective in objectives],
            screening=self.screening, optimism=MASK_OPTIMISM,
            population_size=self.population_size,
            crossover_probability=self.crossover_probability,
            mutation_probability=self.mutation_probability,
            tournament_size=self.tournament_size, elitism=True)


# --------------------------------------------------------------------------- the chosen mask

#: ``selection_rule`` -> how the mask of ``support_`` is chosen on the Pareto front.
SELECTION_RULES = ("one_standard_deviation", "one_standard_error", "best_score")


def _metric_of(results: dict, metric: str) -> str:
    """`metric`, or the first metric of `results` when a callable scorer named its own."""
    if f"mean_test_{metric}" in results:
        return metric
    return next(key[len("mean_test_"):] for key in results if key.startswith("mean_test_"))


class _FewestWithinSlack:
    """A ``refit`` callable: the front's mask with the fewest features whose mean score is
    at most a slack below the front's best.

    The slack is the pooled standard deviation of the scores over the splits,
    the root mean square of ``std_test_<metric>`` over every mask with a
    finite score (`rule` "one_standard_deviation", as scikit-learn's example
    of a ``refit`` callable that balances model complexity and
    cross-validated score), or that over the square root of the number of
    splits ("one_standard_error"). The spread of one mask's few split scores
    is a noisy estimate of how much the folds move a score: on the
    breast_cancer benchmark the best mask's own was at times a tenth of the
    pooled one, and the rule then kept twice the features for no better score
    on other folds. Among masks of the same size the higher score wins, then
    the first evaluated. Masks whose score is not finite are never chosen
    while another one is.

    Examples
    --------
    >>> import numpy as np
    >>> results = {"params": [{"features": (0, 1, 2)}, {"features": (0,)},
    ...                       {"features": (0, 1)}],
    ...            "pareto_rank": np.array([1, 1, 1]),
    ...            "mean_test_score": np.array([0.90, 0.85, 0.88]),
    ...            "std_test_score": np.array([0.01, 0.06, 0.07]),
    ...            "split0_test_score": [0, 0, 0], "split1_test_score": [0, 0, 0],
    ...            "split2_test_score": [0, 0, 0], "split3_test_score": [0, 0, 0]}
    >>> _FewestWithinSlack("score", "one_standard_deviation")(results)  # slack 0.0535
    1
    >>> _FewestWithinSlack("score", "one_standard_error")(results)  # 0.0535 / 2
    2
    """

    def __init__(self, metric: str, rule: str = "one_standard_deviation"):
        self.metric = metric
        self.rule = rule

    def __call__(self, results: dict) -> int:
        metric = _metric_of(results, self.metric)
        scores = np.asarray(results[f"mean_test_{metric}"], dtype=float)
        front = np.flatnonzero(np.asarray(results["pareto_rank"]) == 1)
        finite = front[np.isfinite(scores[front])]
        if not finite.size:
            return int(front[0]) if front.size else 0
        best = finite[np.argmax(scores[finite])]  # the first of equal bests
        spreads = np.asarray(results[f"std_test_{metric}"], dtype=float)
        pooled = spreads[np.isfinite(scores) & np.isfinite(spreads)]
        slack = float(np.sqrt(np.mean(pooled ** 2))) if pooled.size else 0.0
        if self.rule == "one_standard_error":
            n_splits = sum(1 for key in results
                           if key.startswith("split") and key.endswith(f"_test_{metric}"))
            slack /= math.sqrt(max(n_splits, 1))
        close = finite[scores[finite] >= scores[best] - slack]
        sizes = np.array([len(results["params"][i]["features"]) for i in close])
        # fewest features, then the higher score, then the first evaluated
        order = np.lexsort((close, -scores[close], sizes))
        return int(close[order[0]])

    def __repr__(self):
        return f"{type(self).__name__}({self.metric!r}, {self.rule!r})"


# --------------------------------------------------------------------------- the selector

@fill_doc
class GeneticFeatureSelectionCV(ParallelEstimatorMixin, SelectorMixin, MetaEstimatorMixin,
                                BaseEstimator):
    """Select features by a genetic search over feature masks, scored by cross-validation.

    Each candidate is a feature mask; `estimator` is cross-validated on the
    selected columns of X. The search keeps NSGA-II survivors (DEAP's
    non-dominated sorting and crowding distance) over `objectives`, by default
    the score (maximised) and the number of features (minimised), breeding
    children by uniform crossover and bit-flip mutation; every mask keeps
    between `min_features` and `max_features` columns. The data is sent once
    per fit and each task receives only its mask and selects the columns
    itself, on this process or on a Dask cluster, with the same result for
    the same `random_state`. The selected mask is chosen on the Pareto front
    by `selection_rule` (by default the fewest features whose score is within
    one standard deviation of the best), and `estimator` is refit on it.

    Parameters
    ----------
    estimator : estimator object
        A supervised estimator (or pipeline) with ``fit``; cloned for every fit.
    scoring : str, callable, list, tuple, set, dict or None, default=None
        As for :class:`~dasktrain.model_selection.GeneticSearchCV`.
    cv : int, cross-validation generator or iterable, default=5
        As in scikit-learn.
    min_features : int, default=1
        The fewest features a mask selects.
    max_features : int or None, default=None
        The most features a mask selects; None means all of them.
    population_size : int, default=20
        Masks in the population (and children per generation).
    generations : int, default=10
        Generations after the initial population.
    crossover_probability : float, default=0.5
        Probability that a child is a uniform crossover of two parents.
    mutation_probability : float, default=0.5
        Probability that a child is a parent with bits flipped: each of its
        ``k`` selected features is dropped with probability ``1 / k`` and each
        other feature added with probability ``1 / (n_features - k)`` (one of
        each on average, at least one flip).
    tournament_size : int, default=3
        Members of each crowded tournament that picks a parent.
    screening : float, default=8.0
        Masks bred per mask evaluated. Above 1, that many times more children
        are bred (plus a quarter as many random masks), a tree ensemble on the
        masks' bits, fitted on the masks evaluated so far, predicts each one's
        score (its number of features is known), and the masks whose
        predicted point adds the most hypervolume to the front evaluated are
        evaluated. 1 evaluates the children as they are bred. With 8, on the
        benchmark's breast_cancer (220 masks, 3 folds, 5 seeds) the best mask
        of at most 4 features scored 0.009 higher than with 1 (0.0035 to
        0.016 by seed), of at most 5 features 0.004 higher. It costs client
        time, about 50 ms a generation on 30 features.
    objectives : tuple or list of str or callable, or None, default=("score", "n_features")
        Metric names of `scoring` (maximised), "n_features", "fit_time",
        "score_time", "model_size" or callables ``cost(fitted_estimator)``
        (minimised; the fitted estimator sees the selected columns only).
        None maximises the score alone.
    selection_rule : str, default="one_standard_deviation"
        "one_standard_deviation", "one_standard_error" or "best_score": which
        mask of the Pareto front ``support_`` is. "one_standard_deviation":
        of the front's masks whose mean score is at least the best one minus
        the pooled standard deviation of the scores over the splits (the root
        mean square of ``std_test_score`` over every mask with a finite
        score), the one with the fewest features (the higher score among
        equal sizes), as scikit-learn's example of a ``refit`` callable that
        balances model complexity and cross-validated score: masks closer
        than that are not told apart by the folds, and the best of many
        masks' scores is biased upwards by the selection itself. The spread
        is pooled because one mask's few split scores estimate it poorly (on
        breast_cancer with 3 folds the best mask's own was at times a tenth of
        the pooled one); masks near chance level spread more and widen it.
        "one_standard_error": the same with the standard error, the pooled
        deviation over ``sqrt(n_splits)`` (a smaller slack, more features).
        On the benchmark (docs/benchmarks.md, LogisticRegression, 3 folds,
        seeds 0-4) the default kept 2.0 of make_classification's 40 features
        at a score 0.0096 below that of forward SequentialFeatureSelector
        (4.0 features), and 6.0 of breast_cancer's 30 at the same score (6.2);
        "one_standard_error" kept 2.8 of make_classification's (0.0016 below)
        and 9.0 of breast_cancer's (0.0015 above).
        "best_score": the front's best first objective (fewer features among
        equal scores), ``pareto_front_[0]``. With several metrics the rule
        uses the first metric of `objectives` (else of `scoring`).
    strategy : {"generational", "steady_state"}, default="generational"
        As for :class:`~dasktrain.model_selection.GeneticSearchCV` (both run
        NSGA-II); "generational" gives the same result on every backend.
    max_time : float or None, default=None
        Seconds for the whole search.
    eval_timeout : float or None, default=None
        Seconds allowed for one fit-and-score of a mask on one split.
    error_score : "raise" or float, default=np.nan
        Score of a split whose fit or scoring failed.
    callbacks : Callback, list of Callback or None, default=None
        As for :class:`~dasktrain.model_selection.GeneticSearchCV`.
    checkpoint : str, path or None, default=None
        As for :class:`~dasktrain.model_selection.GeneticSearchCV`.
    %(random_state)s
    %(use_dask)s
    %(client)s
    %(n_jobs)s
    verbose : int, default=0
        Greater than 0 shows a progress bar over the generations.

    Attributes
    ----------
    support_ : ndarray of bool of shape (n_features_in_,)
        The selected features.
    n_features_ : int
        Number of features selected.
    estimator_ : estimator
        `estimator` refit on the selected features of the whole data.
    cv_results_ : dict of ndarrays
        One entry per mask evaluated, as ``GeneticSearchCV.cv_results_``
        (``param_features`` holds each mask's selected column indices), with
        ``n_features`` and ``pareto_rank``.
    pareto_front_ : ndarray of int
        Indices into ``cv_results_`` of the non-dominated masks, best first on
        the first objective.
    best_index_ : int
        Index of the selected mask in ``cv_results_`` (see `selection_rule`).
    best_score_ : float
        Its mean cross-validated score.
    history_ : pandas.DataFrame
        One row per generation, as ``GeneticSearchCV.history_`` (of the score).
    scorer_ : callable or dict
    n_splits_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when X has feature names that are all strings.

    See Also
    --------
    sklearn.feature_selection.RFECV : Recursive feature elimination.
    sklearn.feature_selection.SequentialFeatureSelector : Greedy forward or backward search.
    dasktrain.model_selection.GeneticSearchCV : The same engine over hyper-parameters.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from dasktrain import GeneticFeatureSelectionCV
    >>> X, y = make_classification(n_samples=200, n_features=8, n_informative=3,
    ...                            n_redundant=0, shuffle=False, random_state=0)
    >>> selector = GeneticFeatureSelectionCV(LogisticRegression(), cv=3, population_size=8,
    ...                                      generations=3, random_state=0).fit(X, y)
    >>> selector.transform(X).shape[1] == selector.n_features_ == int(selector.support_.sum())
    True
    >>> bool(selector.support_[:3].any())  # an informative feature is kept
    True
    """

    _parameter_constraints: dict = {
        "estimator": [estimator_instance("fit")],
        "scoring": [Predicate(_is_scoring, "a scorer name from "
                              "sklearn.metrics.get_scorer_names(), a callable, a list, tuple, "
                              "set or dict of them, or None")],
        "cv": [Predicate(_is_cv, "an int in the range [2, inf), a cross-validation splitter, "
                         "an iterable of (train, test) splits, or None")],
        "min_features": [Interval(numbers.Integral, 1, None)],
        "max_features": [Interval(numbers.Integral, 1, None), None],
        "population_size": [Interval(numbers.Integral, 2, None)],
        "generations": [Interval(numbers.Integral, 0, None)],
        "crossover_probability": [Interval(numbers.Real, 0, 1)],
        "mutation_probability": [Interval(numbers.Real, 0, 1)],
        "tournament_size": [Interval(numbers.Integral, 1, None)],
        "screening": [Interval(numbers.Real, 1, None)],
        "objectives": "no_validation",  # checked by _nsga.check_objectives in fit
        "selection_rule": [Options(SELECTION_RULES)],
        "strategy": [Options(tuple(NSGA2_STRATEGIES))],
        "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "eval_timeout": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "error_score": [Options(("raise",)), Predicate(_is_real, "a float (nan included)")],
        "callbacks": "no_validation",  # checked by dasktrain.callbacks.check_callbacks
        "checkpoint": [Predicate(_is_path, "a str or os.PathLike path, or None")],
        "random_state": ["random_state"],
        "verbose": [Interval(numbers.Integral, 0, None), "boolean"],
    }

    def __init__(self, estimator, *, scoring=None, cv=5, min_features=1, max_features=None,
                 population_size=20, generations=10, crossover_probability=0.5,
                 mutation_probability=0.5, tournament_size=3, screening=8.0,
                 objectives=("score", "n_features"), selection_rule="one_standard_deviation",
                 strategy="generational", max_time=None,
                 eval_timeout=None, error_score=np.nan, callbacks=None, checkpoint=None,
                 random_state=None, use_dask=False, client=None, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.scoring = scoring
        self.cv = cv
        self.min_features = min_features
        self.max_features = max_features
        self.population_size = population_size
        self.generations = generations
        self.crossover_probability = crossover_probability
        self.mutation_probability = mutation_probability
        self.tournament_size = tournament_size
        self.screening = screening
        self.objectives = objectives
        self.selection_rule = selection_rule
        self.strategy = strategy
        self.max_time = max_time
        self.eval_timeout = eval_timeout
        self.error_score = error_score
        self.callbacks = callbacks
        self.checkpoint = checkpoint
        self.random_state = random_state
        self.use_dask = use_dask
        self.client = client
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()  # a selector: not the estimator's type
        inner = get_tags(self.estimator)
        tags.target_tags.required = inner.target_tags.required
        return inherit_input_tags(tags, inner, pairwise=False)

    def _feature_counts(self, n_features: int) -> tuple[int, int]:
        name = type(self).__name__
        largest = n_features if self.max_features is None else self.max_features
        if self.min_features > n_features:
            raise ValueError(f"The 'min_features' parameter of {name} must be at most the "
                             f"number of features of X ({n_features}). Got "
                             f"{self.min_features!r} instead.")
        if largest > n_features:
            raise ValueError(f"The 'max_features' parameter of {name} must be at most the "
                             f"number of features of X ({n_features}) or None. Got "
                             f"{self.max_features!r} instead.")
        if self.min_features > largest:
            raise ValueError(f"The 'min_features' parameter of {name} must be at most "
                             f"'max_features' ({largest}). Got {self.min_features!r} instead.")
        return self.min_features, largest

    def _search(self, operators, refit=True) -> _MaskSearch:
        return _MaskSearch(
            _SelectedColumns(self.estimator), None, operators=operators, scoring=self.scoring,
            cv=self.cv, population_size=self.population_size, generations=self.generations,
            crossover_probability=self.crossover_probability,
            mutation_probability=self.mutation_probability,
            tournament_size=self.tournament_size, screening=self.screening,
            strategy=self.strategy, max_time=self.max_time, eval_timeout=self.eval_timeout,
            error_score=self.error_score, refit=refit, callbacks=self.callbacks,
            checkpoint=self.checkpoint, random_state=self.random_state, use_dask=self.use_dask,
            client=self.client, n_jobs=self.n_jobs, verbose=self.verbose,
            objectives=self.objectives)

    def fit(self, X, y=None, *, groups=None, **fit_params):
        """Search the feature masks, then refit `estimator` on the selected features.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group splitter given as `cv`.
        **fit_params : dict
            Passed to the estimator's ``fit``.

        Returns
        -------
        self : GeneticFeatureSelectionCV
        """
        self._validate_params()
        # numeric arrays, as scikit-learn's selectors check them; a DataFrame is kept as
        # it is (its columns are selected by position), its names recorded
        X = validate_data(self, X, accept_sparse=("csr", "csc"),
                          ensure_all_finite=not allows_nan(self.estimator),
                          skip_check_array=hasattr(X, "iloc"))
        low, high = self._feature_counts(self.n_features_in_)
        operators = MaskOperators(self.n_features_in_, low, high)
        search = self._search(operators)
        metrics = list(search._check_scoring()[0])
        objectives = search._check_objectives(metrics)  # before any work
        # the metric of the rule and of best_score_: the first metric objective
        metric = next((o.name for o in objectives if o.kind == "metric"), metrics[0])
        if self.selection_rule != "best_score":
            search = self._search(operators,
                                  refit=_FewestWithinSlack(metric, self.selection_rule))
        search.fit(X, y, groups=groups, **fit_params)
        results = search.cv_results_
        results["n_features"] = np.array([len(params["features"])
                                          for params in results["params"]], dtype=np.int64)
        self.cv_results_ = results
        self.pareto_front_ = search.pareto_front_
        self.history_ = search.history_
        self.best_index_ = search.best_index_
        self.best_score_ = float(results[f"mean_test_{_metric_of(results, metric)}"]
                                 [self.best_index_])
        self.scorer_ = search.scorer_
        self.n_splits_ = search.n_splits_
        self.refit_time_ = search.refit_time_
        support = np.zeros(self.n_features_in_, dtype=bool)
        support[list(search.best_params_["features"])] = True
        self.support_ = support
        self.n_features_ = int(support.sum())
        self.estimator_ = search.best_estimator_.estimator_
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_
