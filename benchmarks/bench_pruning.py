"""Pruning: the time to reach the unpruned search's best score, and its cost (issue 14).

For each workload and seed, the same GeneticSearchCV runs without pruning and
with ``pruning="folds"`` on the same 2-worker cluster (dasktrain's own
temporary LocalCluster, see ``_common.two_worker_cluster``), interleaved. A
callback notes the wall time at which each generation ends and the best score
so far; *time to best* is when the pruned search first reaches the final best
score of the unpruned one (within ``TOLERANCE``), or its whole time when it
never does (then "reached" is False).

Workloads:

- ``costly``: StandardScaler -> PCA -> SVC on a 3000 x 60 synthetic set,
  population 12 x 5 generations, 3-fold CV (the issue's costly workload);
- ``digits``: the digits SVC pipeline of bench_search.py, population 12 x 5
  generations, 5-fold CV;
- ``cheap``: DummyClassifier whose parameter changes nothing (every candidate
  scores the same, so nothing is pruned), population 20 x 5 generations,
  5-fold CV: the cost of evaluating fold by fold.

Usage::

    python benchmarks/bench_pruning.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import Timer, log, markdown_table, median, ratio, target, two_worker_cluster
from _common import write_result

TOLERANCE = 0.002


class _Clock:
    """Callback: (seconds since start, best score so far) at the end of each generation."""

    def __init__(self):
        self.began = time.monotonic()
        self.points = []

    def on_start(self, search):
        self.began = time.monotonic()

    def on_generation(self, search, record):
        self.points.append((time.monotonic() - self.began, record["best"]))
        return False


def _workload(name: str, quick: bool) -> dict:
    from scipy.stats import loguniform
    from sklearn.datasets import load_digits, make_classification
    from sklearn.decomposition import PCA
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from dasktrain.space import Integer

    if name == "costly":
        n = 1000 if quick else 3000
        X, y = make_classification(n_samples=n, n_features=60, n_informative=20,
                                   random_state=0)
        pipe = make_pipeline(StandardScaler(), PCA(random_state=0), SVC())
        space = {"pca__n_components": Integer(5, 60), "svc__C": loguniform(1e-2, 1e3),
                 "svc__gamma": loguniform(1e-5, 1e-1)}
        return dict(X=X, y=y, estimator=pipe, space=space, population_size=12,
                    generations=2 if quick else 5, cv=3)
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        pipe = make_pipeline(StandardScaler(), PCA(random_state=0), SVC())
        space = {"pca__n_components": Integer(5, 40), "svc__C": loguniform(1e-2, 1e3),
                 "svc__gamma": loguniform(1e-5, 1e-1)}
        return dict(X=X, y=y, estimator=pipe, space=space, population_size=12,
                    generations=2 if quick else 5, cv=5)
    X, y = make_classification(n_samples=200, n_features=10, random_state=0)
    return dict(X=X, y=y, estimator=DummyClassifier(strategy="prior"),
                space={"constant": Integer(0, 10**6)}, population_size=20,
                generations=2 if quick else 5, cv=5)


def _search(work: dict, seed: int, pruning, client) -> dict:
    from dasktrain import GeneticSearchCV

    clock = _Clock()
    search = GeneticSearchCV(work["estimator"], work["space"], cv=work["cv"],
                             population_size=work["population_size"],
                             generations=work["generations"], pruning=pruning,
                             callbacks=[clock], refit=False, random_state=seed,
                             use_dask=True, client=client)
    with Timer() as timer:
        search.fit(work["X"], work["y"])
    status = search.cv_results_["status"]
    return {"seconds": timer.seconds, "best": float(np.nanmax(
        search.cv_results_["mean_test_score"][status != "pruned"])),
        "points": clock.points, "pruned": int((status == "pruned").sum()),
        "evaluated": len(status)}


def _time_to(points, score: float, whole: float) -> tuple[float, bool]:
    for seconds, best in points:
        if best >= score - TOLERANCE:
            return seconds, True
    return whole, False


def run(quick: bool = False) -> dict:
    seeds = [0] if quick else [0, 1, 2]
    rows, measured, targets = [], {}, []
    with two_worker_cluster() as client:
        for name in ("costly", "digits", "cheap"):
            work = _workload(name, quick)
            pairs = []
            for seed in seeds:
                plain = _search(work, seed, None, client)
                pruned = _search(work, seed, "folds", client)
                reach, reached = _time_to(pruned["points"], plain["best"], pruned["seconds"])
                pairs.append({"seed": seed, "plain": plain, "pruned": pruned,
                              "time_to_best": reach, "reached": reached})
                log(f"{name} seed {seed}: plain {plain['seconds']:.1f} s best "
                    f"{plain['best']:.4f}; pruned {pruned['seconds']:.1f} s best "
                    f"{pruned['best']:.4f}, reached in {reach:.1f} s ({pruned['pruned']} "
                    "pruned)")
            measured[name] = pairs
            time_ratio = median([ratio(p["time_to_best"], p["plain"]["seconds"]) for p in pairs])
            wall_ratio = median([ratio(p["pruned"]["seconds"], p["plain"]["seconds"])
                                 for p in pairs])
            score_gap = median([p["pruned"]["best"] - p["plain"]["best"] for p in pairs])
            rows.append([name, len(seeds), median([p["plain"]["seconds"] for p in pairs]),
                         median([p["pruned"]["seconds"] for p in pairs]), time_ratio,
                         wall_ratio, score_gap,
                         median([p["pruned"]["pruned"] for p in pairs]),
                         sum(p["reached"] for p in pairs)])
            if name == "cheap":
                targets.append(target("cheap: wall time with pruning / without", wall_ratio,
                                      1.2))
            else:
                targets.append(target(f"{name}: time to the unpruned best / unpruned time",
                                      time_ratio, 0.5))
                targets.append(target(f"{name}: best score gap (pruned - unpruned)",
                                      -score_gap, TOLERANCE))
    columns = ["workload", "seeds", "unpruned s", "pruned s", "time to best (ratio)",
               "wall (ratio)", "best score gap", "pruned candidates", "reached"]
    table = {"title": "Pruning on 2 workers (medians over seeds)", "columns": columns,
             "rows": rows,
             "notes": "time to best: when the pruned search first reaches the unpruned "
                      f"search's final best (within {TOLERANCE}), as a ratio of the unpruned "
                      "search's wall time."}
    result = {"title": "Pruning: time to the same best model", "measured": measured,
              "tables": [table], "targets": targets}
    print(markdown_table(columns, rows))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    write_result("pruning", run(args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
