"""Turn candidates into fit-and-score tasks: keyed by content, sharing pipeline prefixes, cached.

The genetic search sees parameters and scores only; this module is what turns
a candidate (a dict of parameter values) into tasks on a
:class:`~dasktrain._execution.Backend`:

- the data ``(X, y, fit_params)``, the base estimator, the scorers and the list
  of fold indices are scattered **once per fit**; a task receives their
  futures and the number of its fold, never a copy of the arrays;
- the splits (fold, repeat) of a candidate are fitted and scored by keyed
  tasks (``fit-<candidate key>-<fold>-<repeat>``): one task per split when
  fits are costly, several splits of one candidate per task when they are
  cheap (judged from the splits finished so far), so that the backend's
  per-task cost is paid once for several. A batch of candidates is submitted
  with one ``map`` (one message on Dask) and finished results are gathered
  together. An equal candidate is never evaluated twice: finished results
  are cached on the client (later generations get cache hits) and equal
  candidates within a batch are submitted once;
- for a :class:`~sklearn.pipeline.Pipeline`, a run of leading transformer steps
  whose parameters are shared by several candidates is fitted once per fold as
  its own keyed task (``fit_prefix``); the final tasks depend on its future and
  fit only the remaining steps on the transformed data. Prefix futures are
  released as soon as no submitted candidate needs them;
- every task catches its own errors and returns a small record (scores and
  times, never a fitted estimator); ``eval_timeout`` is enforced inside the task
  while it runs, by running the fit in a daemon thread and waiting for it. A
  split whose thread is still running after the limit reports where it ran
  (:func:`~dasktrain._execution.worker_identity` and the process id), and the
  client recycles that process once (:meth:`~dasktrain._execution.Backend.recycle`),
  since Python cannot stop a thread stuck in native code or in a long sleep.

Functions :func:`fit_and_score_splits` and :func:`fit_prefix_task` are the
tasks (over :func:`fit_and_score` and :func:`fit_prefix`);
:class:`Evaluator` is the client-side bookkeeping.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import threading
import time
import zlib
from collections import OrderedDict, deque
from concurrent.futures import CancelledError
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from .._execution import TaskKilledError, WorkersLostError, worker_identity
from ..space import value_key
from ..utils import random_state_params
from ..utils._gc import with_gc_paused

__all__ = ["STATUS_ERROR", "STATUS_OK", "STATUS_TIMEOUT", "Evaluator", "FittedPrefix",
           "fit_and_score", "fit_and_score_splits", "fit_prefix", "fit_prefix_task"]

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"
#: A task stopped because the whole search ran out of time (``max_time``); never recorded.
STATUS_BUDGET = "budget"

_SEED_MASK = 0x7FFFFFFF


# --------------------------------------------------------------------------- the tasks

@dataclass(frozen=True)
class Settings:
    """What every task of one fit needs besides its candidate and fold (small, picklable)."""

    error_score: object = np.nan
    eval_timeout: float | None = None
    return_train_score: bool = False
    #: With one repeat, only the nested ``random_state`` parameters left at None are seeded.
    seed_unset_only: bool = True
    #: Score the remaining pipeline steps on the prefix's transformed test part.
    score_transformed: bool = True


@dataclass
class FittedPrefix:
    """The fitted leading steps of a pipeline on one fold, with both parts transformed."""

    steps: list
    Xt_train: object
    Xt_test: object
    fit_time: float


@dataclass
class Failure:
    """A prefix task that failed or timed out; its dependent tasks report it."""

    status: str
    error: str
    fit_time: float = 0.0
    #: Where a timed-out fit left its thread running (see :func:`stuck_location`).
    stuck_in: tuple | None = None


class _EvaluationTimeout(Exception):
    """A fit ran past its limit; `stuck_in` says where its thread is still running.

    It holds no thread: it becomes the ``__context__`` of the TimeoutError raised
    with ``error_score="raise"``, which must pickle (with its context, when
    tblib's pickling is installed, as Dask does).
    """

    def __init__(self, message: str, stuck_in: tuple | None = None):
        super().__init__(message, stuck_in)
        self.stuck_in = stuck_in

    def __str__(self) -> str:
        return str(self.args[0])


def stuck_location(thread: threading.Thread) -> tuple | None:
    """``(worker_identity(), pid)`` of this process if `thread` is still running, else None.

    Reported with a timed-out split, so that the client can recycle the process
    that a fit stuck in native code (or in a long sleep) would otherwise keep
    busy for good; the pid tells a restarted worker at the same address apart.
    """
    if not thread.is_alive():
        return None
    return (worker_identity(), os.getpid())


def _take(data, indices):
    """Rows `indices` of an array, sparse matrix, DataFrame/Series or list."""
    if data is None:
        return None
    if hasattr(data, "iloc"):
        return data.iloc[indices]
    if hasattr(data, "shape"):
        return data[indices]
    return [data[i] for i in indices]


def _n_samples(X) -> int:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None else len(X)


def _is_sample_aligned(value, n_samples: int) -> bool:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        return False
    try:
        return _n_samples(value) == n_samples
    except TypeError:
        return False


def _fold_fit_params(fit_params: dict, n_samples: int, indices) -> dict:
    """Fit parameters for one training part: sample-aligned ones are indexed like X."""
    return {name: _take(value, indices) if _is_sample_aligned(value, n_samples) else value
            for name, value in fit_params.items()}


def _params_for_steps(fit_params: dict, step_names) -> dict:
    names = set(step_names)
    return {name: value for name, value in fit_params.items() if name.split("__")[0] in names}


def seed_for(seed: int, name: str) -> int:
    """The seed of the nested ``random_state`` parameter `name` under repeat seed `seed`.

    It depends on the parameter's name only (not on the other steps), so a
    pipeline prefix gets the same seeds whichever candidate it belongs to.
    """
    entropy = [int(seed), zlib.crc32(name.encode("utf-8"))]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0]) & _SEED_MASK


def build_candidate(estimator, params: dict, seed: int | None, seed_unset_only: bool):
    """A fresh clone of `estimator` with the candidate's `params` and its repeat's seeds."""
    candidate = clone(estimator)
    if params:
        candidate.set_params(**clone(params, safe=False))
    if seed is not None:
        current = candidate.get_params(deep=True)
        names = [name for name, value in current.items()
                 if (name == "random_state" or name.endswith("__random_state"))
                 and (value is None or not seed_unset_only)]
        if names:
            candidate.set_params(**{name: seed_for(seed, name) for name in names})
    return candidate


def _run_limited(function, time_limit: float | None):
    """``function()``, in a daemon thread stopped waiting for after `time_limit` seconds."""
    if time_limit is None:
        return function()
    outcome: dict = {}
    config = sklearn.get_config()

    def target():
        try:
            with sklearn.config_context(**config):
                outcome["value"] = function()
        except BaseException as exc:  # handed to the waiting task below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="dasktrain-evaluation", daemon=True)
    thread.start()
    thread.join(time_limit)
    if thread.is_alive():
        raise _EvaluationTimeout(f"timed out after {time_limit:g} s", stuck_location(thread))
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _time_limit(settings: Settings, budget: float | None) -> tuple[float | None, str]:
    """The limit of one task and the status reported when it fires."""
    limits = [limit for limit in (settings.eval_timeout, budget) if limit is not None]
    if not limits:
        return None, STATUS_TIMEOUT
    limit = min(limits)
    if settings.eval_timeout is not None and settings.eval_timeout <= limit:
        return limit, STATUS_TIMEOUT
    return limit, STATUS_BUDGET


def with_params(exc: BaseException, params: dict) -> BaseException:
    """An exception of the same type as `exc` whose message names the candidate."""
    message = f"{exc} (raised while fitting the candidate {params!r})"
    try:
        new = type(exc)(message)
    except Exception:  # an exception type that does not take one message
        exc.add_note(f"Raised while fitting the candidate {params!r}")
        return exc
    new.__cause__ = exc
    new.__traceback__ = exc.__traceback__
    return new


def _scores(estimator, X, y, scorers: dict) -> dict:
    out = {}
    for name, scorer in scorers.items():
        value = scorer(estimator, X) if y is None else scorer(estimator, X, y)
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, numbers.Number):
            raise ValueError(f"The scorer {name!r} must return a number. Got {value!r} instead.")
        out[name] = value
    return out


def _failure_record(status: str, error: str, scorers, settings: Settings,
                    fit_time: float = 0.0, stuck_in: tuple | None = None) -> dict:
    scores = {name: settings.error_score for name in scorers}
    record = {"status": status, "error": error, "test": scores,
              "train": dict(scores) if settings.return_train_score else None,
              "fit_time": fit_time, "score_time": 0.0}
    if stuck_in is not None:
        record["stuck_in"] = stuck_in
    return record


def _timeout_error(message: str, exc: _EvaluationTimeout) -> TimeoutError:
    """The error raised for a timeout with ``error_score="raise"``, saying where its
    thread is stuck (kept when pickled), so that the client still recycles it."""
    error = TimeoutError(message)
    error.stuck_in = exc.stuck_in
    return error


def _fit_and_score(estimator, params, data, fold, seed, scorers, settings, prefix):
    X, y, fit_params = data
    train, test = fold
    model = build_candidate(estimator, params, seed, settings.seed_unset_only)
    y_train, y_test = _take(y, train), _take(y, test)
    train_params = _fold_fit_params(fit_params, _n_samples(X), train)
    if prefix is None:
        X_train = _take(X, train)
        start = time.perf_counter()
        if y is None:
            model.fit(X_train, **train_params)
        else:
            model.fit(X_train, y_train, **train_params)
        fit_time = time.perf_counter() - start
        scored, X_score_test, X_score_train = model, _take(X, test), X_train
    else:
        n_prefix = len(prefix.steps)
        rest = Pipeline(model.steps[n_prefix:])
        rest_params = _params_for_steps(train_params, rest.named_steps)
        start = time.perf_counter()
        if y is None:
            rest.fit(prefix.Xt_train, **rest_params)
        else:
            rest.fit(prefix.Xt_train, y_train, **rest_params)
        fit_time = time.perf_counter() - start + prefix.fit_time
        model.steps = list(prefix.steps) + list(rest.steps)
        if settings.score_transformed:
            scored, X_score_test, X_score_train = rest, prefix.Xt_test, prefix.Xt_train
        else:
            scored, X_score_test, X_score_train = model, _take(X, test), _take(X, train)
    start = time.perf_counter()
    test_scores = _scores(scored, X_score_test, y_test, scorers)
    score_time = time.perf_counter() - start
    train_scores = None
    if settings.return_train_score:
        train_scores = _scores(scored, X_score_train, y_train, scorers)
    return {"status": STATUS_OK, "error": "", "test": test_scores, "train": train_scores,
            "fit_time": fit_time, "score_time": score_time}


def fit_and_score(estimator, params, data, folds, fold, seed, scorers, settings,
                  budget=None, prefix=None) -> dict:
    """Fit one candidate on one training part and score it on the test part (a task).

    Parameters
    ----------
    estimator : estimator
        The unfitted base estimator (scattered once per fit); it is cloned here.
    params : dict
        The candidate's parameter values.
    data : tuple
        ``(X, y, fit_params)``, scattered once per fit.
    folds : list of (train, test) index arrays
        Scattered once per fit; this task uses ``folds[fold]``.
    fold : int
    seed : int or None
        The repeat's seed for nested ``random_state`` parameters.
    scorers : dict
        Metric name -> scorer.
    settings : Settings
    budget : float or None, default=None
        Seconds left of the whole search when the task was submitted.
    prefix : FittedPrefix, Failure or None, default=None
        The fitted leading pipeline steps this task builds on.

    Returns
    -------
    record : dict
        ``status`` ("ok", "error", "timeout"), ``error`` (the reason, "" when
        ok), ``test`` and ``train`` (metric -> score, `error_score` on failure),
        ``fit_time`` and ``score_time`` in seconds; a ``"timeout"`` record
        whose fit is still running in its thread also has ``stuck_in``, where
        that thread runs (see :func:`stuck_location`). Only with
        ``settings.error_score == "raise"`` does a failure raise: the original
        exception type, with the candidate's parameters in its message (a
        :class:`TimeoutError` for a timeout, with the ``stuck_in`` attribute).
    """
    if isinstance(prefix, Failure):
        return _failure_record(prefix.status, prefix.error, scorers, settings, prefix.fit_time,
                               prefix.stuck_in)
    limit, timeout_status = _time_limit(settings, budget)
    start = time.perf_counter()
    try:
        return _run_limited(lambda: _fit_and_score(estimator, params, data, folds[fold], seed,
                                                   scorers, settings, prefix), limit)
    except _EvaluationTimeout as exc:
        if settings.error_score == "raise" and timeout_status == STATUS_TIMEOUT:
            raise _timeout_error(f"The evaluation of the candidate {params!r} on fold {fold} "
                                 f"{exc} (eval_timeout).", exc) from None
        stuck_in = exc.stuck_in if timeout_status == STATUS_TIMEOUT else None
        return _failure_record(timeout_status, str(exc), scorers, settings,
                               time.perf_counter() - start, stuck_in)
    except Exception as exc:
        if settings.error_score == "raise":
            raise with_params(exc, params)
        return _failure_record(STATUS_ERROR, f"{type(exc).__name__}: {exc}", scorers, settings,
                               time.perf_counter() - start)


def _fit_prefix(estimator, params, data, fold, seed, start, stop, settings, parent):
    X, y, fit_params = data
    train, test = fold
    model = build_candidate(estimator, params, seed, settings.seed_unset_only)
    if parent is None:
        X_train, X_test, fitted, spent = _take(X, train), _take(X, test), [], 0.0
    else:
        X_train, X_test, fitted, spent = (parent.Xt_train, parent.Xt_test, list(parent.steps),
                                          parent.fit_time)
    part = Pipeline(model.steps[start:stop])
    part_params = _params_for_steps(_fold_fit_params(fit_params, _n_samples(X), train),
                                    part.named_steps)
    began = time.perf_counter()
    if y is None:
        Xt_train = part.fit_transform(X_train, **part_params)
    else:
        Xt_train = part.fit_transform(X_train, _take(y, train), **part_params)
    Xt_test = part.transform(X_test)
    spent += time.perf_counter() - began
    return FittedPrefix(steps=fitted + list(part.steps), Xt_train=Xt_train, Xt_test=Xt_test,
                        fit_time=spent)


def fit_prefix(estimator, params, data, folds, fold, seed, start, stop, settings,
               budget=None, parent=None):
    """Fit steps ``[start:stop]`` of the candidate pipeline on one training part (a task).

    The steps before `start` come fitted in `parent` (a :class:`FittedPrefix`,
    or None when ``start == 0``). Returns a :class:`FittedPrefix` with the
    fitted steps ``[:stop]`` and the training and test parts transformed by
    them, or a :class:`Failure` that the dependent tasks report (unless
    ``settings.error_score == "raise"``, which raises).
    """
    if isinstance(parent, Failure):
        return parent
    limit, timeout_status = _time_limit(settings, budget)
    began = time.perf_counter()
    try:
        return _run_limited(lambda: _fit_prefix(estimator, params, data, folds[fold], seed,
                                                start, stop, settings, parent), limit)
    except _EvaluationTimeout as exc:
        if settings.error_score == "raise" and timeout_status == STATUS_TIMEOUT:
            raise _timeout_error(f"Fitting the pipeline prefix of the candidate {params!r} on "
                                 f"fold {fold} {exc} (eval_timeout).", exc) from None
        stuck_in = exc.stuck_in if timeout_status == STATUS_TIMEOUT else None
        return Failure(timeout_status, str(exc), time.perf_counter() - began, stuck_in)
    except Exception as exc:
        if settings.error_score == "raise":
            raise with_params(exc, params)
        return Failure(STATUS_ERROR, f"{type(exc).__name__}: {exc}", time.perf_counter() - began)


def fit_and_score_splits(splits, prefixes=None, *, estimator, data, folds, scorers, settings,
                         budget=None) -> list[dict]:
    """Fit and score several (candidate, split) pairs one after the other (a task).

    Cheap fits are batched this way so that one task, one message and one
    result carry several splits: the per-task cost of the backend is paid once.

    Parameters
    ----------
    splits : list of (params, fold, seed)
        What to evaluate, in order.
    prefixes : list of (FittedPrefix, Failure or None) or None, default=None
        The fitted leading steps each split builds on (None: none does).
    estimator, data, folds, scorers, settings
        As for :func:`fit_and_score`, shared by every split.
    budget : float or None, default=None
        Seconds left of the whole search when the task was submitted; the
        splits share it, in order, from the moment the task starts.

    Returns
    -------
    records : list of dict
        One :func:`fit_and_score` record per split, in order.
    """
    began = time.perf_counter()
    if prefixes is None:
        prefixes = [None] * len(splits)
    records = []
    for (params, fold, seed), prefix in zip(splits, prefixes):
        left = None
        if budget is not None:
            left = budget - (time.perf_counter() - began)
            if left <= 0:
                records.append(_failure_record(STATUS_BUDGET, "the search ran out of time",
                                               scorers, settings))
                continue
        records.append(fit_and_score(estimator, params, data, folds, fold, seed, scorers,
                                     settings, left, prefix))
    return records


def fit_prefix_task(params, fold, seed, start, stop, parent=None, *, estimator, data, folds,
                    settings, budget=None):
    """:func:`fit_prefix` with the arguments shared by a batch of prefix tasks as keywords."""
    return fit_prefix(estimator, params, data, folds, fold, seed, start, stop, settings, budget,
                      parent)


# --------------------------------------------------------------------------- the client side

def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]


def default_candidate_key(candidate: dict) -> str:
    """A stable content key of a candidate (used when no other key function is given)."""
    return _hash(value_key(dict(candidate)))


@dataclass
class _Pending:
    key: str
    params: dict
    records: list
    remaining: int


@dataclass
class _Split:
    """One (candidate, split) to evaluate, before it is given to a task."""

    key: str
    params: dict
    split: int
    fold: int
    seed: object
    chain: list  # prefix keys it builds on, shortest first


def combine_records(params: dict, records: list[dict]) -> dict:
    """One candidate's result from its split records (in split order)."""
    failed = [record for record in records if record["status"] != STATUS_OK]
    metrics = list(records[0]["test"])
    result = {
        "params": params,
        "status": failed[0]["status"] if failed else STATUS_OK,
        "error": failed[0]["error"] if failed else "",
        "test": {name: [record["test"][name] for record in records] for name in metrics},
        "train": None,
        "fit_time": [record["fit_time"] for record in records],
        "score_time": [record["score_time"] for record in records],
    }
    if records[0]["train"] is not None:
        result["train"] = {name: [record["train"][name] for record in records]
                           for name in metrics}
    return result


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
    candidate_key : callable, default=None
        Candidate -> stable content key; None uses :func:`default_candidate_key`.
    share_prefixes : bool, default=True
        Fit shared pipeline prefixes once per fold.
    keep_idle_prefixes : int, default=0
        How many prefix futures that no submitted candidate needs are kept (the
        most recently used), for candidates submitted later.
    task_seconds : float, default=0.1
        Cheap splits are batched: the splits of one candidate, or of several
        whole candidates, go to one task until the task is expected to take
        about this long, judged from the fit and score times of the splits
        finished so far (while none has finished, a batch of at least
        ``4 * n_workers`` candidates gets one task per candidate, a smaller one
        a task per split). A task never takes more than a share of the work in
        flight that keeps every worker busy (two tasks per worker). 0 gives
        every split its own task.
    splits_per_task : int or None, default=None
        A fixed number of splits per task instead (None: chosen as above); more
        than a candidate's splits means whole candidates per task.

    Attributes
    ----------
    results : dict
        Candidate key -> result of every candidate evaluated so far (see
        :func:`combine_records`).
    out_of_time : bool
        True once the deadline given to :meth:`submit` or :meth:`wait` passed.
    n_prefix_tasks : int
        Number of prefix tasks submitted so far.
    n_tasks : int
        Number of fit-and-score tasks submitted so far (each covers one or
        more splits).
    n_recycled : int
        Number of worker processes recycled because a timed-out split left its
        fit running there (each process at most once).
    """

    def __init__(self, backend, estimator, X, y, fit_params, folds, scorers, *, repeat_seeds,
                 settings: Settings, candidate_key=None, share_prefixes: bool = True,
                 keep_idle_prefixes: int = 0, task_seconds: float = 0.1,
                 splits_per_task: int | None = None):
        self.backend = backend
        self.settings = settings
        self.repeat_seeds = list(repeat_seeds)
        self.n_folds = len(folds)
        self.n_splits = self.n_folds * len(self.repeat_seeds)
        self.metrics = list(scorers)
        self.candidate_key = candidate_key or default_candidate_key
        self.keep_idle_prefixes = keep_idle_prefixes
        self.task_seconds = float(task_seconds)
        self.splits_per_task = splits_per_task
        self._n_workers = max(1, backend.n_workers)  # asked once: on Dask it is a request
        self._estimator = estimator
        self._steps = None
        if share_prefixes and isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
            self._steps = [name for name, _ in estimator.steps]
        # sent once per fit; every task gets these futures
        self._sent = {"estimator": estimator, "data": (X, y, dict(fit_params)),
                      "folds": list(folds), "scorers": scorers}
        self._shared = {
            "estimator": backend.scatter(estimator, cache=False),
            "data": backend.scatter(self._sent["data"]),
            "folds": backend.scatter(self._sent["folds"]),
        }
        self._scorers_future = backend.scatter(scorers, cache=False)
        self.results: dict[str, dict] = {}
        self.out_of_time = False
        self.n_prefix_tasks = 0
        self.n_tasks = 0
        self._pending: dict[str, _Pending] = {}
        # id(future) -> (future, [(key, split, chain)], whether it is a split run again alone)
        self._owners: dict[int, tuple] = {}
        self._retries: deque = deque()  # (key, split) of killed splits to run again alone
        self._retry_future = None  # the one such split in flight
        self._deadline: float | None = None
        self.n_retries = 0
        self._prefixes: dict[str, list] = {}  # key -> [future, number of waiting splits]
        self._idle: OrderedDict[str, None] = OrderedDict()
        self._contents: dict[str, list | None] = {}  # candidate key -> its prefix contents
        self._cost = [0.0, 0]  # seconds and number of the splits finished (fit + score)
        self._completed = backend.as_completed()
        # (identity, pid) of processes left running a timed-out fit: to recycle, and done
        self._stuck: list[tuple] = []
        self._recycled: set[tuple] = set()
        self.n_recycled = 0

    # ------------------------------------------------------------------ submitting

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
        seconds, count = self._cost
        return seconds / count if count else None

    @with_gc_paused
    def submit(self, candidates, *, context=(), deadline: float | None = None):
        """Submit every candidate not yet evaluated nor in flight, once.

        Parameters
        ----------
        candidates : list of dict
        context : list of dict or str, default=()
            Other candidates (e.g. the population), or the keys of candidates
            already submitted, whose pipeline prefixes are likely to be asked
            for soon: a prefix shared with one of them is fitted as its own task.
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
        planned = self._longest_first(
            list(zip(new.items(), self._plan_prefixes(new, list(context)))))
        # with a deadline, a few candidates at a time, each with the time then left
        step = len(planned) if deadline is None else self._n_workers
        for begin in range(0, len(planned), step):
            if deadline is not None and time.monotonic() >= deadline:
                self.out_of_time = True
                break
            budget = None if deadline is None else max(0.0, deadline - time.monotonic())
            splits: list[list[_Split]] = []
            new_prefixes: list[tuple] = []
            for (key, params), plan in planned[begin:begin + step]:
                self._pending[key] = _Pending(key=key, params=params,
                                              records=[None] * self.n_splits,
                                              remaining=self.n_splits)
                splits.append(self._plan_splits(key, params, plan, new_prefixes))
            self._submit_prefixes(new_prefixes, budget)
            self._submit_splits(splits, budget, len(planned))
        return keys, hits

    def _longest_first(self, planned: list) -> list:
        """Candidates predicted to take longest first, so that a batch ends with short tasks.

        The cost of a new candidate is that of the most similar candidate
        evaluated recently (the fewest parameters that differ, then the
        closest numbers, relative to the values seen). Only worth it when a
        batch has several tasks per worker and they take a while; the results
        do not depend on the order.
        """
        cost = self.split_seconds
        if (cost is None or cost * self.n_splits < self.task_seconds
                or len(planned) < 2 * self._n_workers or not self.results):
            return planned
        recent = list(self.results.values())[-64:]
        spans: dict = {}
        for result in recent:
            for name, value in result["params"].items():
                if _is_number(value):
                    low, high = spans.get(name, (value, value))
                    spans[name] = (min(low, value), max(high, value))
        # numbers spanning orders of magnitude are compared on a log scale
        logs = {name for name, (low, high) in spans.items() if low > 0 and high > 100 * low}
        for name in logs:
            spans[name] = (math.log(spans[name][0]), math.log(spans[name][1]))
        seconds = [float(np.mean(result["fit_time"]) + np.mean(result["score_time"]))
                   for result in recent]

        def position(name, value) -> float:
            return math.log(value) if name in logs and value > 0 else float(value)

        def predicted(params: dict) -> float:
            best, best_distance = cost, None
            for result, spent in zip(recent, seconds):
                other = result["params"]
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

        costs = [predicted(params) for (_, params), _ in planned]
        order = sorted(range(len(planned)), key=lambda index: -costs[index])
        return [planned[index] for index in order]

    def _plan_splits(self, key: str, params: dict, plan: list, new_prefixes: list):
        """The splits of one candidate; the prefix entries it needs are made (to submit)."""
        out = []
        for repeat, seed in enumerate(self.repeat_seeds):
            for fold in range(self.n_folds):
                chain, parent, start = [], None, 0
                for depth, (length, (content, per_repeat)) in enumerate(plan):
                    prefix_key = f"{content}/{fold}/{repeat if per_repeat else 'all'}"
                    entry = self._prefixes.get(prefix_key)
                    if entry is None:
                        entry = self._prefixes[prefix_key] = [None, 0]
                        new_prefixes.append((depth, prefix_key, params, fold, seed, start,
                                             length, parent))
                    entry[1] += 1
                    self._idle.pop(prefix_key, None)
                    chain.append(prefix_key)
                    parent, start = prefix_key, length
                out.append(_Split(key, params, repeat * self.n_folds + fold, fold, seed, chain))
        return out

    def _submit_prefixes(self, new_prefixes: list, budget) -> None:
        """Submit the new prefix tasks, one ``map`` per depth (parents first)."""
        for depth in sorted({item[0] for item in new_prefixes}):
            level = [item for item in new_prefixes if item[0] == depth]
            futures = self._send(lambda: self.backend.map(
                fit_prefix_task,
                [item[2] for item in level], [item[3] for item in level],
                [item[4] for item in level], [item[5] for item in level],
                [item[6] for item in level],
                [None if item[7] is None else self._prefixes[item[7]][0] for item in level],
                keys=[f"prefix-{item[1].replace('/', '-')}" for item in level],
                settings=self.settings, budget=budget, **self._shared))
            for item, future in zip(level, futures):
                self._prefixes[item[1]][0] = future
            self.n_prefix_tasks += len(level)

    def _chunk_size(self, n_candidates: int) -> int:
        """How many splits of a candidate one task evaluates."""
        if self.splits_per_task is not None:
            return max(1, int(self.splits_per_task))
        if self.task_seconds <= 0:
            return 1
        n_workers = self._n_workers
        cost = self.split_seconds
        if cost is None:  # nothing measured yet: batch only when candidates are plenty
            return self.n_splits if n_candidates >= 4 * n_workers else 1
        size = math.ceil(self.task_seconds / max(cost, 1e-6))
        # at least two tasks per worker among those in flight, so that all finish together
        in_flight = max(n_candidates, len(self._pending))  # the new ones are pending
        balanced = max(1, (in_flight * self.n_splits) // (2 * n_workers))
        return max(1, min(size, balanced))

    def _submit_splits(self, splits: list[list[_Split]], budget, n_candidates: int) -> None:
        """Submit the splits of the new candidates in batched tasks, with one ``map``."""
        size = self._chunk_size(n_candidates)
        if size <= self.n_splits:  # a candidate's splits, in one task or several
            chunks = [candidate[start:start + size] for candidate in splits
                      for start in range(0, len(candidate), size)]
        else:  # whole candidates, several per task
            per_task = size // self.n_splits
            chunks = [[split for candidate in splits[start:start + per_task]
                       for split in candidate] for start in range(0, len(splits), per_task)]
        if not chunks:
            return
        payloads, prefixes, keys = [], [], []
        any_prefix = any(split.chain for chunk in chunks for split in chunk)
        for chunk in chunks:
            first = chunk[0]
            payloads.append([(split.params, split.fold, split.seed) for split in chunk])
            if any_prefix:
                prefixes.append([self._prefixes[split.chain[-1]][0] if split.chain else None
                                 for split in chunk])
            repeat = first.split // self.n_folds
            keys.append(f"fit-{first.key}-{first.fold}-{repeat}"
                        + (f"-{len(chunk)}" if len(chunk) > 1 else ""))
        iterables = [payloads, prefixes] if any_prefix else [payloads]
        futures = self._send(lambda: self.backend.map(
            fit_and_score_splits, *iterables, keys=keys, scorers=self._scorers_future,
            settings=self.settings, budget=budget, **self._shared))
        for chunk, future in zip(chunks, futures):
            self._owners[id(future)] = (future, [(split.key, split.split, split.chain)
                                                 for split in chunk], False)
            self._completed.add(future)
        self.n_tasks += len(chunks)

    def _prefix_contents(self, params: dict) -> list | None:
        """Content key of each prefix length 1..n_steps-1 of a candidate, or None."""
        if self._steps is None:
            return None
        owner = {name: index for index, name in enumerate(self._steps)}
        by_step: list[list] = [[] for _ in self._steps]
        for name, value in params.items():
            step = owner.get(name.split("__")[0])
            if step is None:  # a parameter of the pipeline itself: nothing to share
                return None
            by_step[step].append((name, value_key(value)))
        random_steps = self._random_steps(params) if len(self.repeat_seeds) > 1 else None
        contents, items = [], []
        for length in range(1, len(self._steps)):
            items.extend(sorted(by_step[length - 1]))
            per_repeat = random_steps is not None and any(random_steps[:length])
            contents.append((_hash(repr((length, items))), per_repeat))
        return contents

    def _contents_of(self, candidate) -> list | None:
        """Prefix contents of a candidate dict, or of a submitted candidate's key (cached)."""
        if isinstance(candidate, str):
            if candidate not in self._contents:
                known = self.results.get(candidate) or self._pending.get(candidate)
                params = None if known is None else (
                    known["params"] if isinstance(known, dict) else known.params)
                self._contents[candidate] = (None if params is None
                                             else self._prefix_contents(params))
            return self._contents[candidate]
        return self._prefix_contents(candidate)

    def _random_steps(self, params: dict) -> list[bool]:
        model = clone(self._estimator).set_params(**params)
        return [hasattr(step, "get_params") and bool(random_state_params(step))
                for _, step in model.steps]

    def _plan_prefixes(self, candidates: dict, context: list) -> list[list]:
        """For each candidate (key -> params), the prefix lengths fitted as their own tasks."""
        if self._steps is None or not candidates:
            return [[] for _ in candidates]
        contents = []
        for key, params in candidates.items():
            if key not in self._contents:
                self._contents[key] = self._prefix_contents(params)
            contents.append(self._contents[key])
        counts: dict = {}
        for content in contents + [self._contents_of(other) for other in context]:
            for item in content or ():
                counts[item[0]] = counts.get(item[0], 0) + 1
        live = {key.split("/")[0] for key in self._prefixes}
        plans = []
        for content in contents:
            if content is None:
                plans.append([])
                continue
            shared = [counts[item[0]] + (item[0] in live) for item in content]
            lengths = []
            for index, count in enumerate(shared):
                deeper = shared[index + 1] if index + 1 < len(shared) else 0
                if count >= 2 and deeper < count:  # the deepest length with these sharers
                    lengths.append((index + 1, content[index]))
            plans.append(lengths)
        return plans

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
        if not self._owners:
            return []
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            future = self._completed.next(timeout=timeout)
        except TimeoutError:
            self.out_of_time = True
            raise
        done = [future]
        return self._collect_all(done)

    def drain(self) -> list[str]:
        """Collect the results already finished, without waiting."""
        return self._collect_all([])

    def _collect_all(self, done: list) -> list[str]:
        while self._owners:  # whatever else is done already, without waiting
            try:
                done.append(self._completed.next(timeout=0))
            except (TimeoutError, StopIteration):
                break
        done = [future for future in done if id(future) in self._owners]
        finished, released = [], []
        try:
            for future, outcome in zip(done, self._outcomes(done)):
                finished.extend(self._collect(future, outcome, released))
        finally:
            if released:
                self.backend.release(released)
            self.release_idle(self.keep_idle_prefixes)
            self._recycle_stuck()
        return finished

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

        Python cannot stop the thread of a fit stuck in native code (or in a
        long sleep); the process is stopped and replaced instead. The backend
        runs again the other tasks that were running there (within its bounded
        retries), so other candidates' results do not change. This process
        itself is never recycled (the backend refuses it).
        """
        while self._stuck:
            identity, _ = self._stuck.pop(0)
            if self.backend.recycle(identity):
                self.n_recycled += 1

    def _outcomes(self, futures: list) -> list:
        """The result, or the exception, of each finished future: one gather when all ran."""
        if not futures:
            return []
        try:
            return self.backend.gather(futures)
        except (Exception, CancelledError):  # noqa: BLE001 - one failed: take them one by one
            return [_outcome(future) for future in futures]

    def _collect(self, future, outcome, released: list) -> list[str]:
        _, items, alone = self._owners.pop(id(future))
        if alone:
            self._retry_future = None
        if isinstance(outcome, WorkersLostError):  # no split can run: the fit fails
            self.cancel()
            raise outcome
        if isinstance(outcome, TaskKilledError) and not alone:
            # the task died with its worker, maybe for another split of it or of another
            # task (out of memory): each split runs again alone, so only the culprit fails
            released.append(future)
            for key, split, chain in items:
                self._unref(chain)
                if key in self._pending:
                    self._retries.append((key, split))
            self._submit_retry()
            return []
        if isinstance(outcome, BaseException):
            if self.settings.error_score == "raise":
                self._note_stuck(getattr(outcome, "stuck_in", None))
                self.cancel()
                raise outcome
            # a lost worker or a cancelled dependency: the splits failed
            record = _failure_record(STATUS_ERROR, f"{type(outcome).__name__}: {outcome}",
                                     self.metrics, self.settings)
            outcome = [record] * len(items)
        released.append(future)
        finished = []
        for (key, split, chain), record in zip(items, outcome):
            self._unref(chain)
            self._note_stuck(record.get("stuck_in"))
            if record["status"] == STATUS_OK:
                self._cost[0] += record["fit_time"] + record["score_time"]
                self._cost[1] += 1
            pending = self._pending.get(key)
            if pending is None:
                continue
            pending.records[split] = record
            pending.remaining -= 1
            if pending.remaining:
                continue
            del self._pending[key]
            if any(r["status"] == STATUS_BUDGET for r in pending.records):
                self.out_of_time = True
                continue
            self.results[key] = combine_records(pending.params, pending.records)
            finished.append(key)
        self._submit_retry()
        return finished

    def _send(self, send):
        """``send()``; when the scattered data was lost too often to be sent again by the
        backend (every worker holding it died), it is scattered anew and sent once more."""
        try:
            return send()
        except TaskKilledError:
            lost = [*self._shared.values(), self._scorers_future]
            self._shared = {name: self.backend.scatter(self._sent[name], cache=False)
                            for name in self._shared}
            self._scorers_future = self.backend.scatter(self._sent["scorers"], cache=False)
            self.backend.release(lost)
            return send()

    def _submit_retry(self) -> None:
        """Submit the next killed split alone (one at a time, without prefix tasks).

        One at a time, so that a split that kills its worker again takes no
        other split down with it; without the pipeline prefix (it may be what was
        lost), the whole candidate is fitted, which gives the same scores.
        """
        while self._retries and self._retry_future is None:
            key, split = self._retries.popleft()
            pending = self._pending.get(key)
            if pending is None or pending.records[split] is not None:
                continue
            repeat, fold = divmod(split, self.n_folds)
            budget = (None if self._deadline is None
                      else max(0.0, self._deadline - time.monotonic()))
            future = self._send(lambda: self.backend.submit(
                fit_and_score_splits, [(pending.params, fold, self.repeat_seeds[repeat])],
                key=f"fit-{key}-{fold}-{repeat}-alone", scorers=self._scorers_future,
                settings=self.settings, budget=budget, **self._shared))
            self._owners[id(future)] = (future, [(key, split, [])], True)
            self._retry_future = future
            self._completed.add(future)
            self.n_tasks += 1
            self.n_retries += 1

    def _unref(self, chain: list[str]) -> None:
        for prefix_key in chain:
            entry = self._prefixes.get(prefix_key)
            if entry is None:
                continue
            entry[1] -= 1
            if entry[1] <= 0:
                self._idle[prefix_key] = None

    def release_idle(self, keep: int = 0) -> None:
        """Release prefix futures no submitted candidate needs, but the `keep` latest."""
        doomed = []
        while len(self._idle) > keep:
            prefix_key, _ = self._idle.popitem(last=False)
            entry = self._prefixes.pop(prefix_key, None)
            if entry is not None:
                doomed.append(entry[0])
        if doomed:
            self.backend.release(doomed)

    @property
    def live_prefixes(self) -> int:
        """Number of prefix futures held right now."""
        return len(self._prefixes)

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
            except TimeoutError:
                if not self.out_of_time:  # a split's eval_timeout, with error_score="raise"
                    raise
                break
        if self.out_of_time:
            self.drain()
            self.cancel()
        self.release_idle(0)
        return keys, hits

    def cancel(self) -> None:
        """Cancel every task in flight and forget their candidates."""
        futures = [owner[0] for owner in self._owners.values()]
        futures += [entry[0] for entry in self._prefixes.values() if entry[0] is not None]
        if futures:
            self.backend.cancel(futures)
            self.backend.release(futures)
        self._owners.clear()
        self._retries.clear()
        self._retry_future = None
        self._pending.clear()
        self._prefixes.clear()
        self._idle.clear()
        self._completed = self.backend.as_completed()

    def close(self) -> None:
        """Cancel what is in flight and release the scattered data."""
        self.cancel()
        self.backend.release([*self._shared.values(), self._scorers_future])
