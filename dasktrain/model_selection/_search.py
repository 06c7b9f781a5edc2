"""GeneticSearchCV: a genetic hyper-parameter search whose fits run in parallel."""

from __future__ import annotations

import inspect
import math
import numbers
import os
import time
import warnings
from copy import deepcopy

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MetaEstimatorMixin, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils import get_tags, indexable
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._base import ParallelEstimatorMixin, estimator_instance, fill_doc
from ..callbacks import ProgressBar, check_callbacks
from ..space import as_search_space, value_key
from ..utils import Interval, Options, Predicate, seed_sequence, spawn_seeds
from ..utils._data import allows_nan
from ._checkpoint import check_checkpoint_path, read_checkpoint
from ._engine import HISTORY_COLUMNS, SearchEngine
from ._evaluator import RUNG_FRACTION, Evaluator, rung_rows
from ._genetic import candidate_key
from ._nsga import NSGA2_STRATEGIES, SpaceOperators, check_objectives, pareto_ranks
from ._results import CandidateFailedWarning, best_index, check_failures, format_results
from ._results import metric_names
from ._strategies import INITS, STRATEGIES
from ._tasks import Settings, build_candidate

__all__ = ["CandidateFailedWarning", "GeneticSearchCV"]

# --------------------------------------------------------------------------- parameter checks

def _finite(seconds):
    """A time limit, with infinity meaning no limit (None)."""
    return None if seconds is None or math.isinf(seconds) else float(seconds)


def _is_scoring(value) -> bool:
    if value is None or callable(value) or isinstance(value, (list, tuple, set, dict)):
        return True
    return isinstance(value, str) and value in get_scorer_names()


def _is_cv(value) -> bool:
    if value is None:
        return True
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return value >= 2
    if hasattr(value, "split") and hasattr(value, "get_n_splits"):
        return True
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes, dict))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_path(value) -> bool:
    return value is None or isinstance(value, (str, os.PathLike))


def _accepts_missing(estimator) -> bool:
    """Whether `estimator` takes NaN in X: its tags, or a pipeline's first step's.

    scikit-learn's Pipeline and FeatureUnion do not pass ``allow_nan`` on from
    their steps, so a pipeline starting with an imputer is judged by that step.
    A ColumnTransformer sends each column to its own transformer (or drops it):
    NaN is left for its transformers to judge.
    """
    if allows_nan(estimator):
        return True
    if isinstance(estimator, Pipeline):
        steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
        return not steps or _accepts_missing(steps[0])
    if isinstance(estimator, FeatureUnion):
        parts = [part for _, part in estimator.transformer_list if part not in ("drop", None)]
        return all(part == "passthrough" or _accepts_missing(part) for part in parts)
    return hasattr(estimator, "transformers") and hasattr(estimator, "remainder")


def _check_finite_input(X, estimator, owner: str) -> None:
    """Raise ValueError naming X when it holds NaN or infinity and the estimator refuses them.

    Nothing is checked when the estimator accepts missing values. Only numeric
    content is checked (the numeric columns of a DataFrame, the stored values
    of a sparse matrix); text or object data is left to the estimator.
    """
    if _accepts_missing(estimator):
        return
    if hasattr(X, "select_dtypes"):  # a DataFrame: its numeric columns
        values = X.select_dtypes(include="number").to_numpy(dtype=float, na_value=np.nan)
    elif hasattr(X, "tocsr") and hasattr(X, "data"):  # a sparse matrix
        values = X.data
    else:
        try:
            values = np.asarray(X)
        except (TypeError, ValueError):
            return
    if getattr(values, "dtype", np.dtype(object)).kind not in "fc" or values.size == 0:
        return
    if np.isfinite(values).all():
        return
    found = "NaN" if np.isnan(values).any() else "infinity"
    raise ValueError(
        f"Input X contains {found}: {owner} cannot evaluate {type(estimator).__name__}, which "
        "does not accept missing or infinite values, on it. Impute or drop those values "
        "first (e.g. a SimpleImputer as the first step of a pipeline), or search an "
        "estimator that accepts missing values.")


# --------------------------------------------------------------------------- delegation

def inherit_tags(tags, estimator, *, pairwise: bool = True):
    """`tags` of a meta-estimator, with the type, target and input tags of `estimator`."""
    inner = get_tags(estimator)
    tags.estimator_type = inner.estimator_type
    tags.classifier_tags = deepcopy(inner.classifier_tags)
    tags.regressor_tags = deepcopy(inner.regressor_tags)
    tags.target_tags = deepcopy(inner.target_tags)
    return inherit_input_tags(tags, inner, pairwise=pairwise)


def inherit_input_tags(tags, inner, *, pairwise: bool = True):
    """`tags` with the input tags (sparse, NaN, pairwise) of the estimator tags `inner`."""
    if pairwise:
        tags.input_tags.pairwise = inner.input_tags.pairwise
    tags.input_tags.sparse = inner.input_tags.sparse
    tags.input_tags.allow_nan = inner.input_tags.allow_nan
    return tags


def _check_refit(search, attr: str) -> None:
    if not search.refit:
        raise AttributeError(
            f"This {type(search).__name__} instance was initialized with `refit=False`. "
            f"{attr} is available only after refitting on the best parameters. You can refit "
            "an estimator manually using the `best_params_` attribute."
        )


def _estimator_has(attr: str):
    """Whether the (best) estimator has `attr`: raises AttributeError otherwise."""

    def check(search) -> bool:
        _check_refit(search, attr)
        if hasattr(search, "best_estimator_"):
            getattr(search.best_estimator_, attr)
            return True
        getattr(search.estimator, attr)
        return True

    return check


# --------------------------------------------------------------------------- the search


@fill_doc
class GeneticSearchCV(ParallelEstimatorMixin, MetaEstimatorMixin, BaseEstimator):
    """Genetic hyper-parameter search: candidates evolve on the client, fits run in parallel.

    A drop-in alternative to scikit-learn's
    :class:`~sklearn.model_selection.RandomizedSearchCV`. A population of
    candidates (parameter settings drawn from `param_distributions`) is
    evaluated by cross-validation; each generation breeds children by uniform
    crossover and typed mutation from tournament-selected parents, and the best
    of parents and children survive (mu + lambda). Breeding runs here; the
    (candidate, fold) fits run as tasks on the backend, with the data sent
    once per fit. An equal candidate is never evaluated twice, and the leading
    steps of a :class:`~sklearn.pipeline.Pipeline` that several candidates share
    are fitted once per fold.

    Parameters
    ----------
    estimator : estimator object
        The estimator (or pipeline) to tune; it is cloned for every fit.
    param_distributions : dict or list of dict
        Parameter name -> :class:`~dasktrain.space.Integer`,
        :class:`~dasktrain.space.Continuous`,
        :class:`~dasktrain.space.Categorical`, a list of choices, or a frozen
        ``scipy.stats`` distribution (as for RandomizedSearchCV). A list of
        such dicts is a conditional space: each candidate comes from one dict
        (drawn uniformly), and a dict may set a pipeline step (a list of
        estimators) together with that step's nested ``step__param``
        parameters, which are set after the step.
    scoring : str, callable, list, tuple, set, dict or None, default=None
        As in scikit-learn's searches: one metric (a name from
        :func:`sklearn.metrics.get_scorer_names` or a callable
        ``scorer(estimator, X, y)`` returning a number), several (a list of
        names or a dict name -> name or callable), or None for the
        estimator's ``score`` method.
    cv : int, cross-validation generator or iterable, default=5
        As in scikit-learn: the folds are computed once per fit, on this
        process, with :func:`~sklearn.model_selection.check_cv`.
    population_size : int, default=20
        Number of candidates in the population (and children per generation).
    generations : int, default=10
        Number of generations after the initial population (generation 0).
        The search evaluates ``population_size * (generations + 1)`` distinct
        candidates: a child equal to a candidate already evaluated is bred
        again (then replaced by a random one), so every generation evaluates
        ``population_size`` new candidates while the space has them; a space
        with fewer points is evaluated whole and the search ends.
    crossover_probability : float, default=0.5
        Probability that a child is made by crossover of two parents.
    mutation_probability : float, default=0.5
        Probability that a child is a mutated parent. The two probabilities
        must sum to at most 1; the rest of the children are copies of a parent,
        which are bred again as any child equal to a known candidate.
    tournament_size : int, default=3
        Number of candidates in each selection tournament.
    elitism : bool, default=True
        Whether the best candidate always survives, so that the best score of
        the population never drops between generations.
    strategy : {"generational", "steady_state"}, default="generational"
        "generational" evaluates a whole generation, then selects; it gives the
        same candidates and scores on every backend for the same
        `random_state`. With `objectives`, both run NSGA-II (see
        `objectives`). "steady_state" keeps at least twice as many candidates
        in flight as there are workers (more when fits are cheap, up to
        `population_size`): as each evaluation finishes, the candidate
        replaces the worst of the population if it is better and a child is
        bred and submitted in its place, so workers never wait for a
        generation to finish.
        It runs ``population_size * (generations + 1)`` evaluations, and
        ``history_`` has a row every ``population_size`` of them. Its result
        depends on the order in which evaluations finish, except locally with
        ``n_jobs=1``: there tasks run one by one, two are kept in flight and
        they are taken in the order asked, so it repeats itself for the same
        `random_state`.
    n_repeats : int, default=1
        Evaluate each candidate under this many seeds: repeat ``r`` sets every
        nested ``random_state`` parameter of the candidate from its own seed.
        With 1, only the ``random_state`` parameters left at None are seeded.
    max_time : float or None, default=None
        Seconds for the whole search, enforced while tasks run: when it is up,
        the running evaluations are cancelled, the search ends with the
        candidates fully evaluated so far, and the best is still refit.
        ``float("inf")`` is no limit.
    eval_timeout : float or None, default=None
        Seconds allowed for one fit-and-score of a candidate on one split,
        enforced inside the task while it runs. A timed-out split scores
        `error_score` and its candidate is marked ``"timeout"`` in
        ``cv_results_["status"]``. A fit still running after the limit (a
        thread Python cannot stop, e.g. stuck in native code) has its worker
        process recycled: a Dask worker is restarted by its nanny, a local
        process is replaced, and the tasks that were running there run again.
        With ``use_dask=False`` and a limit, even ``n_jobs=None`` runs the fits
        in a separate local process (so the estimator must be picklable).
        ``float("inf")`` is no limit. Without a limit, a fit that never
        returns keeps the search waiting for it.
    error_score : "raise" or float, default=np.nan
        Score of a split whose fit or scoring failed (the candidate is marked
        ``"error"`` with the reason in ``cv_results_["error"]``). "raise"
        raises the original exception type with the candidate's parameters in
        its message.
    refit : bool, str or callable, default=True
        As in scikit-learn: refit the best candidate on the whole data (in this
        process). With several metrics, the metric name that selects the
        best; a callable takes ``cv_results_`` and returns the best index.
        The genetic algorithm optimises the `refit` metric (the first metric
        when `refit` is not a metric name).
    callbacks : Callback, list of Callback or None, default=None
        Objects with ``on_generation(search, record)`` (returning True stops
        the search) and optionally ``on_start(search)`` and
        ``on_end(search)``; see :mod:`dasktrain.callbacks`.
    checkpoint : str, path or None, default=None
        File written atomically after each generation. A fit given the path
        of an existing checkpoint of the same search resumes from it and ends
        with the same result as an uninterrupted run; a damaged file is
        rejected with a ValueError. The file is left in place at the end.
    %(random_state)s
    %(use_dask)s
    %(client)s
    %(n_jobs)s
    verbose : int, default=0
        Greater than 0 shows a progress bar over the generations.
    return_train_score : bool, default=False
        Also score every fit on its training part (``*_train_*`` keys).
    init : {"random", "latin_hypercube", "sobol"}, default="random"
        How the initial population is drawn: at random, or spread over the
        space by a scrambled Latin hypercube or Sobol design
        (:mod:`scipy.stats.qmc`; the branches of a conditional space take
        turns). With `objectives` too.
    screening : float, default=8.0
        Children bred per child evaluated. Above 1, that many times more
        children are bred (plus a quarter as many random candidates and twice
        as many drawn near the best candidates evaluated, as TPE proposes), a tree
        ensemble fitted on the candidates evaluated so far predicts their
        scores, and those with the highest expected improvement are
        evaluated; the batches stay as parallel as without it. With
        "steady_state", the ensemble ranks only the half of these candidates
        likeliest under the best candidates' densities against the others'
        (TPE's ratio). 8 and this half were chosen by the equal-budget
        benchmark (docs/benchmarks.md). Children it cannot
        tell apart (a plateau of equal scores) are taken farthest first from
        the candidates evaluated. It costs client time: breeding and ranking
        about a millisecond per candidate evaluated, and the surrogate's fit
        (tens of milliseconds), paid between generations by "generational"
        and while candidates run by "steady_state": for fits of a few
        milliseconds, 1 (no surrogate) is faster. With `objectives`, one
        surrogate per objective predicts each child, and those adding the most
        hypervolume to the front evaluated so far are evaluated.
    recycle : {"own", "always", "never"}, default="own"
        Which Dask worker a fit left running past `eval_timeout` may be
        restarted: "own", any worker of the temporary cluster that `fit`
        starts, and on your cluster only a worker that holds nothing but this
        fit's data and tasks; "always", any worker with a nanny (your consent:
        other data on it is lost); "never", none. A worker not restarted keeps
        the stuck thread: its slot is counted lost, its result is ignored, and
        a RuntimeWarning says so once.
    pruning : {"folds", "rows"} or None, default=None
        "folds" evaluates each candidate fold by fold and stops one whose mean
        score on its folds so far is below that of every complete member of
        the population on the same folds: its other folds are never fitted,
        its ``status`` is "pruned", its unfitted ``split<k>_test_*`` are NaN,
        its mean is over the folds it was fitted on, it ranks after every
        complete candidate, is never ``best_*`` and never survives selection
        ahead of a complete candidate. ``history_["pruned"]`` counts them.
        It saves the most where fits are costly and folds many; the first
        generation is never pruned.

        "rows" is successive halving on the training rows, one rung: each
        candidate is first fitted on a third of the first fold's training
        rows (the same rows for every candidate, drawn from `random_state`,
        a third of each class for a classifier) and scored on that fold's
        test rows; only a candidate whose rung score is among the best half
        of the rung scores of the population's complete members and of the
        candidates judged with it (with "generational", its whole
        generation, the first one included) is then fitted on every fold.
        The others are "pruned" as above, with NaN on every split, ranked by
        their rung score after every complete candidate.
        ``cv_results_["rung_test_<metric>"]`` and ``["rung_time"]`` hold
        every candidate's rung. It saves the most where fits cost more than
        linearly in the rows (kernel machines); a rung too small (fewer than
        two rows of a class) is an error.
    objectives : list of str or callable, or None, default=None
        None optimises the one `scoring` metric (the `refit` metric with
        several). Otherwise the objectives optimised together, each a metric
        name of `scoring` ("score" with a single metric; maximised) or a cost
        (minimised): "fit_time", "score_time", "model_size" (bytes of the
        pickled fitted model, measured in the task) or a callable
        ``cost(fitted_estimator) -> float`` (called in the task on each fitted
        split; named by its ``__name__``). The search then keeps NSGA-II
        survivors (DEAP's non-dominated sorting and crowding distance): with
        ``strategy="generational"`` whole generations (the same result on
        every backend), with "steady_state" one candidate at a time. Fitted
        searches have ``pareto_front_`` and ``cv_results_["pareto_rank"]``;
        ``refit=True`` refits the front's best candidate on the first
        objective.

    Attributes
    ----------
    cv_results_ : dict of numpy (masked) ndarrays
        One entry per distinct candidate evaluated, in the order they were
        submitted, with scikit-learn's keys: ``params``, ``param_<name>``,
        ``split<k>_test_<metric>`` (split ``k = repeat * n_splits_ + fold``),
        ``mean_test_<metric>``, ``std_test_<metric>`` (over all splits),
        ``rank_test_<metric>``, ``mean_fit_time``, ``std_fit_time``,
        ``mean_score_time``, ``std_score_time``; with ``n_repeats > 1`` also
        ``mean_test_<metric>_repeat<r>`` (the mean over the folds of repeat
        ``r``) and ``std_test_<metric>_across_repeats`` (the std of those
        means); plus ``generation`` (the generation that first proposed the
        candidate), ``status`` ("ok", "error" or "timeout") and ``error`` (the
        reason, "" when ok). With one metric, ``<metric>`` is "score". A split
        built on a shared pipeline prefix reports the prefix's fit time too.
        With `objectives`: ``pareto_rank`` (1 for the candidates no other
        dominates, 2 for those only the first front dominates, ...; failed
        candidates last) and ``mean_<cost>``, ``std_<cost>`` for each cost
        measured on the fitted model ("model_size", a callable's name).
    pareto_front_ : ndarray of int
        With `objectives`: the indices into ``cv_results_`` of the
        non-dominated candidates, best first on the first objective.
    best_estimator_ : estimator
        The best candidate refit on the whole data (``refit=True`` only).
    best_score_ : float
        Mean cross-validated score of the best candidate.
    best_params_ : dict
        Parameters of the best candidate.
    best_index_ : int
        Index of the best candidate in ``cv_results_``.
    scorer_ : callable or dict
        The scorer, or metric name -> scorer with several metrics.
    multimetric_ : bool
        Whether several metrics were used.
    n_splits_ : int
        Number of cross-validation folds (the splits of ``cv_results_`` are
        ``n_splits_ * n_repeats``).
    refit_time_ : float
        Seconds spent refitting the best candidate.
    history_ : pandas.DataFrame
        One row per generation: ``generation`` (0 is the initial population),
        ``best``, ``mean`` and ``std`` of the population's scores after
        selection, ``evaluations`` (new candidates evaluated), ``cache_hits``
        (children bred equal to a known candidate, and bred again),
        ``pruned`` (candidates stopped by `pruning`) and ``seconds`` (wall
        time of the generation).
    n_features_in_ : int
        Number of features seen during fit (``refit=True`` only).
    classes_ : ndarray
        Class labels (``refit=True`` and a classifier only).

    See Also
    --------
    sklearn.model_selection.RandomizedSearchCV : Random search over the same spaces.
    dasktrain.space.Integer, dasktrain.space.Continuous, dasktrain.space.Categorical :
        The dimensions of a search space.
    dasktrain.callbacks : Early stopping, time limits and progress bars.

    Notes
    -----
    Scores are never influenced by where or in which order the tasks run:
    the folds are fixed once per fit, seeds come from `random_state`, and the
    generational strategy collects a whole generation before selecting, in
    candidate order. Fit parameters given to :meth:`fit` are split with the
    folds when they have one value per sample; for a pipeline, ``step__param``
    names go to that step.

    How the work is cut into tasks follows its cost, and never changes the
    scores: costly splits (a fold of one candidate) are one task each, cheap
    ones are batched (the folds of a candidate, or several candidates, in one
    task of about 0.1 s, judged from the fits finished so far), so that the
    backend's per-task cost stays small next to the work. A generation is
    submitted at once, the candidates expected to take longest first.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from dasktrain import GeneticSearchCV
    >>> from dasktrain.space import Integer
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GeneticSearchCV(DecisionTreeClassifier(random_state=0),
    ...                          {"max_depth": Integer(1, 6), "criterion": ["gini", "entropy"]},
    ...                          population_size=4, generations=2, cv=3, random_state=0)
    >>> search.fit(X, y).best_score_ > 0.9
    True
    >>> list(search.history_.columns)
    ['generation', 'best', 'mean', 'std', 'evaluations', 'cache_hits', 'pruned', 'seconds']
    """

    _parameter_constraints: dict = {
        "estimator": [estimator_instance("fit")],
        "param_distributions": "no_validation",  # checked by dasktrain.space.as_space
        "scoring": [Predicate(_is_scoring, "a scorer name from "
                              "sklearn.metrics.get_scorer_names(), a callable, a list, tuple, "
                              "set or dict of them, or None")],
        "cv": [Predicate(_is_cv, "an int in the range [2, inf), a cross-validation splitter, "
                         "an iterable of (train, test) splits, or None")],
        "population_size": [Interval(numbers.Integral, 2, None)],
        "generations": [Interval(numbers.Integral, 0, None)],
        "crossover_probability": [Interval(numbers.Real, 0, 1)],
        "mutation_probability": [Interval(numbers.Real, 0, 1)],
        "tournament_size": [Interval(numbers.Integral, 1, None)],
        "elitism": ["boolean"],
        "strategy": [Options(tuple(STRATEGIES))],
        "n_repeats": [Interval(numbers.Integral, 1, None)],
        "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "eval_timeout": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "error_score": [Options(("raise",)), Predicate(_is_real, "a float (nan included)")],
        "refit": ["boolean", str, "callable"],
        "callbacks": "no_validation",  # checked by dasktrain.callbacks.check_callbacks
        "checkpoint": [Predicate(_is_path, "a str or os.PathLike path, or None")],
        "random_state": ["random_state"],
        "verbose": [Interval(numbers.Integral, 0, None), "boolean"],
        "return_train_score": ["boolean"],
        "init": [Options(INITS)],
        "screening": [Interval(numbers.Real, 1, None)],
        "pruning": [Options(("folds", "rows")), None],
        "recycle": [Options(("own", "always", "never"))],
        "objectives": "no_validation",  # checked by _nsga.check_objectives in fit
    }

    def __init__(self, estimator, param_distributions, *, scoring=None, cv=5,
                 population_size=20, generations=10, crossover_probability=0.5,
                 mutation_probability=0.5, tournament_size=3, elitism=True,
                 strategy="generational", n_repeats=1, max_time=None, eval_timeout=None,
                 error_score=np.nan, refit=True, callbacks=None, checkpoint=None,
                 random_state=None, use_dask=False, client=None, n_jobs=None, verbose=0,
                 return_train_score=False, init="random", screening=8.0, pruning=None,
                 objectives=None, recycle="own"):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.scoring = scoring
        self.cv = cv
        self.population_size = population_size
        self.generations = generations
        self.crossover_probability = crossover_probability
        self.mutation_probability = mutation_probability
        self.tournament_size = tournament_size
        self.elitism = elitism
        self.strategy = strategy
        self.n_repeats = n_repeats
        self.max_time = max_time
        self.eval_timeout = eval_timeout
        self.error_score = error_score
        self.refit = refit
        self.callbacks = callbacks
        self.checkpoint = checkpoint
        self.random_state = random_state
        self.use_dask = use_dask
        self.client = client
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.return_train_score = return_train_score
        self.init = init
        self.screening = screening
        self.pruning = pruning
        self.objectives = objectives
        self.recycle = recycle

    def __sklearn_tags__(self):
        return inherit_tags(super().__sklearn_tags__(), self.estimator)

    # ------------------------------------------------------------------ checks

    def _check_scoring(self):
        """(scorers dict, multimetric, refit metric, scorers are all named).

        A single callable may return a dict of metrics, as in scikit-learn:
        whether the search is multi-metric is then known from its results.
        """
        scoring = self.scoring
        name = type(self).__name__
        if scoring is None or isinstance(scoring, str) or callable(scoring):
            scorer = check_scoring(self.estimator, scoring=scoring)
            metric = self.refit if callable(scoring) and isinstance(self.refit, str) else "score"
            return {"score": scorer}, False, metric, not callable(scoring)
        if isinstance(scoring, (list, tuple, set)):
            names = list(scoring)
            bad = [item for item in names if not isinstance(item, str)
                   or item not in get_scorer_names()]
            if not names or bad or len(set(names)) != len(names):
                raise ValueError(
                    f"The 'scoring' parameter of {name} as a list must hold distinct scorer "
                    "names from sklearn.metrics.get_scorer_names(). Got "
                    f"{scoring!r} instead.")
            scoring = {item: item for item in names}
        if not scoring:
            raise ValueError(f"The 'scoring' parameter of {name} must not be an empty dict.")
        scorers = {}
        for key, value in scoring.items():
            if not isinstance(key, str) or not (
                    callable(value) or (isinstance(value, str) and value in get_scorer_names())):
                raise ValueError(
                    f"The 'scoring' parameter of {name} as a dict must map metric names (str) "
                    "to scorer names from sklearn.metrics.get_scorer_names() or callables. "
                    f"Got {key!r}: {value!r} instead.")
            scorers[key] = check_scoring(self.estimator, scoring=value)
        self._check_refit_metric(scorers)
        metric = self.refit if isinstance(self.refit, str) else next(iter(scorers))
        named = all(isinstance(value, str) for value in scoring.values())
        return scorers, True, metric, named

    def _check_refit_metric(self, metrics) -> None:
        refit = self.refit
        if self.objectives is not None and refit is True:
            return  # the front's best on the first objective
        if refit is not False and not callable(refit) and not (
                isinstance(refit, str) and refit in metrics):
            raise ValueError(
                "For multi-metric scoring, the parameter refit must be set to a scorer key or a "
                "callable to refit an estimator with the best parameter setting on the whole "
                "data and make the best_* attributes available for that metric. If this is not "
                f"needed, refit should be set to False explicitly. {refit!r} was passed.")

    # ------------------------------------------------------------------ what subclasses change

    def _search_space(self):
        """The candidates' space, checked (a selector searches feature masks instead)."""
        return as_search_space(self.param_distributions, self.estimator)

    def _extra_objectives(self) -> dict:
        """Objective names this estimator accepts besides metrics and built-in costs."""
        return {}

    def _check_objectives(self, metrics) -> list | None:
        if self.objectives is None:
            return None
        return check_objectives(self.objectives, metrics, type(self).__name__,
                                self._extra_objectives())

    def _make_strategy(self, space, rng, objectives):
        """The strategy: the `strategy` parameter's, or its NSGA-II form with `objectives`."""
        options = {"population_size": self.population_size,
                   "crossover_probability": self.crossover_probability,
                   "mutation_probability": self.mutation_probability,
                   "tournament_size": self.tournament_size, "elitism": self.elitism}
        if objectives is None:
            return STRATEGIES[self.strategy](space, rng, init=self.init,
                                             screening=self.screening, **options)
        return NSGA2_STRATEGIES[self.strategy](
            SpaceOperators(space), rng,
            maximise=[objective.maximise for objective in objectives], init=self.init,
            screening=self.screening, **options)

    def _folds(self, X, y, groups) -> list:
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        n_samples = len(X) if not hasattr(X, "shape") else X.shape[0]
        folds = []
        for train, test in cv.split(X, y, groups):
            train, test = np.asarray(train), np.asarray(test)
            # boolean masks, as scikit-learn's searches accept them, become indices
            train = np.flatnonzero(train) if train.dtype == bool else train
            test = np.flatnonzero(test) if test.dtype == bool else test
            folds.append((train, test))
        if not folds:
            raise ValueError(f"The 'cv' parameter of {type(self).__name__} gave no splits.")
        expected = cv.get_n_splits(X, y, groups)
        if expected != len(folds):
            raise ValueError("cv.split and cv.get_n_splits return inconsistent results. "
                             f"Expected {expected} splits, got {len(folds)}")
        dtype = np.int32 if n_samples < 2**31 else np.int64
        return [(train.astype(dtype), test.astype(dtype)) for train, test in folds]

    def _rung_rows(self, folds, y, seed) -> np.ndarray:
        """The rows of the rung of ``pruning="rows"``: a third of the first fold's training
        rows (of each class, for a classifier), checked before any work is sent."""
        try:
            return rung_rows(folds[0][0], y, classifier=is_classifier(self.estimator),
                             rng=np.random.default_rng(seed))
        except ValueError as error:
            raise ValueError(
                f"The 'pruning' parameter of {type(self).__name__} is 'rows', which first fits "
                f"each candidate on {RUNG_FRACTION:.3g} of the first fold's "
                f"{len(folds[0][0])} training rows, but {error}. Give more rows, or use "
                "pruning='folds' or None.") from None

    def _callbacks(self) -> list:
        callbacks = check_callbacks(self.callbacks)
        if self.verbose:
            callbacks.append(ProgressBar())
        return callbacks

    def _fingerprint(self, space, X, n_folds) -> dict:
        """What a checkpoint must match to be resumed by this search."""
        return {
            "estimator": value_key(self.estimator),
            "space": repr(space),
            "scoring": value_key(self.scoring),
            "strategy": self.strategy,
            "population_size": self.population_size,
            "init": self.init,
            "screening": self.screening,
            "pruning": self.pruning,
            "n_repeats": self.n_repeats,
            "n_folds": n_folds,
            "n_samples": len(X) if not hasattr(X, "shape") else int(X.shape[0]),
            "random_state": value_key(self.random_state)
            if isinstance(self.random_state, numbers.Integral) else None,
            "objectives": None if self.objectives is None else [
                item if isinstance(item, str) else value_key(item)
                for item in self.objectives],
        }

    def _score_params(self, scorers: dict, fit_params: dict) -> dict:
        """``sample_weight`` given to fit also weights the test scores, as scikit-learn's
        searches do, for the scorers that take it (a warning names those that do not)."""
        weights = fit_params.get("sample_weight")
        if weights is None:
            return {}
        accepted = []
        for name, scorer in scorers.items():
            accept = getattr(scorer, "_accept_sample_weight", None)
            ok = accept() if callable(accept) else (
                "sample_weight" in inspect.signature(scorer).parameters)
            if not ok:
                warnings.warn(f"The scoring {name}={scorer} does not support sample_weight, "
                              "which may lead to statistically incorrect results when fitting "
                              f"{self} with sample_weight. ", UserWarning, stacklevel=3)
            accepted.append(ok)
        return {"sample_weight": weights} if all(accepted) else {}

    def _resume_state(self, fingerprint):
        if self.checkpoint is None or not os.path.exists(self.checkpoint):
            return None
        state = read_checkpoint(self.checkpoint)
        differs = [key for key, value in fingerprint.items()
                   if state["fingerprint"].get(key) != value]
        if differs:
            raise ValueError(
                f"The 'checkpoint' file {os.fspath(self.checkpoint)!r} was written by a "
                f"different search (it differs in {', '.join(differs)}); delete it or pass "
                "another path.")
        return state

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, *, groups=None, **fit_params):
        """Run the genetic search, then refit the best candidate on all the data.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
            Training data (a square kernel or distance matrix for a pairwise
            estimator).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets; None for unsupervised estimators.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group splitter given as `cv`.
        **fit_params : dict
            Passed to the estimator's ``fit`` (split with the folds when they
            have one value per sample). ``sample_weight`` also weights the
            cross-validation scores, as in scikit-learn's searches.

        Returns
        -------
        self : GeneticSearchCV
        """
        started = time.monotonic()
        self._validate_params()
        callbacks = self._callbacks()
        name = type(self).__name__
        if self.crossover_probability + self.mutation_probability > 1 + 1e-12:
            raise ValueError(
                f"The 'crossover_probability' and 'mutation_probability' parameters of {name} "
                f"must sum to at most 1. Got {self.crossover_probability!r} + "
                f"{self.mutation_probability!r} instead.")
        check_checkpoint_path(self.checkpoint, name)
        space = self._search_space()
        scorers, multimetric, metric, named_scorers = self._check_scoring()
        objectives = self._check_objectives(list(scorers))
        if objectives is not None:
            # the metric of history_ and best_score_: the first metric objective
            metric = next((o.name for o in objectives if o.kind == "metric"), metric)
        if y is None and get_tags(self.estimator).target_tags.required:
            raise ValueError(f"{name} with {type(self.estimator).__name__} requires y to be "
                             "passed, but the target y is None.")
        X, y, groups = indexable(X, y, groups)
        _check_finite_input(X, self.estimator, name)
        folds = self._folds(X, y, groups)
        n_folds = len(folds)
        score_params = self._score_params(scorers, fit_params)
        fingerprint = self._fingerprint(space, X, n_folds)
        resumed = self._resume_state(fingerprint)

        # spawn(3)'s first two children are spawn(2)'s: the rung leaves the rest unchanged
        strategy_seed, repeat_root, rung_root = seed_sequence(self.random_state).spawn(3)
        repeat_seeds = (resumed["repeat_seeds"] if resumed is not None
                        else spawn_seeds(repeat_root, self.n_repeats))
        rung = None
        if self.pruning == "rows":
            rung = (resumed["rung_rows"] if resumed is not None
                    else self._rung_rows(folds, y, rung_root))
        pairwise = get_tags(self.estimator).input_tags.pairwise
        settings = Settings(error_score=self.error_score, eval_timeout=_finite(self.eval_timeout),
                            return_train_score=bool(self.return_train_score),
                            seed_unset_only=self.n_repeats == 1,
                            score_transformed=named_scorers, pairwise=pairwise,
                            costs=tuple((o.name, o.function) for o in objectives or ()
                                        if o.kind == "cost"))
        max_time = _finite(self.max_time)
        deadline = None if max_time is None else started + max_time
        self.multimetric_ = multimetric
        self.n_splits_ = n_folds
        self.scorer_ = scorers if multimetric else scorers["score"]
        strategy = self._make_strategy(space, np.random.default_rng(strategy_seed), objectives)
        started_callbacks = []  # on_end runs for the callbacks whose on_start completed
        try:
            for callback in callbacks:
                if callable(getattr(callback, "on_start", None)):
                    callback.on_start(self)
                started_callbacks.append(callback)
            # with eval_timeout, even one local job runs in a process of its own, which
            # is recycled when a timed-out fit is left running there
            with self._execution_backend(isolate=settings.eval_timeout is not None,
                                         recycle=self.recycle) as backend:
                evaluator = Evaluator(
                    backend, self.estimator, X, y, fit_params, folds, scorers,
                    repeat_seeds=repeat_seeds, settings=settings, score_params=score_params,
                    candidate_key=candidate_key,
                    keep_idle_prefixes=4 * backend.n_workers * n_folds, rung_rows=rung)
                engine = SearchEngine(
                    strategy, evaluator, metric=metric, n_generations=self.generations,
                    n_slots=lambda: backend.n_slots, deadline=deadline, callbacks=callbacks,
                    search=self, checkpoint=self.checkpoint, fingerprint=fingerprint,
                    resumed=resumed,
                    extra_state={"repeat_seeds": repeat_seeds, "rung_rows": rung},
                    pruning=self.pruning, objectives=objectives)
                try:
                    engine.run()
                finally:
                    evaluator.close()
            self._store_results(engine, X, y, fit_params, scorers, metric, objectives)
        finally:
            for callback in started_callbacks:
                if callable(getattr(callback, "on_end", None)):
                    callback.on_end(self)
        return self

    def _store_results(self, engine, X, y, fit_params, scorers, metric, objectives) -> None:
        progress = engine.progress
        self.history_ = pd.DataFrame(progress.history, columns=HISTORY_COLUMNS)
        order = engine.order
        rows = [engine.evaluator.results[key] for key in order]
        if not rows:
            raise ValueError(
                f"The 'max_time' of {type(self).__name__} ({self.max_time!r} s) ended the "
                "search before any candidate was evaluated; give the search more time.")
        n_repeats = len(engine.evaluator.repeat_seeds)
        check_failures(rows, self.n_splits_ * n_repeats, self.error_score)
        metrics = metric_names(rows, scorers)
        if not self.multimetric_ and metrics != ["score"]:
            # a callable scorer returned a dict of metrics: as scikit-learn, multi-metric
            self._check_refit_metric(metrics)
            self.multimetric_ = True
            metric = self.refit if isinstance(self.refit, str) else metrics[0]
        results = format_results(rows, [progress.generation_of[key] for key in order],
                                 self.n_splits_, n_repeats, metrics,
                                 return_train_score=bool(self.return_train_score),
                                 error_score=self.error_score,
                                 costs=[o.name for o in objectives or () if o.kind == "cost"],
                                 rung=self.pruning == "rows")
        if objectives is not None:
            self._store_front(results, rows, objectives)
        self.cv_results_ = results
        if self.refit or not self.multimetric_:
            if objectives is not None and self.refit is True:
                self.best_index_ = int(self.pareto_front_[0])
            else:
                self.best_index_ = best_index(results, self.refit, metric)
            if not callable(self.refit):
                self.best_score_ = float(results[f"mean_test_{metric}"][self.best_index_])
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self._refit(X, y, fit_params, engine.evaluator.repeat_seeds[0])

    def _store_front(self, results: dict, rows: list, objectives: list) -> None:
        """``cv_results_["pareto_rank"]`` and ``pareto_front_``, best first on the first
        objective (then on the next ones, then in ``cv_results_`` order)."""
        values = np.array([[objective.value(row) for objective in objectives] for row in rows],
                          dtype=float).reshape(len(rows), len(objectives))
        maximise = [objective.maximise for objective in objectives]
        ranks = pareto_ranks(values, maximise)
        results["pareto_rank"] = ranks.astype(np.int32)
        front = np.flatnonzero(ranks == 1)
        oriented = values[front] * np.where(maximise, -1.0, 1.0)  # ascending = best first
        order = np.lexsort(tuple(oriented[:, j] for j in reversed(range(len(objectives)))))
        self.pareto_front_ = front[order] if front.size else np.flatnonzero(ranks == ranks.min())

    def _refit(self, X, y, fit_params: dict, seed) -> None:
        model = build_candidate(self.estimator, self.best_params_, seed,
                                seed_unset_only=self.n_repeats == 1)
        start = time.perf_counter()
        if y is None:
            model.fit(X, **fit_params)
        else:
            model.fit(X, y, **fit_params)
        self.refit_time_ = time.perf_counter() - start
        self.best_estimator_ = model
        if hasattr(model, "feature_names_in_"):
            self.feature_names_in_ = model.feature_names_in_

    def _sk_visual_block_(self):
        """The HTML repr shows the refit best estimator once there is one, as
        scikit-learn's searches do (through scikit-learn's own display hook; should
        the hook's class move, scikit-learn falls back to a plain block)."""
        from sklearn.utils._repr_html.estimator import _VisualBlock

        if hasattr(self, "best_estimator_"):
            key, estimator = "best_estimator_", self.best_estimator_
        else:
            key, estimator = "estimator", self.estimator
        return _VisualBlock("parallel", [estimator],
                            names=[f"{key}: {estimator.__class__.__name__}"],
                            name_details=[str(estimator)])

    # ------------------------------------------------------------------ delegation

    def score(self, X, y=None):
        """The score of the refit best estimator on `X`, `y`, with the search's scorer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None

        Returns
        -------
        score : float
        """
        _check_refit(self, "score")
        check_is_fitted(self)
        scorer = self.scorer_[self.refit] if isinstance(self.scorer_, dict) else self.scorer_
        score = scorer(self.best_estimator_, X, y)
        return score[self.refit] if isinstance(score, dict) else score

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Call ``predict`` on the best estimator (``refit=True`` only)."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Call ``predict_proba`` on the best estimator (``refit=True`` only)."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Call ``predict_log_proba`` on the best estimator (``refit=True`` only)."""
        check_is_fitted(self)
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Call ``decision_function`` on the best estimator (``refit=True`` only)."""
        check_is_fitted(self)
        return self.best_estimator_.decision_function(X)

    @available_if(_estimator_has("score_samples"))
    def score_samples(self, X):
        """Call ``score_samples`` on the best estimator (``refit=True`` only)."""
        check_is_fitted(self)
        return self.best_estimator_.score_samples(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X):
        """Call ``transform`` on the best estimator (``refit=True`` only)."""
        check_is_fitted(self)
        return self.best_estimator_.transform(X)

    @available_if(_estimator_has("inverse_transform"))
    def inverse_transform(self, X):
        """Call ``inverse_transform`` on the best estimator (``refit=True`` only)."""
        check_is_fitted(self)
        return self.best_estimator_.inverse_transform(X)

    @property
    def n_features_in_(self):
        """Number of features seen during fit (``refit=True`` only)."""
        try:
            check_is_fitted(self)
        except NotFittedError as error:
            raise AttributeError(
                f"{type(self).__name__} object has no n_features_in_ attribute.") from error
        return self.best_estimator_.n_features_in_

    @property
    def classes_(self):
        """Class labels (``refit=True`` and a classifier only)."""
        _estimator_has("classes_")(self)
        return self.best_estimator_.classes_
