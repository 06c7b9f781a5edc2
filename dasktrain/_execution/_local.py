"""Run tasks in this process, or in a local pool of worker processes."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from ._base import Backend


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


class LocalBackend(Backend):
    """Run tasks in this process (``n_jobs`` of 1) or in a pool of processes.

    With one job, a task runs as soon as it is submitted and its future is
    already done when :meth:`submit` returns. With more, tasks run in a
    reusable pool of ``n_jobs`` worker processes (joblib's loky executor), each
    starting as soon as the futures it depends on are done.

    Parameters
    ----------
    n_jobs : int or None, default=None
        Number of processes; None means 1 and -1 means all cores (joblib's
        convention).

    Examples
    --------
    >>> from dasktrain._execution._local import LocalBackend
    >>> with LocalBackend() as backend:
    ...     total = backend.tree_reduce(backend.map(abs, [-1, -2, -3]), lambda a, b: a + b)
    ...     total.result()
    6
    """

    name = "local"

    def __init__(self, n_jobs: int | None = None):
        from joblib import effective_n_jobs

        self._n_jobs = max(1, effective_n_jobs(n_jobs))
        self._keyed: dict[str, Future] = {}
        self._executor = None
        self._lock = threading.Lock()

    @property
    def n_workers(self) -> int:
        return self._n_jobs

    def _pool(self):
        if self._executor is None:
            from joblib.externals.loky import get_reusable_executor

            self._executor = get_reusable_executor(max_workers=self._n_jobs)
        return self._executor

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
        if self._n_jobs == 1:
            self._run_inline(future, fn, args, kwargs)
        else:
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

        def start() -> None:
            if future.cancelled():
                return
            try:
                resolved_args, resolved_kwargs = _resolve(args), _resolve(kwargs)
            except BaseException as exc:  # a dependency failed
                future.set_exception(exc)
                return
            task = self._pool().submit(fn, *resolved_args, **resolved_kwargs)
            future._dasktrain_task = task  # so that cancel() reaches the pool
            task.add_done_callback(lambda done: _copy_outcome(done, future))

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

    def cancel(self, futures) -> None:
        for future in futures:
            task = getattr(future, "_dasktrain_task", None)
            if task is not None:
                task.cancel()
            future.cancel()

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
        self._keyed.clear()
