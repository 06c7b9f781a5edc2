"""A real Dask cluster of separate processes on 127.0.0.1, started and stopped by a test.

``dask scheduler`` and ``dask worker`` run as their own processes, exactly as a
user would start them; ports are chosen by the scheduler (``--port 0``) and read
back from its scheduler file, and every process is stopped on exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class ProcessCluster:
    """A ``dask scheduler`` and `n_workers` ``dask worker --nanny`` processes.

    Use as a context manager; ``address`` is the scheduler's address and
    ``client()`` makes a Client to it (not set as default).
    """

    def __init__(self, n_workers: int = 2, *, nthreads: int = 1, nanny: bool = True,
                 memory_limit: str = "0", startup_timeout: float = 60.0,
                 scheduler_args: tuple = (), worker_args: tuple = (),
                 environment: dict | None = None):
        self.n_workers = n_workers
        self.nthreads = nthreads
        self.nanny = nanny
        self.memory_limit = memory_limit
        self.startup_timeout = startup_timeout
        self.scheduler_args = tuple(scheduler_args)
        self.worker_args = tuple(worker_args)
        #: Variables set for every process (a value of None removes the variable).
        self.environment = dict(environment or {})
        self.processes: list[subprocess.Popen] = []
        self.address: str | None = None
        self._tmp = None
        self._client = None

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        log = open(Path(self._tmp.name) / log_name, "wb")
        # the workers import the tests' own modules (estimators and functions defined there)
        tests_dir = str(Path(__file__).resolve().parent)
        python_path = os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path}
        for name, value in self.environment.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        process = subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env, cwd=self._tmp.name,
        )
        log.close()
        self.processes.append(process)
        return process

    def __enter__(self) -> ProcessCluster:
        self._tmp = tempfile.TemporaryDirectory(prefix="dasktrain-cluster-")
        scheduler_file = Path(self._tmp.name) / "scheduler.json"
        try:
            self._spawn(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                         "--scheduler-file", str(scheduler_file), *self.scheduler_args],
                        "scheduler.log")
            deadline = time.monotonic() + self.startup_timeout
            while not scheduler_file.exists() or not scheduler_file.read_text().strip():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"scheduler did not start:\n{self.logs()}")
                time.sleep(0.05)
            time.sleep(0.05)
            self.address = json.loads(scheduler_file.read_text())["address"]
            for index in range(self.n_workers):
                self.add_worker(name=f"w{index}")
            self.client().wait_for_workers(self.n_workers, timeout=self.startup_timeout)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def add_worker(self, name: str | None = None) -> subprocess.Popen:
        """Start one more worker process (with its nanny unless nanny=False)."""
        name = name or f"w{len(self.processes)}"
        args = ["worker", self.address, "--nthreads", str(self.nthreads), "--host", "127.0.0.1",
                "--no-dashboard", "--memory-limit", self.memory_limit, "--name", name,
                "--nanny" if self.nanny else "--no-nanny", *self.worker_args]
        return self._spawn(args, f"worker-{name}.log")

    def client(self):
        """A Client connected to this cluster (one per cluster, not the default client)."""
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, set_as_default=False, timeout=30)
        return self._client

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> pid of the worker process (not its nanny)."""
        return self.client().run(os.getpid)

    def kill_worker_process(self, address: str | None = None) -> int:
        """SIGKILL one worker process (its nanny, if any, restarts it). Returns the pid."""
        pids = self.worker_pids()
        address = address or sorted(pids)[0]
        os.kill(pids[address], signal.SIGKILL)
        return pids[address]

    def logs(self) -> str:
        if self._tmp is None:
            return ""
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(Path(self._tmp.name).glob("*.log")))

    def __exit__(self, *exc_info) -> None:
        if self._client is not None:
            try:
                self._client.close(timeout=10)
            except Exception:
                pass
            self._client = None
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        self.processes.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
