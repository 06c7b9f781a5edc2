"""A cheap model of the score, fitted on the candidates evaluated so far, to screen children.

Strategies breed several times more children than they evaluate and keep the
most promising by the expected improvement that a tree ensemble (the trees of
scikit-learn's :class:`~sklearn.ensemble.ExtraTreesRegressor`) predicts for
them, the spread of its trees standing for its uncertainty. It runs on the
client, sees parameters and scores only, and draws its randomness from the
strategy's generator, so screening keeps results identical on every backend.
"""

from __future__ import annotations

import math

import numpy as np
import sklearn
from scipy.stats import norm
from sklearn.tree import ExtraTreeRegressor

from ..space import Categorical, SearchSpace

__all__ = ["Surrogate", "expected_improvement"]

_MISSING = object()

#: Outcomes the surrogate learns from at the most: the best half and the most recent half,
#: so that screening costs the same per candidate however long the search runs.
MAX_TRAINING = 400


def expected_improvement(mean, std, best: float) -> np.ndarray:
    """Expected improvement over `best` of scores predicted as normal(mean, std).

    Examples
    --------
    >>> expected_improvement(np.array([0.5, 0.9]), np.array([0.1, 0.0]), best=0.8).round(3)
    array([0. , 0.1])
    """
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    gain = mean - best
    safe = np.where(std > 0, std, 1.0)
    z = gain / safe
    spread = gain * norm.cdf(z) + safe * norm.pdf(z)
    return np.where(std > 0, spread, np.maximum(gain, 0.0))


class Surrogate:
    """Predicts the score of candidates of `space` from those already evaluated.

    Each candidate is encoded as one column per parameter of the space (its
    position on [0, 1], see :meth:`~dasktrain.space.Dimension.to_unit`; -1
    when its branch lacks the parameter), one indicator column per choice of
    a categorical parameter, and its branch.

    Parameters
    ----------
    space : SearchSpace
    n_estimators : int, default=64

    Examples
    --------
    >>> from dasktrain.space import Continuous, SearchSpace
    >>> space = SearchSpace([{"x": Continuous(0.0, 1.0)}])
    >>> seen = [{"x": x} for x in np.linspace(0, 1, 20)]
    >>> surrogate = Surrogate(space).fit(seen, [-(c["x"] - 0.7) ** 2 for c in seen], seed=0)
    >>> mean, _ = surrogate.predict([{"x": 0.7}, {"x": 0.0}])
    >>> bool(mean[0] > mean[1])
    True
    """

    def __init__(self, space: SearchSpace, n_estimators: int = 64):
        self.space = space
        self.n_estimators = n_estimators
        self._trees = None
        self._columns = []
        for name in space.names:
            dims = [branch[name] for branch in space.branches if name in branch]
            choices = [dim for dim in dims if isinstance(dim, Categorical) and len(dim) > 1]
            self._columns.append((name, choices[0] if choices else None))
        # per branch (and -1, a candidate of none), each column's name, the branch's
        # dimension of it (None when the branch lacks it) and its categorical
        self._layouts = {index: [(name, branch.get(name), categorical)
                                 for name, categorical in self._columns]
                         for index, branch in enumerate(space.branches)}
        self._layouts[-1] = [(name, None, categorical) for name, categorical in self._columns]

    def encode(self, candidates: list[dict]) -> np.ndarray:
        rows = []
        layouts = self._layouts
        for candidate in candidates:
            try:
                index = self.space.branch_of(candidate)
            except ValueError:
                index = -1
            row = [float(index)]
            for name, dim, categorical in layouts[index]:
                value = candidate.get(name, _MISSING) if dim is not None else _MISSING
                if value is _MISSING:
                    row.append(-1.0)
                    if categorical is not None:
                        row.extend([0.0] * len(categorical))
                    continue
                if categorical is None:
                    row.append(dim.to_unit(value))
                    continue
                try:
                    choice = categorical.index(value)
                except ValueError:
                    choice = -1
                # a categorical's position is its choice's, found once for both columns
                row.append(dim.to_unit(value) if dim is not categorical or dim.constant
                           else choice / (len(dim) - 1))
                hot = [0.0] * len(categorical)
                if choice >= 0:
                    hot[choice] = 1.0
                row.extend(hot)
            rows.append(row)
        return np.asarray(rows, dtype=float)

    def fit(self, candidates: list[dict], scores, seed: int, encoded=None) -> Surrogate:
        """Fit on evaluated candidates; a failed one (NaN) counts as the worst score seen.

        `encoded`, when given, is :meth:`encode` of `candidates` (or longer: its
        first rows are), kept by a caller that fits again as candidates are added.
        """
        scores = np.asarray(scores, dtype=float)
        finite = scores[np.isfinite(scores)]
        if finite.size == 0:
            self._trees = None
            return self
        scores = np.where(np.isfinite(scores), scores, finite.min())
        keep = None
        if len(candidates) > MAX_TRAINING:
            half = MAX_TRAINING // 2
            best = set(np.argsort(-scores, kind="stable")[:half].tolist())
            recent = [i for i in range(len(candidates) - 1, -1, -1) if i not in best][:half]
            keep = sorted(best | set(recent))
            scores = scores[keep]
        if encoded is not None:
            X = encoded[:len(candidates)] if keep is None else encoded[keep]
        else:
            X = self.encode(candidates if keep is None else [candidates[i] for i in keep])
        self._trees = _extra_trees(X, scores, self.n_estimators, seed)
        self._best = float(scores.max())
        return self

    @property
    def fitted(self) -> bool:
        return self._trees is not None

    def predict(self, candidates: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """The mean and the spread (std over trees) of the predicted scores."""
        return self.predict_encoded(self.encode(candidates))

    def predict_encoded(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` of candidates already encoded (:meth:`encode`), as surrogates of
        several objectives over the same candidates share one encoding."""
        # X as the trees take it, and each fitted tree's own arrays: the estimator's
        # predict checks its input on every call, which on the few candidates of a
        # steady-state ask cost twice the prediction itself
        X = np.ascontiguousarray(X, dtype=np.float32)
        per_tree = np.stack([tree.predict(X)[:, 0] for tree in self._trees])
        return per_tree.mean(axis=0), per_tree.std(axis=0)

    def rank(self, candidates: list[dict], best: float | None = None,
             evaluated: list[dict] | None = None, n: int | None = None,
             evaluated_encoded=None) -> list[int]:
        """Indices of `candidates`, most promising first.

        By the highest expected improvement over `best` (by default the best
        score it was fitted on), then the highest predicted mean. Candidates
        that tie on both, as on a plateau where every score seen is equal, come
        farthest first from the `evaluated` candidates and from those ranked
        before them (greedy maximin distance in the encoding): with nothing to
        tell them apart, the search spreads out. Only the last
        :data:`MAX_TRAINING` of `evaluated` count, so that ranking costs the
        same however long the search runs. With `n`, only the first `n` places
        are ordered so (the rest follow in the order given). `evaluated_encoded`,
        when given, is :meth:`encode` of `evaluated`.
        """
        X = self.encode(candidates)
        mean, std = self.predict_encoded(X)
        gain = expected_improvement(mean, std, self._best if best is None else best)
        order = sorted(range(len(candidates)), key=lambda i: (-gain[i], -mean[i], i))
        wanted = len(order) if n is None else min(n, len(order))
        keys = [(gain[i], mean[i]) for i in order[:wanted + 1]]
        if not evaluated or len(set(keys)) == len(keys):  # no ties where it matters
            return order
        chosen = (self.encode(evaluated[-MAX_TRAINING:]) if evaluated_encoded is None
                  else evaluated_encoded[-MAX_TRAINING:])
        out: list[int] = []
        start = 0
        while start < len(order) and len(out) < wanted:
            end = start + 1
            first = order[start]
            while end < len(order) and (gain[order[end]], mean[order[end]]) == (gain[first],
                                                                               mean[first]):
                end += 1
            group = order[start:end]
            if len(group) > 1:
                group = _spread(X[group], chosen, group, wanted - len(out))
            out.extend(group)
            chosen = np.vstack([chosen, X[group]])
            start = end
        return out + order[start:]


def _extra_trees(X: np.ndarray, y: np.ndarray, n_estimators: int, seed: int) -> list:
    """The fitted trees (their ``tree_``) of ``ExtraTreesRegressor(n_estimators,
    min_samples_leaf=2, max_features=0.8, random_state=seed)`` fitted on `X`, `y`.

    The same trees as the forest's: each is seeded as the forest seeds it (one
    draw of ``RandomState(seed).randint`` per tree, in order, which seeds the
    tree's own ``RandomState``) and fitted, as the
    forest fits it, on all the rows without a bootstrap and with the input
    checked once here. The forest itself clones and configures every tree
    through ``get_params``, which cost more than fitting the trees of a
    screening surrogate; ``tests/test_strategies.py`` compares the two.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.float64).reshape(-1, 1)
    seeds = np.random.RandomState(seed)
    # a tree given an int seed makes a RandomState of it, at 0.1 ms mostly spent
    # gathering entropy it then overwrites; re-seeding one gives the same state
    state = np.random.RandomState(0)
    trees = []
    with sklearn.config_context(skip_parameter_validation=True):
        for _ in range(n_estimators):
            state.seed(seeds.randint(np.iinfo(np.int32).max))
            tree = ExtraTreeRegressor(min_samples_leaf=2, max_features=0.8, random_state=state)
            trees.append(tree.fit(X, y, check_input=False).tree_)
    return trees


def _spread(X: np.ndarray, reference: np.ndarray, labels: list[int], k: int) -> list[int]:
    """`labels` (one per row of `X`), the first `k` in greedy maximin order (each next the
    row farthest from `reference` and the rows picked before it, the earliest among
    equals), then the others in the order given."""
    nearest = _nearest(X, reference)
    free = np.ones(len(labels), dtype=bool)
    picks = []
    # a row picked gets -inf, which no distance raises again: argmax then finds the
    # farthest free row, as over the free rows alone; the buffers spare an allocation
    # per pick (the same operations, so the same distances)
    difference, distance = np.empty_like(X), np.empty(len(labels))
    # numpy sums fewer than 8 numbers from left to right: then the columns are added
    # one by one, the same sums without a reduction's cost per row
    by_column = X.shape[1] < 8
    for _ in range(min(k, len(labels))):
        pick = int(np.argmax(nearest))
        picks.append(pick)
        free[pick] = False
        nearest[pick] = -np.inf
        np.subtract(X, X[pick], out=difference)
        np.square(difference, out=difference)
        if by_column:
            distance[:] = difference[:, 0]
            for column in range(1, X.shape[1]):
                distance += difference[:, column]
        else:
            difference.sum(axis=1, out=distance)
        np.minimum(nearest, distance, out=nearest)
    return [labels[i] for i in picks] + [labels[i] for i in np.flatnonzero(free)]


def _nearest(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each row of `X`'s squared distance to its nearest row of `reference` (inf for none)."""
    nearest = np.full(len(X), np.inf)
    if X.shape[1] < 8:
        # numpy sums fewer than 8 numbers from left to right: adding the columns' squares
        # one by one gives the same sums, without a rows x block x columns array and a
        # reduction over its short last axis (ten times the cost on a big pool)
        for start in range(0, len(reference), 256):  # bounded memory: rows x 256
            block = reference[start:start + 256]
            distance = np.square(X[:, :1] - block[:, 0])
            for column in range(1, X.shape[1]):
                distance += np.square(X[:, column:column + 1] - block[:, column])
            np.minimum(nearest, distance.min(axis=1), out=nearest)
        return nearest
    for start in range(0, len(reference), 32):  # bounded memory: rows x 32 x columns
        block = reference[start:start + 32]
        nearest = np.minimum(nearest, ((X[:, None, :] - block[None, :, :]) ** 2)
                             .sum(axis=2).min(axis=1))
    return nearest


def sample_size(n: int, screening: float) -> int:
    """How many children to breed to keep `n` of them after screening."""
    return max(n, int(math.ceil(n * screening)))
