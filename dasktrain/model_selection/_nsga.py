"""Several objectives at once: their checks, Pareto ranks, and NSGA-II strategies.

The non-dominated sorting, the crowding distance and the survivor selection
are DEAP's own (``deap.tools.emo``: :func:`~deap.tools.sortNondominated`,
:func:`~deap.tools.emo.assignCrowdingDist`, :func:`~deap.tools.selNSGA2`),
called on small client-side points that carry a :class:`deap.base.Fitness`.
No class is made in ``deap.creator`` (one module-level fitness class takes its
weights per instance), no DEAP object leaves this process, and DEAP's own
random draws are never used: the crowded tournaments that pick parents draw
from the strategy's :class:`numpy.random.Generator`, so a strategy told the
same outcomes in the same order asks for the same candidates on every
backend.

An objective is a metric of ``scoring`` (maximised) or a cost (minimised):
"fit_time", "score_time", "model_size" (bytes of the pickled fitted model,
measured in the task) or a callable ``cost(fitted_estimator) -> float``
(called in the task). A candidate that failed, or any of whose objectives is
not a finite number, is ranked after every candidate that did not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from deap import base
from deap.tools import emo

from ._genetic import as_branches, crossover, mutate
from ._records import Outcome
from ._strategies import BREED_TRIES, Generational, SteadyState

__all__ = ["BUILTIN_COSTS", "NSGA2", "NSGA2_STRATEGIES", "NSGA2SteadyState", "Objective",
           "SpaceOperators", "check_objectives", "crowding_distances", "nsga2_order",
           "pareto_ranks"]

#: Costs every search can minimise, besides callables.
BUILTIN_COSTS = ("fit_time", "score_time", "model_size")


# --------------------------------------------------------------------------- objectives

@dataclass(frozen=True)
class Objective:
    """One objective of a search.

    Attributes
    ----------
    name : str
        A metric name, a cost name, or the name given to a callable cost
        (its ``__name__``); the ``cv_results_`` column of a cost is
        ``mean_<name>``.
    maximise : bool
        True for a metric, False for a cost.
    kind : {"metric", "time", "cost", "params"}
        Where the value comes from: the test scores, the split times, a cost
        measured on the fitted estimator in the task, or the candidate's
        parameters (computed here, e.g. a feature mask's size).
    function : callable or None
        The cost measured in the task (``"model_size"`` or a callable), or for
        ``kind="params"`` a function of the parameters.
    """

    name: str
    maximise: bool
    kind: str
    function: Callable | str | None = None

    def value(self, result) -> float:
        """This objective's value for a :class:`~._records.CandidateResult` (NaN if failed)."""
        if self.kind == "metric":
            return result.mean_score(self.name)
        if self.kind == "time":
            values = np.asarray(getattr(result, self.name), dtype=float)
            return float(values.mean()) if values.size else math.nan
        if self.kind == "cost":
            return result.mean_cost(self.name)
        return float(self.function(result.params))

    @property
    def column(self) -> str:
        """The ``cv_results_`` column holding this objective's value."""
        return f"mean_test_{self.name}" if self.kind == "metric" else f"mean_{self.name}"


def _cost_name(cost, index: int) -> str:
    name = getattr(cost, "__name__", "")
    return name if name.isidentifier() else f"cost{index}"


def check_objectives(objectives, metrics, owner: str, extra: dict | None = None) -> list:
    """`objectives` as a list of :class:`Objective`, or a ValueError naming the parameter.

    Parameters
    ----------
    objectives : list or tuple of str or callable
        Metric names (of `metrics`), names of :data:`BUILTIN_COSTS` or of
        `extra`, or callables ``cost(fitted_estimator) -> float``.
    metrics : list of str
        The metrics of ``scoring`` ("score" for a single one).
    owner : str
        The estimator's class name, for the messages.
    extra : dict, default=None
        More names an estimator accepts: name -> :class:`Objective`.

    Examples
    --------
    >>> [o.name for o in check_objectives(["score", "fit_time"], ["score"], "Search")]
    ['score', 'fit_time']
    >>> check_objectives(["accuracy"], ["score"], "Search")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: The 'objectives' parameter of Search must hold ... Got 'accuracy' instead.
    """
    extra = dict(extra or {})
    known = list(metrics) + list(BUILTIN_COSTS) + list(extra)
    if isinstance(objectives, (str, bytes)) or not isinstance(objectives, (list, tuple)):
        raise ValueError(f"The 'objectives' parameter of {owner} must be None or a list or "
                         f"tuple of objectives. Got {objectives!r} instead.")
    if not objectives:
        raise ValueError(f"The 'objectives' parameter of {owner} must hold at least one "
                         "objective (or be None for the single `scoring` objective). Got "
                         f"{objectives!r} instead.")
    out: list[Objective] = []
    for index, item in enumerate(objectives):
        if callable(item) and not isinstance(item, str):
            out.append(Objective(_cost_name(item, index), False, "cost", item))
        elif isinstance(item, str) and item in metrics:
            out.append(Objective(item, True, "metric"))
        elif isinstance(item, str) and item in extra:
            out.append(extra[item])
        elif item in ("fit_time", "score_time"):
            out.append(Objective(item, False, "time"))
        elif item == "model_size":
            out.append(Objective(item, False, "cost", "model_size"))
        else:
            raise ValueError(
                f"The 'objectives' parameter of {owner} must hold metric names of 'scoring' "
                f"({list(metrics)!r}), built-in costs {tuple(BUILTIN_COSTS + tuple(extra))!r} "
                f"or callables cost(fitted_estimator) -> float. Got {item!r} instead.")
    names = [objective.name for objective in out]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"The 'objectives' parameter of {owner} must name each objective "
                         f"once (callable costs are named by their __name__). Got {twice!r} "
                         "more than once.")
    clashing = [o.name for o in out if o.kind == "cost" and callable(o.function)
                and o.name in known]
    if clashing:
        raise ValueError(f"The 'objectives' parameter of {owner} has a callable cost named "
                         f"{clashing[0]!r}, which is already a metric or cost name; give the "
                         "function another name.")
    return out


# --------------------------------------------------------------------------- DEAP's sorting

class _Fitness(base.Fitness):
    """DEAP's fitness with its weights set per instance: one class for any number of
    objectives, so that nothing is created in ``deap.creator``. Values are given
    already oriented (higher is better), so every weight is 1."""

    def __init__(self, values):
        self.weights = (1.0,) * len(values)
        super().__init__(tuple(values))


class _Point:
    """What DEAP's selection functions sort: a position and a fitness."""

    __slots__ = ("fitness", "index")

    def __init__(self, index: int, values):
        self.index = index
        self.fitness = _Fitness(values)


def _oriented(values, maximise) -> np.ndarray:
    """Values as rows to maximise (costs negated); a row with a non-finite value is NaN."""
    values = np.asarray(values, dtype=float).reshape(len(values), len(maximise))
    signs = np.where(np.asarray(maximise, dtype=bool), 1.0, -1.0)
    oriented = values * signs
    oriented[~np.isfinite(oriented).all(axis=1)] = np.nan
    return oriented


def _points(oriented: np.ndarray) -> list[_Point]:
    return [_Point(index, row) for index, row in enumerate(oriented)
            if not np.isnan(row).any()]


def pareto_ranks(values, maximise) -> np.ndarray:
    """The non-dominated rank of each row of `values` (1 = on the Pareto front).

    Parameters
    ----------
    values : array-like of shape (n_points, n_objectives)
    maximise : sequence of bool
        Per objective, True to maximise, False to minimise.

    Returns
    -------
    ranks : ndarray of int
        Rows with a non-finite value rank after every other row.

    Examples
    --------
    >>> pareto_ranks([[0.9, 5.0], [0.8, 1.0], [0.7, 6.0]], [True, False]).tolist()
    [1, 1, 2]
    """
    oriented = _oriented(values, maximise)
    points = _points(oriented)
    ranks = np.zeros(len(oriented), dtype=np.int64)
    fronts = emo.sortNondominated(points, len(points)) if points else []
    for rank, front in enumerate(fronts, start=1):
        for point in front:
            ranks[point.index] = rank
    ranks[ranks == 0] = len(fronts) + 1
    return ranks


def crowding_distances(values, maximise) -> np.ndarray:
    """The crowding distance of each row of `values` within its own front (DEAP's).

    The extremes of a front on each objective have an infinite distance;
    rows with a non-finite value have 0.

    Examples
    --------
    >>> crowding_distances([[0.9, 5.0], [0.8, 2.0], [0.7, 1.0]], [True, False]).tolist()
    [inf, 1.0, inf]
    """
    oriented = _oriented(values, maximise)
    points = _points(oriented)
    distances = np.zeros(len(oriented))
    for front in (emo.sortNondominated(points, len(points)) if points else []):
        emo.assignCrowdingDist(front)
        for point in front:
            distances[point.index] = point.fitness.crowding_dist
    return distances


def nsga2_order(values, maximise, k: int) -> list[int]:
    """The indices of the `k` rows that NSGA-II keeps (DEAP's ``selNSGA2``), in its order.

    Whole fronts first, then the least crowded of the last front; rows with a
    non-finite value come last, in their order.

    Examples
    --------
    >>> nsga2_order([[0.9, 5.0], [0.8, 1.0], [0.7, 6.0], [0.85, 3.0]], [True, False], 3)
    [0, 1, 3]
    """
    oriented = _oriented(values, maximise)
    points = _points(oriented)
    chosen = [point.index for point in emo.selNSGA2(points, min(k, len(points)))] \
        if points and k else []
    failed = [index for index in range(len(oriented)) if np.isnan(oriented[index]).any()]
    return (chosen + failed)[:k]


# --------------------------------------------------------------------------- operators

class SpaceOperators:
    """The genetic operators of a :class:`~dasktrain.space.SearchSpace`, for NSGA-II.

    What an NSGA-II strategy needs from the candidates it breeds: ``sample``,
    ``mutate``, ``crossover`` (one child) and ``size`` (the number of distinct
    candidates, possibly infinite).

    A mutation moves the candidate's parameters near their values (the
    search's own :func:`~._genetic.mutate`), or with probability
    :attr:`redraw_probability` draws one of its parameters afresh from its
    dimension. The front of several objectives stretches over the whole
    range of a parameter (the smallest models sit at one end of
    ``n_components``, the most accurate elsewhere): steps near the parents
    alone were slow to reach its far ends, and on the digits benchmark the
    redraws raised the front's hypervolume on each of 5 seeds.

    Examples
    --------
    >>> import numpy as np
    >>> from dasktrain.space import Integer, SearchSpace
    >>> operators = SpaceOperators(SearchSpace([{"n": Integer(1, 1000)}]))
    >>> rng = np.random.default_rng(0)
    >>> children = [operators.mutate({"n": 1}, rng)["n"] for _ in range(400)]
    >>> bool(0.05 < np.mean(np.array(children) > 500) < 0.25)  # a redraw: half above 500
    True
    """

    #: Probability that a mutation redraws one parameter of the candidate's branch from
    #: its dimension instead of moving the parameters near their values.
    redraw_probability = 0.25

    def __init__(self, space):
        self.space = space

    @property
    def size(self):
        return self.space.size

    def sample(self, rng) -> dict:
        return self.space.sample(rng)

    def _redraw_one(self, candidate: dict, rng) -> dict | None:
        """`candidate` with one parameter of its branch drawn afresh (None if none can)."""
        branches = as_branches(self.space)
        try:
            index = branches.branch_of(candidate)
        except ValueError:
            return None
        dims = branches.branches[index]
        names = [name for name, dim in dims.items() if not dim.constant]
        if not names:
            return None
        name = names[int(rng.integers(len(names)))]
        child = dict(candidate)
        child[name] = dims[name].sample(rng)
        return child

    def mutate(self, candidate: dict, rng) -> dict:
        if self.redraw_probability and rng.random() < self.redraw_probability:
            child = self._redraw_one(candidate, rng)
            if child is not None:
                return child
        return mutate(candidate, self.space, rng)

    def crossover(self, first: dict, second: dict, rng) -> dict:
        child, _ = crossover(first, second, rng, space=self.space)
        return child

    def __repr__(self):
        return repr(self.space)


# --------------------------------------------------------------------------- strategies

class _NSGA2Mixin:
    """Breeding and selection shared by the NSGA-II strategies.

    Parents are picked by crowded tournaments: of `tournament_size` members
    drawn at random, the one of the best non-dominated rank wins, the least
    crowded among equals, the first drawn among ties. A child is, as in
    DEAP's ``varOr``, the crossover of two parents (probability
    `crossover_probability`), a mutated parent (`mutation_probability`) or a
    copy; a child equal to a candidate asked before is bred again
    (:data:`~._strategies.BREED_TRIES` times), then replaced by a random one.
    """

    maximise: tuple

    def _values(self, outcomes) -> np.ndarray:
        return np.array([outcome.objectives for outcome in outcomes],
                        dtype=float).reshape(len(outcomes), len(self.maximise))

    def _select(self, pool: list[Outcome], k: int) -> list[Outcome]:
        return [pool[index] for index in nsga2_order(self._values(pool), self.maximise, k)]

    def _offspring(self, n: int) -> list[dict]:
        population = self.population
        values = self._values(population)
        ranks = pareto_ranks(values, self.maximise)
        crowding = crowding_distances(values, self.maximise)

        def parent() -> dict:
            entrants = self.rng.integers(len(population), size=self.tournament_size)
            best = min(entrants.tolist(), key=lambda i: (ranks[i], -crowding[i]))
            return population[best].params

        out: list[dict] = []
        while len(out) < n and not self.exhausted:
            for _ in range(BREED_TRIES):
                draw = self.rng.random()
                if draw < self.crossover_probability:
                    first, second = parent(), parent()
                    child = self.space.crossover(first, second, self.rng)
                elif draw < self.crossover_probability + self.mutation_probability:
                    child = self.space.mutate(parent(), self.rng)
                else:
                    child = dict(parent())
                if self._take(child):
                    out.append(child)
                    break
                self.n_duplicates += 1
            else:
                fresh = self._random(1)
                if not fresh:
                    break
                out.extend(fresh)
        return out


class NSGA2(_NSGA2Mixin, Generational):
    """NSGA-II by whole generations: breed, evaluate the generation, keep the best fronts.

    Generation 0 is drawn at random. Each later generation breeds
    ``population_size`` children from crowded tournaments and keeps, of
    parents and children together, whole non-dominated fronts and then the
    least crowded of the last one (DEAP's ``selNSGA2``; elitist by
    construction). Outcomes are taken in the order the candidates were asked,
    so the search is the same on every backend.

    Parameters
    ----------
    space : SpaceOperators or an object with the same methods
    rng : numpy.random.Generator
    maximise : sequence of bool
        Per objective of :attr:`Outcome.objectives`, whether it is maximised.
    **options
        As for :class:`~._strategies.Strategy` (`elitism` is implied).

    Examples
    --------
    >>> import numpy as np
    >>> from dasktrain.space import Integer, SearchSpace
    >>> from dasktrain.model_selection._genetic import candidate_key
    >>> strategy = NSGA2(SpaceOperators(SearchSpace([{"n": Integer(1, 50)}])),
    ...                  np.random.default_rng(0), maximise=(True, False), population_size=4,
    ...                  crossover_probability=0.5, mutation_probability=0.5,
    ...                  tournament_size=2, elitism=True)
    >>> first = strategy.ask(10)
    >>> done = [strategy.tell(Outcome(candidate_key(c), c, c["n"], "ok",
    ...                               objectives=(c["n"], c["n"] ** 2))) for c in first]
    >>> done[-1], strategy.generation, len(strategy.ask(10))
    (True, 1, 4)
    """

    def __init__(self, space, rng, *, maximise, **options):
        super().__init__(space, rng, **options)
        self.maximise = tuple(bool(sense) for sense in maximise)

    def _children(self, n: int) -> list[dict]:
        return self._offspring(n)

    def _survivors(self, pool: list[Outcome]) -> list[Outcome]:
        return self._select(pool, self.population_size)


class NSGA2SteadyState(_NSGA2Mixin, SteadyState):
    """NSGA-II one child at a time: each outcome joins, the worst by NSGA-II order leaves.

    The first ``population_size`` candidates are drawn at random; after that
    every ask breeds children from the population as it is then (crowded
    tournaments). A told candidate joins the population, and when it is
    over ``population_size`` the candidate that DEAP's ``selNSGA2`` would drop
    leaves. A generation is counted every ``population_size`` outcomes; the
    result depends on the order in which outcomes arrive.

    Parameters
    ----------
    space, rng, maximise, **options
        As for :class:`NSGA2`.
    """

    def __init__(self, space, rng, *, maximise, **options):
        super().__init__(space, rng, **options)
        self.maximise = tuple(bool(sense) for sense in maximise)

    def _children(self, n: int) -> list[dict]:
        return self._offspring(n)

    def _admit(self, outcome: Outcome) -> None:
        self.population.append(outcome)
        if len(self.population) > self.population_size:
            self.population = self._select(self.population, self.population_size)


#: ``strategy`` of a search with ``objectives`` -> the NSGA-II strategy it runs.
NSGA2_STRATEGIES = {"generational": NSGA2, "steady_state": NSGA2SteadyState}
