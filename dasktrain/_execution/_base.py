"""The interface of the execution layer: where a piece of work runs.

Estimators describe their work as plain functions and hand them to a
:class:`Backend`; the backend decides whether they run in this process
(:class:`~dasktrain._execution._local.LocalBackend`) or on a Dask cluster
(:class:`~dasktrain._execution._dask.DaskBackend`). Both backends return
futures with the :class:`concurrent.futures.Future` interface (``result``,
``done``, ``exception``, ``cancel``, ``add_done_callback``), and a future may be
passed as an argument of a later task: the later task receives its value.
"""

from __future__ import annotations

import abc
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: Longest single wait between two heartbeats while waiting for tasks (seconds).
HEARTBEAT_SECONDS = 0.5


class WorkersLostError(RuntimeError):
    """No worker has been able to run tasks for longer than the backend's ``worker_timeout``.

    Raised while waiting for results (``gather``, ``AsCompleted.next``,
    ``Future.result`` on the Dask backend) when every worker of the cluster is
    gone, or the connection to the scheduler is lost, so that a fit fails with
    this error instead of waiting forever.
    """


class SchedulerLostError(WorkersLostError):
    """The connection to the Dask scheduler is lost: the scheduler is gone or unreachable.

    A :class:`WorkersLostError` (the fit cannot finish either way), raised
    instead of the communication error of the call that found out (a scatter,
    a gather), with the scheduler's address in its message.
    """


class TaskKilledError(RuntimeError):
    """A task whose worker process died every time it ran it (killed, out of memory, crashed).

    A task lost with its worker is run again, a bounded number of times
    (Dask's ``distributed.scheduler.allowed-failures``, 3 by default; the same
    bound locally); after that its future raises this error, which names the
    task in ``key`` and in its message.
    """

    def __init__(self, message: str, key=None):
        super().__init__(message)
        self.key = key


def worker_identity():
    """Where the calling task runs: a Dask worker's address, else this process id.

    A task can return this value so that the caller can later
    :meth:`Backend.recycle` the process, e.g. when the task left a thread stuck
    in native code. Imports :mod:`distributed` only if this process already
    loaded it.

    Returns
    -------
    identity : str or int
        The address of the Dask worker running the task (``"tcp://..."``), or
        the process id (an int) of the local process running it.

    Examples
    --------
    >>> import os
    >>> worker_identity() == os.getpid()
    True
    """
    if "distributed" in sys.modules:
        from distributed import get_worker

        try:
            return get_worker().address
        except ValueError:  # not inside a Dask task
            pass
    return os.getpid()


class AsCompleted:
    """Yield futures in the order they finish, accepting new ones while iterating.

    Works with any future that offers ``add_done_callback`` (local futures and
    :class:`distributed.Future` alike), so that one loop serves both backends.

    Parameters
    ----------
    futures : iterable of futures, default=()
        The futures to watch at first; more can be added with :meth:`add`.
    heartbeat : callable or None, default=None
        Called with no argument between short waits (every
        ``HEARTBEAT_SECONDS``) while no watched future finishes; it raises
        (e.g. :class:`WorkersLostError`) to stop waiting for work that can no
        longer finish. Backends pass their :meth:`Backend.check_workers`.

    Examples
    --------
    >>> from dasktrain._execution import execution_backend
    >>> with execution_backend() as backend:
    ...     ac = backend.as_completed([backend.submit(pow, 2, 3)])
    ...     [f.result() for f in ac]
    [8]
    """

    def __init__(self, futures: Iterable = (), heartbeat: Callable[[], None] | None = None):
        self._heartbeat = heartbeat
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        for future in futures:
            self.add(future)

    def add(self, future) -> None:
        """Watch one more future."""
        with self._lock:
            self._pending += 1
        future.add_done_callback(self._queue.put)

    def update(self, futures: Iterable) -> None:
        """Watch several more futures."""
        for future in futures:
            self.add(future)

    def count(self) -> int:
        """How many watched futures have not been yielded yet."""
        with self._lock:
            return self._pending

    def is_empty(self) -> bool:
        """True when every watched future has been yielded."""
        return self.count() == 0

    def next(self, timeout: float | None = None):
        """The next finished future, waiting at most `timeout` seconds.

        Raises
        ------
        StopIteration
            When no watched future is left.
        TimeoutError
            When none finished within `timeout` seconds.
        WorkersLostError
            From the heartbeat, when the tasks can no longer run.
        """
        if self.is_empty():
            raise StopIteration
        future = self._wait(timeout)
        with self._lock:
            self._pending -= 1
        return future

    def _wait(self, timeout: float | None):
        if self._heartbeat is None:
            try:
                return self._queue.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no task finished within {timeout} seconds") from None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = HEARTBEAT_SECONDS
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"no task finished within {timeout} seconds") from None
                self._heartbeat()

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()


class Backend(abc.ABC):
    """Where tasks run: this process (or a local pool) or a Dask cluster.

    A backend is used as a context manager for the duration of one ``fit``;
    leaving it, normally or by an exception, releases the tasks and data of
    the fit, and closes any cluster it started. :meth:`close` may be called
    more than once.
    """

    #: Short name of the backend, e.g. ``"local"`` or ``"dask"``.
    name: str = "abstract"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    @abc.abstractmethod
    def n_workers(self) -> int:
        """Number of tasks that can run at the same time (the same as :attr:`n_slots`)."""

    @property
    def n_slots(self) -> int:
        """Number of task slots now: tasks that can run at the same time, at least 1.

        Locally, ``n_jobs``. On Dask, the threads of all the cluster's workers
        as the scheduler counts them now (workers that join or leave count
        from the next call; asked of the scheduler at most once a second),
        less one for each thread left stuck by a timed-out fit on a worker
        that was not recycled (see :meth:`recycle`). Size a bounded queue of
        tasks in flight by it.
        """
        return self.n_workers

    @property
    def runs_in_order(self) -> bool:
        """True when each task runs to its end as it is submitted, one after the other
        (a local backend with ``n_jobs=1``): then nothing in a run depends on timing."""
        return False

    @property
    def threads_per_task(self) -> int | None:
        """The most BLAS/OpenMP threads each task may use (None: not limited).

        See :func:`~dasktrain._execution.execution_backend`'s ``task_threads``.
        """
        return None

    @abc.abstractmethod
    def scatter(self, data: Any, *, broadcast: bool = False, cache: bool = True):
        """Send `data` to where tasks run, once, and return a future of it.

        With ``cache=True`` the data is keyed by its content: scattering equal
        data again within this backend's life returns the same future and sends
        nothing.
        """

    @abc.abstractmethod
    def submit(self, fn: Callable, *args, key: str | None = None, **kwargs):
        """Run ``fn(*args, **kwargs)`` as a task and return its future.

        Futures among `args` and `kwargs` (also inside lists, tuples and dicts)
        are replaced by their results before `fn` runs. With a `key`, a task
        submitted earlier with the same key is reused rather than run again
        (content-addressed tasks).
        """

    def map(self, fn: Callable, *iterables: Iterable, keys: Sequence[str] | None = None,
            **kwargs) -> list:
        """Submit ``fn`` once for each tuple of items of `iterables`."""
        arg_tuples = list(zip(*iterables))
        keys = [None] * len(arg_tuples) if keys is None else list(keys)
        return [self.submit(fn, *args, key=key, **kwargs) for args, key in zip(arg_tuples, keys)]

    def as_completed(self, futures: Iterable = ()) -> AsCompleted:
        """An :class:`AsCompleted` over `futures`, which accepts more while iterating.

        Waiting on it calls :meth:`check_workers` between short waits, so it
        raises :class:`WorkersLostError` rather than wait forever for tasks
        that can no longer run.
        """
        return AsCompleted(futures, heartbeat=self.check_workers)

    def check_workers(self) -> None:
        """Raise :class:`WorkersLostError` when tasks can no longer run.

        Called between short waits while waiting for results. The local
        backend always has its processes, so its check does nothing.
        """

    def recycle(self, identity) -> bool:
        """Stop and replace the worker process `identity` (from :func:`worker_identity`).

        For a process left with a thread stuck in code that ignores Python
        (native code, e.g. a foreign C call). Tasks running there at that time
        are run again elsewhere (Dask) or in the new pool (local), within the
        bounded number of retries. Returns True when a process was recycled,
        False when `identity` is not one of this backend's processes (already
        gone, or this process itself) or cannot be restarted.
        """
        return False

    @abc.abstractmethod
    def gather(self, futures: Sequence) -> list:
        """The results of `futures`, in order; the first task error is raised."""

    @abc.abstractmethod
    def cancel(self, futures: Iterable, *, force: bool = False) -> None:
        """Cancel `futures`: pending tasks never start, running ones are stopped
        where the backend can stop them.

        With ``force=True``, the worker processes still running any of these
        tasks are recycled (see :meth:`recycle`): use it for tasks stuck in
        code that ignores Python, whose thread cannot be stopped otherwise.
        """

    def tree_reduce(self, futures: Sequence, combine: Callable):
        """Reduce `futures` pairwise with ``combine(a, b)`` where the tasks run.

        The reduction takes ``ceil(log2(n))`` rounds; every intermediate result
        stays where the tasks run and only the final future is returned.
        """
        level = list(futures)
        if not level:
            raise ValueError("tree_reduce needs at least one future")
        while len(level) > 1:
            paired = [self.submit(combine, a, b) for a, b in zip(level[::2], level[1::2])]
            if len(level) % 2:
                paired.append(level[-1])
            level = paired
        return level[0]

    @abc.abstractmethod
    def blocks(self, collection) -> list:
        """One future per block of a dask array or dataframe, in order.

        On the Dask backend the blocks are computed on the workers and never
        travel to this process.
        """

    def release(self, futures: Iterable) -> None:
        """Forget `futures` (keyed or scattered) so their results can be dropped."""

    @property
    def dashboard_link(self) -> str | None:
        """Address of a dashboard that shows the tasks, if there is one."""
        return None

    def close(self) -> None:
        """Release what this backend holds (scattered data, a cluster it started)."""
