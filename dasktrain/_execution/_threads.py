"""BLAS and OpenMP threads of a task: limited to the task's share of its worker's cores.

A fit that calls a multi-threaded BLAS (OpenBLAS, MKL) or OpenMP runtime
starts one thread per core by default. Several such fits at once in one
machine (the threads of a Dask worker, several worker processes on one host,
a local pool) then run more threads than there are cores, and each fit is
slower than alone. scikit-learn's joblib limits the threads of its workers for
this reason (loky's ``inner_max_num_threads``), and Dask's nanny starts its
workers with ``OMP_NUM_THREADS=1``; a worker started without a nanny, or by
hand, has no such limit. The backends therefore run every task inside
:func:`thread_limits`, with the limit resolved by :func:`resolve_task_threads`.

Only lowering is done: a library already set to fewer threads (by
``OMP_NUM_THREADS``, the nanny, or the user) keeps its setting. OpenMP thread
counts belong to the calling thread, so each task sets and restores its own.
BLAS thread counts are process-wide: in the threads of a Dask worker process
they are lowered by the first task and stay lowered, as the nanny's
``OMP_NUM_THREADS=1`` would keep them (OpenBLAS does not reliably take back a
count set from another thread, and the tasks of a multi-threaded worker end
in any order); elsewhere (a local pool process, which runs one task at a time
in its main thread; tasks run in the process that submitted them) they are
lowered while at least one task runs and put back when the last one ends.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

#: The Dask configuration key read when ``task_threads`` is not given.
CONFIG_KEY = "dasktrain.task-threads"

_NO_LIMIT_WORDS = ("off", "false", "none", "no")


def _config_value():
    """The configured value; a process that has not loaded Dask (a local fit) reads it only
    when Dask's environment variable for it is set, so that local fits never import Dask."""
    if "dask" not in sys.modules and not any(
            name.upper().startswith("DASK_DASKTRAIN") for name in os.environ):
        return "auto"
    import dask

    return dask.config.get(CONFIG_KEY, "auto")


def validate_task_threads(task_threads, *, name: str = "task_threads"):
    """`task_threads` checked: ``"auto"``, a positive int, or False (no limit).

    None reads the Dask configuration key ``dasktrain.task-threads`` (default
    ``"auto"``); there, ``False``, ``None`` and the words ``"off"``/``"none"``
    mean no limit.
    """
    source = f"The {name!r} parameter"
    if task_threads is None:
        task_threads = _config_value()
        source = f"The Dask configuration value {CONFIG_KEY!r}"
        if task_threads is None:
            return False
    if isinstance(task_threads, str):
        word = task_threads.strip().lower()
        if word == "auto":
            return "auto"
        if word in _NO_LIMIT_WORDS:
            return False
        if word.isdigit() and int(word) >= 1:
            return int(word)
    elif task_threads is False:
        return False
    elif isinstance(task_threads, int) and not isinstance(task_threads, bool) \
            and task_threads >= 1:
        return int(task_threads)
    raise ValueError(
        f"{source} must be 'auto', a positive int, or False (no limit). "
        f"Got {task_threads!r} instead."
    )


def local_pool_threads(n_jobs: int) -> int:
    """The share of this machine's cores of one of `n_jobs` pool processes (joblib's rule)."""
    from joblib import cpu_count

    return max(1, cpu_count() // max(1, n_jobs))


def _load_thread_libraries() -> None:
    """Load the threaded libraries a fit is likely to use, so that the first task of a
    process is limited too (a library loaded while a task runs is limited from the next).

    NumPy's and SciPy's BLAS and scikit-learn's OpenMP runtime; once per process.
    """
    for module in ("numpy", "scipy.linalg", "sklearn.utils._openmp_helpers"):
        try:
            __import__(module)
        except ImportError:
            pass


class _Limiter:
    """The process-wide state of the limits (one per process)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.controller = None
        self.modules_seen = -1
        self.original: dict[str, int] = {}  # BLAS library path -> threads before any task
        self.active: dict[int, int] = {}  # limit -> number of running tasks asking for it
        self.applied: int | None = None  # the BLAS limit in force
        self.saved: dict[str, int] | None = None  # BLAS threads before the running tasks
        self.local = threading.local()

    def _libraries(self):
        """threadpoolctl's controllers of the loaded libraries, scanned again only after
        new modules were imported (a scan costs milliseconds; a task, microseconds)."""
        if self.controller is None:
            _load_thread_libraries()
        n_modules = len(sys.modules)
        if self.controller is None or n_modules != self.modules_seen:
            from threadpoolctl import ThreadpoolController

            self.controller = ThreadpoolController()
            self.modules_seen = n_modules
            for library in self.controller.lib_controllers:
                if library.user_api != "openmp" and library.filepath not in self.original:
                    self.original[library.filepath] = library.num_threads
                    if self.applied is not None and library.num_threads > self.applied:
                        library.set_num_threads(self.applied)
        return self.controller.lib_controllers

    def _apply_blas(self, libraries) -> None:
        """BLAS at the smallest limit of the running tasks; when none runs any more, as it
        was when the first of them started (the user may have changed it in between)."""
        wanted = min(self.active) if self.active else None
        if wanted is not None and self.saved is None:
            self.saved = {}
        for library in libraries:
            if library.user_api == "openmp":
                continue
            if self.saved is not None:
                self.saved.setdefault(library.filepath, library.num_threads)
            before = (self.saved or {}).get(library.filepath, library.num_threads)
            target = before if wanted is None else min(before, wanted)
            if library.num_threads != target:
                library.set_num_threads(target)
        if wanted is None:
            self.saved = None
        self.applied = wanted

    def _apply_blas_for_good(self, libraries, threads: int) -> None:
        """Lower BLAS to `threads` and leave it there (a worker process: see module doc)."""
        self.active.clear()
        for library in libraries:
            if library.user_api != "openmp":
                target = min(self.original.get(library.filepath, library.num_threads), threads)
                if library.num_threads != target:
                    library.set_num_threads(target)
        self.applied = threads

    @contextlib.contextmanager
    def limits(self, threads: int, *, for_good: bool = False):
        with self.lock:
            libraries = self._libraries()
            if for_good:
                self._apply_blas_for_good(libraries, threads)
            else:
                self.active[threads] = self.active.get(threads, 0) + 1
                self._apply_blas(libraries)
        openmp = []
        for library in libraries:
            if library.user_api == "openmp":
                before = library.num_threads  # this thread's own setting
                if before > threads:
                    library.set_num_threads(threads)
                    openmp.append((library, before))
        previous = getattr(self.local, "threads", None)
        self.local.threads = threads
        try:
            yield
        finally:
            self.local.threads = previous
            for library, before in openmp:
                library.set_num_threads(before)
            if not for_good:
                self._leave(threads)

    def _leave(self, threads: int) -> None:
        with self.lock:
            left = self.active[threads] - 1
            if left:
                self.active[threads] = left
            else:
                del self.active[threads]
            self._apply_blas(self.controller.lib_controllers)


_LIMITER = _Limiter()
_LIMITER_PID = os.getpid()


def _limiter() -> _Limiter:
    global _LIMITER, _LIMITER_PID
    if os.getpid() != _LIMITER_PID:  # a forked child starts afresh
        _LIMITER, _LIMITER_PID = _Limiter(), os.getpid()
    return _LIMITER


def thread_limits(threads: int | None):
    """A context manager running its block with BLAS/OpenMP threads at most `threads`.

    None does nothing. Nested and concurrent uses combine: the smallest limit
    of the blocks running in the process applies to BLAS.

    Examples
    --------
    >>> from dasktrain._execution import thread_limits
    >>> with thread_limits(1):
    ...     pass
    """
    if threads is None:
        return contextlib.nullcontext()
    return _limiter().limits(int(threads))


def current_thread_limit() -> int | None:
    """The limit of the task running in this thread (None outside a limited task)."""
    return getattr(_limiter().local, "threads", None)


def carry_thread_limits(function):
    """`function` wrapped to run, in another thread, under this thread's task limit.

    OpenMP thread counts belong to each thread: a task that runs its work in a
    thread of its own (e.g. to enforce a time limit) wraps the work with this,
    in the task's thread, so that the new thread is limited too.
    """
    threads = current_thread_limit()
    if threads is None:
        return function

    def limited(*args, **kwargs):
        with thread_limits(threads):
            return function(*args, **kwargs)

    return limited


class ThreadLimitedTask:
    """A task function run with its threads limited (picklable; what the backends send).

    Parameters
    ----------
    function : callable
    threads : int
        The most BLAS/OpenMP threads the task may use.
    """

    __slots__ = ("client_pid", "function", "threads")

    def __init__(self, function, threads: int, client_pid: int | None = None):
        self.function = function
        self.threads = threads
        self.client_pid = os.getpid() if client_pid is None else client_pid

    def __call__(self, *args, **kwargs):
        # in a thread of a worker process (Dask's), BLAS stays limited between tasks;
        # in a process's main thread (a local pool) or in the process that submitted
        # the task (inline, an in-process cluster) it is put back
        for_good = (os.getpid() != self.client_pid
                    and threading.current_thread() is not threading.main_thread())
        with _limiter().limits(self.threads, for_good=for_good):
            return self.function(*args, **kwargs)

    def __reduce__(self):
        return (ThreadLimitedTask, (self.function, self.threads, self.client_pid))

    @property
    def __name__(self):  # Dask names tasks after their function
        return getattr(self.function, "__name__", type(self.function).__name__)

    def __repr__(self) -> str:
        return f"ThreadLimitedTask({self.function!r}, threads={self.threads})"
