"""Big clusters (issue 17): keeping 100 and 400 slots busy, and fits that do not oversubscribe.

1. Simulated scale. Fits that sleep 1 s cost no CPU, so one 2-core machine can
   stand for a big cluster: 4 worker processes x 25 threads (100 slots,
   population 200) and 8 x 50 (400 slots, population 800), 2-fold CV, for the
   generational and the steady-state strategy of the public GeneticSearchCV;
   generational at 100 slots also on a scheduler started with
   ``distributed.scheduler.worker-saturation: 1.0``.
   Busy = (fits x 1 s) / (slots x wall time of fit); for generational also the
   straggler bound, the best a barrier per generation allows (every wave of
   `slots` fits takes 1 s, the last one of a generation may be partly empty).
   Each run also notes the CPU seconds per evaluation of the client's process
   (dasktrain and, in a LocalCluster, Dask's scheduler) and of the worker
   processes, and the same for a bare ``client.map`` of as many sleeping
   tasks submitted at once (Dask alone). On one machine every slot shares its
   cores, so busy cannot exceed the CPU ceiling: cores / (CPU seconds per
   evaluation x evaluations per second the slots need). At 400 slots the
   simulation is also run with fits that sleep 4 s, which need a quarter of
   the evaluation rate, to show the engine where this machine is not the limit.
2. Oversubscription, with real fits (StandardScaler -> PCA -> SVC
   cross-validation): two at a time on two ``dask worker --nthreads 1``
   processes started by hand without a nanny (so without OMP_NUM_THREADS=1),
   with dasktrain's per-task thread limit (the default) and without it
   (``task_threads=False``), against the same on nanny workers, and one fit
   alone on a nanny worker. Each figure is the median over repetitions of the
   time of one fit measured inside its task; the ratios are within one run.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from contextlib import contextmanager

import numpy as np
from _common import REPO_DIR, Timer, _worker_path, log, median, ratio, target
from sklearn.base import BaseEstimator, ClassifierMixin

SLEEP_SECONDS = 1.0
N_FOLDS = 2
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class SleepingClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose fit sleeps (a slot busy without CPU); predicts the first class."""

    def __init__(self, alpha=1.0, seconds=SLEEP_SECONDS):
        self.alpha = alpha
        self.seconds = seconds

    def fit(self, X, y):
        time.sleep(self.seconds)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


# --------------------------------------------------------------------------- 1. scale

@contextmanager
def _thread_cluster(n_processes: int, n_threads: int, worker_saturation: float | None = None):
    """A LocalCluster of `n_processes` x `n_threads` on loopback, lean as dasktrain's own;
    its scheduler with Dask's ``worker-saturation`` (1.1) unless given."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    from dasktrain._execution._dask import TEMPORARY_CLUSTER_CONFIG

    _worker_path()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    config = dict(TEMPORARY_CLUSTER_CONFIG)
    if worker_saturation is not None:  # read by the scheduler (in this process) as it starts
        config["distributed.scheduler.worker-saturation"] = worker_saturation
    with dask.config.set(config):
        cluster = LocalCluster(n_workers=n_processes, threads_per_worker=n_threads,
                               processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0")
    try:
        with Client(cluster, set_as_default=False) as client:
            client.wait_for_workers(n_processes, timeout=120)
            yield client
    finally:
        cluster.close()


@contextmanager
def _cpu_seconds():
    """CPU seconds spent during the block by this process and by its child processes
    (the workers of a LocalCluster), and the fraction of the whole machine's CPU
    that was busy (anyone's), filled in the yielded dict on exit."""
    import psutil

    children = psutil.Process().children(recursive=True)

    def workers() -> float:
        total = 0.0
        for child in children:
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:  # a worker that went away
                pass
        return total

    out: dict = {}
    own, theirs, machine = time.process_time(), workers(), psutil.cpu_times()
    try:
        yield out
    finally:
        out["client"] = time.process_time() - own
        out["workers"] = workers() - theirs
        spent = [after - before for after, before in zip(psutil.cpu_times(), machine)]
        idle = sum(getattr(psutil.cpu_times(), name) - getattr(machine, name)
                   for name in ("idle", "iowait") if hasattr(machine, name))
        out["machine_busy"] = 1.0 - idle / sum(spent) if sum(spent) > 0 else float("nan")


def _nap(_index, seconds):
    time.sleep(seconds)


def _bare(client, n_tasks: int, seconds: float) -> dict:
    """Dask alone: `n_tasks` sleeping tasks submitted at once; CPU seconds per task."""
    # every thread runs one first (imports this module, warms the workers) untimed
    slots = sum(client.nthreads().values())
    client.gather(client.map(_nap, range(slots), seconds=0.2, pure=False))
    with _cpu_seconds() as cpu, Timer() as wall:
        client.gather(client.map(_nap, range(n_tasks), seconds=seconds, pure=False))
    return {"seconds": wall.seconds, "client_cpu_per_task": cpu["client"] / n_tasks,
            "workers_cpu_per_task": cpu["workers"] / n_tasks,
            "machine_busy": cpu["machine_busy"]}


def _simulate(client, slots: int, population: int, generations: int, strategy: str,
              seconds: float = SLEEP_SECONDS) -> dict:
    from sklearn.datasets import make_classification

    from dasktrain import GeneticSearchCV
    from dasktrain.space import Continuous

    X, y = make_classification(n_samples=200, n_features=4, random_state=0)
    search = GeneticSearchCV(SleepingClassifier(seconds=seconds),
                             {"alpha": Continuous(1e-6, 1e6, log=True)},
                             population_size=population, generations=generations, cv=N_FOLDS,
                             strategy=strategy, refit=False, random_state=0, use_dask=True,
                             client=client)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _cpu_seconds() as cpu, Timer() as wall:
            search.fit(X, y)
    evaluations = [int(count) for count in search.history_["evaluations"]]
    n_evaluations = sum(evaluations)
    fits = n_evaluations * N_FOLDS
    busy = fits * seconds / (slots * wall.seconds)
    cpu_per_evaluation = (cpu["client"] + cpu["workers"]) / n_evaluations
    needed = slots / (N_FOLDS * seconds)  # evaluations/s that keep every slot busy
    out = {"strategy": strategy, "slots": slots, "population": population,
           "fit_seconds": seconds, "evaluations": n_evaluations, "seconds": wall.seconds,
           "busy": busy, "evaluations_per_second": n_evaluations / wall.seconds,
           "client_cpu_ms": cpu["client"] / n_evaluations * 1e3,
           "workers_cpu_ms": cpu["workers"] / n_evaluations * 1e3,
           "cpu_ceiling": min(1.0, (os.cpu_count() or 1) / (cpu_per_evaluation * needed)),
           "machine_busy": cpu["machine_busy"]}
    if strategy == "generational":
        waves = sum(math.ceil(count * N_FOLDS / slots) for count in evaluations if count)
        out["straggler_bound"] = fits / (slots * waves) if waves else float("nan")
    return out


SHAPES = [(4, 25, 200), (8, 50, 800)]  # processes, threads, population


def _warm(client, slots: int, population: int) -> None:
    """One short search first, so that no measured run pays for the workers' imports and
    first tasks (in one trial the first of three searches on a new 100-slot cluster was
    0.83 busy, the next two 0.85)."""
    _simulate(client, slots, population, 0, "generational", seconds=0.05)


def run_scale(quick: bool) -> tuple[list[dict], list[dict]]:
    generations = 2 if quick else 4
    rows, bare = [], []
    for n_processes, n_threads, population in SHAPES:
        slots = n_processes * n_threads
        log(f"cluster: starting {n_processes} x {n_threads} = {slots} slots")
        with _thread_cluster(n_processes, n_threads) as client:
            _warm(client, slots, population)
            n_tasks = population * (generations + 1) * N_FOLDS
            bare.append(dict(_bare(client, n_tasks, SLEEP_SECONDS), slots=slots,
                             tasks=n_tasks))
            log(f"cluster: bare client.map of {n_tasks} tasks at {slots} slots: "
                f"{bare[-1]['seconds']:.1f} s")
            runs = [("generational", SLEEP_SECONDS), ("steady_state", SLEEP_SECONDS)]
            if slots > 100:
                runs.append(("steady_state", 4 * SLEEP_SECONDS))
            for strategy, seconds in runs:
                if quick and slots > 100 and (strategy == "generational"
                                              or seconds != SLEEP_SECONDS):
                    continue
                row = _simulate(client, slots, population, generations, strategy, seconds)
                log(f"cluster: {strategy} at {slots} slots, {seconds:g} s fits: busy "
                    f"{row['busy']:.2f} (CPU ceiling {row['cpu_ceiling']:.2f}; "
                    f"{row['evaluations']} evaluations in {row['seconds']:.1f} s)")
                rows.append(row)
        if slots == 100:
            # Dask's default worker-saturation (1.1) lets each worker of 25 threads hold
            # 28 tasks: at a generation's end the last ones can wait behind busy threads
            # while other workers' threads are free
            with _thread_cluster(n_processes, n_threads, worker_saturation=1.0) as client:
                _warm(client, slots, population)
                row = _simulate(client, slots, population, generations, "generational")
                row["worker_saturation"] = 1.0
                log(f"cluster: generational at {slots} slots, worker-saturation 1.0: busy "
                    f"{row['busy']:.2f}")
                rows.append(row)
    return rows, bare


# --------------------------------------------------------------------------- 2. threads

def _real_fit(_=None) -> float:
    """Seconds of one StandardScaler -> PCA -> SVC 3-fold cross-validation (timed inside)."""
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y = make_classification(n_samples=1500, n_features=400, n_informative=40,
                               random_state=0)
    model = make_pipeline(StandardScaler(), PCA(n_components=60, svd_solver="full"), SVC())
    start = time.perf_counter()
    cross_val_score(model, X, y, cv=3)
    return time.perf_counter() - start


@contextmanager
def _hand_started_cluster(nanny: bool):
    """Two ``dask worker --nthreads 1`` processes (with or without a nanny) and a scheduler,
    started as a user would, with this process's thread variables removed from their
    environment (a worker without nanny then has no OMP_NUM_THREADS=1)."""
    sys.path.insert(0, str(REPO_DIR / "tests"))
    from _cluster import ProcessCluster

    _worker_path()

    saved = {name: os.environ.pop(name) for name in _THREAD_VARIABLES if name in os.environ}
    try:
        cluster = ProcessCluster(n_workers=2, nthreads=1, nanny=nanny).__enter__()
    finally:
        os.environ.update(saved)
    try:
        yield cluster.client()
    finally:
        cluster.__exit__(None, None, None)


def _fit_times(client, task_threads, together: int, repeats: int) -> float:
    from dasktrain._execution import execution_backend

    seconds = []
    with execution_backend(use_dask=True, client=client, task_threads=task_threads) as backend:
        backend.gather(backend.map(_real_fit, range(together)))  # warm: imports, first BLAS
        for _ in range(repeats):
            seconds.extend(backend.gather(backend.map(_real_fit, range(together))))
    return median(seconds)


def run_threads(quick: bool) -> dict:
    repeats = 2 if quick else 5
    out = {}
    with _hand_started_cluster(nanny=True) as client:
        log("cluster: nanny workers")
        out["nanny_alone"] = _fit_times(client, "auto", 1, repeats)
        out["nanny_two"] = _fit_times(client, "auto", 2, repeats)
    with _hand_started_cluster(nanny=False) as client:
        log("cluster: workers without nanny")
        # not limited first: a worker process's BLAS limit only ever goes down
        out["no_nanny_two_unlimited"] = _fit_times(client, False, 2, repeats)
        out["no_nanny_two_limited"] = _fit_times(client, "auto", 2, repeats)
    out["limited_over_nanny"] = ratio(out["no_nanny_two_limited"], out["nanny_two"])
    out["unlimited_over_nanny"] = ratio(out["no_nanny_two_unlimited"], out["nanny_two"])
    return out


# --------------------------------------------------------------------------- the report

#: Paper figures for the scheduler estimate (see the notes of the result).
SCHEDULER_SECONDS_PER_TASK = 1e-3  # Dask's docs: ~200 us to 1 ms of scheduler time per task
TASKS_PER_EVALUATION = 1.5  # batched splits: one task per candidate, plus shared prefixes


def scheduler_limit_note() -> str:
    rate = 1 / (SCHEDULER_SECONDS_PER_TASK * TASKS_PER_EVALUATION)
    return (
        "Where Dask's scheduler, not dasktrain, becomes the limit (paper estimate): the "
        "scheduler spends roughly 0.2-1 ms of its single thread per task (Dask's own "
        f"figure); an evaluation is about {TASKS_PER_EVALUATION:g} tasks (its folds batched "
        "into one task, plus shared pipeline prefixes), so one scheduler sustains about "
        f"{rate:.0f} evaluations/s at 1 ms per task (3,300 at 0.2 ms). N slots whose "
        "evaluations take t slot-seconds each need N / t evaluations/s: with 2 folds of "
        f"1 s (t = 2 s) the scheduler saturates near {2 * rate:.0f} slots (6,700 with "
        f"0.2 ms tasks); at t = 10 s, near {10 * rate:.0f}. Below that the limit is the "
        "client's breeding and bookkeeping, which this benchmark measures."
    )


def _label(row: dict) -> str:
    saturation = row.get("worker_saturation")
    if saturation is None:
        return row["strategy"]
    return f"{row['strategy']} (worker-saturation {saturation:g})"


def run(quick: bool) -> dict:
    scale, bare = run_scale(quick)
    threads = run_threads(quick)
    rows = [[_label(row), row["slots"], row["fit_seconds"], row["population"],
             row["evaluations"], row["seconds"], row["evaluations_per_second"], row["busy"],
             row["cpu_ceiling"], row["machine_busy"], row.get("straggler_bound", float("nan")),
             row["client_cpu_ms"], row["workers_cpu_ms"]] for row in scale]
    rows += [["bare client.map (Dask alone)", row["slots"], SLEEP_SECONDS, "-",
              f"{row['tasks']} tasks", row["seconds"], "-",
              row["tasks"] * SLEEP_SECONDS / (row["slots"] * row["seconds"]), "-",
              row["machine_busy"], "-",
              row["client_cpu_per_task"] * N_FOLDS * 1e3,
              row["workers_cpu_per_task"] * N_FOLDS * 1e3] for row in bare]
    busy = {(_label(row), row["slots"]): row["busy"] for row in scale
            if row["fit_seconds"] == SLEEP_SECONDS}
    saturated = _label({"strategy": "generational", "worker_saturation": 1.0})
    targets = [
        target("steady_state busy at 100 slots", busy.get(("steady_state", 100), float("nan")),
               0.9, "min"),
        target("steady_state busy at 400 slots", busy.get(("steady_state", 400), float("nan")),
               0.9, "min"),
        target("generational busy at 100 slots", busy.get(("generational", 100), float("nan")),
               0.85, "min"),
        target("generational busy at 100 slots, scheduler worker-saturation 1.0",
               busy.get((saturated, 100), float("nan")), 0.85, "min"),
        target("no-nanny fit, two at a time, / nanny fit", threads["limited_over_nanny"],
               1.15, "max"),
    ]
    thread_rows = [
        ["nanny worker, one fit alone", threads["nanny_alone"], 1.0],
        ["nanny workers, two at a time", threads["nanny_two"],
         ratio(threads["nanny_two"], threads["nanny_alone"])],
        ["no nanny, two at a time, task_threads=False", threads["no_nanny_two_unlimited"],
         ratio(threads["no_nanny_two_unlimited"], threads["nanny_alone"])],
        ["no nanny, two at a time, limited (default)", threads["no_nanny_two_limited"],
         ratio(threads["no_nanny_two_limited"], threads["nanny_alone"])],
    ]
    return {
        "title": "Big clusters: busy slots and oversubscription",
        "tables": [
            {"title": "Simulated scale (sleeping fits, 2-fold CV)",
             "columns": ["strategy", "slots", "fit s", "population", "evaluations", "seconds",
                         "evaluations/s", "busy", "CPU ceiling", "machine CPU busy",
                         "straggler bound",
                         "client CPU ms / evaluation", "workers CPU ms / evaluation"],
             "rows": rows,
             "notes": "busy = fits x fit seconds / (slots x wall time of fit). Slots are "
                      "threads of 4 x 25 or 8 x 50 worker processes on this 2-core machine. "
                      "Client CPU is the client's process, which holds the LocalCluster's "
                      "scheduler too. CPU ceiling = cores / (CPU seconds per evaluation x "
                      "evaluations/s the slots need): the busy fraction this machine allows "
                      "at the measured CPU cost; machine CPU busy is the fraction of the "
                      "machine's CPU anyone used meanwhile (other work included): near 1, "
                      "this machine, not the search, is the limit. The bare rows are Dask "
                      "alone (one task per fit, all submitted at once; CPU per two tasks, one "
                      "evaluation's worth). Schedulers use Dask's default worker-saturation "
                      "(1.1), except the row that says 1.0 "
                      "(distributed.scheduler.worker-saturation, read as the scheduler "
                      "starts): each worker then holds only as many tasks as it has "
                      "threads, so no task waits behind a busy worker while another "
                      "worker's threads are free at a generation's end."},
            {"title": "Oversubscription: StandardScaler -> PCA -> SVC 3-fold CV per task",
             "columns": ["workers", "seconds per fit (median)", "/ one alone"],
             "rows": thread_rows,
             "notes": "Two `dask worker --nthreads 1` processes started by hand; 'no "
                      "nanny' workers have no OMP_NUM_THREADS=1 in their environment."},
        ],
        "targets": targets,
        "notes": scheduler_limit_note(),
        "scale": scale,
        "threads": threads,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=1, default=str))
