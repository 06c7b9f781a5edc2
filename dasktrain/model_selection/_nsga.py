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

As the single-objective strategies do, the NSGA-II strategies screen their
children: they breed several times more than they evaluate, predict each
one's objectives with one :class:`~._surrogate.Surrogate` per objective, and
evaluate those whose predicted point adds the most hypervolume (moocore's,
the package DEAP's indicator uses) to the front evaluated so far.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from deap import base
from deap.tools import emo

from . import _density
from ._genetic import as_branches, crossover, mutate
from ._records import Outcome
from ._strategies import MIN_SURROGATE_POINTS, Generational, SteadyState
from ._surrogate import Surrogate

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
    candidates, possibly infinite); ``branches`` and ``from_unit`` for a
    space-filling first generation (``init``), ``surrogate`` and
    ``proposals`` for screening.

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

    @property
    def branches(self):
        """The space's branches (a space-filling first generation is drawn per branch)."""
        return self.space.branches

    def surrogate(self) -> Surrogate:
        """A new surrogate of one objective over this space's candidates (screening)."""
        return Surrogate(self.space)

    def proposals(self, history, n: int, rng, seen: set, avoid: set, best=None) -> list:
        """Up to `n` candidates drawn near the best of `history` (:mod:`._density`)."""
        return _density.density_new(self.space, history, n, rng, seen, avoid, best=best)

    def sample(self, rng, branch: int | None = None) -> dict:
        return self.space.sample(rng, branch)

    def from_unit(self, point, branch: int = 0) -> dict:
        return self.space.from_unit(point, branch)

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

#: How an NSGA-II strategy draws its first candidates unless told (``init``).
INIT = "random"
#: Children bred per child evaluated by an NSGA-II strategy unless told (``screening``).
SCREENING = 8.0
#: Spreads of the trees added to each predicted objective when screening, unless told.
OPTIMISM = 1.0


def _hypervolume(costs: np.ndarray, reference: np.ndarray) -> float:
    """The hypervolume of minimisation rows `costs` up to `reference` (moocore's, as DEAP's
    ``tools.indicator.hypervolume``)."""
    import moocore

    inside = costs[(costs < reference).all(axis=1)]
    return float(moocore.hypervolume(inside, ref=reference)) if len(inside) else 0.0


def _dominated_by(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each row of `points`, how many rows of `others` dominate it (higher is better)."""
    if not len(others):
        return np.zeros(len(points), dtype=np.int64)
    at_least = (others[None, :, :] >= points[:, None, :]).all(axis=2)
    better = (others[None, :, :] > points[:, None, :]).any(axis=2)
    return (at_least & better).sum(axis=1)


def _screen_order(seen: np.ndarray, predicted: np.ndarray, n: int) -> list[int]:
    """The order in which predicted candidates are worth evaluating, given those seen.

    `seen` and `predicted` are rows of oriented objectives (higher is better;
    a row of `seen` with a non-finite value is left out). Greedily, the
    candidate whose predicted point adds the most hypervolume to the front
    of `seen` and of the candidates picked before it, up to a reference point
    a tenth of the range beyond the worst value seen of each objective. When
    fewer than `n` add any, the others follow by how many points of that
    front and of the other candidates dominate them (fewest first), then by
    their distance to the nearest of those points, on each objective's range
    (largest first: the least crowded), then by their position.
    """
    seen = seen[np.isfinite(seen).all(axis=1)]
    predicted = np.where(np.isfinite(predicted), predicted, -np.inf)
    order: list[int] = []
    free = np.ones(len(predicted), dtype=bool)
    front = seen[_dominated_by(seen, seen) == 0]
    if len(seen):
        costs = -seen
        low, high = costs.min(axis=0), costs.max(axis=0)
        reference = high + 0.1 * np.where(high > low, high - low, 1.0)
        picked, candidates = -front, -predicted
        while len(order) < n and free.any():
            gains = np.where(free, _gains(picked, candidates, reference), -np.inf)
            pick = int(np.argmax(gains))  # the first of equal gains
            if not gains[pick] > 0:
                break
            order.append(pick)
            free[pick] = False
            picked = np.vstack([picked, candidates[pick]])
    rest = np.flatnonzero(free)
    if len(order) >= n or not len(rest):
        return order + rest.tolist()
    both = np.vstack([front, predicted])
    finite = both[np.isfinite(both).all(axis=1)]
    scale = np.ptp(finite, axis=0) if len(finite) else np.ones(both.shape[1])
    scaled = np.nan_to_num(both / np.where(scale > 0, scale, 1.0), neginf=-1e9)
    counts = _dominated_by(predicted[rest], both)
    gaps = ((scaled[len(front) + rest][:, None, :] - scaled[None, :, :]) ** 2).sum(axis=2)
    gaps[np.arange(len(rest)), len(front) + rest] = np.inf  # not to itself
    nearest = gaps.min(axis=1) if gaps.shape[1] > 1 else np.zeros(len(rest))
    keys = np.lexsort((rest, -nearest, counts))
    return order + rest[keys].tolist()


def _gains(front: np.ndarray, candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The hypervolume each row of `candidates` adds to `front` (minimisation, up to
    `reference`): exact and vectorised for two objectives, one call of moocore per
    candidate for more."""
    front = front[(front < reference).all(axis=1)]
    if candidates.shape[1] != 2:
        base = _hypervolume(front, reference)
        return np.array([_hypervolume(np.vstack([front, row]), reference) - base
                         for row in candidates])
    # the front as a staircase: over [starts[j], ends[j]) the region already dominated
    # begins at levels[j]; a candidate adds, on each step, the part of its own box below it
    front = front[np.lexsort((front[:, 1], front[:, 0]))]
    heights = np.minimum.accumulate(front[:, 1]) if len(front) else front[:, 1]
    starts = np.concatenate([[-np.inf], front[:, 0]])
    ends = np.concatenate([front[:, 0], [reference[0]]])
    levels = np.concatenate([[reference[1]], heights])
    x, y = candidates[:, :1], candidates[:, 1:]
    width = np.clip(np.minimum(ends, reference[0])[None, :] - np.maximum(starts[None, :], x),
                    0.0, None)
    height = np.clip(levels[None, :] - y, 0.0, None)
    return (width * height).sum(axis=1)


class _NSGA2Mixin:
    """Breeding and selection shared by the NSGA-II strategies.

    Parents are picked by crowded tournaments: of `tournament_size` members
    drawn at random, the one of the best non-dominated rank wins, the least
    crowded among equals, the first drawn among ties. A child is, as in
    DEAP's ``varOr``, the crossover of two parents (probability
    `crossover_probability`), a mutated parent (`mutation_probability`) or a
    copy; a child equal to a candidate asked before is bred again
    (:data:`~._strategies.BREED_TRIES` times), then replaced by a random one.

    With `screening` above 1 and operators that make surrogates
    (:meth:`SpaceOperators.surrogate`), once :data:`MIN_SURROGATE_POINTS`
    candidates have finite objectives, ``screening`` times more children are
    bred, with a quarter as many random candidates and the operators' own
    proposals; a surrogate per objective (none for an objective `known` from
    the parameters) predicts each one's objectives, and those that add the
    most hypervolume to the front evaluated are kept (:meth:`_screen`). The
    surrogates see parameters and objectives only and draw their seeds from
    the strategy's generator, so screening keeps the search the same on
    every backend.
    """

    maximise: tuple

    def _init_nsga2(self, maximise, known) -> None:
        self.maximise = tuple(bool(sense) for sense in maximise)
        # per objective, a function of the parameters that gives it exactly, or None
        self.known = tuple(known) if known is not None else (None,) * len(self.maximise)
        self._objective_history: list[tuple] = []  # each recorded outcome's objectives
        self._screen_models: list | None = None  # one surrogate per objective
        self._screen_fit = (0, 0)  # (outcomes it was fitted on, seed)

    def _values(self, outcomes) -> np.ndarray:
        return np.array([outcome.objectives for outcome in outcomes],
                        dtype=float).reshape(len(outcomes), len(self.maximise))

    def _select(self, pool: list[Outcome], k: int) -> list[Outcome]:
        return [pool[index] for index in nsga2_order(self._values(pool), self.maximise, k)]

    def _record(self, outcome: Outcome) -> None:
        super()._record(outcome)
        self._objective_history.append(tuple(outcome.objectives))

    def state(self) -> dict:
        return dict(super().state(), objective_history=list(self._objective_history),
                    screen_fit=self._screen_fit)

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self._objective_history = list(state.get("objective_history", ()))
        self._screen_models = None
        self._screen_fit = tuple(state.get("screen_fit", (0, 0)))
        if self._screen_fit[0]:  # the same fit again: a resumed search asks what it would have
            self._fit_screen(*self._screen_fit)

    def _offspring(self, n: int) -> list[dict]:
        if self.screening > 1 and n > 0 and self._screenable():
            return self._screen(n)
        return self._breed_new(n, take=True)

    def _breed_new(self, n: int, take: bool, avoid: set | None = None) -> list[dict]:
        """`n` children of crowded tournaments, new to the search (and to `avoid`), as
        :meth:`~._strategies.Strategy._bred_until` takes them; remembered when `take`."""
        population = self.population
        values = self._values(population)
        ranks = pareto_ranks(values, self.maximise)
        crowding = crowding_distances(values, self.maximise)

        def parent() -> dict:
            entrants = self.rng.integers(len(population), size=self.tournament_size)
            best = min(entrants.tolist(), key=lambda i: (ranks[i], -crowding[i]))
            return population[best].params

        def make() -> dict:
            draw = self.rng.random()
            if draw < self.crossover_probability:
                first, second = parent(), parent()
                return self.space.crossover(first, second, self.rng)
            if draw < self.crossover_probability + self.mutation_probability:
                return self.space.mutate(parent(), self.rng)
            return dict(parent())

        return self._bred_until(n, take, set() if avoid is None else avoid, make, [])

    # ------------------------------------------------------------------ screening

    def _screenable(self) -> bool:
        if not callable(getattr(self.space, "surrogate", None)):
            return False
        finite = np.isfinite(self._values_of_history()).all(axis=1)
        return int(finite.sum()) >= MIN_SURROGATE_POINTS

    def _new_surrogate(self):
        return self.space.surrogate()  # a mask's surrogate encodes its bits

    def _values_of_history(self) -> np.ndarray:
        return np.array(self._objective_history, dtype=float).reshape(
            len(self._objective_history), len(self.maximise))

    def _fit_screen(self, size: int, seed: int) -> None:
        """A surrogate per objective not `known`, fitted on the first `size` outcomes."""
        params = [candidate for candidate, _ in self._history[:size]]
        oriented = self._values_of_history()[:size] * np.where(self.maximise, 1.0, -1.0)
        models: list | None = []
        # every objective's surrogate encodes the candidates alike: the history's encoding,
        # each candidate encoded once as the history grows
        encoded = self._history_encoded()
        for column in range(len(self.maximise)):
            if self.known[column] is not None:
                models.append(None)
                continue
            model = self._new_surrogate().fit(params, oriented[:, column], seed=seed + column,
                                              encoded=encoded)
            if not model.fitted:
                models = None
                break
            models.append(model)
        self._screen_models = models
        self._screen_fit = (size, seed)

    def _screen_models_now(self) -> list | None:
        """The surrogates, refitted once a tenth more outcomes (at least one, at most half
        a population) were recorded than they were fitted on: every generation of
        :class:`NSGA2`, every few outcomes of :class:`NSGA2SteadyState`."""
        size = len(self._history)
        wanted = max(1, min(self.population_size // 2, size // 10))
        if self._screen_models is None or size - self._screen_fit[0] >= wanted:
            self._fit_screen(size, int(self.rng.integers(2**31)))
        return self._screen_models

    def _screen(self, n: int) -> list[dict]:
        """The `n` children kept of a pool ``screening`` times larger.

        The pool: children bred as without screening, a quarter as many random
        candidates and the operators' own proposals (``proposals``: for a
        search space, twice as many drawn near the most accurate candidates,
        :mod:`._density`). Each objective of every pool member is predicted
        (the mean of the trees plus `optimism` times their spread), or
        computed when it is `known`; the members are kept in the order of
        :func:`_screen_order` (most hypervolume added to the front seen).
        """
        models = self._screen_models_now()
        if models is None:
            return self._breed_new(n, take=True)
        pool = self._screening_pool(n)
        if len(pool) <= n:
            chosen = pool
        else:
            predicted, encoded = [], None
            for column, model in enumerate(models):
                if model is None:
                    sign = 1.0 if self.maximise[column] else -1.0
                    predicted.append(np.array([sign * float(self.known[column](candidate))
                                               for candidate in pool]))
                    continue
                if encoded is None:  # every objective's surrogate encodes the pool alike
                    encoded = model.encode(pool)
                mean, spread = model.predict_encoded(encoded)
                predicted.append(mean + self.optimism * spread)
            seen = self._values_of_history() * np.where(self.maximise, 1.0, -1.0)
            order = _screen_order(seen, np.column_stack(predicted), n)
            chosen = [pool[i] for i in order[:n]]
        return self._keep(chosen)

    def _proposals(self, n: int, avoid: set) -> list[dict]:
        proposals = getattr(self.space, "proposals", None)  # masks have none
        if proposals is None:
            return []
        return proposals(self._history, n, self.rng, self._seen, avoid, self._best)


class NSGA2(_NSGA2Mixin, Generational):
    """NSGA-II by whole generations: breed, evaluate the generation, keep the best fronts.

    Generation 0 is drawn as `init` says. Each later generation breeds
    ``population_size`` children from crowded tournaments (screened, see
    `screening`) and keeps, of parents and children together, whole
    non-dominated fronts and then the least crowded of the last one (DEAP's
    ``selNSGA2``; elitist by construction). Outcomes are taken in the order
    the candidates were asked, so the search is the same on every backend.

    Parameters
    ----------
    space : SpaceOperators or an object with the same methods
    rng : numpy.random.Generator
    maximise : sequence of bool
        Per objective of :attr:`Outcome.objectives`, whether it is maximised.
    known : sequence of callable or None, default=None
        Per objective, a function of the candidate's parameters that gives it
        exactly (a feature mask's size), or None; screening predicts only the
        others.
    init : {"random", "latin_hypercube", "sobol"}, default="random"
        As for :class:`~._strategies.Strategy`.
    screening : float, default=8.0
        Children bred per child evaluated (1: no screening). 8, as the
        single-objective search's default: on the digits benchmark (PCA ->
        SVC, accuracy against model size, 72 candidates) the front's
        hypervolume over 10 seeds rose from 1.0498 without it to 1.0534
        (TPOT 1.1.0's NSGA-II: 1.0483), above TPOT's on 9 of the 10 seeds.
    optimism : float, default=1.0
        When screening, each predicted objective (oriented, higher is better)
        is the trees' mean plus `optimism` times their spread: an optimistic
        guess, which favours children whose objectives the surrogates know
        least (on the digits benchmark, seeds 0-4, a hypervolume of 1.0496
        with 1 and 1.0488 with 0: within the noise).
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

    def __init__(self, space, rng, *, maximise, known=None, init=INIT, screening=SCREENING,
                 optimism=OPTIMISM, **options):
        super().__init__(space, rng, init=init, screening=screening, **options)
        self.optimism = float(optimism)
        self._init_nsga2(maximise, known)

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
    space, rng, maximise, known, init, screening, optimism, **options
        As for :class:`NSGA2`.
    """

    def __init__(self, space, rng, *, maximise, known=None, init=INIT, screening=SCREENING,
                 optimism=OPTIMISM, **options):
        super().__init__(space, rng, init=init, screening=screening, **options)
        self.optimism = float(optimism)
        self._init_nsga2(maximise, known)

    def _children(self, n: int) -> list[dict]:
        return self._offspring(n)

    def _admit(self, outcome: Outcome) -> None:
        self.population.append(outcome)
        if len(self.population) > self.population_size:
            self.population = self._select(self.population, self.population_size)


#: ``strategy`` of a search with ``objectives`` -> the NSGA-II strategy it runs.
NSGA2_STRATEGIES = {"generational": NSGA2, "steady_state": NSGA2SteadyState}
