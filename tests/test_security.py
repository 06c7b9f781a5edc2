"""Security: the cluster dasktrain starts is loopback-only; a TLS client is used as given."""

from __future__ import annotations

import os

import numpy as np
import psutil
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from dasktrain import RepeatedClassifier
from dasktrain._execution import execution_backend

pytestmark = pytest.mark.cluster

LOOPBACK = ("127.0.0.1", "::1")


def listening_addresses(pid):
    """(host, port) of every listening TCP socket of process `pid` and its children."""
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    found = []
    for process in processes:
        try:
            connections = process.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [conn.laddr for conn in connections if conn.status == psutil.CONN_LISTEN]
    return found


@pytest.mark.timeout(120)
def test_temporary_cluster_listens_on_loopback_only():
    before = set(listening_addresses(os.getpid()))
    with execution_backend(use_dask=True, n_jobs=2) as backend:
        assert backend.owns_cluster
        info = backend.client.scheduler_info(n_workers=-1)
        addresses = [info["address"], *info["workers"],
                     *(worker["nanny"] for worker in info["workers"].values())]
        assert all(address.startswith("tcp://127.0.0.1:") for address in addresses)
        link = backend.dashboard_link
        assert link is None or link.startswith("http://127.0.0.1:")
        # every socket the scheduler, nannies and workers listen on, dashboard included
        opened = set(listening_addresses(os.getpid())) - before
        assert opened, "the cluster should listen somewhere"
        assert all(address.ip in LOOPBACK for address in opened), opened


@pytest.fixture(scope="module")
def tls_client():
    from distributed import Client, LocalCluster
    from distributed.security import Security

    security = Security.temporary()  # a self-signed CA and certificate made here
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, protocol="tls",
                      host="127.0.0.1", security=security, dashboard_address=None) as cluster:
        with Client(cluster, security=security, set_as_default=False) as client:
            yield client


@pytest.mark.timeout(120)
def test_tls_client_is_used_as_given(tls_client):
    assert tls_client.scheduler.address.startswith("tls://")
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    model = RepeatedClassifier(LogisticRegression(), n_repeats=3, random_state=0,
                               use_dask=True, client=tls_client).fit(X, y)
    expected = RepeatedClassifier(LogisticRegression(), n_repeats=3, random_state=0).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), expected.predict_proba(X))
    with execution_backend(use_dask=True, client=tls_client) as backend:
        assert backend.client is tls_client and not backend.owns_cluster
        assert backend.submit(sum, [1, 2, 3]).result() == 6
    assert tls_client.status == "running"  # dasktrain never closes the user's client


def test_tls_cluster_refuses_a_client_without_certificates(tls_client):
    from distributed import Client

    with pytest.raises((OSError, TypeError, ValueError)):
        Client(tls_client.scheduler.address, timeout=3, set_as_default=False)
