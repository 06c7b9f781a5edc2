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
:data:`STRATEGIES`.
"""

from __future__ import annotations

import abc
import math

import numpy as np

from ..space import SearchSpace
from ._genetic import breed, candidate_key, select_survivors
from ._records import Outcome

__all__ = ["STRATEGIES", "Generational", "SteadyState", "Strategy"]

#: Tries to breed a child that is new before a fresh random candidate is drawn instead.
BREED_TRIES = 10


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

    def __init__(self, space: SearchSpace, rng: np.random.Generator, *, population_size: int,
                 crossover_probability: float, mutation_probability: float,
                 tournament_size: int, elitism: bool):
        self.space = space
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

    # ------------------------------------------------------------------ the interface

    @abc.abstractmethod
    def ask(self, n: int) -> list[dict]:
        """Up to `n` new candidates, each distinct from every candidate asked before.

        Fewer (none) while the strategy waits for outcomes, or when the space
        has no new candidate left.
        """

    @abc.abstractmethod
    def tell(self, outcome: Outcome) -> bool:
        """Take the outcome of a candidate asked for; True when it completes a generation."""

    def flush(self) -> bool:
        """Close a generation cut short (the search is ending); True when there was one."""
        return False

    # ------------------------------------------------------------------ state

    def state(self) -> dict:
        """Everything needed to continue later (a checkpoint): plain picklable values."""
        return {"rng": self.rng.bit_generator.state, "generation": self.generation,
                "population": list(self.population), "n_duplicates": self.n_duplicates,
                "seen": set(self._seen)}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.generation = state["generation"]
        self.population = list(state["population"])
        self.n_duplicates = state["n_duplicates"]
        self._seen = set(state["seen"])

    # ------------------------------------------------------------------ shared rules

    @property
    def exhausted(self) -> bool:
        """Whether every candidate of a finite space has been asked for."""
        return len(self._seen) >= self.space.size

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

    def _bred(self, n: int) -> list[dict]:
        """`n` new children of the population: a child equal to a candidate asked before
        is bred again (:data:`BREED_TRIES` times), then replaced by a random new one."""
        parents = [outcome.params for outcome in self.population]
        scores = [outcome.score for outcome in self.population]
        out: list[dict] = []
        while len(out) < n and not self.exhausted:
            for _ in range(BREED_TRIES):
                (child,) = breed(parents, scores, self.space, self.rng, n_children=1,
                                 crossover_probability=self.crossover_probability,
                                 mutation_probability=self.mutation_probability,
                                 tournsize=self.tournament_size)
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

    def __init__(self, space, rng, **options):
        super().__init__(space, rng, **options)
        self._asked: list[str] = []  # keys of the generation being evaluated, in order
        self._told: dict[str, Outcome] = {}

    def ask(self, n: int) -> list[dict]:
        if self._asked:
            return []
        wanted = min(n, self.population_size)
        if self.generation == 0 or not self.population:
            children = self._random(wanted)
        else:
            children = self._bred(wanted)
        self._asked = [candidate_key(child) for child in children]
        return children

    def tell(self, outcome: Outcome) -> bool:
        self._told[outcome.key] = outcome
        if any(key not in self._told for key in self._asked):
            return False
        self._close()
        return True

    def flush(self) -> bool:
        if not self._asked:
            return False
        self._close()
        return True

    def _close(self) -> None:
        children = [self._told[key] for key in self._asked if key in self._told]
        pool = self.population + children
        if pool:
            survivors = select_survivors([o.params for o in pool], [o.score for o in pool],
                                         self.population_size, elitism=self.elitism,
                                         tournsize=self.tournament_size, rng=self.rng)
            self.population = [pool[index] for index in survivors]
        self._asked, self._told = [], {}
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

    def __init__(self, space, rng, **options):
        super().__init__(space, rng, **options)
        self._n_asked = 0
        self._n_told = 0

    def ask(self, n: int) -> list[dict]:
        out: list[dict] = []
        initial = max(0, self.population_size - self._n_asked)
        if initial:
            out.extend(self._random(min(n, initial)))
        if len(out) < n and (self._n_asked + len(out) >= self.population_size
                             and len(self.population) >= 2):
            out.extend(self._bred(n - len(out)))
        self._n_asked += len(out)
        return out

    def tell(self, outcome: Outcome) -> bool:
        self._n_told += 1
        if len(self.population) < self.population_size:
            self.population.append(outcome)
        else:
            ranked = [-math.inf if math.isnan(o.score) else o.score for o in self.population]
            worst = int(np.argmin(ranked))
            current = self.population[worst].score
            if not math.isnan(outcome.score) and (math.isnan(current)
                                                  or outcome.score > current):
                self.population[worst] = outcome
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


#: Strategy name (the ``strategy`` parameter of GeneticSearchCV) -> class.
STRATEGIES: dict[str, type[Strategy]] = {"generational": Generational,
                                         "steady_state": SteadyState}
