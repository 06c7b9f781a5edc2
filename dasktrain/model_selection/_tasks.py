"""The tasks of a search: fit and score a candidate on one split, fit a pipeline prefix.

They run wherever the backend puts them (this process, a local pool, a Dask
worker) and receive the data, the base estimator, the scorers and the folds
as arguments that the backend sent once per fit; a task is given the number
of its fold, never a copy of the arrays. Each returns a small record
(:class:`~dasktrain.model_selection._records.SplitRecord`: scores and times,
never a fitted estimator) and catches its own errors, unless
``error_score="raise"``.

``eval_timeout`` is enforced inside the task while it runs: the fit runs in a
daemon thread that the task stops waiting for at the limit. A split whose
thread is still running after the limit reports where it ran
(:func:`~dasktrain._execution.worker_identity` and the process id), so that
the client can recycle that process: Python cannot stop a thread stuck in
native code or in a long sleep.
"""

from __future__ import annotations

import numbers
import os
import pickle
import threading
import time
import zlib
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from .._execution import carry_thread_limits, worker_identity
from ..utils._data import n_samples, take_rows
from ._records import PrefixFailure, SplitRecord, Status

__all__ = ["FittedPrefix", "Settings", "build_candidate", "fit_and_score",
           "fit_and_score_splits", "fit_prefix", "fit_prefix_task", "seed_for"]

_SEED_MASK = 0x7FFFFFFF


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
    #: The estimator takes a precomputed kernel or distance matrix: split X by rows and columns.
    pairwise: bool = False
    #: Costs measured on each fitted estimator: (name, "model_size" or cost(estimator) -> float).
    costs: tuple = ()


@dataclass
class FittedPrefix:
    """The fitted leading steps of a pipeline on one fold, with both parts transformed."""

    steps: list
    Xt_train: object
    Xt_test: object
    fit_time: float


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

    The pid tells a restarted worker at the same address apart.
    """
    if not thread.is_alive():
        return None
    return (worker_identity(), os.getpid())


# --------------------------------------------------------------------------- splitting data

def split_X(X, rows, columns, pairwise: bool):
    """Rows `rows` of `X`; for a pairwise (kernel or distance) matrix, also columns `columns`.

    As scikit-learn's searches split a precomputed kernel: the training part
    is ``X[train][:, train]`` and the test part ``X[test][:, train]``.
    """
    if not pairwise:
        return take_rows(X, rows)
    if not hasattr(X, "shape"):
        raise ValueError("Precomputed kernels or affinity matrices have to be passed as "
                         "arrays or sparse matrices.")
    if X.shape[0] != X.shape[1]:
        raise ValueError("X should be a square kernel matrix")
    if hasattr(X, "iloc"):
        return X.iloc[rows, columns]
    return X[np.ix_(rows, columns)] if isinstance(X, np.ndarray) else X[rows][:, columns]


def _is_sample_aligned(value, count: int) -> bool:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        return False
    try:
        return n_samples(value) == count
    except TypeError:
        return False


def split_params(params: dict, count: int, indices) -> dict:
    """Fit or score parameters for one part: sample-aligned values are indexed like X."""
    return {name: take_rows(value, indices) if _is_sample_aligned(value, count) else value
            for name, value in params.items()}


def _params_for_steps(fit_params: dict, step_names) -> dict:
    names = set(step_names)
    return {name: value for name, value in fit_params.items() if name.split("__")[0] in names}


# --------------------------------------------------------------------------- candidates

def seed_for(seed: int, name: str) -> int:
    """The seed of the nested ``random_state`` parameter `name` under repeat seed `seed`.

    It depends on the parameter's name only (not on the other steps), so a
    pipeline prefix gets the same seeds whichever candidate it belongs to.
    """
    entropy = [int(seed), zlib.crc32(name.encode("utf-8"))]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0]) & _SEED_MASK


def build_candidate(estimator, params: dict, seed: int | None, seed_unset_only: bool):
    """A fresh clone of `estimator` with the candidate's `params` and its repeat's seeds.

    Parameters that set a step come first and that step's nested parameters
    after it, as scikit-learn's ``set_params`` orders them.
    """
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


# --------------------------------------------------------------------------- time limits

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

    # the task's BLAS/OpenMP limits hold in the thread too (OpenMP counts are per thread)
    thread = threading.Thread(target=carry_thread_limits(target), name="dasktrain-evaluation",
                              daemon=True)
    thread.start()
    thread.join(time_limit)
    if thread.is_alive():
        raise _EvaluationTimeout(f"timed out after {time_limit:g} s", stuck_location(thread))
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _time_limit(settings: Settings, budget: float | None) -> tuple[float | None, Status]:
    """The limit of one task and the status reported when it fires."""
    limits = [limit for limit in (settings.eval_timeout, budget) if limit is not None]
    if not limits:
        return None, Status.TIMEOUT
    limit = min(limits)
    if settings.eval_timeout is not None and settings.eval_timeout <= limit:
        return limit, Status.TIMEOUT
    return limit, Status.BUDGET


def _timeout_error(message: str, exc: _EvaluationTimeout) -> TimeoutError:
    """The error raised for a timeout with ``error_score="raise"``, saying where its
    thread is stuck (kept when pickled), so that the client still recycles it."""
    error = TimeoutError(message)
    error.stuck_in = exc.stuck_in
    return error


# --------------------------------------------------------------------------- scoring

class _ScoringError(Exception):
    """A scorer raised after a successful fit (recorded apart from fit failures)."""


def _number(name: str, value):
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, numbers.Number) or isinstance(value, bool):
        raise ValueError(f"The scorer {name!r} must return a number. Got {value!r} instead.")
    return value


def _scores(estimator, X, y, scorers: dict, score_params: dict) -> dict:
    """Metric -> score; a single callable scorer may return a dict of several metrics."""
    out = {}
    for name, scorer in scorers.items():
        args = (estimator, X) if y is None else (estimator, X, y)
        value = scorer(*args, **score_params)
        if isinstance(value, dict) and len(scorers) == 1:
            return {str(key): _number(str(key), item) for key, item in value.items()}
        out[name] = _number(name, value)
    return out


def failure_record(status: Status, error: str, scorers, settings: Settings,
                   fit_time: float = 0.0, stuck_in: tuple | None = None,
                   fit_failed: bool = True) -> SplitRecord:
    """The record of a split that failed: every metric scores `error_score`."""
    scores = {name: settings.error_score for name in scorers}
    return SplitRecord(status=status, error=error, test=scores,
                       train=dict(scores) if settings.return_train_score else None,
                       fit_time=fit_time, fit_failed=fit_failed, stuck_in=stuck_in)


def model_size(estimator) -> int:
    """Bytes of the pickled fitted `estimator` (the "model_size" cost)."""
    return len(pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL))


def measure_costs(estimator, costs: tuple) -> dict:
    """Cost name -> value of each cost of `costs` on the fitted `estimator`."""
    out = {}
    for name, cost in costs:
        value = model_size(estimator) if cost == "model_size" else cost(estimator)
        out[name] = float(_number(name, value))
    return out


# --------------------------------------------------------------------------- fit and score

def _fit(model, X, y, params):
    if y is None:
        model.fit(X, **params)
    else:
        model.fit(X, y, **params)


def _fit_and_score(estimator, params, data, fold, seed, scorers, settings, prefix):
    X, y, fit_params, score_params = data
    train, test = fold
    count = n_samples(X)
    model = build_candidate(estimator, params, seed, settings.seed_unset_only)
    y_train, y_test = take_rows(y, train), take_rows(y, test)
    train_params = split_params(fit_params, count, train)
    if prefix is None:
        X_train = split_X(X, train, train, settings.pairwise)
        start = time.perf_counter()
        _fit(model, X_train, y_train, train_params)
        fit_time = time.perf_counter() - start
        scored, X_score_train = model, X_train
        X_score_test = split_X(X, test, train, settings.pairwise)
    else:
        rest = Pipeline(model.steps[len(prefix.steps):])
        start = time.perf_counter()
        _fit(rest, prefix.Xt_train, y_train, _params_for_steps(train_params, rest.named_steps))
        fit_time = time.perf_counter() - start + prefix.fit_time
        model.steps = list(prefix.steps) + list(rest.steps)
        if settings.score_transformed:
            scored, X_score_test, X_score_train = rest, prefix.Xt_test, prefix.Xt_train
        else:
            scored, X_score_test, X_score_train = model, take_rows(X, test), take_rows(X, train)
    try:
        costs = measure_costs(model, settings.costs)
    except Exception as exc:
        raise _ScoringError(f"measuring a cost: {type(exc).__name__}: {exc}", fit_time) from exc
    start = time.perf_counter()
    try:
        test_scores = _scores(scored, X_score_test, y_test, scorers,
                              split_params(score_params, count, test))
        train_scores = None
        if settings.return_train_score:
            train_scores = _scores(scored, X_score_train, y_train, scorers,
                                   split_params(score_params, count, train))
    except Exception as exc:
        raise _ScoringError(f"{type(exc).__name__}: {exc}", fit_time) from exc
    return SplitRecord(status=Status.OK, error="", test=test_scores, train=train_scores,
                       fit_time=fit_time, score_time=time.perf_counter() - start, costs=costs)


def fit_and_score(estimator, params, data, folds, fold, seed, scorers, settings,
                  budget=None, prefix=None) -> SplitRecord:
    """Fit one candidate on one training part and score it on the test part (a task).

    Parameters
    ----------
    estimator : estimator
        The unfitted base estimator (sent once per fit); it is cloned here.
    params : dict
        The candidate's parameter values.
    data : tuple
        ``(X, y, fit_params, score_params)``, sent once per fit.
    folds : list of (train, test) index arrays
        Sent once per fit; this task uses ``folds[fold]``.
    fold : int
    seed : int or None
        The repeat's seed for nested ``random_state`` parameters.
    scorers : dict
        Metric name -> scorer; one callable scorer may return a dict of metrics.
    settings : Settings
    budget : float or None, default=None
        Seconds left of the whole search when the task was submitted.
    prefix : FittedPrefix, PrefixFailure or None, default=None
        The fitted leading pipeline steps this task builds on.

    Returns
    -------
    record : SplitRecord
        Only with ``settings.error_score == "raise"`` does a failure raise: the
        original exception type, with the candidate's parameters in its
        message (a :class:`TimeoutError` for a timeout, with the ``stuck_in``
        attribute).
    """
    if isinstance(prefix, PrefixFailure):
        return failure_record(prefix.status, prefix.error, scorers, settings, prefix.fit_time,
                              prefix.stuck_in)
    limit, timeout_status = _time_limit(settings, budget)
    start = time.perf_counter()
    try:
        return _run_limited(lambda: _fit_and_score(estimator, params, data, folds[fold], seed,
                                                   scorers, settings, prefix), limit)
    except _EvaluationTimeout as exc:
        if settings.error_score == "raise" and timeout_status == Status.TIMEOUT:
            raise _timeout_error(f"The evaluation of the candidate {params!r} on fold {fold} "
                                 f"{exc} (eval_timeout).", exc) from None
        stuck_in = exc.stuck_in if timeout_status == Status.TIMEOUT else None
        return failure_record(timeout_status, str(exc), scorers, settings,
                              time.perf_counter() - start, stuck_in)
    except _ScoringError as exc:
        if settings.error_score == "raise":
            raise with_params(exc.__cause__, params)
        return failure_record(Status.ERROR, f"scoring failed: {exc.args[0]}", scorers,
                              settings, exc.args[1], fit_failed=False)
    except Exception as exc:
        if settings.error_score == "raise":
            raise with_params(exc, params)
        return failure_record(Status.ERROR, f"{type(exc).__name__}: {exc}", scorers, settings,
                              time.perf_counter() - start)


def _fit_prefix(estimator, params, data, fold, seed, start, stop, settings, parent):
    X, y, fit_params, _ = data
    train, test = fold
    model = build_candidate(estimator, params, seed, settings.seed_unset_only)
    if parent is None:
        X_train, X_test, fitted, spent = take_rows(X, train), take_rows(X, test), [], 0.0
    else:
        X_train, X_test, fitted, spent = (parent.Xt_train, parent.Xt_test, list(parent.steps),
                                          parent.fit_time)
    part = Pipeline(model.steps[start:stop])
    part_params = _params_for_steps(split_params(fit_params, n_samples(X), train),
                                    part.named_steps)
    began = time.perf_counter()
    if y is None:
        Xt_train = part.fit_transform(X_train, **part_params)
    else:
        Xt_train = part.fit_transform(X_train, take_rows(y, train), **part_params)
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
    them, or a :class:`~dasktrain.model_selection._records.PrefixFailure` that
    the dependent tasks report (unless ``settings.error_score == "raise"``,
    which raises).
    """
    if isinstance(parent, PrefixFailure):
        return parent
    limit, timeout_status = _time_limit(settings, budget)
    began = time.perf_counter()
    try:
        return _run_limited(lambda: _fit_prefix(estimator, params, data, folds[fold], seed,
                                                start, stop, settings, parent), limit)
    except _EvaluationTimeout as exc:
        if settings.error_score == "raise" and timeout_status == Status.TIMEOUT:
            raise _timeout_error(f"Fitting the pipeline prefix of the candidate {params!r} on "
                                 f"fold {fold} {exc} (eval_timeout).", exc) from None
        stuck_in = exc.stuck_in if timeout_status == Status.TIMEOUT else None
        return PrefixFailure(timeout_status, str(exc), time.perf_counter() - began, stuck_in)
    except Exception as exc:
        if settings.error_score == "raise":
            raise with_params(exc, params)
        return PrefixFailure(Status.ERROR, f"{type(exc).__name__}: {exc}",
                             time.perf_counter() - began)


def fit_and_score_splits(splits, prefixes=None, *, estimator, data, folds, scorers, settings,
                         budget=None) -> list[SplitRecord]:
    """Fit and score several (candidate, split) pairs one after the other (a task).

    Cheap fits are batched this way so that one task, one message and one
    result carry several splits: the per-task cost of the backend is paid once.

    Parameters
    ----------
    splits : list of (params, fold, seed)
        What to evaluate, in order.
    prefixes : list of (FittedPrefix, PrefixFailure or None) or None, default=None
        The fitted leading steps each split builds on (None: none does).
    estimator, data, folds, scorers, settings
        As for :func:`fit_and_score`, shared by every split.
    budget : float or None, default=None
        Seconds left of the whole search when the task was submitted; the
        splits share it, in order, from the moment the task starts.

    Returns
    -------
    records : list of SplitRecord
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
                records.append(failure_record(Status.BUDGET, "the search ran out of time",
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
