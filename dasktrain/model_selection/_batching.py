"""How the splits of new candidates are cut into tasks, and in which order they are sent.

Pure client-side arithmetic on the times of the splits finished so far; it
never changes a score, only how many splits one task carries and which
candidates go first.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..space import value_key

__all__ = ["Batcher"]


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


class Batcher:
    """Split costs measured so far, and the task sizes and order they suggest.

    Parameters
    ----------
    n_splits : int
        Splits per candidate (folds x repeats).
    n_workers : int
        Task slots of the backend.
    task_seconds : float, default=0.1
        Cheap splits are batched: the splits of one candidate, or of several
        whole candidates, go to one task until the task is expected to take
        about this long. A task never takes more than a share of the work in
        flight that keeps every worker busy (two tasks per worker). 0 gives
        every split its own task.
    splits_per_task : int or None, default=None
        A fixed number of splits per task instead.

    Examples
    --------
    >>> batcher = Batcher(n_splits=3, n_workers=2)
    >>> batcher.chunk_size(n_candidates=2, n_pending=2)  # nothing measured, few candidates
    1
    >>> for _ in range(6):
    ...     batcher.record(0.001)
    >>> batcher.chunk_size(n_candidates=40, n_pending=40)  # cheap: whole candidates per task
    30
    """

    def __init__(self, n_splits: int, n_workers: int, *, task_seconds: float = 0.1,
                 splits_per_task: int | None = None):
        self.n_splits = n_splits
        self.n_workers = max(1, int(n_workers))
        self.task_seconds = float(task_seconds)
        self.splits_per_task = splits_per_task
        self._seconds = 0.0
        self._count = 0

    def record(self, seconds: float) -> None:
        """Note the fit + score seconds of one split that finished well."""
        self._seconds += seconds
        self._count += 1

    @property
    def split_seconds(self) -> float | None:
        """Mean fit + score seconds of the splits finished so far (None before any)."""
        return self._seconds / self._count if self._count else None

    def chunk_size(self, n_candidates: int, n_pending: int,
                   per_candidate: int | None = None) -> int:
        """How many splits one task evaluates (more than `per_candidate`: whole candidates).

        `per_candidate` is the number of splits of each candidate being submitted
        (all of them, ``n_splits``, unless they are sent fold by fold).
        """
        per_candidate = self.n_splits if per_candidate is None else per_candidate
        if self.splits_per_task is not None:
            return max(1, int(self.splits_per_task))
        if self.task_seconds <= 0:
            return 1
        cost = self.split_seconds
        if cost is None:  # nothing measured yet: batch only when candidates are plenty
            return per_candidate if n_candidates >= 4 * self.n_workers else 1
        size = math.ceil(self.task_seconds / max(cost, 1e-6))
        in_flight = max(n_candidates, n_pending)
        balanced = max(1, (in_flight * per_candidate) // (2 * self.n_workers))
        return max(1, min(size, balanced))

    def chunks(self, splits: list[list], n_pending: int) -> list[list]:
        """The splits of each new candidate (one list per candidate) cut into tasks."""
        if not splits:
            return []
        per_candidate = max(len(candidate) for candidate in splits)
        size = self.chunk_size(len(splits), n_pending, per_candidate)
        if size <= per_candidate:  # a candidate's splits, in one task or several
            return [candidate[start:start + size] for candidate in splits
                    for start in range(0, len(candidate), size)]
        per_task = size // per_candidate
        return [[split for candidate in splits[start:start + per_task] for split in candidate]
                for start in range(0, len(splits), per_task)]

    def longest_first(self, candidates: list[dict], recent: list) -> list[int]:
        """The order to send `candidates` in: those predicted to take longest first.

        The cost of a new candidate is that of the most similar candidate in
        `recent` (``(params, seconds per split)`` pairs): the fewest parameters
        that differ, then the closest numbers, relative to the values seen
        (numbers spanning orders of magnitude on a log scale). Only worth it
        when a batch has several tasks per worker and they take a while; the
        results do not depend on the order.
        """
        order = list(range(len(candidates)))
        cost = self.split_seconds
        if (cost is None or cost * self.n_splits < self.task_seconds
                or len(candidates) < 2 * self.n_workers or not recent):
            return order
        spans: dict = {}
        for params, _ in recent:
            for name, value in params.items():
                if _is_number(value):
                    low, high = spans.get(name, (value, value))
                    spans[name] = (min(low, value), max(high, value))
        logs = {name for name, (low, high) in spans.items() if low > 0 and high > 100 * low}
        for name in logs:
            spans[name] = (math.log(spans[name][0]), math.log(spans[name][1]))

        def position(name, value) -> float:
            return math.log(value) if name in logs and value > 0 else float(value)

        def predicted(params: dict) -> float:
            best, best_distance = cost, None
            for other, spent in recent:
                distance = 0.0
                for name, value in params.items():
                    theirs = other.get(name)
                    if _is_number(value) and _is_number(theirs):
                        low, high = spans.get(name, (0.0, 0.0))
                        gap = abs(position(name, value) - position(name, theirs))
                        distance += gap / (high - low) if high > low else 0.0
                    elif value_key(value) != value_key(theirs):
                        distance += 1.0
                if best_distance is None or distance < best_distance:
                    best, best_distance = spent, distance
            return best

        costs = [predicted(params) for params in candidates]
        return sorted(order, key=lambda index: -costs[index])
