"""Run tasks on a Dask cluster. The only module of dasktrain that imports distributed."""

from __future__ import annotations

import os
import uuid
from typing import Any

import distributed
from dask.base import tokenize

from ._base import Backend


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

    Notes
    -----
    A task lost with its worker is run again by the scheduler, up to Dask's
    ``distributed.scheduler.allowed-failures`` times, after which its future
    raises :class:`distributed.KilledWorker`: retries are bounded. Keys given to
    :meth:`submit` are suffixed with a token of this backend's session, so two
    fits never share tasks by accident. This backend never changes Dask's
    configuration and never makes its own client the default one.
    """

    name = "dask"

    def __init__(self, client=None, n_workers: int | None = None):
        check_client(client)
        self._cluster = None
        if client is None:
            client = current_client()
        if client is None:
            if n_workers is None or n_workers < 1:
                n_workers = os.cpu_count() or 1
            self._cluster = distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                silence_logs=False,
            )
            client = distributed.Client(self._cluster, set_as_default=False)
        self.client = client
        self._session = uuid.uuid4().hex[:12]
        self._scattered: dict[str, distributed.Future] = {}
        self._keyed: dict[str, distributed.Future] = {}

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
        if token is not None:
            self._scattered[token] = future
        return future

    def submit(self, fn, *args, key: str | None = None, **kwargs):
        if key is None:
            return self.client.submit(fn, *args, pure=False, **kwargs)
        full_key = f"{key}-{self._session}"
        future = self._keyed.get(full_key)
        if future is None:
            future = self._keyed[full_key] = self.client.submit(fn, *args, key=full_key, **kwargs)
        return future

    def map(self, fn, *iterables, keys=None, **kwargs) -> list:
        iterables = [list(items) for items in iterables]
        if not iterables or not iterables[0]:
            return []
        if keys is not None:
            return super().map(fn, *iterables, keys=keys, **kwargs)
        return self.client.map(fn, *iterables, pure=False, **kwargs)

    def gather(self, futures) -> list:
        return self.client.gather(list(futures))

    def cancel(self, futures) -> None:
        futures = list(futures)
        if futures:
            self.client.cancel(futures)

    def release(self, futures) -> None:
        """Forget `futures` so that the cluster can drop their results."""
        ids = {future.key for future in futures}
        for store in (self._keyed, self._scattered):
            for name in [name for name, future in store.items() if future.key in ids]:
                del store[name]
        for future in futures:
            future.release()

    def blocks(self, collection) -> list:
        delayed_blocks = collection.to_delayed()
        if hasattr(delayed_blocks, "ravel"):
            delayed_blocks = delayed_blocks.ravel().tolist()
        return self.client.compute(list(delayed_blocks))

    def close(self) -> None:
        self._scattered.clear()
        self._keyed.clear()
        if self._cluster is not None:
            self.client.close()
            self._cluster.close()
            self._cluster = None
