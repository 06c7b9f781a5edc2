"""Candidates drawn near the best ones evaluated so far, one parameter at a time.

A second source of children for screening (next to those bred by crossover
and mutation, and random ones): as a tree-structured Parzen estimator (TPE)
proposes, each candidate is drawn from densities built on the best fraction
of the candidates evaluated. Its branch is drawn from the good candidates'
branches (with a prior over all branches); each numeric parameter from a
mixture of one truncated gaussian per good value, on the parameter's unit
scale (:meth:`~dasktrain.space.Dimension.to_unit`), each as wide as the gap
to its neighbours, and a uniform prior; each categorical from the good
candidates' counts smoothed by the dimension's weights. Crossover only
recombines the values the parents have; these densities put new values where
the good candidates are, which lets a search leave a plateau (most of a
space scoring the same) as soon as a few candidates score above it.

The densities are independent per parameter and draw only from the
strategy's generator, so what they propose is the same on every backend.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr

from ..space import Categorical, Dimension, SearchSpace
from ._genetic import candidate_key

__all__ = ["DENSITY_SHARE", "GAMMA", "MAX_GOOD", "PRIOR_WEIGHT", "BestSoFar",
           "ParzenProposal", "density_new", "density_ratio", "good_densities"]

#: Candidates drawn from the densities per child bred, in a screening pool.
DENSITY_SHARE = 2.0

#: The fraction of the candidates evaluated (by score, at least :data:`MIN_GOOD`, at most
#: :data:`MAX_GOOD`) whose densities are sampled.
GAMMA = 0.15
#: Good candidates at the least, when as many have finite scores.
MIN_GOOD = 2
#: Good candidates at the most (as TPE caps its own): the densities then stay focused on
#: the very best of a long search, and building them costs the same however long it ran.
#: No search of at most 213 evaluations reaches it.
MAX_GOOD = 32
#: Weight of the prior (uniform on a parameter's range, weighted on a categorical's
#: choices) against a weight of 1 for each good candidate.
PRIOR_WEIGHT = 1.0
#: Draws of a truncated gaussian before its value is clipped to the unit interval.
_TRUNCATION_TRIES = 20
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class ParzenProposal:
    """Independent per-parameter densities of the best candidates evaluated.

    Parameters
    ----------
    space : SearchSpace
    candidates : list of dict
        Candidates evaluated, in a deterministic order.
    scores : sequence of float or None
        Their scores, higher is better; NaN (a failed fit) is never good.
        Not read when `best` is given.
    gamma : float, default=GAMMA
        The fraction of `candidates` counted as good (at least
        :data:`MIN_GOOD`, at most :data:`MAX_GOOD` and those with a finite
        score).
    best : list of int or None, default=None
        Indices of the best candidates, best first (:meth:`BestSoFar.ordered`),
        in place of a pass over `scores`.
    prior_weight : float, default=PRIOR_WEIGHT

    Examples
    --------
    >>> from dasktrain.space import Continuous, SearchSpace
    >>> space = SearchSpace([{"x": Continuous(0.0, 1.0)}])
    >>> seen = [{"x": x} for x in np.linspace(0, 1, 21)]
    >>> proposal = ParzenProposal(space, seen, [-abs(c["x"] - 0.8) for c in seen])
    >>> rng = np.random.default_rng(0)
    >>> draws = [proposal.sample(rng)["x"] for _ in range(200)]
    >>> bool(np.median(draws) > 0.6), all(0.0 <= x <= 1.0 for x in draws)
    (True, True)
    """

    def __init__(self, space: SearchSpace, candidates: list[dict], scores, *,
                 gamma: float = GAMMA, prior_weight: float = PRIOR_WEIGHT,
                 best: list[int] | None = None):
        self.space = space
        self.prior_weight = float(prior_weight)
        wanted = _n_good(len(candidates), gamma)
        if best is None:
            best = BestSoFar(scores).ordered()
        order = best[:wanted]
        self.good: list[tuple[int, dict]] = []  # (branch, candidate)
        for index in order:
            try:
                branch = space.branch_of(candidates[index])
            except ValueError:  # not a candidate of this space (as given in warm starts)
                continue
            self.good.append((branch, candidates[index]))
        n_branches = len(space.branches)
        weights = np.full(n_branches, self.prior_weight / n_branches)
        for branch, _ in self.good:
            weights[branch] += 1.0
        self._branch_p = _cdf(weights) if weights.sum() > 0 else None
        self._branch_weights = weights / weights.sum() if weights.sum() > 0 else None
        self._kernels: dict[tuple[int, str], tuple] = {}

    def _kernel(self, branch: int, name: str, dim: Dimension) -> tuple:
        """The mixture of a parameter in a branch: ('cat', cdf) or ('num', mus, sigmas, cdf)."""
        key = (branch, name)
        if key in self._kernels:
            return self._kernels[key]
        values = [candidate[name] for b, candidate in self.good if b == branch]
        if isinstance(dim, Categorical):
            prior = (np.ones(len(dim)) if dim.weights is None else np.asarray(dim.weights))
            counts = prior / prior.sum() * self.prior_weight
            for value in values:
                counts[dim.index(value)] += 1.0
            kernel = ("cat", _cdf(counts))
        else:
            mus = np.array([dim.to_unit(value) for value in values], dtype=float)
            # each kernel as wide as its larger gap to a neighbour (the range's ends
            # included), no narrower than the range over the number of kernels + 1
            order = np.argsort(mus, kind="stable")
            points = np.concatenate([[0.0], mus[order], [1.0]])
            gaps = np.diff(points)
            widths = np.maximum(gaps[:-1], gaps[1:]) if len(mus) else np.empty(0)
            sigmas = np.empty(len(mus))
            sigmas[order] = np.clip(widths, 1.0 / min(100.0, len(mus) + 2.0), 1.0)
            weights = np.append(np.ones(len(mus)), self.prior_weight)
            kernel = ("num", mus, sigmas, _cdf(weights))
        self._kernels[key] = kernel
        return kernel

    def sample(self, rng: np.random.Generator) -> dict:
        """One candidate of the space, drawn from the densities with `rng`."""
        n_branches = len(self.space.branches)
        if n_branches == 1 or self._branch_p is None:
            branch = 0 if n_branches == 1 else int(rng.integers(n_branches))
        else:
            branch = _pick(self._branch_p, rng)
        candidate = {}
        for name, dim in self.space.branches[branch].items():
            candidate[name] = self._draw(branch, name, dim, rng)
        return candidate

    def log_density(self, candidates: list[dict], branches: list[int]) -> np.ndarray:
        """The log of the densities at each of `candidates` (of the branches given).

        The product of the branch's probability and of each parameter's: a
        categorical's smoothed count, a numeric's mixture on its unit scale of
        the good values' gaussians, truncated to [0, 1], and the uniform prior.
        Constant parameters count 1. Computed one parameter at a time over all
        the candidates of a branch.

        Examples
        --------
        >>> from dasktrain.space import Categorical, SearchSpace
        >>> space = SearchSpace([{"c": Categorical(["a", "b"])}])
        >>> seen = [{"c": "a"}, {"c": "a"}, {"c": "b"}, {"c": "b"}]
        >>> proposal = ParzenProposal(space, seen, [1.0, 0.9, 0.2, 0.1])  # good: both "a"
        >>> np.exp(proposal.log_density([{"c": "a"}, {"c": "b"}], [0, 0])).round(3)
        array([0.833, 0.167])
        """
        return _log_densities((self,), self.space, candidates, branches)[0]

    def _log_at(self, branch: int, name: str, dim: Dimension, positions: np.ndarray):
        """The log density of a parameter at `positions` (:func:`_positions`)."""
        kernel = self._kernel(branch, name, dim)
        cdf = np.asarray(kernel[1] if kernel[0] == "cat" else kernel[3])
        weights = np.diff(cdf, prepend=0.0)
        if kernel[0] == "cat":
            with np.errstate(divide="ignore"):  # a choice of weight 0 (no prior): -inf
                return np.log(weights[positions])
        _, mus, sigmas, _ = kernel
        if not len(mus):
            return np.zeros(len(positions))  # the prior alone: uniform on [0, 1]
        z = (positions[:, None] - mus[None, :]) / sigmas[None, :]
        # each gaussian's mass on [0, 1], which its truncated density is divided by
        mass = ndtr((1.0 - mus) / sigmas) - ndtr(-mus / sigmas)
        log_parts = np.empty((len(positions), len(mus) + 1))
        log_parts[:, :-1] = (-0.5 * z ** 2 + (np.log(weights[:-1]) - _LOG_SQRT_2PI
                                              - np.log(sigmas) - np.log(mass)))
        log_parts[:, -1] = math.log(weights[-1]) if weights[-1] > 0 else -math.inf
        peak = log_parts.max(axis=1)
        return peak + np.log(np.exp(log_parts - peak[:, None]).sum(axis=1))

    def _draw(self, branch: int, name: str, dim: Dimension, rng: np.random.Generator):
        if dim.constant:
            return dim.sample(rng)
        kernel = self._kernel(branch, name, dim)
        if kernel[0] == "cat":
            return dim.choices[_pick(kernel[1], rng)]
        _, mus, sigmas, cdf = kernel
        component = _pick(cdf, rng)
        if component == len(mus):  # the prior: as the dimension samples
            return dim.sample(rng)
        for _ in range(_TRUNCATION_TRIES):
            u = mus[component] + sigmas[component] * rng.standard_normal()
            if 0.0 <= u <= 1.0:
                break
        else:
            u = min(max(u, 0.0), 1.0)
        try:
            return dim.from_unit(u)
        except TypeError:  # a distribution without quantiles: drawn at random
            return dim.sample(rng)


def _positions(dim: Dimension, values: list) -> np.ndarray:
    """Where `values` of `dim` are for the densities: a categorical's choice indices, a
    numeric's unit positions (:meth:`~dasktrain.space.Dimension.to_unit`)."""
    if isinstance(dim, Categorical):
        return np.array([dim.index(value) for value in values], dtype=int)
    return np.array([dim.to_unit(value) for value in values], dtype=float)


def _log_densities(proposals, space: SearchSpace, candidates: list[dict],
                   branches: list[int]) -> list[np.ndarray]:
    """:meth:`ParzenProposal.log_density` of each of `proposals` (of the same space) at
    `candidates`, each parameter's positions found once for all of them."""
    out = [np.zeros(len(candidates)) for _ in proposals]
    branches = np.asarray(branches, dtype=int)
    for branch in np.unique(branches):
        rows = np.flatnonzero(branches == branch)
        for proposal, total in zip(proposals, out):
            if len(space.branches) > 1 and proposal._branch_weights is not None:
                total[rows] += math.log(proposal._branch_weights[branch])
        for name, dim in space.branches[branch].items():
            if dim.constant:
                continue
            positions = _positions(dim, [candidates[row][name] for row in rows])
            for proposal, total in zip(proposals, out):
                total[rows] += proposal._log_at(branch, name, dim, positions)
    return out


def _n_good(n_candidates: int, gamma: float) -> int:
    """How many of `n_candidates` count as good: `gamma` of them, at least
    :data:`MIN_GOOD`, at most :data:`MAX_GOOD`."""
    return max(MIN_GOOD, min(MAX_GOOD, math.ceil(gamma * n_candidates)))


def _cdf(weights: np.ndarray) -> list[float]:
    """The cumulative distribution of `weights`, ending at exactly 1, as a list: bisecting
    a list of floats finds what ``searchsorted(side="right")`` finds, at a fraction of
    its cost per call."""
    cdf = np.cumsum(weights, dtype=float)
    return (cdf / cdf[-1]).tolist()


def _pick(cdf, rng: np.random.Generator) -> int:
    """An index drawn with the probabilities of `cdf` (a list, see :func:`_cdf`): what
    ``rng.choice(len(cdf), p=p)`` draws (one uniform number, the same index), without
    checking `p` on every draw."""
    return bisect.bisect_right(cdf, rng.random())


class BestSoFar:
    """The best :data:`MAX_GOOD` of the scores added so far, kept as they come.

    What a stable sort of the finite scores (higher first, the earliest among
    equals) would put first, at O(log MAX_GOOD) per score added.

    Examples
    --------
    >>> best = BestSoFar()
    >>> for index, score in enumerate([0.2, float("nan"), 0.9, 0.2, 0.5]):
    ...     best.add(index, score)
    >>> best.ordered()
    [2, 4, 0, 3]
    """

    def __init__(self, scores=()):
        self._heap: list[tuple[float, int]] = []  # (score, -index): the root goes first
        for index, score in enumerate(scores):
            self.add(index, score)

    def add(self, index: int, score: float) -> None:
        if not math.isfinite(score):  # a failed fit (NaN, or error_score=-inf) is never good
            return
        item = (float(score), -index)
        if len(self._heap) < MAX_GOOD:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def ordered(self) -> list[int]:
        """The indices kept, best score first, the earliest among equals."""
        return [-negated for _, negated in sorted(self._heap, key=lambda i: (-i[0], -i[1]))]


class _Candidates(Sequence):
    """The candidates of (candidate, score) pairs, without copying them."""

    def __init__(self, history):
        self._history = history

    def __len__(self):
        return len(self._history)

    def __getitem__(self, index):
        return self._history[index][0]


def density_new(space: SearchSpace, history: list[tuple[dict, float]], n: int,
                rng: np.random.Generator, seen: set, avoid: set,
                best: BestSoFar | None = None,
                proposal: ParzenProposal | None = None) -> list[dict]:
    """Up to `n` candidates from the densities of the best of `history`, each new.

    `history` holds (candidate, score) pairs in a deterministic order (`best`,
    when given, has been told every one of them, and spares a pass over a long
    history). A candidate whose key is in `seen` (asked for) or `avoid`
    (proposed already) is drawn again, ``20 * n`` draws at the most; the keys
    of those returned are added to `avoid`. `proposal`, when given, is
    :func:`good_densities` of `history` (built once for several uses).

    Examples
    --------
    >>> from dasktrain.space import Integer, SearchSpace
    >>> space = SearchSpace([{"k": Integer(1, 30)}])
    >>> history = [({"k": k}, -abs(k - 20)) for k in range(1, 31, 3)]
    >>> out = density_new(space, history, 5, np.random.default_rng(0), set(), set())
    >>> len(out), len({c["k"] for c in out})
    (5, 5)
    """
    if n <= 0 or not history:
        return []
    if proposal is None:
        proposal = good_densities(space, history, best)
    if not proposal.good:
        return []
    out: list[dict] = []
    for _ in range(20 * n):
        if len(out) == n:
            break
        candidate = proposal.sample(rng)
        key = candidate_key(candidate)
        if key not in seen and key not in avoid:
            avoid.add(key)
            out.append(candidate)
    return out


def good_densities(space: SearchSpace, history: list[tuple[dict, float]],
                   best: BestSoFar | None = None) -> ParzenProposal:
    """:class:`ParzenProposal` of the best of `history` (`best`, when given, has been
    told all of it and spares a pass over it)."""
    if best is None:
        return ParzenProposal(space, _Candidates(history), [score for _, score in history])
    return ParzenProposal(space, _Candidates(history), None, best=best.ordered())


def density_ratio(space: SearchSpace, history: list[tuple[dict, float]],
                  candidates: list[dict], best: BestSoFar,
                  high: ParzenProposal | None = None) -> np.ndarray | None:
    """How much likelier each of `candidates` is under the good candidates' densities
    than under the others': log l(x) - log g(x), the ratio TPE ranks by.

    l is :class:`ParzenProposal` of the best of `history` (`best`, which has
    been told all of it); g the same densities of the :data:`MAX_GOOD` most
    recent other candidates with a finite score, so that its cost does not
    grow with the history. None when there are no such others. `high`, when
    given, is l (:func:`good_densities` of `history`).

    Examples
    --------
    >>> from dasktrain.space import Integer, SearchSpace
    >>> space = SearchSpace([{"k": Integer(1, 30)}])
    >>> history = [({"k": k}, -abs(k - 20)) for k in range(1, 31, 3)]
    >>> best = BestSoFar(score for _, score in history)
    >>> ratio = density_ratio(space, history, [{"k": 20}, {"k": 2}], best)
    >>> bool(ratio[0] > ratio[1])
    True
    """
    ordered = best.ordered()
    good = set(ordered[:_n_good(len(history), GAMMA)])
    others: list[int] = []
    for index in range(len(history) - 1, -1, -1):
        if len(others) == MAX_GOOD:
            break
        if index not in good and math.isfinite(history[index][1]):
            others.append(index)
    if not others:
        return None
    pool = _Candidates(history)
    branches = ([0] * len(candidates) if len(space.branches) == 1
                else [space.branch_of(candidate) for candidate in candidates])
    if high is None:
        high = ParzenProposal(space, pool, None, best=ordered)
    low = ParzenProposal(space, pool, None, best=others, gamma=1.0)
    high_density, low_density = _log_densities((high, low), space, candidates, branches)
    return high_density - low_density
