"""Genetic operators of GeneticSearchCV: sampling, mutation, crossover, selection.

They run on the client and see candidates (dicts of parameter values) and
their scores (floats, higher is better, NaN for a failed candidate) only:
never estimators being fitted, futures or data. Every random choice comes from
the :class:`numpy.random.Generator` passed in, so a fit that owns one
generator seeded from its `random_state` is reproducible on every backend.

Note on DEAP: the classic implementations of these operators are DEAP's
(``tools.cxUniform``, ``tools.selTournament``, ``algorithms.varOr``,
``selMuPlusLambda``), but they draw from Python's global :mod:`random` module
and work on ``creator``-made individual classes. Reseeding a global generator
would make two concurrent fits interfere, and creating classes in
``deap.creator`` inside ``fit`` clashes between fits, so this module follows
the same algorithms with an explicit generator and plain dicts, and does not
use DEAP at all.

Examples
--------
>>> import numpy as np
>>> from dasktrain.space import Categorical, Continuous
>>> space = {"C": Continuous(0.1, 10.0, log=True), "kernel": Categorical(["rbf", "poly"])}
>>> rng = np.random.default_rng(0)
>>> parents = [random_candidate(space, rng) for _ in range(4)]
>>> children = breed(parents, [0.5, 0.9, 0.7, float("nan")], space, rng, n_children=4,
...                  crossover_probability=0.5, mutation_probability=0.4, tournsize=2)
>>> len(children), all(space["C"].contains(child["C"]) for child in children)
(4, True)
"""

from __future__ import annotations

import hashlib
import math
import numbers

import numpy as np

from ..space import SearchSpace, value_key
from ..utils._gc import with_gc_paused

__all__ = ["as_branches", "breed", "breeder", "candidate_key", "crossover", "mutate",
           "random_candidate", "select_survivors", "tournament"]


def candidate_key(candidate: dict) -> str:
    """A stable content hash of a candidate, used to find equal candidates.

    Names are sorted; values are compared by type and content (``1``, ``1.0``
    and ``True`` differ; numpy scalars equal their Python values; estimators
    compare by class and parameters).

    Examples
    --------
    >>> candidate_key({"a": 1, "b": "x"}) == candidate_key({"b": "x", "a": 1})
    True
    >>> candidate_key({"a": 1}) == candidate_key({"a": 1.0})
    False
    """
    text = "\n".join(f"{name}={value_key(candidate[name])}" for name in sorted(candidate))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator. Got {rng!r} instead.")
    return rng


def _check_probability(name: str, value) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0.0 <= float(value) <= 1.0):
        raise ValueError(f"The '{name}' parameter must be a float in the range [0, 1]. "
                         f"Got {value!r} instead.")
    return float(value)


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"The '{name}' parameter must be an int in the range "
                         f"[{minimum}, inf). Got {value!r} instead.")
    return int(value)


def _fitness(score) -> float:
    """A score as a sortable number: NaN (failed) below every number, -inf included."""
    score = float(score)
    return -math.inf if math.isnan(score) else score


def as_branches(space) -> SearchSpace:
    """`space` as a :class:`~dasktrain.space.SearchSpace` (a dict is one branch)."""
    return space if isinstance(space, SearchSpace) else SearchSpace([space])


def random_candidate(space, rng: np.random.Generator) -> dict:
    """A candidate with every parameter sampled from its dimension, in the space's order.

    With a :class:`~dasktrain.space.SearchSpace` of several branches, the
    branch is drawn first, uniformly.

    Examples
    --------
    >>> import numpy as np
    >>> from dasktrain.space import Integer
    >>> random_candidate({"n": Integer(1, 3)}, np.random.default_rng(0))
    {'n': 3}
    """
    _check_rng(rng)
    return as_branches(space).sample(rng)


def _branch_of(space: SearchSpace, candidate: dict) -> int | None:
    try:
        return space.branch_of(candidate)
    except ValueError:
        return None


def mutate(candidate: dict, space, rng: np.random.Generator, *,
           indpb: float | None = None) -> dict:
    """A mutated copy of `candidate`.

    Each parameter of the candidate's branch mutates with probability `indpb`
    (default ``1 / len(branch)``); when none did, one parameter that can change
    (its dimension has more than one value) is chosen and mutated, so the
    result differs from `candidate` whenever any parameter can change.
    Parameters of `candidate` that are not in the branch are kept.

    With a :class:`~dasktrain.space.SearchSpace` of several branches, the
    branch itself is one more gene: with probability ``1 / (len(branch) + 1)``
    the child moves to another branch, drawn uniformly, whose parameters are
    drawn afresh.

    Examples
    --------
    >>> import numpy as np
    >>> from dasktrain.space import Categorical
    >>> mutate({"kernel": "rbf"}, {"kernel": Categorical(["rbf", "poly"])},
    ...        np.random.default_rng(0))
    {'kernel': 'poly'}
    """
    _check_rng(rng)
    branches = as_branches(space)
    return _mutate_in(candidate, _branch_of(branches, candidate), branches, rng, indpb)


def _mutate_in(candidate: dict, index: int | None, branches: SearchSpace,
               rng: np.random.Generator, indpb: float | None) -> dict:
    """:func:`mutate` of a candidate whose branch `index` is known."""
    if len(branches) > 1:
        if index is None or rng.random() < 1.0 / (len(branches.branches[index]) + 1):
            others = [b for b in range(len(branches)) if b != index]
            return branches.sample(rng, branch=others[int(rng.integers(len(others)))])
    if index is None:
        space = {name: dim for name, dim in branches.branches[0].items() if name in candidate}
    else:
        space = branches.branches[index]
    if indpb is None:
        indpb = 1.0 / max(len(space), 1)
    else:
        indpb = _check_probability("indpb", indpb)
    child = dict(candidate)
    changed = False
    for name, dimension in space.items():
        if rng.random() < indpb:
            child[name] = dimension.mutate(candidate[name], rng)
            changed = changed or value_key(child[name]) != value_key(candidate[name])
    if changed:
        return child
    mutable = [name for name, dimension in space.items() if not dimension.constant]
    attempts = 0
    while not changed and mutable and attempts < 100:
        name = mutable[int(rng.integers(len(mutable)))]
        child[name] = space[name].mutate(candidate[name], rng)
        changed = value_key(child[name]) != value_key(candidate[name])
        attempts += 1
    return child


def crossover(a: dict, b: dict, rng: np.random.Generator, *, indpb: float = 0.5,
              space=None) -> tuple[dict, dict]:
    """Uniform crossover: two children that swap each parameter with probability `indpb`.

    Parents of one branch swap any parameter. Given the `space`, parents of
    different branches keep their branches and swap only the parameters both
    have whose values the other's branch also allows (so a child never mixes
    a step from one branch with the nested parameters of another); without
    it, parents must have the same parameters.

    Examples
    --------
    >>> import numpy as np
    >>> crossover({"x": 1, "y": 2}, {"x": 3, "y": 4}, np.random.default_rng(1), indpb=1.0)
    ({'x': 3, 'y': 4}, {'x': 1, 'y': 2})
    """
    _check_rng(rng)
    indpb = _check_probability("indpb", indpb)
    if space is None:
        return _crossover_in(a, b, None, None, None, rng, indpb)
    branches = as_branches(space)
    return _crossover_in(a, b, _branch_of(branches, a), _branch_of(branches, b), branches, rng,
                         indpb)


def _crossover_in(a: dict, b: dict, index_a: int | None, index_b: int | None,
                  branches: SearchSpace | None, rng: np.random.Generator,
                  indpb: float) -> tuple[dict, dict]:
    """:func:`crossover` of candidates whose branches `index_a`, `index_b` are known."""
    first, second = dict(a), dict(b)
    if branches is not None:
        if index_a is not None and index_b is not None and index_a != index_b:
            dims_a, dims_b = branches.branches[index_a], branches.branches[index_b]
            for name in a:
                if name in b and rng.random() < indpb:
                    if dims_a[name].contains(b[name]) and dims_b[name].contains(a[name]):
                        first[name], second[name] = b[name], a[name]
            return first, second
    if set(a) != set(b):
        raise ValueError("crossover needs two candidates with the same parameters. Got "
                         f"{sorted(a)} and {sorted(b)}.")
    for name in a:
        if rng.random() < indpb:
            first[name], second[name] = b[name], a[name]
    return first, second


def _tournament_winner(entrants, scores) -> int:
    """The entrant (an index into `scores`) with the best score: a NaN loses to any
    number, even -inf; among equal scores the first drawn wins."""
    entrants = entrants.tolist() if isinstance(entrants, np.ndarray) else list(entrants)
    winner = entrants[0]
    best = float(scores[winner])
    for index in entrants[1:]:
        score = float(scores[index])
        if score > best or (best != best and score == score):  # x != x: x is NaN
            winner, best = index, score
    return int(winner)


def tournament(scores, k: int, tournsize: int, rng: np.random.Generator) -> list[int]:
    """`k` tournament winners: the best of `tournsize` indices drawn at random, each time.

    Entrants are drawn with replacement (as DEAP's ``selTournament``); a NaN
    score loses to any number; among equal scores the first drawn wins.

    Examples
    --------
    >>> import numpy as np
    >>> tournament([0.1, 0.9, float("nan")], 4, 3, np.random.default_rng(0))
    [1, 0, 0, 1]
    """
    _check_rng(rng)
    k = _check_count("k", k, 0)
    tournsize = _check_count("tournsize", tournsize, 1)
    if k and len(scores) == 0:
        raise ValueError("tournament needs at least one score to select from.")
    winners = []
    for _ in range(k):
        entrants = rng.integers(len(scores), size=tournsize)
        winners.append(_tournament_winner(entrants, scores))
    return winners


@with_gc_paused
def breed(parents: list[dict], scores, space, rng: np.random.Generator,
          *, n_children: int, crossover_probability: float, mutation_probability: float,
          tournsize: int) -> list[dict]:
    """`n_children` offspring of `parents`, as DEAP's ``varOr`` (mu + lambda).

    For each child: with probability `crossover_probability`, the first child
    of a uniform :func:`crossover` of two tournament-selected parents; else,
    with probability `mutation_probability`, a mutated copy of one (:func:`mutate`);
    else a copy of one (reproduction; the caller removes duplicates).

    Raises
    ------
    ValueError
        When ``crossover_probability + mutation_probability > 1``, or a
        probability or count is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from dasktrain.space import Integer
    >>> breed([{"n": 1}, {"n": 9}], [0.2, 0.8], {"n": Integer(1, 10)},
    ...       np.random.default_rng(0), n_children=3, crossover_probability=0.0,
    ...       mutation_probability=0.0, tournsize=2)
    [{'n': 9}, {'n': 1}, {'n': 9}]
    """
    make = breeder(parents, scores, space, rng, crossover_probability=crossover_probability,
                   mutation_probability=mutation_probability, tournsize=tournsize)
    return [make() for _ in range(_check_count("n_children", n_children, 0))]


def breeder(parents: list[dict], scores, space, rng: np.random.Generator, *,
            crossover_probability: float, mutation_probability: float, tournsize: int):
    """A callable that breeds one child of `parents` per call, as :func:`breed` does.

    The arguments are checked, and each parent's branch found, once: calling
    it `n` times draws the same children as ``breed(..., n_children=n)``.

    Examples
    --------
    >>> import numpy as np
    >>> from dasktrain.space import Integer
    >>> make = breeder([{"n": 1}, {"n": 9}], [0.2, 0.8], {"n": Integer(1, 10)},
    ...                np.random.default_rng(0), crossover_probability=0.0,
    ...                mutation_probability=0.0, tournsize=2)
    >>> [make() for _ in range(3)]
    [{'n': 9}, {'n': 1}, {'n': 9}]
    """
    _check_rng(rng)
    cxpb = _check_probability("crossover_probability", crossover_probability)
    mutpb = _check_probability("mutation_probability", mutation_probability)
    if cxpb + mutpb > 1.0 + 1e-12:
        raise ValueError(
            "The 'crossover_probability' and 'mutation_probability' parameters must sum to at "
            f"most 1. Got {crossover_probability!r} + {mutation_probability!r} = "
            f"{cxpb + mutpb!r} instead."
        )
    tournsize = _check_count("tournsize", tournsize, 1)
    if len(parents) != len(scores):
        raise ValueError(f"breed needs one score per parent. Got {len(parents)} parents and "
                         f"{len(scores)} scores.")
    return _Breeder(parents, scores, as_branches(space), rng, cxpb, mutpb, tournsize)


class _Breeder:
    """One child per call (see :func:`breeder`), its arguments checked already."""

    def __init__(self, parents, scores, branches, rng, cxpb, mutpb, tournsize):
        self.parents = parents
        self.fitness = [float(score) for score in scores]
        self.branches = branches
        self._index: dict[int, int | None] = {}  # parent -> its branch, found when first drawn
        self.rng, self.cxpb, self.mutpb, self.tournsize = rng, cxpb, mutpb, tournsize

    def _branch(self, parent: int) -> int:
        # Found lazily: a strategy breeds a few children per call from a population of
        # hundreds, so finding every parent's branch up front would cost more than breeding.
        if parent not in self._index:
            self._index[parent] = _branch_of(self.branches, self.parents[parent])
        return self._index[parent]

    def _winners(self, k: int) -> list[int]:
        # the entrants of the k tournaments in one draw: bounded integers below 2**32 take
        # one 32-bit draw each whether drawn together or apart (the same stream as k draws
        # of tournsize; tests/test_genetic.py checks), and numpy's cost is per call
        size = self.tournsize
        entrants = self.rng.integers(len(self.fitness), size=k * size).tolist()
        return [_tournament_winner(entrants[start:start + size], self.fitness)
                for start in range(0, k * size, size)]

    def __call__(self) -> dict:
        if not self.parents:
            raise ValueError("breed needs at least one parent.")
        parents, rng = self.parents, self.rng
        draw = rng.random()
        if draw < self.cxpb:
            first, second = self._winners(2)
            child, _ = _crossover_in(parents[first], parents[second], self._branch(first),
                                     self._branch(second), self.branches, rng, 0.5)
        elif draw < self.cxpb + self.mutpb:
            (chosen,) = self._winners(1)
            child = _mutate_in(parents[chosen], self._branch(chosen), self.branches, rng, None)
        else:
            (chosen,) = self._winners(1)
            child = dict(parents[chosen])
        return child


def _ranking(scores) -> list[int]:
    """Indices from best to worst score; NaN last; ties keep the earlier index first."""
    return sorted(range(len(scores)), key=lambda i: (math.isnan(float(scores[i])),
                                                     -_fitness(scores[i]), i))


def select_survivors(candidates: list[dict], scores, mu: int, *, elitism: bool | int = True,
                     tournsize: int, rng: np.random.Generator) -> list[int]:
    """Indices of the `mu` candidates (parents and children together) that survive.

    With `elitism`, the best ``elitism`` candidates (``True`` means 1) always
    survive, distinct ones first; the other places go to tournament winners
    drawn without replacement, preferring candidates that differ from those
    already chosen. Without elitism every place is a tournament. When there are
    at most `mu` candidates, all survive.

    Returns
    -------
    indices : list of int
        Into `candidates`: the elite first (best first), then tournament winners.

    Examples
    --------
    >>> import numpy as np
    >>> candidates = [{"x": i} for i in range(5)]
    >>> survivors = select_survivors(candidates, [0.1, 0.5, 0.9, 0.3, 0.2], 3,
    ...                              tournsize=2, rng=np.random.default_rng(0))
    >>> survivors[0], len(set(survivors))
    (2, 3)
    """
    _check_rng(rng)
    mu = _check_count("mu", mu, 0)
    tournsize = _check_count("tournsize", tournsize, 1)
    if isinstance(elitism, (bool, np.bool_)):
        n_elite = 1 if elitism else 0
    else:
        n_elite = _check_count("elitism", elitism, 0)
    if len(candidates) != len(scores):
        raise ValueError(f"select_survivors needs one score per candidate. Got "
                         f"{len(candidates)} candidates and {len(scores)} scores.")
    if len(candidates) <= mu:
        return _ranking(scores)

    keys = [candidate_key(candidate) for candidate in candidates]
    chosen: list[int] = []
    chosen_keys: set[str] = set()
    ranking = _ranking(scores)
    # Elite: the best distinct candidates; duplicates only if there are not enough distinct ones.
    for index in ranking:
        if len(chosen) >= min(n_elite, mu):
            break
        if keys[index] not in chosen_keys:
            chosen.append(index)
            chosen_keys.add(keys[index])
    for index in ranking:
        if len(chosen) >= min(n_elite, mu):
            break
        if index not in chosen:
            chosen.append(index)
    remaining = [i for i in range(len(candidates)) if i not in chosen]
    while len(chosen) < mu:
        distinct = [i for i in remaining if keys[i] not in chosen_keys]
        pool = distinct or remaining
        size = min(tournsize, len(pool))
        entrants = [pool[int(i)] for i in rng.choice(len(pool), size=size, replace=False)]
        winner = _tournament_winner(entrants, scores)
        chosen.append(winner)
        chosen_keys.add(keys[winner])
        remaining.remove(winner)
    return chosen
