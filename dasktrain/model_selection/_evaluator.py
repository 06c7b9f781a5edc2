"""The client side of evaluating candidates: tasks keyed by content, sharing prefixes, cached.

:class:`Evaluator` turns candidates (dicts of parameter values) into tasks on a
:class:`~dasktrain._execution.Backend` and their records into
:class:`~dasktrain.model_selection._records.CandidateResult`:

- the data ``(X, y, fit_params, score_params)``, the base estimator, the
  scorers and the fold indices are sent **once per fit**; each task gets their
  handles and the number of its fold;
- the splits (fold, repeat) of a candidate run as keyed tasks
  (``fit-<candidate key>-<fold>-<repeat>``), batched by the
  :class:`~dasktrain.model_selection._batching.Batcher`; a batch of candidates
  is submitted with one ``map``;
- the leading pipeline steps that several candidates share are fitted once
  per fold as tasks of their own, as the
  :class:`~dasktrain.model_selection._prefixes.PrefixPlanner` plans them, and
  released as soon as no submitted candidate needs them;
- an equal candidate is never evaluated twice: results are cached by key;
- with a pruner, a candidate is evaluated in stages (one fold, all its
  repeats, per stage); the pruner decides after each stage but the last on the
  records of the stages so far only, so the decisions do not depend on where
  or in which order tasks finish. With several task slots every stage is
  submitted at once, later stages behind earlier ones, and the unstarted tasks
  of a pruned candidate are cancelled (see :meth:`Evaluator._submit_staged`);
- with a rung (``rung_rows``), a candidate is first fitted on a subsample of
  the first fold's training rows and scored on that fold's test rows; a rule
  (``rung_rule``) that sees rung scores only says which candidates are not
  evaluated further (see :meth:`Evaluator._decide_rungs`);
- a task killed with its worker has its splits run again one at a time, so
  that only a split that kills its worker again fails.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections import OrderedDict, deque
from concurrent.futures import CancelledError
from dataclasses import dataclass, field

import numpy as np

from .._execution import TaskKilledError, WorkersLostError
from ..space import value_key
from ..utils._data import take_rows
from ..utils._gc import with_gc_paused
from ._batching import Batcher
from ._prefixes import PrefixPlanner, PrefixStep
from ._records import CandidateResult, SplitRecord, Status
from ._tasks import Settings, failure_record, fit_and_score_splits, fit_prefix_task

__all__ = ["RUNG_FRACTION", "Evaluator", "default_candidate_key", "rung_rows"]

#: The share of the first fold's training rows a rung fits on (``pruning="rows"``).
RUNG_FRACTION = 1 / 3
#: Fewest rows of each class (of every row, for other estimators) a rung may fit on.
RUNG_MIN_ROWS = 2


def default_candidate_key(candidate: dict) -> str:
    """A stable content key of a candidate (used when no other key function is given)."""
    return hashlib.sha1(value_key(dict(candidate)).encode("utf-8")).hexdigest()[:20]


@dataclass
class _Pending:
    """A candidate submitted and not finished: its split records as they arrive (with a
    rung, its record last, at index ``n_splits``)."""

    params: dict
    records: list
    plan: list = field(default_factory=list)  # its shared prefixes (see PrefixPlanner.plan)
    stages: list = field(default_factory=list)  # folds of each stage, in order
    stage: int = 0  # the stage whose records the next decision waits for
    sent: int = 0  # how many stages are submitted


@dataclass
class _Split:
    """One (candidate, split) to evaluate."""

    key: str
    params: dict
    split: int
    fold: int
    seed: object
    chain: list = field(default_factory=list)  # PrefixStep keys it builds on, shortest first


@dataclass
class _Task:
    """A submitted fit-and-score task and the splits it carries."""

    future: object
    splits: list
    alone: bool = False  # a split of a killed task, run again by itself


class _Prefixes:
    """Prefix futures by content key, with the number of submitted splits that need each."""

    def __init__(self, keep_idle: int):
        self.keep_idle = keep_idle
        self.futures: dict[str, object] = {}
        self.users: dict[str, int] = {}
        self._idle: OrderedDict[str, None] = OrderedDict()

    def __len__(self):
        return len(self.futures)

    def live(self) -> set:
        return {key.split("/")[0] for key in self.futures}

    def use(self, key: str) -> bool:
        """Count one more user of `key`; True when the prefix is new (to submit)."""
        new = key not in self.futures
        if new:
            self.futures[key] = None
            self.users[key] = 0
        self.users[key] += 1
        self._idle.pop(key, None)
        return new

    def unuse(self, chain: list[str]) -> None:
        for key in chain:
            if key in self.users:
                self.users[key] -= 1
                if self.users[key] <= 0:
                    self._idle[key] = None

    def release_idle(self, keep: int) -> list:
        """Forget prefixes no submitted split needs, but the `keep` most recent; their futures."""
        doomed = []
        while len(self._idle) > keep:
            key, _ = self._idle.popitem(last=False)
            self.users.pop(key, None)
            future = self.futures.pop(key, None)
            if future is not None:
                doomed.append(future)
        return doomed

    def clear(self) -> list:
        futures = [future for future in self.futures.values() if future is not None]
        self.futures.clear()
        self.users.clear()
        self._idle.clear()
        return futures


def rung_rows(train, y, *, classifier: bool, rng: np.random.Generator,
              fraction: float = RUNG_FRACTION) -> np.ndarray:
    """The rows of a rung: `fraction` of the training rows `train`, drawn once per search.

    For a classifier with one label per row, each class keeps its share
    (rounded, at least one row), so every class of the fold is in the rung;
    otherwise the rows are drawn at random. The rows come back sorted, as
    the fold's own.

    Raises
    ------
    ValueError
        When a class (any row, without classes) would have fewer than
        :data:`RUNG_MIN_ROWS` rows; the message says how many it has.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0] * 12 + [1] * 6)
    >>> rows = rung_rows(np.arange(18), y, classifier=True, rng=np.random.default_rng(0))
    >>> np.bincount(y[rows])  # a third of each class
    array([4, 2])
    >>> rung_rows(np.arange(18), y[::-1], classifier=True, rng=np.random.default_rng(0),
    ...           fraction=0.1)
    Traceback (most recent call last):
    ...
    ValueError: class 0 would have 1 row in the rung, fewer than 2
    """
    train = np.asarray(train)
    labels = None
    if classifier and y is not None:
        column = np.asarray(take_rows(y, train))
        if column.ndim == 1:
            labels = column
    if labels is None:
        count = int(round(len(train) * fraction))
        if count < RUNG_MIN_ROWS:
            raise ValueError(f"the rung would have {count} row{'s' * (count != 1)}, fewer "
                             f"than {RUNG_MIN_ROWS}")
        return np.sort(rng.choice(train, count, replace=False))
    chosen = []
    for label in np.unique(labels):
        rows = train[labels == label]
        count = max(1, int(round(len(rows) * fraction)))
        if count < RUNG_MIN_ROWS:
            label = label.item() if isinstance(label, np.generic) else label
            raise ValueError(f"class {label!r} would have {count} row{'s' * (count != 1)} in "
                             f"the rung, fewer than {RUNG_MIN_ROWS}")
        chosen.append(rng.choice(rows, count, replace=False))
    return np.sort(np.concatenate(chosen)).astype(train.dtype)


def _outcome(future):
    """The result of a finished future, or the exception it raises (a failed task)."""
    try:
        return future.result()
    except (Exception, CancelledError) as exc:  # noqa: BLE001 - the caller records it
        return exc


class Evaluator:
    """Evaluate candidates by cross-validation on a backend, each distinct one once.

    Parameters
    ----------
    backend : Backend
        Where the tasks run (entered by the caller for the length of the fit).
    estimator : estimator
        The unfitted base estimator.
    X, y : array-like
        The data, already made indexable. ``y`` may be None.
    fit_params : dict
        Passed to ``fit``; sample-aligned values are split with the folds, and
        for a pipeline ``step__param`` names go to that step.
    folds : list of (train, test)
        Index arrays, computed once on the client.
    scorers : dict
        Metric name -> scorer.
    repeat_seeds : list of int or None
        One seed per repeat; None leaves every ``random_state`` as it is.
    settings : Settings
    score_params : dict, default=None
        Passed to the scorers (``sample_weight``), split with the test parts.
    candidate_key : callable, default=None
        Candidate -> stable content key; None uses :func:`default_candidate_key`.
    share_prefixes : bool, default=True
        Fit shared pipeline prefixes once per fold.
    keep_idle_prefixes : int, default=0
        How many prefix futures that no submitted candidate needs are kept (the
        most recently used), for candidates submitted later.
    task_seconds, splits_per_task
        How splits are batched into tasks (see :class:`Batcher`).
    pruner : callable or None, default=None
        ``pruner(params, records) -> bool``. With a pruner, a candidate is
        evaluated in stages, one fold per stage (its repeats of that fold
        together); once its first ``s`` stages are back (``s`` below the number
        of folds), the pruner sees the records of those stages only (None for
        the other splits, fitted or not) and returns True to stop it: its other
        splits get status "pruned" and NaN scores, whether they ran or not.
        Which records the pruner sees is fixed by the stages, never by the
        order in which tasks finish. With one task slot, a stage is submitted
        once the pruner has passed the one before; with more, every stage is
        submitted at once, in order (so that earlier stages run first), and
        the tasks of a pruned candidate are cancelled.
    rung_rows : array of int or None, default=None
        Rows of the first fold's training part (see :func:`rung_rows`). Each
        candidate is then first fitted on them (under the first repeat's seed)
        and scored on the first fold's test part: its rung. Only then are its
        folds submitted, those of the candidates that `rung_rule` passes
        (candidates cheap enough to be batched whole send their folds with
        the rung, and a pruned one's come back ignored).
    rung_rule : callable or None, default=None
        ``rung_rule(ready, outstanding) -> {key: prune}``: `ready` maps the
        keys of the candidates whose rung is back and undecided to their rung
        scores (metric -> score; empty when the rung failed), `outstanding`
        counts the submitted candidates whose rung is not back. It returns the
        decisions it can take now (True: pruned, its splits NaN), maybe none;
        the others are asked again when more rungs are back. None passes
        every candidate.

    Attributes
    ----------
    results : dict
        Candidate key -> :class:`CandidateResult` of every candidate evaluated.
    out_of_time : bool
        True once the deadline given to :meth:`submit` or :meth:`wait` passed.
    n_prefix_tasks, n_tasks, n_retries, n_recycled : int
        Prefix tasks and fit-and-score tasks submitted, splits run again
        alone after their task was killed, processes recycled because a
        timed-out split left its fit running there (each at most once).
    n_pruned, n_cancelled, n_discarded : int
        Candidates pruned; splits whose tasks were cancelled because every
        candidate they served was pruned (unstarted ones never run); split
        results that came back for a candidate already pruned (work done
        ahead in vain).
    """

    def __init__(self, backend, estimator, X, y, fit_params, folds, scorers, *, repeat_seeds,
                 settings: Settings, score_params=None, candidate_key=None,
                 share_prefixes: bool = True, keep_idle_prefixes: int = 0,
                 task_seconds: float = 0.1, splits_per_task: int | None = None,
                 pruner=None, rung_rows=None, rung_rule=None):
        self.backend = backend
        self.pruner = pruner
        self.rung_rule = rung_rule
        self.has_rung = rung_rows is not None
        self._rung_ready: dict[str, dict] = {}  # rung back, not decided: key -> its scores
        self._rung_outstanding = 0  # candidates submitted whose rung is not back
        self.n_pruned = 0
        self.n_cancelled = 0
        self.n_discarded = 0
        self.settings = settings
        self.repeat_seeds = list(repeat_seeds)
        self.n_folds = len(folds)
        self.n_splits = self.n_folds * len(self.repeat_seeds)
        self.metrics = list(scorers)
        self.candidate_key = candidate_key or default_candidate_key
        self.keep_idle_prefixes = keep_idle_prefixes
        self.batcher = Batcher(self.n_splits, backend.n_workers, task_seconds=task_seconds,
                               splits_per_task=splits_per_task)
        self.planner = PrefixPlanner(estimator, len(self.repeat_seeds),
                                     enabled=share_prefixes and not settings.pairwise)
        folds = list(folds)
        if self.has_rung:  # the rung is one more "fold": its rows, the first fold's test part
            folds.append((np.asarray(rung_rows), folds[0][1]))
        self._sent = {"estimator": estimator,
                      "data": (X, y, dict(fit_params), dict(score_params or {})),
                      "folds": folds, "scorers": scorers}
        self._shared = {}
        self._scorers = None
        self._scatter()
        self.results: dict[str, CandidateResult] = {}
        self.out_of_time = False
        self.n_prefix_tasks = 0
        self.n_tasks = 0
        self.n_retries = 0
        self.n_recycled = 0
        self._pending: dict[str, _Pending] = {}
        self._tasks: dict[int, _Task] = {}
        self._prefixes = _Prefixes(keep_idle_prefixes)
        self._retries: deque = deque()  # (key, split) of killed splits to run again alone
        self._retry_in_flight = False
        self._deadline: float | None = None
        self._completed = backend.as_completed()
        self._stuck: list[tuple] = []  # processes left running a timed-out fit, to recycle
        self._recycled: set[tuple] = set()

    def _scatter(self) -> None:
        self._shared = {name: self.backend.scatter(self._sent[name], cache=(name != "estimator"))
                        for name in ("estimator", "data", "folds")}
        self._scorers = self.backend.scatter(self._sent["scorers"], cache=False)

    # ------------------------------------------------------------------ what is known

    @property
    def in_flight(self) -> int:
        """Number of candidates submitted and not finished."""
        return len(self._pending)

    def known(self, key: str) -> bool:
        """Whether the candidate with `key` is evaluated or being evaluated."""
        return key in self.results or key in self._pending

    @property
    def split_seconds(self) -> float | None:
        """Mean fit + score seconds of the splits finished so far (None before any)."""
        return self.batcher.split_seconds

    @property
    def task_seconds(self) -> float:
        return self.batcher.task_seconds

    @property
    def live_prefixes(self) -> int:
        """Number of prefix futures held right now."""
        return len(self._prefixes)

    def _params_of(self, key: str) -> dict | None:
        known = self.results.get(key) or self._pending.get(key)
        return None if known is None else known.params

    # ------------------------------------------------------------------ submitting

    @with_gc_paused
    def submit(self, candidates, *, context=(), deadline: float | None = None):
        """Submit every candidate not yet evaluated nor in flight, once.

        Parameters
        ----------
        candidates : list of dict
        context : list of dict or str, default=()
            Other candidates (or keys of submitted ones), e.g. the population,
            whose pipeline prefixes are likely to be asked for soon.
        deadline : float or None
            ``time.monotonic()`` value after which nothing more is submitted.

        Returns
        -------
        keys : list of str
            The key of each candidate, in order.
        cache_hits : int
            How many candidates were already evaluated, in flight, or equal to
            an earlier one of `candidates`.
        """
        self._deadline = deadline
        keys = [self.candidate_key(candidate) for candidate in candidates]
        new: dict[str, dict] = {}
        for key, candidate in zip(keys, candidates):
            if not self.known(key) and key not in new:
                new[key] = dict(candidate)
        hits = len(keys) - len(new)
        if not new:
            return keys, hits
        context_params = {}
        for other in context if self.planner.active else ():  # else there is nothing to share
            key = other if isinstance(other, str) else self.candidate_key(other)
            params = self._params_of(key) if isinstance(other, str) else other
            if params is not None:
                context_params[key] = params
        plans = self.planner.plan(new, context_params, self._prefixes.live())
        items = list(zip(new.items(), plans))
        # the last 64 results, oldest first, without a pass over all of them
        latest = list(itertools.islice(reversed(self.results.values()), 64))[::-1]
        recent = [(result.params, (sum(result.fit_time) + sum(result.score_time))
                   / max(1, len(result.fit_time))) for result in latest]
        order = self.batcher.longest_first([params for (_, params), _ in items], recent)
        items = [items[index] for index in order]
        # with a deadline, a few candidates at a time, each with the time then left
        step = len(items) if deadline is None else self.batcher.n_workers
        for begin in range(0, len(items), step):
            if deadline is not None and time.monotonic() >= deadline:
                self.out_of_time = True
                break
            budget = None if deadline is None else max(0.0, deadline - time.monotonic())
            group = []
            for (key, params), plan in items[begin:begin + step]:
                self._pending[key] = _Pending(
                    params=params, records=[None] * (self.n_splits + self.has_rung), plan=plan,
                    stages=self._stages())
                self._rung_outstanding += self.has_rung
                group.append(key)
            self._submit_staged(group, budget)
        return keys, hits

    def _stages(self) -> list[list[int]]:
        """The folds of each stage of a new candidate: one per fold with a pruner; with a
        rung, the rung (the "fold" ``n_folds``) and then every fold."""
        if self.has_rung:
            return [[self.n_folds], list(range(self.n_folds))]
        if self.pruner is None:
            return [list(range(self.n_folds))]
        return [[fold] for fold in range(self.n_folds)]

    def _submit_staged(self, keys: list[str], budget) -> None:
        """Submit the stages of new candidates: all of them, or the first only.

        With one task slot, only the first stage goes (the next once the
        pruner has passed it: nothing is fitted in vain, and there is no other
        slot to keep busy). With several, every stage goes now: cheap
        candidates (the :class:`Batcher` would put whole candidates in one
        task) as without pruning, all stages in the same batched tasks; others
        stage by stage (one ``map`` each, so that the backend runs the earlier
        stages of these candidates first), and the pruner's decisions cancel
        the tasks that become useless. None of this changes which records the
        pruner sees (see :meth:`_advance`).
        """
        ahead = self.batcher.n_workers > 1
        n_stages = len(self._pending[keys[0]].stages) if keys else 0
        if n_stages == 1 or (ahead and self.batcher.chunk_size(len(keys), len(self._pending))
                             >= self.n_splits):
            new_prefixes, splits = [], []
            for key in keys:
                pending = self._pending[key]
                pending.sent = len(pending.stages)
                splits.append(self._plan_splits(key, pending, range(self.n_folds + self.has_rung),
                                                new_prefixes))
            self._submit_prefixes(new_prefixes, budget)
            self._submit_splits(splits, budget)
            return
        # a rung's folds wait for its decision: rungs are short, so a slot waits little, and
        # the folds sent ahead of a decision taken once a generation's rungs are back would
        # mostly be fitted in vain
        for stage in range(n_stages if ahead and not self.has_rung else 1):
            new_prefixes, splits = [], []
            for key in keys:
                pending = self._pending[key]
                pending.sent = stage + 1
                splits.append(self._plan_splits(key, pending, pending.stages[stage],
                                                new_prefixes))
            self._submit_prefixes(new_prefixes, budget)
            self._submit_splits(splits, budget)

    def _submit_next_stages(self, keys: list[str]) -> None:
        """Submit the stage each of these candidates now waits for (one task slot), together."""
        budget = (None if self._deadline is None
                  else max(0.0, self._deadline - time.monotonic()))
        splits, new_prefixes = [], []
        for key in keys:
            pending = self._pending[key]
            pending.sent = pending.stage + 1
            splits.append(self._plan_splits(key, pending, pending.stages[pending.stage],
                                            new_prefixes))
        self._submit_prefixes(new_prefixes, budget)
        self._submit_splits(splits, budget)

    def _plan_splits(self, key: str, pending: _Pending, folds, new_prefixes: list):
        """The splits of one candidate on `folds`; the prefix tasks they need that are new
        go to `new_prefixes` as ``(depth, PrefixStep, params, fold, seed, parent key)``."""
        params, plan = pending.params, pending.plan
        out = []
        for repeat, seed in enumerate(self.repeat_seeds):
            for fold in folds:
                if fold == self.n_folds and repeat:
                    continue  # the rung runs under the first repeat's seed only
                chain = PrefixPlanner.chain(plan, fold, repeat)
                parent = None
                for depth, step in enumerate(chain):
                    if self._prefixes.use(step.key):
                        new_prefixes.append((depth, step, self._prefix_params(params, step),
                                             fold, seed if "/all" not in step.key
                                             else self.repeat_seeds[0], parent))
                    parent = step.key
                split = self.n_splits if fold == self.n_folds else repeat * self.n_folds + fold
                out.append(_Split(key, params, split, fold, seed, [step.key for step in chain]))
        return out

    def _prefix_params(self, params: dict, step: PrefixStep) -> dict:
        """The candidate's parameters of the prefix's steps only: every candidate sharing
        the prefix submits the same task under its key."""
        steps = set(self.planner.steps[:step.length])
        return {name: value for name, value in params.items() if name.split("__")[0] in steps}

    def _submit_prefixes(self, new_prefixes: list, budget) -> None:
        """Submit the new prefix tasks, one ``map`` per depth (parents first)."""
        for depth in sorted({item[0] for item in new_prefixes}):
            level = [item for item in new_prefixes if item[0] == depth]
            futures = self.backend.map(
                fit_prefix_task,
                [item[2] for item in level], [item[3] for item in level],
                [item[4] for item in level], [item[1].start for item in level],
                [item[1].length for item in level],
                [None if item[5] is None else self._prefixes.futures[item[5]]
                 for item in level],
                keys=[f"prefix-{item[1].key.replace('/', '-')}" for item in level],
                settings=self.settings, budget=budget, **self._shared)
            for item, future in zip(level, futures):
                self._prefixes.futures[item[1].key] = future
            self.n_prefix_tasks += len(level)

    def _submit_splits(self, splits: list[list[_Split]], budget) -> None:
        """Submit the splits of the new candidates in batched tasks, with one ``map``."""
        chunks = self.batcher.chunks(splits, len(self._pending))
        if not chunks:
            return
        any_prefix = any(split.chain for chunk in chunks for split in chunk)
        payloads, prefixes, keys = [], [], []
        for chunk in chunks:
            first = chunk[0]
            payloads.append([(split.params, split.fold, split.seed) for split in chunk])
            if any_prefix:
                prefixes.append([self._prefixes.futures[split.chain[-1]] if split.chain
                                 else None for split in chunk])
            repeat = first.split // self.n_folds
            keys.append(f"fit-{first.key}-{first.fold}-{repeat}"
                        + (f"-{len(chunk)}" if len(chunk) > 1 else ""))
        iterables = [payloads, prefixes] if any_prefix else [payloads]
        futures = self.backend.map(fit_and_score_splits, *iterables, keys=keys,
                                   scorers=self._scorers, settings=self.settings,
                                   budget=budget, **self._shared)
        for chunk, future in zip(chunks, futures):
            self._tasks[id(future)] = _Task(future, chunk)
            self._completed.add(future)
        self.n_tasks += len(chunks)

    def _submit_retry(self) -> None:
        """Submit the next split of a killed task alone (one at a time, without prefixes).

        One at a time, so that a split that kills its worker again takes no
        other split down with it; without the pipeline prefix (it may be what
        was lost), the whole candidate is fitted, which gives the same scores.
        """
        while self._retries and not self._retry_in_flight:
            key, split = self._retries.popleft()
            pending = self._pending.get(key)
            if pending is None or pending.records[split] is not None:
                continue
            # the rung (split n_splits) is the "fold" n_folds under the first seed
            repeat, fold = (0, self.n_folds) if split == self.n_splits else divmod(
                split, self.n_folds)
            budget = (None if self._deadline is None
                      else max(0.0, self._deadline - time.monotonic()))
            future = self.backend.submit(
                fit_and_score_splits, [(pending.params, fold, self.repeat_seeds[repeat])],
                key=f"fit-{key}-{fold}-{repeat}-alone", scorers=self._scorers,
                settings=self.settings, budget=budget, **self._shared)
            self._tasks[id(future)] = _Task(future, [_Split(key, pending.params, split, fold,
                                                            self.repeat_seeds[repeat])], True)
            self._retry_in_flight = True
            self._completed.add(future)
            self.n_tasks += 1
            self.n_retries += 1

    # ------------------------------------------------------------------ collecting

    def wait(self, deadline: float | None = None) -> list[str]:
        """Wait for split results; return the keys of the candidates that finished.

        Raises
        ------
        TimeoutError
            When `deadline` passes first (and sets :attr:`out_of_time`); also,
            with ``error_score="raise"``, a split's own eval_timeout (then
            :attr:`out_of_time` stays False).
        """
        if not self._tasks:
            return []
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            future = self._completed.next(timeout=timeout)
        except TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                self.out_of_time = True
                raise _DeadlineReached() from None
            raise
        return self._collect_all([future])

    def drain(self) -> list[str]:
        """Collect the results already finished, without waiting."""
        return self._collect_all([])

    def _collect_all(self, done: list) -> list[str]:
        while self._tasks:  # whatever else is done already, without waiting
            try:
                done.append(self._completed.next(timeout=0))
            except (TimeoutError, StopIteration):
                break
        done = [future for future in done if id(future) in self._tasks]
        finished, released = [], []
        try:
            for future, outcome in zip(done, self._outcomes(done)):
                finished.extend(self._collect(future, outcome, released))
        finally:
            released.extend(self._prefixes.release_idle(self.keep_idle_prefixes))
            if released:
                self.backend.release(released)
            self._recycle_stuck()
        return finished

    def _outcomes(self, futures: list) -> list:
        """The result, or the exception, of each finished future: one gather when all ran."""
        if not futures:
            return []
        try:
            return self.backend.gather(futures)
        except (Exception, CancelledError):  # noqa: BLE001 - one failed: take them one by one
            return [_outcome(future) for future in futures]

    def _collect(self, future, outcome, released: list) -> list[str]:
        task = self._tasks.pop(id(future), None)
        if task is None:  # cancelled by a pruning decision on an earlier result of this batch
            return []
        if task.alone:
            self._retry_in_flight = False
        if isinstance(outcome, WorkersLostError):  # no split can run: the fit fails
            self.cancel()
            raise outcome
        released.append(future)
        if isinstance(outcome, TaskKilledError) and not task.alone:
            # the task died with its worker, maybe for another split of it or of another
            # task (out of memory): each split runs again alone, so only the culprit fails
            for split in task.splits:
                self._prefixes.unuse(split.chain)
                if split.key in self._pending:
                    self._retries.append((split.key, split.split))
            self._submit_retry()
            return []
        if isinstance(outcome, BaseException):
            if self.settings.error_score == "raise":
                self._note_stuck(getattr(outcome, "stuck_in", None))
                self.cancel()
                raise outcome
            # a lost worker or a cancelled dependency: the splits failed
            record = failure_record(Status.ERROR, f"{type(outcome).__name__}: {outcome}",
                                    self.metrics, self.settings)
            outcome = [record] * len(task.splits)
        touched: dict[str, None] = {}
        for split, record in zip(task.splits, outcome):
            self._prefixes.unuse(split.chain)
            self._note_stuck(record.stuck_in)
            if record.ok:
                self.batcher.record(record.fit_time + record.score_time)
            pending = self._pending.get(split.key)
            if pending is None:
                self.n_discarded += split.key in self.results
                continue
            if pending.records[split.split] is None:
                pending.records[split.split] = record
                self._rung_outstanding -= split.split == self.n_splits
            touched[split.key] = None
        finished, next_stage, pruned = [], [], False
        for key in touched:
            pruned = self._step(key, finished, next_stage) or pruned
        if self._rung_ready:
            pruned = self._decide_rungs(finished, next_stage) or pruned
        if pruned:
            self._cancel_unneeded(released)
        if next_stage:
            self._submit_next_stages(next_stage)
        self._submit_retry()
        return finished

    def _step(self, key: str, finished: list, next_stage: list) -> bool:
        """Advance candidate `key`: note it in `finished` when it finished (kept or not),
        in `next_stage` when the stage it waits for is not submitted; True when pruned."""
        state = self._advance(key)
        if state == "waiting":
            pending = self._pending[key]
            if pending.sent <= pending.stage:
                next_stage.append(key)
            return False
        if state not in ("dropped", "deciding"):
            finished.append(key)
        return state == "pruned"

    def _decide_rungs(self, finished: list, next_stage: list) -> bool:
        """Take the rung decisions the rule gives now; True when a candidate was pruned.

        A pruned candidate gets status "pruned" and NaN on every split; a
        candidate passed goes on to its folds (submitted now, unless they were
        sent with its rung).
        """
        ready = self._rung_ready
        decisions = ({key: False for key in ready} if self.rung_rule is None
                     else self.rung_rule(dict(ready), self._rung_outstanding))
        pruned = False
        for key, prune in decisions.items():
            if key not in ready:
                continue
            del ready[key]
            pending = self._pending[key]
            if prune:
                self._prune(pending, {self.n_splits})
                self._finish(key)
                finished.append(key)
                pruned = True
            else:
                pending.stage += 1
                pruned = self._step(key, finished, next_stage) or pruned
        return pruned

    def _finish(self, key: str) -> str:
        """Record the result of candidate `key`, whose records are all in; its status."""
        pending = self._pending.pop(key)
        records = pending.records
        rung = records[self.n_splits] if self.has_rung else None
        result = CandidateResult.from_splits(pending.params, records[:self.n_splits], rung=rung)
        self.results[key] = result
        return "pruned" if result.status == Status.PRUNED else "done"

    def _advance(self, key: str) -> str:
        """Take the pruner's decisions that the records of candidate `key` now allow.

        The decision after stage ``s`` sees the records of stages ``0..s`` only,
        even when later stages are back already, so it is the same whichever
        tasks finish first. Returns "waiting" (a stage is not back yet),
        "deciding" (its rung is back, for the rung rule to judge: see
        :meth:`_decide_rungs`), "done", "pruned" (both now in :attr:`results`)
        or "dropped" (out of time: not a result).
        """
        pending = self._pending[key]
        while True:
            stage = pending.stages[pending.stage]
            if any(pending.records[split] is None for split in self._split_indices(stage)):
                return "waiting"
            if any(r is not None and r.status == Status.BUDGET for r in pending.records):
                del self._pending[key]  # out of time: the candidate is dropped
                self._rung_ready.pop(key, None)
                self.out_of_time = True
                return "dropped"
            if pending.stage == len(pending.stages) - 1:
                break
            if self.has_rung:  # the rung's decision, with the other candidates' rungs
                record = pending.records[self.n_splits]
                self._rung_ready[key] = dict(record.test) if record.ok else {}
                return "deciding"
            seen = {split for folds in pending.stages[:pending.stage + 1]
                    for split in self._split_indices(folds)}
            shown = [record if index in seen else None
                     for index, record in enumerate(pending.records)]
            if self.pruner(pending.params, shown):
                self._prune(pending, seen)
                break
            pending.stage += 1
        return self._finish(key)

    def _split_indices(self, folds) -> list[int]:
        """The splits (all repeats) of these folds; the rung's ("fold" ``n_folds``) is the
        split ``n_splits``."""
        if folds == [self.n_folds]:
            return [self.n_splits]
        return [repeat * self.n_folds + fold for repeat in range(len(self.repeat_seeds))
                for fold in folds]

    def _prune(self, pending: _Pending, seen: set) -> None:
        """Give the splits of `pending` the pruner did not see the status "pruned" (NaN
        scores), also those that came back already."""
        metrics = next(pending.records[index].test for index in sorted(seen))
        for index in range(self.n_splits):
            if index not in seen:
                pending.records[index] = SplitRecord(
                    status=Status.PRUNED, error="", test=dict.fromkeys(metrics, math.nan),
                    train=(dict.fromkeys(metrics, math.nan)
                           if self.settings.return_train_score else None))
        self.n_pruned += 1

    def _cancel_unneeded(self, released: list) -> None:
        """Cancel the tasks in flight whose splits all belong to finished candidates
        (pruned ones: a task started already runs on, its result is ignored)."""
        doomed = [(ident, task) for ident, task in self._tasks.items()
                  if all(split.key not in self._pending for split in task.splits)]
        if not doomed:
            return
        for ident, task in doomed:
            del self._tasks[ident]
            if task.alone:
                self._retry_in_flight = False
            for split in task.splits:
                self._prefixes.unuse(split.chain)
            self.n_cancelled += len(task.splits)
        futures = [task.future for _, task in doomed]
        self.backend.cancel(futures)
        released.extend(futures)

    def _note_stuck(self, stuck_in) -> None:
        """Remember a process that a timed-out split left running its fit (once)."""
        if stuck_in is None:
            return
        stuck_in = tuple(stuck_in)
        if stuck_in not in self._recycled:
            self._recycled.add(stuck_in)
            self._stuck.append(stuck_in)

    def _recycle_stuck(self) -> None:
        """Recycle the processes noted by :meth:`_note_stuck`, each once per fit.

        The backend runs again the other tasks that were running there (within
        its bounded retries), so other candidates' results do not change, and
        refuses to recycle this process.
        """
        while self._stuck:
            identity, _ = self._stuck.pop(0)
            if self.backend.recycle(identity):
                self.n_recycled += 1

    # ------------------------------------------------------------------ batches and ends

    def evaluate(self, candidates, *, deadline: float | None = None):
        """Evaluate a batch: submit, then wait for all of it (or the deadline).

        Returns
        -------
        keys : list of str
            The key of each candidate; those in :attr:`results` were evaluated.
        cache_hits : int
        """
        keys, hits = self.submit(candidates, deadline=deadline)
        while self._pending and not self.out_of_time:
            try:
                self.wait(deadline)
            except _DeadlineReached:
                break
        if self.out_of_time:
            self.drain()
            self.cancel()
        self.backend.release(self._prefixes.release_idle(0))
        return keys, hits

    def cancel(self) -> None:
        """Cancel every task in flight and forget their candidates."""
        futures = [task.future for task in self._tasks.values()] + self._prefixes.clear()
        if futures:
            self.backend.cancel(futures)
            self.backend.release(futures)
        self._tasks.clear()
        self._retries.clear()
        self._retry_in_flight = False
        self._pending.clear()
        self._rung_ready.clear()
        self._rung_outstanding = 0
        self._completed = self.backend.as_completed()

    def close(self) -> None:
        """Cancel what is in flight and release the data sent."""
        self.cancel()
        self.backend.release([*self._shared.values(), self._scorers])


class _DeadlineReached(TimeoutError):
    """The search's own deadline (``max_time``) passed while waiting: only this ends it early."""
