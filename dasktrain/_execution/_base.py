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
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any


class AsCompleted:
    """Yield futures in the order they finish, accepting new ones while iterating.

    Works with any future that offers ``add_done_callback`` (local futures and
    :class:`distributed.Future` alike), so that one loop serves both backends.

    Parameters
    ----------
    futures : iterable of futures, default=()
        The futures to watch at first; more can be added with :meth:`add`.

    Examples
    --------
    >>> from dasktrain._execution import execution_backend
    >>> with execution_backend() as backend:
    ...     ac = backend.as_completed([backend.submit(pow, 2, 3)])
    ...     [f.result() for f in ac]
    [8]
    """

    def __init__(self, futures: Iterable = ()):
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
        """
        if self.is_empty():
            raise StopIteration
        try:
            future = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no task finished within {timeout} seconds") from None
        with self._lock:
            self._pending -= 1
        return future

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()


class Backend(abc.ABC):
    """Where tasks run: this process (or a local pool) or a Dask cluster.

    A backend is used as a context manager for the duration of one ``fit``;
    leaving it releases the data it scattered, and closes any cluster it
    started.
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
        """Number of tasks that can run at the same time."""

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
        """An :class:`AsCompleted` over `futures`, which accepts more while iterating."""
        return AsCompleted(futures)

    @abc.abstractmethod
    def gather(self, futures: Sequence) -> list:
        """The results of `futures`, in order; the first task error is raised."""

    @abc.abstractmethod
    def cancel(self, futures: Iterable) -> None:
        """Cancel `futures`: pending tasks never start, running ones are stopped
        where the backend can stop them."""

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
