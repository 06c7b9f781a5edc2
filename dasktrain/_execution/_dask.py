"""Run tasks on a Dask cluster. The only module of dasktrain that imports distributed."""

from __future__ import annotations

import os
import threading
import time
import uuid
import weakref
from collections import deque
from typing import Any

import dask
import distributed
from dask.base import tokenize

from . import _base
from ._base import Backend, TaskKilledError, WorkersLostError



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
        ``result``) raises :class:`~dasktrain._execution.WorkersLostError`
        once the cluster has had no worker, or the client no scheduler, for
        this many seconds, instead of waiting forever.

    Notes
    -----
    A task lost with its worker is run again by the scheduler, up to Dask's
    ``distributed.scheduler.allowed-failures`` times, after which its future
    raises :class:`~dasktrain._execution.TaskKilledError` naming the task:
    retries are bounded. The futures returned are :class:`WatchedFuture`
    objects. Closing the backend cancels every task it submitted and releases
    what it scattered, so the scheduler keeps nothing of a fit. Keys given to
    :meth:`submit` are suffixed with a token of this backend's session, so two
    fits never share tasks by accident. This backend never changes Dask's
    configuration and never makes its own client the default one.
    """

    name = "dask"

    def __init__(self, client=None, n_workers: int | None = None, *,
                 worker_timeout: float = 60.0):
        check_client(client)
        self.worker_timeout = float(worker_timeout)
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

    def _watch(self, future, spec=None, remember: bool = True):
        """Make `future` a WatchedFuture of this backend, remembered until close."""
        if isinstance(future, distributed.Future):
            future.__class__ = WatchedFuture
            future._dasktrain_backend = self
            future._dasktrain_spec = spec
            if remember:
                self._live[future.key] = future
        return future

    def _inputs(self, args, kwargs):
        """Arguments whose futures are replaced by the ones made again, if any were."""
        if not self._remade_any:
            return args, kwargs
        return _map_futures(args, _current_future), _map_futures(kwargs, _current_future)

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
                new = self.client.scatter([data], broadcast=broadcast, hash=False)[0]
                new = self._watch(new, spec)
                if token is not None and self._scattered.get(token) is lost:
                    self._scattered[token] = new
            else:
                _, fn, args, kwargs, full_key = spec
                args, kwargs = self._inputs(args, kwargs)
                if full_key is None:
                    new = self.client.submit(fn, *args, pure=False, **kwargs)
                else:
                    new_key = f"{full_key}-again{lost._dasktrain_remade + 1}"
                    new = self.client.submit(fn, *args, key=new_key, **kwargs)
                new = self._watch(new, ("task", fn, args, kwargs, full_key))
                if full_key is not None and self._keyed.get(full_key) is lost:
                    self._keyed[full_key] = new
            new._dasktrain_remade = 0 if is_data else lost._dasktrain_remade + 1
            lost._dasktrain_replacement = new
            return new

    def check_workers(self) -> None:
        """Raise WorkersLostError when no worker (or no scheduler) has been there for
        ``worker_timeout`` seconds; called between short waits."""
        status = self.client.status
        if status in ("closing", "closed"):
            raise WorkersLostError(
                "The Dask client was closed while waiting for tasks; the fit cannot finish."
            )
        n_workers = 0
        if status == "running":
            try:
                identity = self.client.sync(self.client.scheduler.identity, n_workers=0,
                                            callback_timeout=max(1.0, self.worker_timeout / 4))
                n_workers = int(identity.get("n_workers", len(identity.get("workers", {}))))
            except Exception:  # the scheduler does not answer: counts as no worker
                n_workers = 0
        now = time.monotonic()
        if n_workers > 0:
            self._no_workers_since = None
            return
        if self._no_workers_since is None:
            self._no_workers_since = now
        elif now - self._no_workers_since >= self.worker_timeout:
            what = "no worker" if status == "running" else f"no scheduler (client {status})"
            raise WorkersLostError(
                f"The Dask cluster at {self.client.scheduler.address} has had {what} for "
                f"{now - self._no_workers_since:.0f} seconds (worker_timeout="
                f"{self.worker_timeout:g}); its tasks cannot run. Start workers, or check "
                "the cluster, and fit again."
            )

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
        return max(1, sum(self.client.nthreads().values()))

    def scatter(self, data: Any, *, broadcast: bool = False, cache: bool = True):
        token = tokenize(data) if cache else None
        if token is not None and token in self._scattered:
            return self._scattered[token]
        future = self.client.scatter([data], broadcast=broadcast, hash=False)[0]
        future = self._watch(future, ("data", data, broadcast, token))
        if token is not None:
            self._scattered[token] = future
        return future

    def submit(self, fn, *args, key: str | None = None, **kwargs):
        args, kwargs = self._inputs(args, kwargs)
        if key is None:
            future = self.client.submit(fn, *args, pure=False, **kwargs)
            return self._watch(future, ("task", fn, args, kwargs, None))
        full_key = f"{key}-{self._session}"
        future = self._keyed.get(full_key)
        if future is None:
            future = self.client.submit(fn, *args, key=full_key, **kwargs)
            future = self._keyed[full_key] = self._watch(
                future, ("task", fn, args, kwargs, full_key))
        return future

    def map(self, fn, *iterables, keys=None, **kwargs) -> list:
        iterables = [list(items) for items in iterables]
        if not iterables or not iterables[0]:
            return []
        if keys is not None:
            return self._map_keyed(fn, iterables, list(keys), kwargs)
        if self._remade_any:
            iterables = [[_map_futures(item, _current_future) for item in items]
                         for items in iterables]
            kwargs = _map_futures(kwargs, _current_future)
        futures = self.client.map(fn, *iterables, pure=False, **kwargs)
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
                batch = [[_map_futures(item, _current_future) for item in items]
                         for items in batch]
                kwargs = _map_futures(kwargs, _current_future)
            batch_keys = [full_keys[index] for index in todo]
            # The keys are given, so purity decides nothing about them; pure=False
            # spares client.map from tokenizing every argument of every task to
            # name its graph (a third of the cost of submitting 10k tasks).
            futures = self.client.map(fn, *batch, key=batch_keys, pure=False, **kwargs)
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

    def recycle(self, identity, *, timeout: float = 60.0) -> bool:
        """Restart Dask worker `identity` (an address) through its nanny.

        Tasks running there are run again elsewhere by the scheduler (their
        count of failures goes up by one). Returns False when the worker is
        not in the cluster any more or has no nanny to restart it.
        """
        if not isinstance(identity, str):
            return False
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        if identity not in workers or not workers[identity].get("nanny"):
            return False
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
        for store in (self._keyed, self._scattered):
            for name in [name for name, future in store.items() if future.key in ids]:
                del store[name]
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
