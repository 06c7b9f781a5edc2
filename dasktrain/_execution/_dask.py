"""Run tasks on a Dask cluster. The only module of dasktrain that imports distributed."""

from __future__ import annotations

import os
import threading
import time
import uuid
import warnings
import weakref
from collections import deque
from typing import Any

import dask
import distributed
from dask.base import tokenize

from . import _base
from ._base import Backend, SchedulerLostError, TaskKilledError, WorkersLostError
from ._threads import ThreadLimitedTask, validate_task_threads


def _task_killed(exc: BaseException, key) -> TaskKilledError:
    return TaskKilledError(
        f"Task {key!r} was lost: every worker that ran it died while running it (killed, "
        "out of memory, or crashed), and Dask gives up after "
        "distributed.scheduler.allowed-failures retries. The worker logs tell why they died. "
        f"Dask said: {exc}",
        key=key,
    )


#: How long a restart waits for the scheduler to drop results released just before.
RELEASE_WAIT_SECONDS = 5.0
#: Releases older than this have reached the scheduler (they are sent within milliseconds).
RELEASE_MEMORY_SECONDS = 30.0


class WatchedFuture(distributed.Future):
    """A :class:`distributed.Future` whose waits check that workers remain.

    ``result`` and ``exception`` wait in short steps and call the backend's
    heartbeat in between, so they raise
    :class:`~dasktrain._execution.WorkersLostError` when every worker is gone,
    instead of waiting forever; a task lost with its workers too many times
    raises :class:`~dasktrain._execution.TaskKilledError` naming it. A task
    that Dask dropped because data it needed was lost with a worker (scattered
    data lives on one worker) is submitted again, with that data sent again,
    by its backend, and this future then gives the new task's result. On a
    worker (unpickled), it is a plain :class:`distributed.Future`.
    """

    _dasktrain_backend = None
    _dasktrain_spec = None  # how to make it again: ("data", data, broadcast, token) or a task
    _dasktrain_replacement = None  # the future made again after its inputs were lost
    _dasktrain_cancelled = False  # cancelled on purpose (cancel, close): never made again
    _dasktrain_remade = 0

    def _wait_done(self, timeout) -> None:
        if self.done():
            return
        finished = threading.Event()
        self.add_done_callback(lambda _: finished.set())
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _base.HEARTBEAT_SECONDS
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            if finished.wait(wait) or self.done():
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"task {self.key!r} did not finish within {timeout} seconds")
            if self._dasktrain_backend is not None:
                self._dasktrain_backend.check_workers()

    def _is_lost(self) -> bool:
        """Dropped by Dask (its inputs were lost), not cancelled by dasktrain."""
        return (self.status in ("cancelled", "lost") and not self._dasktrain_cancelled
                and self._dasktrain_spec is not None and self._dasktrain_backend is not None)

    def _current(self):
        """This future, or the one that replaced it (made again if it was lost)."""
        future = self
        while future._dasktrain_replacement is not None:
            future = future._dasktrain_replacement
        if future._is_lost():
            future = self._dasktrain_backend._remake(future)
        return future

    def result(self, timeout=None):
        self._wait_done(timeout)
        current = self._current()
        if current is not self:
            return current.result(timeout)
        try:
            return super().result()
        except distributed.KilledWorker as exc:
            raise _task_killed(exc, self.key) from exc

    def exception(self, timeout=None, **kwargs):
        self._wait_done(timeout)
        current = self._current()
        if current is not self:
            return current.exception(timeout, **kwargs)
        exc = super().exception(**kwargs)
        if isinstance(exc, distributed.KilledWorker):
            return _task_killed(exc, self.key)
        return exc


def _map_futures(obj, replace):
    """`obj` with every future inside lists, tuples and dicts passed through `replace`."""
    if isinstance(obj, distributed.Future):
        return replace(obj)
    if isinstance(obj, list):
        return [_map_futures(item, replace) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_map_futures(item, replace) for item in obj)
    if isinstance(obj, dict):
        return {name: _map_futures(item, replace) for name, item in obj.items()}
    return obj


def _current_future(future):
    return future._current() if isinstance(future, WatchedFuture) else future


def check_client(client, owner: str = "estimator") -> None:
    """Raise a clear error unless `client` is None or a running Client."""
    if client is None:
        return
    if not isinstance(client, distributed.Client):
        raise TypeError(
            f"The 'client' parameter of {owner} must be a distributed.Client or None. "
            f"Got {client!r} instead."
        )
    if client.status != "running":
        raise ValueError(
            f"The 'client' parameter of {owner} must be a running distributed.Client. "
            f"Got a Client whose status is {client.status!r}; create a new Client."
        )


_TRIM_CONFIG_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"

#: How dasktrain builds its own temporary cluster, beyond Dask's defaults (see
#: start_local_cluster). Together these take an idle 2-worker cluster from ~14%
#: of one core to ~4%, and the background CPU of 2 workers fitting from ~0.21
#: to ~0.12 of a core: CPU the fits get back when every core computes.
TEMPORARY_CLUSTER_CONFIG = {
    # keep glibc's adaptive mmap threshold: see start_local_cluster
    _TRIM_CONFIG_KEY: None,
    # the event-loop watchdog: 50 wake-ups a second in every server, only to
    # warn about a blocked loop (still warned about, the limit stays 3 s)
    "distributed.admin.tick.interval": "1s",
    # the statistical profiler samples the compute thread's stack 100 times a
    # second, for the dashboard's profile page of a cluster that lives one fit
    "distributed.worker.profile.enabled": False,
    # host CPU/network/disk counters for the dashboard, twice a second
    "distributed.admin.system-monitor.interval": "2s",
}


def start_local_cluster(n_workers: int | None = None):
    """A LocalCluster on 127.0.0.1 and a Client to it (not the default client).

    One single-threaded worker process (with its nanny) per job; None or -1
    means one per core. The dashboard, if bokeh is installed, listens on
    loopback only. Returns ``(cluster, client)``; closing both is the caller's.
    """
    if n_workers is None or n_workers < 1:
        n_workers = os.cpu_count() or 1
    # The settings of TEMPORARY_CLUSTER_CONFIG are read while the cluster is
    # built (nannies keep a copy for their workers), so the override is scoped
    # to building it and Dask's configuration is unchanged afterwards.
    #
    # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536
    # (distributed.nanny.pre-spawn-environ) so that freed memory goes back to
    # the OS. Setting it turns glibc's adaptive mmap threshold off: every
    # array above 128 KiB is then mapped and faulted in afresh, which made an
    # MLPClassifier fit 1.4-1.7x slower in a worker than in this process. The
    # workers of this short-lived cluster keep glibc's defaults; the override
    # is scoped to building it (nannies read it then, and again from what they
    # stored when they restart a worker), and a value the user exported
    # themselves still reaches the workers through the inherited environment.
    with dask.config.set(TEMPORARY_CLUSTER_CONFIG):
        cluster = distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
    try:
        client = distributed.Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


def current_client():
    """The Client this process uses by default, or None when there is none."""
    try:
        return distributed.Client.current(allow_global=True)
    except ValueError:
        return None


#: What :meth:`DaskBackend.recycle` may restart (the ``recycle`` parameter).
RECYCLE_POLICIES = ("own", "always", "never")
#: Seconds for which the number of task slots read from the scheduler is reused.
SLOTS_MAX_AGE = 1.0
#: Longest single attempt to send data; attempts go on until the bounds below.
SCATTER_ATTEMPT_SECONDS = 5.0


def validate_recycle(recycle) -> str:
    if recycle not in RECYCLE_POLICIES:
        raise ValueError(
            "The 'recycle' parameter must be one of 'own', 'always' or 'never'. "
            f"Got {recycle!r} instead."
        )
    return recycle


def _is_serialization_error(exc: BaseException) -> bool:
    return isinstance(exc, TypeError) and bool(exc.args) and \
        str(exc.args[0]).startswith("Could not serialize")


def _raise_error(error):
    """A task that fails with `error` (stands for an input that can no longer be made)."""
    raise error


class DaskBackend(Backend):
    """Run tasks on a Dask cluster.

    Parameters
    ----------
    client : distributed.Client or None, default=None
        The client to use. When None, the current client is used if there is
        one; otherwise a :class:`distributed.LocalCluster` is started on
        127.0.0.1 (one single-threaded worker process per job, dashboard on
        loopback) and closed by :meth:`close`.
    n_workers : int or None, default=None
        Number of worker processes of a LocalCluster started here; None or -1
        means one per core. Ignored when a client exists.
    worker_timeout : float, default=60.0
        Waiting for results (``gather``, ``as_completed``, a future's
        ``result``), and sending data again after a worker holding it died,
        raises :class:`~dasktrain._execution.WorkersLostError` once the
        cluster has had no worker, or the client no scheduler, for this many
        seconds, instead of waiting forever.
    task_threads : "auto", int or False, default="auto"
        The most BLAS/OpenMP threads each task may use. ``"auto"`` gives each
        task one: a Dask worker thread stands for one core (``dask worker``
        and ``LocalCluster`` start as many threads in all as the host has
        cores, and Dask's nanny sets ``OMP_NUM_THREADS=1`` for that reason);
        workers without a nanny get the same limit this way. False leaves
        the libraries as they are.
    recycle : {"own", "always", "never"}, default="own"
        Which workers :meth:`recycle` may restart. ``"own"``: any worker of a
        cluster this backend started; on another cluster, only a worker that
        holds no data and runs no task other than this backend's (a user's
        scattered data, persisted collections and published datasets are never
        lost). ``"always"``: any worker with a nanny. ``"never"``: none.

    Notes
    -----
    A task lost with its worker is run again by the scheduler, up to Dask's
    ``distributed.scheduler.allowed-failures`` times, after which its future
    raises :class:`~dasktrain._execution.TaskKilledError` naming the task:
    retries are bounded. Data scattered by this backend that is lost with its
    worker is sent again from this process, and the tasks Dask dropped for
    lack of it are submitted again; a failed attempt to send it is tried
    again, so that neither ever reaches a task as its error. The futures
    returned are :class:`WatchedFuture` objects. Closing the backend cancels
    every task it submitted and releases what it scattered, so the scheduler
    keeps nothing of a fit. Every key this backend makes ends with a token of
    its session, so two fits never share tasks by accident and the backend can
    tell its own data from others'. This backend never changes Dask's
    configuration and never makes its own client the default one.
    """

    name = "dask"

    def __init__(self, client=None, n_workers: int | None = None, *,
                 worker_timeout: float = 60.0, task_threads="auto", recycle: str = "own"):
        check_client(client)
        self.task_threads = validate_task_threads(task_threads)
        self.recycle_policy = validate_recycle(recycle)
        self.worker_timeout = float(worker_timeout)
        self._threads = 1 if self.task_threads == "auto" else (self.task_threads or None)
        self._no_workers_since: float | None = None
        self._closed = False
        self._cluster = None
        if client is None:
            client = current_client()
        if client is None:
            self._cluster, client = start_local_cluster(n_workers)
        self.client = client
        self._session = uuid.uuid4().hex[:12]
        self._scattered: dict[str, distributed.Future] = {}
        self._keyed: dict[str, distributed.Future] = {}
        # every future this backend made, by key, as long as someone holds it: cancelled on close
        self._live: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._remake_lock = threading.RLock()
        self._remade_any = False
        # (time, key) of the futures released lately: see _await_releases
        self._released: deque[tuple[float, str]] = deque()
        #: times a task dropped because its inputs were lost is submitted again (Dask's bound)
        self.allowed_failures = int(dask.config.get("distributed.scheduler.allowed-failures", 3))
        # keyed names released and submitted again: the new task gets a new Dask key
        self._reissues: dict[str, int] = {}
        self._slots: tuple[float, int] = (-float("inf"), 0)  # (when read, threads)
        self._stuck_left: dict[str, int] = {}  # worker -> threads left stuck there
        self._warned_stuck = False

    # ------------------------------------------------------------------ keys and futures

    def _new_key(self, name: str) -> str:
        return f"{name}-{uuid.uuid4().hex}-{self._session}"

    def _is_own(self, key) -> bool:
        """Whether `key` was made by this backend (every key of it carries its session)."""
        return isinstance(key, str) and self._session in key

    def _dask_key(self, full_key: str) -> str:
        """The Dask key of keyed task `full_key`: itself, or with a suffix once released.

        A released key may still be held by the scheduler (its dependents run, the
        release is on its way); submitting it again with other arguments would give
        Dask one key with two specifications ("Detected different run_spec").
        """
        count = self._reissues.get(full_key)
        return full_key if count is None else f"{full_key}-r{count}"

    def _task(self, fn):
        """`fn` as sent to the workers: with its threads limited, unless asked otherwise."""
        return fn if self._threads is None else ThreadLimitedTask(fn, self._threads)

    def _watch(self, future, spec=None, remember: bool = True):
        """Make `future` a WatchedFuture of this backend, remembered until close."""
        if isinstance(future, distributed.Future):
            future.__class__ = WatchedFuture
            future._dasktrain_backend = self
            future._dasktrain_spec = spec
            if remember:
                self._live[future.key] = future
        return future

    def _current_input(self, future):
        """The future to pass in place of input `future`: itself, the one made again, or,
        when it cannot be made again, a future failing with that TaskKilledError (so that
        submitting never raises; the task that needed it fails with that error)."""
        if not isinstance(future, WatchedFuture):
            return future
        try:
            return future._current()
        except TaskKilledError as exc:
            failed = self.client.submit(_raise_error, exc, key=self._new_key("lost-input"),
                                        pure=False)
            return self._watch(failed, None)

    def _inputs(self, args, kwargs):
        """Arguments whose futures are replaced by the ones made again, if any were."""
        if not self._remade_any:
            return args, kwargs
        return (_map_futures(args, self._current_input),
                _map_futures(kwargs, self._current_input))

    def _remake(self, lost: WatchedFuture) -> WatchedFuture:
        """Submit again a task (or send again data) that Dask dropped with a lost worker."""
        with self._remake_lock:
            if lost._dasktrain_replacement is not None:
                return lost._current()
            spec = lost._dasktrain_spec
            # data never kills a worker: sending it again is not counted as a failure
            is_data = spec[0] == "data"
            if not is_data and lost._dasktrain_remade >= self.allowed_failures:
                raise TaskKilledError(
                    f"Task {lost.key!r} was lost {lost._dasktrain_remade + 1} times: the "
                    "workers running it or holding its inputs died (killed, out of memory, or "
                    f"crashed); giving up after {self.allowed_failures} attempts to run it "
                    "again (distributed.scheduler.allowed-failures).", key=lost.key)
            self._remade_any = True
            if is_data:
                _, data, broadcast, token = spec
                new = self._watch(self._send_data(data, broadcast), spec)
                if token is not None and self._scattered.get(token) is lost:
                    self._scattered[token] = new
            else:
                _, fn, args, kwargs, full_key = spec
                args, kwargs = self._inputs(args, kwargs)
                base = full_key if full_key is not None else lost.key
                new_key = f"{base}-again{lost._dasktrain_remade + 1}"
                new = self.client.submit(self._task(fn), *args, key=new_key, pure=False,
                                         **kwargs)
                new = self._watch(new, ("task", fn, args, kwargs, full_key))
                if full_key is not None and self._keyed.get(full_key) is lost:
                    self._keyed[full_key] = new
            new._dasktrain_remade = 0 if is_data else lost._dasktrain_remade + 1
            lost._dasktrain_replacement = new
            return new

    # ------------------------------------------------------------------ the cluster

    def _scheduler_lost(self, doing: str, exc: BaseException | None = None):
        return SchedulerLostError(
            f"The connection to the Dask scheduler at {self.client.scheduler.address} was lost "
            f"while {doing} (the client's status is {self.client.status!r}): the scheduler is "
            "gone or cannot be reached, and the fit cannot finish. Check the scheduler, "
            "connect a new Client and fit again."
            + (f" The communication error was: {type(exc).__name__}: {exc}" if exc else "")
        )

    def _count_workers(self) -> int:
        """Workers the scheduler has now (0 when it does not answer); notes its threads."""
        if self.client.status != "running":
            return 0
        try:
            identity = self.client.sync(self.client.scheduler.identity, n_workers=0,
                                        callback_timeout=max(1.0, self.worker_timeout / 4))
        except Exception:  # the scheduler does not answer: counts as no worker
            return 0
        n_workers = int(identity.get("n_workers", len(identity.get("workers", {}))))
        self._slots = (time.monotonic(), int(identity.get("total_threads", 0)))
        return n_workers

    def check_workers(self) -> None:
        """Raise WorkersLostError when no worker (or no scheduler) has been there for
        ``worker_timeout`` seconds, SchedulerLostError as soon as the client's connection
        is closed; called between short waits."""
        status = self.client.status
        if status in ("closing", "closed"):
            raise self._scheduler_lost("waiting for tasks")
        n_workers = self._count_workers()
        now = time.monotonic()
        if n_workers > 0:
            self._no_workers_since = None
            return
        if self._no_workers_since is None:
            self._no_workers_since = now
        elif now - self._no_workers_since >= self.worker_timeout:
            if self.client.status != "running" or not self._scheduler_answers():
                raise self._scheduler_lost(
                    f"waiting for tasks: it has not answered for "
                    f"{now - self._no_workers_since:.0f} seconds (worker_timeout="
                    f"{self.worker_timeout:g})")
            raise WorkersLostError(
                f"The Dask cluster at {self.client.scheduler.address} has had no worker for "
                f"{now - self._no_workers_since:.0f} seconds (worker_timeout="
                f"{self.worker_timeout:g}); its tasks cannot run. Start workers, or check "
                "the cluster, and fit again."
            )

    def _scheduler_answers(self) -> bool:
        try:
            self.client.sync(self.client.scheduler.identity, n_workers=0, callback_timeout=2.0)
        except Exception:  # noqa: BLE001 - any failure means no answer
            return False
        return True

    @property
    def owns_cluster(self) -> bool:
        """True when this backend started the cluster it runs on."""
        return self._cluster is not None

    @property
    def dashboard_link(self) -> str | None:
        """Address of the Dask dashboard, when the cluster serves one."""
        try:
            return self.client.dashboard_link
        except Exception:  # no dashboard (bokeh missing or turned off)
            return None

    @property
    def n_workers(self) -> int:
        return self.n_slots

    @property
    def n_slots(self) -> int:
        read_at, threads = self._slots
        if time.monotonic() - read_at > SLOTS_MAX_AGE:
            self._count_workers()
            read_at, threads = self._slots
        if self._stuck_left:
            threads -= sum(self._stuck_left.values())
        return max(1, threads)

    @property
    def threads_per_task(self) -> int | None:
        return self._threads

    # ------------------------------------------------------------------ data

    def _send_data(self, data, broadcast: bool):
        """Scatter `data` under a key of this backend, trying again when an attempt fails.

        Attempts go on while the cluster has no worker, up to ``worker_timeout``
        seconds (then WorkersLostError), and fail at most ``allowed_failures``
        times while workers exist; a lost scheduler raises SchedulerLostError.
        """
        key = self._new_key(type(data).__name__)
        failures = 0
        while True:
            if self.client.status in ("closing", "closed"):
                raise self._scheduler_lost("sending data to the workers")
            try:
                return self.client.scatter({key: data}, broadcast=broadcast, hash=False,
                                           timeout=SCATTER_ATTEMPT_SECONDS)[key]
            except Exception as exc:
                if _is_serialization_error(exc):
                    raise unpicklable_error(data, exc) from None
                if self.client.status != "running":  # e.g. "ConnectionPool is closed"
                    raise self._scheduler_lost("sending data to the workers", exc) from exc
                if not isinstance(exc, OSError):  # CommClosedError, TimeoutError are OSErrors
                    raise
                error = exc
            self.check_workers()  # WorkersLostError after worker_timeout without workers
            if self._no_workers_since is None:  # workers exist: a failure of the attempt
                failures += 1
                if failures > self.allowed_failures:
                    raise WorkersLostError(
                        f"Sending data to the workers of the Dask cluster at "
                        f"{self.client.scheduler.address} failed {failures} times in a row "
                        f"(workers keep dying or cannot be reached); the fit cannot go on. "
                        f"Last error: {type(error).__name__}: {error}") from error
            time.sleep(min(_base.HEARTBEAT_SECONDS, 0.1 * 2 ** failures))

    def scatter(self, data: Any, *, broadcast: bool = False, cache: bool = True):
        """Send `data` to the workers once and return its future.

        A part of `data` that cannot be pickled raises a TypeError naming it,
        before any task is sent. See :meth:`Backend.scatter`.
        """
        token = tokenize(data) if cache else None
        if token is not None and token in self._scattered:
            return self._scattered[token]
        future = self._watch(self._send_data(data, broadcast), ("data", data, broadcast, token))
        if token is not None:
            self._scattered[token] = future
        return future

    # ------------------------------------------------------------------ tasks

    def _submit_or_explain(self, submit, fn, args, kwargs):
        try:
            return submit()
        except TypeError as exc:
            if _is_serialization_error(exc):
                raise unpicklable_error((fn, args, kwargs), exc, what="a task") from None
            raise

    def submit(self, fn, *args, key: str | None = None, **kwargs):
        args, kwargs = self._inputs(args, kwargs)
        if key is None:
            full_key = None
            task_key = self._new_key(_task_name(fn))
        else:
            full_key = task_key = f"{key}-{self._session}"
            future = self._keyed.get(full_key)
            if future is not None:
                return future
        if full_key is not None:
            task_key = self._dask_key(full_key)
        future = self._submit_or_explain(
            lambda: self.client.submit(self._task(fn), *args, key=task_key, pure=False,
                                       **kwargs), fn, args, kwargs)
        future = self._watch(future, ("task", fn, args, kwargs, full_key))
        if full_key is not None:
            self._keyed[full_key] = future
        return future

    def map(self, fn, *iterables, keys=None, **kwargs) -> list:
        iterables = [list(items) for items in iterables]
        if not iterables or not iterables[0]:
            return []
        if keys is not None:
            return self._map_keyed(fn, iterables, list(keys), kwargs)
        if self._remade_any:
            iterables = [[_map_futures(item, self._current_input) for item in items]
                         for items in iterables]
            kwargs = _map_futures(kwargs, self._current_input)
        name = _task_name(fn)
        task_keys = [self._new_key(name) for _ in iterables[0]]
        futures = self._submit_or_explain(
            lambda: self.client.map(self._task(fn), *iterables, key=task_keys, pure=False,
                                    **kwargs), fn, iterables, kwargs)
        return [self._watch(future, ("task", fn, args, kwargs, None))
                for future, args in zip(futures, zip(*iterables))]

    def _map_keyed(self, fn, iterables: list, keys: list, kwargs: dict) -> list:
        """Keyed tasks sent in one ``client.map`` message; known keys are reused."""
        full_keys = [f"{key}-{self._session}" for key in keys]
        todo: list[int] = []
        seen: set[str] = set()
        for index, full_key in enumerate(full_keys):
            if full_key not in self._keyed and full_key not in seen:
                seen.add(full_key)
                todo.append(index)
        if todo:
            batch = [[items[index] for index in todo] for items in iterables]
            if self._remade_any:
                batch = [[_map_futures(item, self._current_input) for item in items]
                         for items in batch]
                kwargs = _map_futures(kwargs, self._current_input)
            batch_keys = [full_keys[index] for index in todo]
            dask_keys = (batch_keys if not self._reissues
                         else [self._dask_key(full_key) for full_key in batch_keys])
            # The keys are given, so purity decides nothing about them; pure=False
            # spares client.map from tokenizing every argument of every task to
            # name its graph (a third of the cost of submitting 10k tasks).
            futures = self._submit_or_explain(
                lambda: self.client.map(self._task(fn), *batch, key=dask_keys, pure=False,
                                        **kwargs), fn, batch, kwargs)
            for full_key, future, args in zip(batch_keys, futures, zip(*batch)):
                self._keyed[full_key] = self._watch(future, ("task", fn, args, kwargs, full_key))
        return [self._keyed[full_key] for full_key in full_keys]

    def gather(self, futures) -> list:
        futures = list(futures)
        while True:
            waiting = self.as_completed([future for future in futures if not future.done()])
            for future in waiting:  # waits with heartbeats; stops at the first error
                if future.status == "error":
                    break
            current = [_current_future(future) for future in futures]
            if all(new is old for new, old in zip(current, futures)):
                break
            futures = current  # some were made again: wait for those
        try:
            return self.client.gather(futures)
        except distributed.KilledWorker as exc:
            lost = next((future.key for future in futures if future.status == "error"
                         and isinstance(distributed.Future.exception(future),
                                        distributed.KilledWorker)), None)
            raise _task_killed(exc, lost) from exc
        except (OSError, RuntimeError) as exc:  # CommClosedError, "ConnectionPool is closed"
            if self.client.status != "running" or not self._scheduler_answers():
                raise self._scheduler_lost("gathering results", exc) from exc
            raise

    def cancel(self, futures, *, force: bool = False) -> None:
        futures = list(futures)
        if not futures:
            return
        stuck: list[str] = []
        if force:
            keys = {future.key for future in futures if not future.done()}
            if keys:
                processing = self.client.processing()
                stuck = [worker for worker, running in processing.items()
                         if keys.intersection(running)]
        for future in futures:
            future._dasktrain_cancelled = True
        self.client.cancel(futures)
        for worker in stuck:
            self.recycle(worker)

    # ------------------------------------------------------------------ recycling

    def _foreign_keys(self, identity: str) -> list:
        """Keys held or being run by worker `identity` that are not this backend's."""
        held = self.client.has_what([identity]).get(identity, ())
        running = self.client.processing([identity]).get(identity, ())
        return [key for key in (*held, *running) if not self._is_own(key)]

    def _leave_stuck(self, identity: str, reason: str) -> None:
        """Count one slot of `identity` lost to a stuck thread, and warn once per backend."""
        self._stuck_left[identity] = self._stuck_left.get(identity, 0) + 1
        if not self._warned_stuck:
            self._warned_stuck = True
            warnings.warn(
                f"dasktrain did not restart the Dask worker {identity}: {reason} The thread "
                "left running a timed-out task stays there until it ends; its slot is counted "
                "lost for this fit and its result is ignored. (Warned once per fit.)",
                RuntimeWarning, stacklevel=3)

    def recycle(self, identity, *, timeout: float = 60.0) -> bool:
        """Restart Dask worker `identity` (an address) through its nanny, if allowed.

        Tasks running there are run again elsewhere by the scheduler (their
        count of failures goes up by one). What may be restarted follows the
        ``recycle`` parameter: with ``"own"`` (the default), on a cluster this
        backend did not start, a worker holding data or running tasks that are
        not this backend's is left alone. A worker left alone (or without a
        nanny) keeps the stuck thread: one slot of it is counted lost
        (:attr:`n_slots`) and a RuntimeWarning says so, once. Returns True
        when the worker was restarted, False otherwise (also when `identity`
        is not a worker of the cluster).
        """
        if not isinstance(identity, str):
            return False
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        if identity not in workers:
            return False
        if self.recycle_policy == "never":
            self._leave_stuck(identity, "recycle='never' was asked.")
            return False
        if not workers[identity].get("nanny"):
            self._leave_stuck(identity, "it has no nanny to start it again.")
            return False
        if self.recycle_policy == "own" and not self.owns_cluster:
            self._await_releases(identity)
            foreign = self._foreign_keys(identity)
            if foreign:
                self._leave_stuck(
                    identity, "it holds data or runs tasks that are not this fit's "
                    f"({len(foreign)} keys, e.g. {foreign[0]!r}), which a restart would "
                    "destroy; pass recycle='always' to allow it.")
                return False
        else:
            self._await_releases(identity)
        try:
            status = self.client.restart_workers([identity], timeout=timeout,
                                                 raise_for_error=False)
        except Exception:  # the restart failed: the worker stays as it is
            return False
        return status.get(identity) == "OK"

    def _await_releases(self, identity: str, timeout: float = RELEASE_WAIT_SECONDS) -> None:
        """Wait until the scheduler has dropped the results released lately from worker
        `identity` (at most `timeout` seconds).

        A release travels on the client's batched stream, a restart on a call of its
        own: the scheduler may see the restart first, find a result still wanted and
        lost, and run its task again on the new worker, where nobody waits for it (a
        stuck fit run again would stay stuck there).
        """
        self._forget_old_releases()
        keys = [key for _, key in self._released]
        deadline = time.monotonic() + timeout
        while keys and time.monotonic() < deadline:
            try:
                holders = self.client.sync(self.client.scheduler.who_has, keys=keys)
            except Exception:  # the scheduler cannot tell: restart as asked
                return
            keys = [key for key in keys if identity in holders.get(key, ())]
            if keys:
                time.sleep(0.02)

    def _forget_old_releases(self) -> None:
        horizon = time.monotonic() - RELEASE_MEMORY_SECONDS
        while self._released and self._released[0][0] < horizon:
            self._released.popleft()

    def release(self, futures) -> None:
        """Forget `futures` so that the cluster can drop their results."""
        chained = []
        for future in futures:
            while future is not None:  # with the futures made again in their place
                chained.append(future)
                future = getattr(future, "_dasktrain_replacement", None)
        futures = chained
        ids = {future.key for future in futures}
        for name in [name for name, future in self._keyed.items() if future.key in ids]:
            del self._keyed[name]
            self._reissues[name] = self._reissues.get(name, 0) + 1
        for name in [name for name, future in self._scattered.items() if future.key in ids]:
            del self._scattered[name]
        now = time.monotonic()
        for future in futures:
            future.release()
            self._released.append((now, future.key))
        self._forget_old_releases()

    def blocks(self, collection) -> list:
        delayed_blocks = collection.to_delayed()
        if hasattr(delayed_blocks, "ravel"):
            delayed_blocks = delayed_blocks.ravel().tolist()
        # not remembered for close: a persisted collection's blocks belong to the user
        return [self._watch(future, remember=False)
                for future in self.client.compute(list(delayed_blocks))]

    def close(self) -> None:
        """Cancel every task of this backend still held, release scattered data, and
        close the cluster it started. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            live = [future for future in list(self._live.values()) if future is not None]
            self._live = weakref.WeakValueDictionary()
            self._scattered.clear()
            self._keyed.clear()
            for future in live:
                future._dasktrain_cancelled = True
            if live and self.client.status == "running":
                try:
                    self.client.cancel(live)
                except Exception:  # the cluster went away: nothing left to release
                    pass
        finally:
            if self._cluster is not None:
                cluster, self._cluster = self._cluster, None
                try:
                    self.client.close()
                finally:
                    cluster.close()


def _task_name(fn) -> str:
    """The name a task of `fn` is shown under (Dask groups tasks by this prefix)."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return str(name).replace("<", "").replace(">", "") or "task"


def _describe(obj) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _parts(obj):
    """(path suffix, part) of the parts of `obj` that pickling it pickles."""
    if isinstance(obj, dict):
        return [(f"[{name!r}]", value) for name, value in obj.items()]
    if isinstance(obj, (list, tuple)):
        return [(f"[{index}]", value) for index, value in enumerate(obj)]
    parts = []
    if hasattr(obj, "get_params") and not isinstance(obj, type):
        try:
            parts = [(f".{name}", value) for name, value in obj.get_params(deep=False).items()]
        except Exception:  # noqa: BLE001 - fall back on the attributes
            parts = []
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        named = {suffix for suffix, _ in parts}
        parts += [(f".{name}", value) for name, value in state.items()
                  if f".{name}" not in named]
    return parts


def _unpicklable_part(obj, path: str, depth: int = 0):
    """(path, part, error) of the innermost part of `obj` that cannot be pickled."""
    import cloudpickle

    try:
        cloudpickle.dumps(obj)
        return None
    except Exception as exc:  # noqa: BLE001 - what pickling says is the answer
        error = exc
    if depth < 8:
        for suffix, part in _parts(obj):
            found = _unpicklable_part(part, path + suffix, depth + 1)
            if found is not None:
                return found
    return path, obj, error


def unpicklable_error(obj, exc: BaseException, what: str | None = None) -> TypeError:
    """A TypeError naming what in `obj` could not be pickled to be sent to the workers."""
    found = _unpicklable_part(obj, "")
    if what is None:
        what = f"the {type(obj).__name__} {_describe(obj)}"
    if found is None:
        detail = f"Dask said: {exc.args[0] if exc.args else exc}"
    else:
        path, part, error = found
        where = f"its part {path}" if path else "it"
        detail = (f"{where} ({type(part).__name__}: {_describe(part)}) cannot be pickled: "
                  f"{type(error).__name__}: {error}")
    return TypeError(
        f"Could not send {what} to the Dask workers: {detail}. Everything a task uses on a "
        "Dask cluster (the estimator, its parameters, the data) is pickled; replace the "
        "object that cannot be pickled (e.g. by one made inside fit), or use use_dask=False."
    )
