"""What every benchmark shares: the machine, repetitions, the 2-worker cluster, results, tables.

A benchmark module is a file ``benchmarks/bench_<name>.py`` exposing
``run(quick: bool) -> dict``. The dict it returns is written by ``run.py`` to
``benchmarks/results/<name>.json`` (with the machine and library versions) and
rendered into ``docs/benchmarks.md``. The keys that ``run.py`` renders:

``title``
    A heading for the section.
``tables``
    A list of ``{"title", "columns", "rows", "notes"}``; each row is a list of
    cells (numbers are formatted, strings shown as they are).
``targets``
    A list of ``{"name", "value", "limit", "kind", "met"}`` where ``kind`` is
    ``"max"`` (value must be at most limit) or ``"min"`` (at least limit).
``notes``
    Free text shown under the tables.

Everything else in the dict (raw measurements) goes to the JSON file only.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO_DIR = BENCH_DIR.parent

#: Distributions whose versions every result records.
LIBRARIES = ("dasktrain", "scikit-learn", "numpy", "scipy", "pandas", "dask", "distributed",
             "dask-ml", "sklearn-genetic-opt", "deap", "joblib")

#: Number of repetitions whose median is reported (full runs; quick runs use fewer).
REPEATS = 3
#: Repetitions of the short fits compared with serial (Repeated, Stacking): single fits
#: of a few seconds vary by 20-30% on this virtual machine (the same serial fit took 3.2 s
#: and 5.1 s in one run), so their medians take more.
SHORT_FIT_REPEATS = 9


def library_versions() -> dict:
    """Installed version of each library in :data:`LIBRARIES` (None when missing)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info() -> dict:
    """Cores, memory, platform and library versions of this machine."""
    info = {
        "logical_cores": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except (ImportError, OSError):
        pass
    info["versions"] = library_versions()
    return info


def median(values: Sequence[float]) -> float:
    """The median of `values`, NaN when there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def repeat(measure: Callable[[int], dict], repeats: int) -> dict:
    """Run ``measure(seed)`` for seeds 0..repeats-1; the median of each numeric field.

    Returns ``{"median": {...}, "runs": [...]}`` where ``runs`` keeps every
    repetition (so a reader can see the spread).
    """
    runs = []
    for seed in range(repeats):
        gc.collect()
        runs.append(measure(seed))
    numeric = [key for key, value in runs[0].items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)]
    return {"median": {key: median([run[key] for run in runs]) for key in numeric},
            "runs": runs}


class Timer:
    """Wall-clock time of a ``with`` block, in ``seconds``."""

    def __enter__(self):
        self._start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc_info):
        self.seconds = time.perf_counter() - self._start


@contextlib.contextmanager
def traced_peak():
    """Peak memory (bytes) allocated by Python in this process during a ``with`` block.

    Yields a dict whose ``"peak_bytes"`` is filled on exit. tracemalloc slows
    Python down, so never time the same run that measures memory.
    """
    out = {"peak_bytes": float("nan")}
    gc.collect()
    tracemalloc.start()
    try:
        yield out
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["peak_bytes"] = peak


def _worker_path() -> None:
    """Make this directory importable by worker processes started from here.

    Tasks that call functions defined in the benchmark modules are pickled by
    reference; the workers of a LocalCluster inherit PYTHONPATH.
    """
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(BENCH_DIR) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), *paths])


@contextlib.contextmanager
def two_worker_cluster(n_workers: int = 2):
    """The cluster dasktrain starts itself: `n_workers` single-threaded workers on 127.0.0.1.

    Yields a :class:`distributed.Client` that is not made the default client;
    the cluster is closed on exit. Dask's configuration is not changed. It is
    the cluster ``use_dask=True`` without a client starts (so its workers keep
    glibc's adaptive malloc: see ``start_local_cluster``), kept for a whole
    benchmark so that start-up is not timed; peers on Dask share it.
    """
    import logging

    from dasktrain._execution import local_cluster_client

    _worker_path()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with local_cluster_client(n_workers) as client:
        client.wait_for_workers(n_workers)
        yield client


@contextlib.contextmanager
def task_stream(client):
    """Record the tasks the cluster of `client` runs during a ``with`` block.

    Yields a dict filled on exit with ``"busy_seconds"`` (sum over tasks of their
    compute time on a worker), ``"tasks"`` and ``"transfer_seconds"``.
    """
    from distributed import get_task_stream

    out = {"busy_seconds": float("nan"), "tasks": 0, "transfer_seconds": 0.0}
    with get_task_stream(client) as stream:
        yield out
    busy = transfer = 0.0
    for record in stream.data:
        for part in record.get("startstops", ()):
            action = part.get("action")
            duration = part["stop"] - part["start"]
            if action == "compute":
                busy += duration
            elif action == "transfer":
                transfer += duration
    out.update(busy_seconds=busy, tasks=len(stream.data), transfer_seconds=transfer)


def write_result(name: str, result: dict) -> Path:
    """Write `result` to ``benchmarks/results/<name>.json`` and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=False, default=_json_default) + "\n")
    tmp.replace(path)
    return path


def read_results() -> dict:
    """Every ``benchmarks/results/*.json``, by name."""
    results = {}
    for path in sorted(RESULTS_DIR.glob("*.json")):
        try:
            results[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            results[path.stem] = {"error": f"unreadable result file: {exc}"}
    return results


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return repr(obj)


def format_cell(value) -> str:
    """A table cell: numbers with 3 significant digits, the rest as text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 100:
            return f"{value:.0f}"
        if magnitude >= 0.01:
            return f"{value:.3g}"
        if magnitude >= 1e-4:
            return f"{value:.4f}"
        return f"{value:.2e}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(columns) + " |",
             "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(columns))) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(format_cell(cell) for cell in row) + " |")
    return "\n".join(lines)


def target(name: str, value: float, limit: float, kind: str = "max") -> dict:
    """A target line: ``kind="max"`` means value <= limit, ``"min"`` value >= limit."""
    met = (value <= limit) if kind == "max" else (value >= limit)
    if value != value:  # NaN: not measured
        met = None
    return {"name": name, "value": value, "limit": limit, "kind": kind, "met": met}


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is missing or zero."""
    try:
        return numerator / denominator if denominator else float("nan")
    except TypeError:
        return float("nan")


def log(message: str) -> None:
    """Progress on stderr, so that a long run shows where it is."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
