"""The execution layer: the one place that decides whether work runs here or on Dask.

Estimators obtain a backend with :func:`execution_backend` for the length of a
fit and describe their work as plain functions submitted to it. Nothing else in
dasktrain imports :mod:`distributed`; this package imports it only when a Dask
backend is asked for.
"""

from __future__ import annotations

import contextlib
import sys

from ._base import (
    AsCompleted,
    Backend,
    SchedulerLostError,
    TaskKilledError,
    WorkersLostError,
    worker_identity,
)
from ._local import LocalBackend
from ._threads import CONFIG_KEY as TASK_THREADS_CONFIG_KEY
from ._threads import (
    carry_thread_limits,
    current_thread_limit,
    thread_limits,
    validate_task_threads,
)

__all__ = ["TASK_THREADS_CONFIG_KEY", "AsCompleted", "Backend", "LocalBackend",
           "SchedulerLostError", "TaskKilledError", "WorkersLostError", "carry_thread_limits",
           "check_client", "connect", "current_thread_limit", "execution_backend",
           "is_dask_collection", "local_cluster_client", "thread_limits", "worker_identity"]

RECYCLE_POLICIES = ("own", "always", "never")


def execution_backend(use_dask: bool = False, client=None, n_jobs: int | None = None, *,
                      isolate: bool = False, worker_timeout: float = 60.0,
                      task_threads=None, recycle: str = "own") -> Backend:
    """The backend for one fit; use it as a context manager.

    Parameters
    ----------
    use_dask : bool, default=False
        False runs the work in this process (or in `n_jobs` local processes);
        True runs it on a Dask cluster.
    client : distributed.Client or None, default=None
        With ``use_dask=True``: the client to use; None means the current
        client, else a temporary LocalCluster on 127.0.0.1 closed on exit.
    n_jobs : int or None, default=None
        Local parallelism, or the number of workers of a temporary LocalCluster.
    isolate : bool, default=False
        Local backend only: run tasks in worker processes even with one job,
        so that a task stuck in native code can be stopped (see
        :meth:`Backend.recycle`). The Dask backend always runs tasks apart.
    worker_timeout : float, default=60.0
        Dask backend only: waiting for results raises
        :class:`WorkersLostError` once the cluster has had no worker for this
        many seconds; every wait does, sending lost data again included.
    task_threads : "auto", int, False or None, default=None
        The most BLAS/OpenMP threads (OpenBLAS, MKL, OpenMP, through
        threadpoolctl) each task may use while it runs, whatever the
        cluster (nanny or not, one thread or many per worker). None reads
        the Dask configuration key ``dasktrain.task-threads`` (default
        ``"auto"``; e.g. ``DASK_DASKTRAIN__TASK_THREADS=4`` in the
        environment). ``"auto"``: one per task on Dask (each worker thread
        stands for a core, as Dask's nanny assumes with
        ``OMP_NUM_THREADS=1``), ``cores // n_jobs`` in a local pool (as
        joblib does), and no limit for tasks run in this process
        (``n_jobs=1``). An int: at most that many, everywhere. False: leave
        the libraries as they are. Limits only ever lower a library's setting.
    recycle : {"own", "always", "never"}, default="own"
        Dask backend only: which workers :meth:`Backend.recycle` may restart
        to stop a thread stuck in a timed-out fit. ``"own"``: any worker of
        the temporary cluster; on a cluster of yours, only a worker holding no
        data and running no task other than this fit's, so that your own
        scattered data, persisted collections and published datasets are
        never lost. ``"always"``: any worker with a nanny (your consent to
        lose what it holds). ``"never"``: none. A worker left alone keeps the
        stuck thread; its slot is counted lost (:attr:`Backend.n_slots`), its
        result is ignored, and a RuntimeWarning says so once.

    Returns
    -------
    backend : Backend

    Examples
    --------
    >>> from dasktrain._execution import execution_backend
    >>> with execution_backend(use_dask=False) as backend:
    ...     backend.gather(backend.map(pow, [1, 2, 3], [2, 2, 2]))
    [1, 4, 9]
    """
    task_threads = validate_task_threads(task_threads)
    if recycle not in RECYCLE_POLICIES:
        raise ValueError(
            "The 'recycle' parameter must be one of 'own', 'always' or 'never'. "
            f"Got {recycle!r} instead."
        )
    if not use_dask:
        if client is not None:
            raise ValueError(
                "The 'client' parameter is only used with use_dask=True. Got a client with "
                "use_dask=False; pass use_dask=True to run on that cluster."
            )
        return LocalBackend(n_jobs=n_jobs, isolate=isolate, task_threads=task_threads)
    from ._dask import DaskBackend

    return DaskBackend(client=client, n_workers=n_jobs, worker_timeout=worker_timeout,
                       task_threads=task_threads, recycle=recycle)


def connect(address: str, timeout: float = 30):
    """A :class:`distributed.Client` to the scheduler at `address`, not made the default one.

    For programs (the command line) that are given an address rather than a Client.
    """
    from distributed import Client

    return Client(address, set_as_default=False, timeout=timeout)


@contextlib.contextmanager
def local_cluster_client(n_workers: int | None = None):
    """A Client to a temporary loopback LocalCluster, closed on exit.

    For programs that fit several estimators on one cluster (the demo): pass
    the client to each with ``use_dask=True, client=client``.
    """
    from ._dask import start_local_cluster

    cluster, client = start_local_cluster(n_workers)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def check_client(client, owner: str = "estimator") -> None:
    """Raise TypeError/ValueError naming 'client' unless it is None or a running Client.

    Runs before any work is sent; imports nothing when `client` is None.
    """
    if client is None:
        return
    if "distributed" not in sys.modules:
        raise TypeError(
            f"The 'client' parameter of {owner} must be a distributed.Client or None. "
            f"Got {client!r} instead."
        )
    from ._dask import check_client as check_dask_client

    check_dask_client(client, owner)


def is_dask_collection(obj) -> bool:
    """True for a dask array, dataframe or series (without importing dask otherwise)."""
    if "dask" not in sys.modules:
        return False
    from dask.base import is_dask_collection as _is_collection

    return _is_collection(obj)
