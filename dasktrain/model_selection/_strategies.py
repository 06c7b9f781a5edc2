"""Search strategies: small ask/tell objects that see parameters and scores only.

A strategy is asked for candidates and told each candidate's
:class:`~dasktrain.model_selection._records.Outcome` (score, status, times).
It never sees futures, data, estimators being fitted or the backend: the
search engine (:mod:`dasktrain.model_selection._engine`) decides where and
when candidates run, keeps the budget and the time limits, and records the
results. Every random choice comes from the strategy's own
:class:`numpy.random.Generator`, so a strategy told the same outcomes in the
same order asks for the same candidates on every backend.

Adding a strategy is writing one class here with :meth:`Strategy.ask`,
:meth:`Strategy.tell` and :meth:`Strategy.flush`, and naming it in
:data:`STRATEGIES`. :meth:`Strategy.prepare` is called by the engine while
candidates run, for client-side work the next ask needs (the surrogate's fit).
"""

from __future__ import annotations

import abc
import heapq
import math

import numpy as np
from scipy.stats import qmc

from ..space import SearchSpace
from ..utils._gc import gc_paused
from . import _density
from ._genetic import _fitness, breeder, candidate_key, select_survivors
from ._records import Outcome
from ._surrogate import MAX_TRAINING, Surrogate, sample_size

__all__ = ["STRATEGIES", "Generational", "SteadyState", "Strategy"]

#: Tries to breed a child that is new before a fresh random candidate is drawn instead.
BREED_TRIES = 10

#: How the first candidates are drawn (the ``init`` parameter).
INITS = ("random", "latin_hypercube", "sobol")

#: Outcomes told before the surrogate screens children.
MIN_SURROGATE_POINTS = 6


class Strategy(abc.ABC):
    """The ask/tell interface of a search strategy, and what every strategy shares.

    Parameters
    ----------
    space : SearchSpace
    rng : numpy.random.Generator
        The strategy's own generator; every random choice is drawn from it.
    population_size : int
    crossover_probability, mutation_probability : float
    tournament_size : int
    elitism : bool
    init : {"random", "latin_hypercube", "sobol"}, default="random"
        How the first ``population_size`` candidates are drawn: at random, or
        spread over each branch's unit cube by a scrambled Latin hypercube or
        Sobol design (:mod:`scipy.stats.qmc`), the branches taking turns.
    screening : float, default=1.0
        Children bred per child evaluated: with more than 1, that many times
        more children are bred (with a quarter as many random candidates and
        twice as many drawn from per-parameter densities of the best 15%
        evaluated, :mod:`._density`), and those with the highest expected
        improvement predicted by a
        :class:`~dasktrain.model_selection._surrogate.Surrogate` fitted on the
        outcomes so far are evaluated; the surrogate ranks only the
        :attr:`density_filter` share of them likeliest by TPE's density ratio.

    Attributes
    ----------
    batch : bool
        True when the candidates of one :meth:`ask` form a batch that is told
        back in full before the next ask (the engine submits them together);
        False when the strategy takes outcomes one by one, as they finish.
    generation : int
        The generation in progress; candidates told now belong to it.
    population : list of Outcome
        The current population (after selection).
    n_duplicates : int
        Children bred equal to a candidate already asked for, and bred again.
    """

    batch = False
    #: The share of a screening pool that the surrogate ranks: the candidates with the
    #: highest :func:`._density.density_ratio` (TPE's criterion), or every one with 1.0.
    density_filter = 1.0
    #: The share of the outcomes recorded that the surrogate an ask screens with may lack
    #: (it was fitted at an earlier ask's plan, by :meth:`prepare`, while candidates ran).
    surrogate_lag = 0.25

    def __init__(self, space: SearchSpace, rng: np.random.Generator, *, population_size: int,
                 crossover_probability: float, mutation_probability: float,
                 tournament_size: int, elitism: bool, init: str = "random",
                 screening: float = 1.0):
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}. Got {init!r} instead.")
        self.space = space
        self.init = init
        self.screening = float(screening)
        self.rng = rng
        self.population_size = population_size
        self.crossover_probability = crossover_probability
        self.mutation_probability = mutation_probability
        self.tournament_size = tournament_size
        self.elitism = elitism
        self.generation = 0
        self.population: list[Outcome] = []
        self.n_duplicates = 0
        self._seen: set[str] = set()
        # every outcome taken, in a deterministic order: (params, score)
        self._history: list[tuple[dict, float]] = []
        self._best = _density.BestSoFar()  # the best scores of _history, for the densities
        self._model: Surrogate | None = None  # the surrogate, fitted on _history[:_model_size]
        self._model_size = 0
        self._model_seed = 0
        self._planned: tuple[int, int] | None = None  # the next fit: (size, seed)
        self._n_finite, self._best_score = 0, -math.inf  # of the scores in _history
        self._encoder: Surrogate | None = None
        # Surrogate.encode of _history's candidates: its first _n_encoded rows
        self._encoded: np.ndarray | None = None
        self._n_encoded = 0
        self._densities: tuple[int, _density.ParzenProposal] | None = None  # (history size, ...)

    # ------------------------------------------------------------------ the interface

    @abc.abstractmethod
    def ask(self, n: int) -> list[dict]:
        """Up to `n` new candidates, each distinct from every candidate asked before.

        Fewer (none) while the strategy waits for outcomes, or when the space
        has no new candidate left.
        """

    def tell(self, outcome: Outcome) -> bool:
        """Take the outcome of a candidate asked for; True when it completes a generation."""
        return self._told(outcome)

    @abc.abstractmethod
    def _told(self, outcome: Outcome) -> bool:
        """What the strategy does with an outcome (see :meth:`tell`); it records the
        outcome in the history (:meth:`_record`) when its order is settled."""

    def prepare(self) -> None:
        """Work for the next :meth:`ask` done while the candidates asked for run.

        The engine calls it after submitting and before waiting, so that the
        client works while the workers do: here, the surrogate's fit that the
        last ask planned. Without it the next ask does the same work itself,
        so the candidates asked never depend on when or how often it is called.
        """
        if self._planned is not None:
            self._fit_surrogate(*self._planned)

    def flush(self) -> bool:
        """Close a generation cut short (the search is ending); True when there was one."""
        return False

    # ------------------------------------------------------------------ state

    def state(self) -> dict:
        """Everything needed to continue later (a checkpoint): plain picklable values."""
        return {"rng": self.rng.bit_generator.state, "generation": self.generation,
                "population": list(self.population), "n_duplicates": self.n_duplicates,
                "seen": set(self._seen), "history": list(self._history),
                "surrogate": (self._model_size, self._model_seed), "planned": self._planned}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.generation = state["generation"]
        self.population = list(state["population"])
        self.n_duplicates = state["n_duplicates"]
        self._seen = set(state["seen"])
        self._history = list(state["history"])
        self._best = _density.BestSoFar(score for _, score in self._history)
        finite = [score for _, score in self._history if math.isfinite(score)]
        self._n_finite, self._best_score = len(finite), max(finite, default=-math.inf)
        self._model = None
        self._encoded, self._n_encoded = None, 0
        self._densities = None
        self._model_size, self._model_seed = state.get("surrogate", (0, 0))
        self._planned = state.get("planned")
        if self._model_size:  # the same fit again: a resumed search asks what it would have
            self._fit_surrogate(self._model_size, self._model_seed)

    # ------------------------------------------------------------------ shared rules

    @property
    def exhausted(self) -> bool:
        """Whether every candidate of a finite space has been asked for."""
        return len(self._seen) >= self.space.size

    def _record(self, outcome: Outcome) -> None:
        """Add `outcome` to the history the surrogate learns from."""
        self._history.append((outcome.params, outcome.score))
        self._best.add(len(self._history) - 1, outcome.score)
        if math.isfinite(outcome.score):
            self._n_finite += 1
            self._best_score = max(self._best_score, outcome.score)

    def _take(self, candidate: dict) -> bool:
        """Accept `candidate` if it is new (and remember it)."""
        key = candidate_key(candidate)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _random(self, n: int) -> list[dict]:
        """`n` new random candidates (fewer when the space runs out)."""
        out: list[dict] = []
        tries = 0
        while len(out) < n and not self.exhausted and tries < 50 * n + 100:
            tries += 1
            candidate = self.space.sample(self.rng)
            if self._take(candidate):
                out.append(candidate)
        return out

    def _initial(self, n: int) -> list[dict]:
        """`n` new first candidates, drawn as `init` says."""
        if self.init == "random":
            return self._random(n)
        n_branches = len(self.space.branches)
        first = int(self.rng.integers(n_branches)) if n_branches > 1 else 0
        counts = [0] * n_branches
        for i in range(n):
            counts[(first + i) % n_branches] += 1
        out: list[dict] = []
        for branch, count in enumerate(counts):
            dims = self.space.branches[branch]
            if not count:
                continue
            if not dims:
                out.extend([{}] if self._take({}) else [])
                continue
            seed = int(self.rng.integers(2**31))
            if self.init == "sobol":
                points = qmc.Sobol(d=len(dims), scramble=True, seed=seed).random(count)
            else:
                points = qmc.LatinHypercube(d=len(dims), seed=seed).random(count)
            for point in points:
                try:
                    candidate = self.space.from_unit(point, branch)
                except TypeError:  # a distribution without quantiles: drawn at random
                    candidate = self.space.sample(self.rng, branch)
                if self._take(candidate):
                    out.append(candidate)
        return out + self._random(n - len(out))

    def _bred(self, n: int) -> list[dict]:
        """`n` new children of the population: a child equal to a candidate asked before
        is bred again (:data:`BREED_TRIES` times), then replaced by a random new one.
        With `screening`, the most promising of several times more children."""
        if self.screening > 1 and n > 0:
            surrogate = self._surrogate()
            if surrogate is not None:
                return self._screened(n, surrogate)
        return self._breed_new(n, take=True)

    def _breed_new(self, n: int, take: bool, avoid: set | None = None) -> list[dict]:
        avoid = set() if avoid is None else avoid
        out: list[dict] = []
        make = breeder([outcome.params for outcome in self.population],
                       [outcome.score for outcome in self.population], self.space, self.rng,
                       crossover_probability=self.crossover_probability,
                       mutation_probability=self.mutation_probability,
                       tournsize=self.tournament_size)
        with gc_paused():
            return self._bred_until(n, take, avoid, make, out)

    def _bred_until(self, n: int, take: bool, avoid: set, make, out: list[dict]) -> list[dict]:
        while len(out) < n and not self.exhausted:
            for _ in range(BREED_TRIES):
                child = make()
                key = candidate_key(child)
                if key not in self._seen and key not in avoid:
                    avoid.add(key)
                    if take:
                        self._seen.add(key)
                    out.append(child)
                    break
                self.n_duplicates += 1
            else:
                fresh = self._random_new(1, avoid) if not take else self._random(1)
                if not fresh:
                    break
                out.extend(fresh)
        return out

    def _random_new(self, n: int, avoid: set) -> list[dict]:
        """`n` random candidates neither asked for nor in `avoid` (not remembered)."""
        out: list[dict] = []
        for _ in range(20 * n):
            if len(out) == n:
                break
            candidate = self.space.sample(self.rng)
            key = candidate_key(candidate)
            if key not in self._seen and key not in avoid:
                avoid.add(key)
                out.append(candidate)
        return out

    def _history_encoded(self) -> np.ndarray:
        """The surrogate's encoding of every candidate of the history, one row each: each
        candidate is encoded once, when first needed, as the surrogate is refitted on a
        history that only grows."""
        if self._encoder is None:
            self._encoder = self._new_surrogate()
        if not self._history:
            return np.empty((0, 0))
        if self._n_encoded < len(self._history):
            rows = self._encoder.encode([params for params, _ in
                                         self._history[self._n_encoded:]])
            needed = len(self._history)
            if self._encoded is None or self._encoded.shape[0] < needed:
                grown = np.empty((max(needed, 2 * self._n_encoded, 64), rows.shape[1]))
                if self._n_encoded:
                    grown[:self._n_encoded] = self._encoded[:self._n_encoded]
                self._encoded = grown
            self._encoded[self._n_encoded:needed] = rows
            self._n_encoded = needed
        return self._encoded[:self._n_encoded]

    def _new_surrogate(self) -> Surrogate:
        """An unfitted surrogate of one objective over the space's candidates."""
        return Surrogate(self.space)

    def _fit_surrogate(self, size: int, seed: int) -> None:
        """Fit the surrogate on the first `size` outcomes recorded."""
        points = self._history[:size]
        surrogate = self._new_surrogate()
        surrogate.fit([params for params, _ in points], [score for _, score in points],
                      seed=seed, encoded=self._history_encoded())
        self._model = surrogate if surrogate.fitted else None
        self._model_size, self._model_seed = size, seed
        if self._planned is not None and self._planned[0] <= size:
            self._planned = None

    def _surrogate(self) -> Surrogate | None:
        """The surrogate to screen with now, and the next fit planned.

        The surrogate is the one fitted on the outcomes recorded at an earlier
        ask (fitted by :meth:`prepare` while the candidates of that ask ran):
        it may lack those recorded since, up to :attr:`surrogate_lag` of them.
        When it lacks more, as early in a search, it is refitted here on all
        of them. The next fit is planned once a tenth more outcomes (at least
        one, at most half a population) have been recorded than the surrogate
        has seen; with no lag allowed, every ask that has new outcomes refits.
        """
        points = self._history
        if self._n_finite < MIN_SURROGATE_POINTS:
            return None
        if self._planned is not None:  # prepare was not called since the last ask
            self._fit_surrogate(*self._planned)
        allowed = int(len(points) * self.surrogate_lag)
        wanted = max(1, min(self.population_size // 2, len(points) // 10))
        stale = len(points) - self._model_size > (allowed if allowed else wanted - 1)
        if self._model is None or stale:
            self._fit_surrogate(len(points), int(self.rng.integers(2**31)))
        if allowed and len(points) - self._model_size >= wanted:
            self._planned = (len(points), int(self.rng.integers(2**31)))
        return self._model

    def _screening_pool(self, n: int) -> list[dict]:
        """The candidates screened to keep `n`, none asked for before: ``screening * n``
        new children, a quarter as many random candidates and twice as many
        :meth:`_proposals` (not remembered as asked)."""
        size = sample_size(n, self.screening)
        avoid: set[str] = set()
        pool = self._breed_new(size, take=False, avoid=avoid)
        pool += self._random_new(max(1, size // 4), avoid)
        pool += self._proposals(int(math.ceil(size * _density.DENSITY_SHARE)), avoid)
        return pool

    def _proposals(self, n: int, avoid: set) -> list[dict]:
        """Up to `n` new candidates drawn near the best evaluated (:mod:`._density`)."""
        return _density.density_new(self.space, self._history, n, self.rng, self._seen, avoid,
                                    proposal=self._good_densities())

    def _good_densities(self) -> _density.ParzenProposal:
        """The densities of the best candidates of the history as it is now, built once
        for the proposals and the filter of one ask."""
        if self._densities is None or self._densities[0] != len(self._history):
            self._densities = (len(self._history),
                               _density.good_densities(self.space, self._history, self._best))
        return self._densities[1]

    def _filtered(self, pool: list[dict], n: int) -> list[dict]:
        """The :attr:`density_filter` share of `pool` (at least `n`) likeliest under the
        best candidates' densities against the others' (:func:`._density.density_ratio`),
        likeliest first; `pool` as it is while no candidate counts as not good."""
        ratio = _density.density_ratio(self.space, self._history, pool, self._best,
                                       high=self._good_densities())
        if ratio is None:
            return pool
        order = sorted(range(len(pool)), key=lambda i: (-ratio[i], i))
        return [pool[i] for i in order[:max(n, int(len(pool) * self.density_filter))]]

    def _keep(self, chosen: list[dict]) -> list[dict]:
        """`chosen` (of a screening pool), remembered as asked."""
        for candidate in chosen:
            self._seen.add(candidate_key(candidate))
        return chosen

    def _screened(self, n: int, surrogate: Surrogate) -> list[dict]:
        """The `n` of the :meth:`_screening_pool` with the highest expected improvement."""
        pool = self._screening_pool(n)
        if not pool:
            return []
        if self.density_filter < 1.0:
            pool = self._filtered(pool, n)
        ranked = surrogate.rank(pool, best=self._best_score, n=n,
                                evaluated=[params for params, _ in self._history[-MAX_TRAINING:]],
                                evaluated_encoded=self._history_encoded()[-MAX_TRAINING:])
        return self._keep([pool[index] for index in ranked[:n]])


class Generational(Strategy):
    """Whole generations: breed ``population_size`` children, evaluate them all, select.

    Generation 0 is drawn at random; each later generation breeds children
    from tournament-selected parents (uniform crossover, typed mutation) and
    the best of parents and children survive (mu + lambda, elitist). The
    outcomes of a generation are taken in the order the candidates were
    asked, whatever the order they finish in, so the search is the same on
    every backend.

    Examples
    --------
    >>> import numpy as np
    >>> from dasktrain.space import Integer, SearchSpace
    >>> strategy = Generational(SearchSpace([{"n": Integer(1, 50)}]), np.random.default_rng(0),
    ...                         population_size=4, crossover_probability=0.5,
    ...                         mutation_probability=0.5, tournament_size=2, elitism=True)
    >>> first = strategy.ask(10)
    >>> len(first), strategy.ask(10)  # the generation is out: nothing until it is told
    (4, [])
    >>> done = [strategy.tell(Outcome(candidate_key(c), c, c["n"] / 50, "ok")) for c in first]
    >>> done, strategy.generation, len(strategy.ask(10))
    ([False, False, False, True], 1, 4)
    """

    batch = True
    #: Children are screened by a surrogate that knows the generation just closed: at equal
    #: budget that found better models than one lagging a generation behind, fitted while
    #: the generation ran (docs/benchmarks.md); its fit is paid between generations.
    surrogate_lag = 0.0

    def __init__(self, space, rng, **options):
        super().__init__(space, rng, **options)
        self._asked: list[str] = []  # keys of the generation being evaluated, in order
        self._told_now: dict[str, Outcome] = {}
        self._waiting: set[str] = set()  # keys of the generation not told yet

    def ask(self, n: int) -> list[dict]:
        if self._asked:
            return []
        wanted = min(n, self.population_size)
        if self.generation == 0 or not self.population:
            children = self._initial(wanted) if self.generation == 0 else self._random(wanted)
        else:
            children = self._children(wanted)
        self._asked = [candidate_key(child) for child in children]
        self._waiting = set(self._asked)
        return children

    def _children(self, n: int) -> list[dict]:
        """`n` new children of the population (subclasses breed otherwise)."""
        return self._bred(n)

    def _survivors(self, pool: list[Outcome]) -> list[Outcome]:
        """The next population, of parents and children (subclasses select otherwise)."""
        survivors = select_survivors([o.params for o in pool], [o.score for o in pool],
                                     self.population_size, elitism=self.elitism,
                                     tournsize=self.tournament_size, rng=self.rng)
        return [pool[index] for index in survivors]

    def _told(self, outcome: Outcome) -> bool:
        self._told_now[outcome.key] = outcome
        self._waiting.discard(outcome.key)
        if self._waiting:
            return False
        self._close()
        return True

    def flush(self) -> bool:
        if not self._asked:
            return False
        self._close()
        return True

    def _close(self) -> None:
        children = [self._told_now[key] for key in self._asked if key in self._told_now]
        for child in children:  # in the order asked, whatever the order they finished in
            self._record(child)
        pool = self.population + children
        if pool:
            self.population = self._survivors(pool)
        self._asked, self._told_now, self._waiting = [], {}, set()
        self.generation += 1

    def state(self) -> dict:
        if self._asked:
            raise RuntimeError("A generational strategy is saved between generations only.")
        return super().state()


class SteadyState(Strategy):
    """One child at a time: each finished candidate may replace the worst of the population.

    The first ``population_size`` candidates are drawn at random; after that,
    every ask breeds children from the population as it is then. A told
    candidate joins the population while it is not full, and then replaces
    its worst member if it scores better. A generation is counted every
    ``population_size`` outcomes. The result depends on the order in which
    outcomes arrive.

    Examples
    --------
    >>> import numpy as np
    >>> from dasktrain.space import Integer, SearchSpace
    >>> strategy = SteadyState(SearchSpace([{"n": Integer(1, 50)}]), np.random.default_rng(0),
    ...                        population_size=2, crossover_probability=0.5,
    ...                        mutation_probability=0.5, tournament_size=2, elitism=True)
    >>> a, b = strategy.ask(2)
    >>> strategy.tell(Outcome(candidate_key(a), a, 0.1, "ok"))
    False
    >>> strategy.tell(Outcome(candidate_key(b), b, 0.9, "ok"))
    True
    >>> len(strategy.ask(1)), strategy.generation
    (1, 1)
    """

    #: The surrogate ranks the half of each pool likeliest by TPE's density ratio: at
    #: budget 48, paired by task and seed with ranking the whole pool, better on 46 of 125
    #: runs and worse on 28, even at 96 (20 / 20), and the best mean rank of all methods at
    #: both budgets (docs/benchmarks.md). Generational was worse with it (19 / 26).
    density_filter = 0.5

    def __init__(self, space, rng, **options):
        super().__init__(space, rng, **options)
        self._n_asked = 0
        self._n_told = 0
        self._design: list[dict] = []  # the first population, drawn at once, asked in parts
        self._worst: list[tuple[float, int]] | None = None  # heap of (score, member index)

    def ask(self, n: int) -> list[dict]:
        out: list[dict] = []
        initial = max(0, self.population_size - self._n_asked)
        if initial:
            if not self._design:
                self._design = self._initial(initial)
            out.extend(self._design[:n])
            del self._design[:n]
        if len(out) < n and (self._n_asked + len(out) >= self.population_size
                             and len(self.population) >= 2):
            out.extend(self._children(n - len(out)))
        self._n_asked += len(out)
        return out

    def _children(self, n: int) -> list[dict]:
        """`n` new children of the population (subclasses breed otherwise)."""
        return self._bred(n)

    def _admit(self, outcome: Outcome) -> None:
        """Let `outcome` into the population: while it is not full, or in place of the
        worst member it beats (subclasses select otherwise)."""
        if len(self.population) < self.population_size:
            self.population.append(outcome)
            return
        if self._worst is None or len(self._worst) != len(self.population):
            self._worst = [(_fitness(member.score), index)
                           for index, member in enumerate(self.population)]
            heapq.heapify(self._worst)
        # The heap's root is the lowest score, the first such member on ties (as argmin):
        # each tell costs O(log population) instead of a pass over the population.
        worst = self._worst[0][1]
        current = self.population[worst].score
        if not math.isnan(outcome.score) and (math.isnan(current) or outcome.score > current):
            self.population[worst] = outcome
            heapq.heapreplace(self._worst, (_fitness(outcome.score), worst))

    def _told(self, outcome: Outcome) -> bool:
        self._n_told += 1
        self._record(outcome)
        self._admit(outcome)
        completed = self._n_told % self.population_size == 0
        if completed:
            self.generation += 1
        return completed

    def flush(self) -> bool:
        if self._n_told % self.population_size == 0:
            return False
        self.generation += 1
        return True

    def state(self) -> dict:
        return dict(super().state(), n_told=self._n_told)

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self._n_told = self._n_asked = state["n_told"]
        self._worst = None


#: Strategy name (the ``strategy`` parameter of GeneticSearchCV) -> class.
STRATEGIES: dict[str, type[Strategy]] = {"generational": Generational,
                                         "steady_state": SteadyState}
