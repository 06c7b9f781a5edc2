"""Fixtures: every behaviour test runs once per backend.

``backend`` gives the estimator keyword arguments of one backend:

- ``local``: serial, in this process;
- ``local-n2``: two local worker processes (joblib's loky);
- ``dask-inprocess``: a LocalCluster whose two workers are threads of this process;
- ``dask-processes``: ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

The clusters live for the whole session so that the suite stays fast; tests that
disturb a cluster (killing workers) start their own ``ProcessCluster``.
"""

from __future__ import annotations

import pytest
from _cluster import ProcessCluster

# distributed's own fixtures (a real multi-process cluster for synchronous code)
from distributed.utils_test import (  # noqa: F401
    cleanup,
    client,
    cluster_fixture,
    loop,
    loop_in_thread,
)

BACKENDS = ["local", "local-n2", "dask-inprocess", "dask-processes"]


@pytest.fixture(autouse=True)
def one_blas_thread():
    """One BLAS thread per test process: two cores are shared with the test's workers."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def inprocess_client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        with Client(cluster, set_as_default=False) as dask_client:
            yield dask_client


@pytest.fixture(scope="session")
def process_cluster():
    with ProcessCluster(n_workers=2) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def process_client(process_cluster):
    return process_cluster.client()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Estimator keyword arguments (use_dask, client, n_jobs) for one backend."""
    if request.param == "local":
        return {"use_dask": False, "client": None, "n_jobs": None}
    if request.param == "local-n2":
        return {"use_dask": False, "client": None, "n_jobs": 2}
    if request.param == "dask-inprocess":
        return {"use_dask": True, "client": request.getfixturevalue("inprocess_client"),
                "n_jobs": None}
    return {"use_dask": True, "client": request.getfixturevalue("process_client"),
            "n_jobs": None}
