"""Run tasks in this process, or in a local pool of worker processes."""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
import weakref
from concurrent.futures import Future
from typing import Any

from ._base import Backend, TaskKilledError
from ._threads import ThreadLimitedTask, local_pool_threads, validate_task_threads

#: How many times a task is run again after its pool process died (Dask's default too).
ALLOWED_FAILURES = 3


def _is_future(obj) -> bool:
    return isinstance(obj, Future)


def _collect_futures(obj, found: list) -> None:
    if _is_future(obj):
        found.append(obj)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _collect_futures(item, found)
    elif isinstance(obj, dict):
        for item in obj.values():
            _collect_futures(item, found)


def _resolve(obj):
    """Replace futures by their results, inside lists, tuples and dicts too."""
    if _is_future(obj):
        return obj.result()
    if isinstance(obj, list):
        return [_resolve(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(item) for item in obj)
    if isinstance(obj, dict):
        return {name: _resolve(item) for name, item in obj.items()}
    return obj


def _done_future(value=None, exception: BaseException | None = None) -> Future:
    future: Future = Future()
    if exception is None:
        future.set_result(value)
    else:
        future.set_exception(exception)
    return future


def _is_pool_breakage(exc: BaseException | None) -> bool:
    """True when `exc` says the pool lost a process, not that the task itself raised."""
    if exc is None:
        return False
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    return isinstance(exc, TerminatedWorkerError)


def _copy_outcome(source: Future, target: Future) -> None:
    if target.done():  # cancelled by the caller meanwhile
        return
    if source.cancelled():
        target.cancel()
        return
    exception = source.exception()
    if exception is None:
        target.set_result(source.result())
    else:
        target.set_exception(exception)


#: Seconds after which an idle pool process exits (loky's own default, as joblib's).
POOL_IDLE_SECONDS = 300

#: dasktrain's own process pools, one per size, kept between fits (starting one costs
#: seconds) and never shared with joblib: joblib's reusable pool is resized or
#: replaced by any scikit-learn ``n_jobs`` call, and killing a stuck process of it
#: would break joblib for the whole process.
_POOLS: dict = {}
_POOLS_LOCK = threading.Lock()


def _is_broken(executor) -> bool:
    flags = getattr(executor, "_flags", None)
    return flags is None or bool(flags.broken) or bool(flags.shutdown)


def _process_pool(n_jobs: int):
    """The live pool of `n_jobs` processes, made anew when the previous one broke."""
    from joblib.externals.loky import ProcessPoolExecutor

    with _POOLS_LOCK:
        executor = _POOLS.get(n_jobs)
        if executor is None or _is_broken(executor):
            if executor is not None:
                executor.shutdown(wait=False, kill_workers=True)
            executor = _POOLS[n_jobs] = ProcessPoolExecutor(max_workers=n_jobs,
                                                            timeout=POOL_IDLE_SECONDS)
        return executor


@atexit.register
def _shutdown_pools() -> None:
    with _POOLS_LOCK:
        for executor in _POOLS.values():
            executor.shutdown(wait=False, kill_workers=True)
        _POOLS.clear()


class LocalBackend(Backend):
    """Run tasks in this process (``n_jobs`` of 1) or in a pool of processes.

    With one job, a task runs as soon as it is submitted and its future is
    already done when :meth:`submit` returns. With more, or with
    ``isolate=True``, tasks run in a pool of ``n_jobs`` worker processes
    (loky's executor, as vendored by joblib), each starting as soon as the futures
    it depends on are done.

    Parameters
    ----------
    n_jobs : int or None, default=None
        Number of processes; None means 1 and -1 means all cores (joblib's
        convention).
    isolate : bool, default=False
        Run tasks in the pool of processes even with one job, so that a task
        stuck in code that ignores Python (native code) can be stopped by
        :meth:`recycle` or ``cancel(..., force=True)`` without stopping this
        process. Tasks and their arguments must then be picklable.

    Notes
    -----
    When a pool process dies (killed, out of memory, or recycled), loky stops
    the whole pool: every task running in it at that moment fails and is
    submitted again to a new pool, up to ``ALLOWED_FAILURES`` (3) times, as
    Dask does with tasks of a lost worker; after that its future raises
    :class:`~dasktrain._execution.TaskKilledError`. A task cancelled with
    ``force=True`` is not run again. The pool is dasktrain's own, kept between
    fits for each pool size and never shared with joblib's reusable pool, so
    scikit-learn's own ``n_jobs`` in the same process is unaffected.

    Examples
    --------
    >>> from dasktrain._execution._local import LocalBackend
    >>> with LocalBackend() as backend:
    ...     total = backend.tree_reduce(backend.map(abs, [-1, -2, -3]), lambda a, b: a + b)
    ...     total.result()
    6
    """

    name = "local"

    def __init__(self, n_jobs: int | None = None, *, isolate: bool = False,
                 task_threads="auto"):
        from joblib import effective_n_jobs

        self._n_jobs = max(1, effective_n_jobs(n_jobs))
        self.isolate = bool(isolate)
        self._inline = self._n_jobs == 1 and not self.isolate
        self.task_threads = validate_task_threads(task_threads)
        if self.task_threads == "auto":  # this process's own settings stand when inline
            self._threads = None if self._inline else local_pool_threads(self._n_jobs)
        else:
            self._threads = self.task_threads or None
        self._keyed: dict[str, Future] = {}
        self._executor = None
        self._lock = threading.Lock()
        self._in_pool: weakref.WeakSet = weakref.WeakSet()  # futures of tasks sent to the pool
        self._abandoned: list = []  # loky futures cancelled while running: stopped on close

    @property
    def n_workers(self) -> int:
        return self._n_jobs

    @property
    def n_slots(self) -> int:
        """Number of tasks that can run at once: `n_jobs`."""
        return self._n_jobs

    @property
    def runs_in_order(self) -> bool:
        return self._inline

    @property
    def threads_per_task(self) -> int | None:
        """The most BLAS/OpenMP threads a task may use (None: not limited)."""
        return self._threads

    def _pool(self):
        executor = self._executor
        if executor is None or _is_broken(executor):
            # a pool that lost a process is replaced by a new one
            self._executor = _process_pool(self._n_jobs)
        return self._executor

    def _pool_pids(self) -> set[int]:
        processes = getattr(self._executor, "_processes", None) or {}
        return set(processes)

    def scatter(self, data: Any, *, broadcast: bool = False, cache: bool = True) -> Future:
        return _done_future(data)

    def submit(self, fn, *args, key: str | None = None, **kwargs) -> Future:
        if key is not None:
            with self._lock:
                if key in self._keyed:
                    return self._keyed[key]
                future = self._keyed[key] = Future()
        else:
            future = Future()
        if self._threads is not None:
            fn = ThreadLimitedTask(fn, self._threads)
        if self._inline:
            self._run_inline(future, fn, args, kwargs)
        else:
            self._in_pool.add(future)
            self._run_in_pool_when_ready(future, fn, args, kwargs)
        return future

    @staticmethod
    def _run_inline(future: Future, fn, args, kwargs) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = fn(*_resolve(args), **_resolve(kwargs))
        except BaseException as exc:  # the task's error belongs to its future
            future.set_exception(exc)
        else:
            future.set_result(result)

    def _run_in_pool_when_ready(self, future: Future, fn, args, kwargs) -> None:
        dependencies: list[Future] = []
        _collect_futures((args, kwargs), dependencies)
        remaining = [len(dependencies)]
        lock = threading.Lock()

        failures = [0]

        def send(resolved_args, resolved_kwargs) -> None:
            if future.done():  # cancelled meanwhile
                return
            try:
                task = self._pool().submit(fn, *resolved_args, **resolved_kwargs)
            except BaseException as exc:  # the pool could not take it (e.g. unpicklable)
                if not future.done():
                    future.set_exception(exc)
                return
            future._dasktrain_task = task  # so that cancel() reaches the pool
            task.add_done_callback(lambda done: finished(done, resolved_args, resolved_kwargs))

        def finished(done: Future, resolved_args, resolved_kwargs) -> None:
            exception = None if done.cancelled() else done.exception()
            if future.done() or not _is_pool_breakage(exception):
                _copy_outcome(done, future)
                return
            failures[0] += 1
            if failures[0] > ALLOWED_FAILURES:
                error = TaskKilledError(
                    f"Task {getattr(fn, '__name__', fn)!r} was lost {failures[0]} times: the "
                    "local worker process running it died each time (killed, out of memory, "
                    f"crashed or recycled); giving up after {ALLOWED_FAILURES} retries. "
                    f"Last error: {exception}"
                )
                error.__cause__ = exception
                future.set_exception(error)
                return
            # run it again in a new pool; not from this callback's thread (the old pool's)
            threading.Thread(target=send, args=(resolved_args, resolved_kwargs),
                             name="dasktrain-retry", daemon=True).start()

        def start() -> None:
            if future.cancelled():
                return
            try:
                resolved_args, resolved_kwargs = _resolve(args), _resolve(kwargs)
            except BaseException as exc:  # a dependency failed
                future.set_exception(exc)
                return
            send(resolved_args, resolved_kwargs)

        def dependency_done(_) -> None:
            with lock:
                remaining[0] -= 1
                ready = remaining[0] == 0
            if ready:
                start()

        if not dependencies:
            start()
        for dependency in dependencies:
            dependency.add_done_callback(dependency_done)

    def gather(self, futures) -> list:
        return [future.result() for future in futures]

    def cancel(self, futures, *, force: bool = False) -> None:
        running = False
        for future in futures:
            task = getattr(future, "_dasktrain_task", None)
            if task is not None:
                task.cancel()
                if not task.done():  # running (or in loky's call queue): it goes on
                    running = True
                    self._abandoned.append(task)
            future.cancel()
        if force and running:  # which process runs it is unknown: replace the whole pool
            self._kill(*self._pool_pids())

    def recycle(self, identity) -> bool:
        """Kill pool process `identity` (a pid); the pool is replaced on next use.

        Tasks then running in the pool are run again in the new pool (see the
        class Notes). Returns False when `identity` is not a process of the
        pool (this process, or one already gone).
        """
        if isinstance(identity, bool) or not isinstance(identity, int):
            return False
        if identity == os.getpid() or identity not in self._pool_pids():
            return False
        return self._kill(identity)

    def _kill(self, *pids: int, timeout: float = 10.0) -> bool:
        """SIGKILL `pids` of the pool, then wait until loky has marked the pool broken
        (so that no task is sent to the dying pool)."""
        killed = False
        for pid in pids:
            try:
                os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
                killed = True
            except (ProcessLookupError, PermissionError):
                pass
        flags = getattr(self._executor, "_flags", None)
        deadline = time.monotonic() + timeout
        while killed and flags is not None and not (flags.broken or flags.shutdown):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        return killed

    def release(self, futures) -> None:
        doomed = {id(future) for future in futures}
        with self._lock:
            for key in [key for key, future in self._keyed.items() if id(future) in doomed]:
                del self._keyed[key]

    def blocks(self, collection) -> list:
        import dask

        delayed_blocks = collection.to_delayed()
        if hasattr(delayed_blocks, "ravel"):
            delayed_blocks = delayed_blocks.ravel().tolist()
        values = dask.compute(*delayed_blocks, scheduler="sync")
        return [_done_future(value) for value in values]

    def close(self) -> None:
        """Forget keyed tasks and cancel this backend's tasks that have not finished.

        Tasks cancelled while they ran in the pool (here or by an earlier
        :meth:`cancel`) cannot be stopped otherwise: their work is abandoned,
        so the pool's processes are killed rather than left computing for
        nobody (and delaying the next fit), and the next fit starts a new pool.
        """
        with self._lock:
            self._keyed.clear()
        pending = [future for future in list(self._in_pool) if not future.done()]
        self._in_pool = weakref.WeakSet()
        self.cancel(pending)
        abandoned, self._abandoned = self._abandoned, []
        if any(not task.done() for task in abandoned):
            # SIGKILL: loky then marks the pool broken (its shutdown would trip over the
            # futures just cancelled), and the next fit makes a new one
            self._kill(*self._pool_pids())
        self._executor = None
