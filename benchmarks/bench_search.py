"""Genetic search against its peers, side by side in one run (issue 7 part 1 and 2, issue 3).

Methods, all on the same 2 cores:

- ``GeneticSearchCV`` generational and steady_state on a 2-worker LocalCluster
  (1-thread worker processes), ``use_dask=True``;
- sklearn-genetic-opt's ``GASearchCV(n_jobs=2)``, same population and generations;
- scikit-learn's ``RandomizedSearchCV(n_jobs=2)`` and dask-ml's
  ``RandomizedSearchCV`` on the same 2-worker cluster, each with
  ``population_size * (generations + 1)`` candidates.

Workloads: ``digits`` (StandardScaler, PCA, SVC on the digits data) and
``nystroem`` (a costly Nystroem + PCA prefix whose parameters take few values,
then a cheap k-nearest-neighbours classifier), where shared prefixes pay off.

Each method runs once per seed (0, 1, 2) and the medians are reported. No
search refits its best candidate (``refit=False``), so the wall time is the
search itself. Utilisation is the sum of task times divided by
``wall time x 2 workers``: from the Dask task stream for the Dask methods, and
from ``cv_results_`` (mean fit + score time x folds x candidates) for all.
"""

from __future__ import annotations

import warnings

import numpy as np

from _common import (REPEATS, Timer, log, median, ratio, repeat, target, task_stream,
                     two_worker_cluster)

N_WORKERS = 2


def _digits():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def _workloads(quick: bool) -> dict:
    """Estimator, spaces for each method family, data and CV of each workload."""
    from scipy.stats import loguniform, randint
    from sklearn.decomposition import PCA
    from sklearn.kernel_approximation import Nystroem
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y = _digits()
    digits = {
        "description": "digits (1797 x 64): StandardScaler -> PCA -> SVC",
        "estimator": Pipeline([("scaler", StandardScaler()), ("pca", PCA(random_state=0)),
                               ("svc", SVC())]),
        # one space, written in each library's own vocabulary
        "space": [("pca__n_components", "int", 5, 60),
                  ("svc__C", "logfloat", 1e-2, 1e3),
                  ("svc__gamma", "logfloat", 1e-4, 1e-1),
                  ("svc__kernel", "cat", ["rbf", "poly"])],
        "X": X, "y": y, "cv": 3 if quick else 5,
    }
    nystroem = {
        "description": ("digits: StandardScaler -> Nystroem(600 components) -> PCA -> "
                        "KNeighborsClassifier; the costly prefix takes 2 x 2 values"),
        "estimator": Pipeline([("scaler", StandardScaler()),
                               ("nys", Nystroem(n_components=200 if quick else 600,
                                                random_state=0)),
                               ("pca", PCA(random_state=0)),
                               ("knn", KNeighborsClassifier())]),
        "space": [("nys__gamma", "cat", [2e-3, 1e-2]),
                  ("pca__n_components", "cat", [20, 40]),
                  ("knn__n_neighbors", "int", 1, 30),
                  ("knn__weights", "cat", ["uniform", "distance"]),
                  ("knn__p", "cat", [1, 2])],
        "X": X, "y": y, "cv": 3,
    }
    del randint, loguniform  # imported above to fail early when scipy is missing
    return {"digits": digits, "nystroem": nystroem}


def _dasktrain_space(spec):
    from dasktrain.space import Categorical, Continuous, Integer

    out = {}
    for name, kind, *args in spec:
        if kind == "int":
            out[name] = Integer(args[0], args[1])
        elif kind == "logfloat":
            out[name] = Continuous(args[0], args[1], log=True)
        else:
            out[name] = Categorical(list(args[0]))
    return out


def _scipy_space(spec):
    from scipy.stats import loguniform, randint

    out = {}
    for name, kind, *args in spec:
        if kind == "int":
            out[name] = randint(args[0], args[1] + 1)
        elif kind == "logfloat":
            out[name] = loguniform(args[0], args[1])
        else:
            out[name] = list(args[0])
    return out


def _sklearn_genetic_space(spec):
    from sklearn_genetic.space import Categorical, Continuous, Integer

    out = {}
    for name, kind, *args in spec:
        if kind == "int":
            out[name] = Integer(args[0], args[1])
        elif kind == "logfloat":
            out[name] = Continuous(args[0], args[1], distribution="log-uniform")
        else:
            out[name] = Categorical(list(args[0]))
    return out


def _cv_busy_seconds(cv_results: dict, n_splits: int) -> float:
    """Sum of fit + score times of every (candidate, fold) reported in cv_results_."""
    fit = np.asarray(cv_results["mean_fit_time"], dtype=float)
    score = np.asarray(cv_results["mean_score_time"], dtype=float)
    return float(np.nansum(fit + score) * n_splits)


def _summary(name, wall, best_score, evaluations, cv_results, n_splits, extra=None):
    busy = _cv_busy_seconds(cv_results, n_splits)
    row = {"method": name, "wall_seconds": wall, "best_score": float(best_score),
           "evaluations": int(evaluations), "evaluations_per_second": ratio(evaluations, wall),
           "busy_seconds_cv_results": busy,
           "utilisation_cv_results": ratio(busy, wall * N_WORKERS)}
    row.update(extra or {})
    return row


def _run_genetic(workload, seed, pop, gens, client, strategy):
    from dasktrain import GeneticSearchCV

    search = GeneticSearchCV(workload["estimator"], _dasktrain_space(workload["space"]),
                             cv=workload["cv"], population_size=pop, generations=gens,
                             strategy=strategy, refit=False, random_state=seed,
                             use_dask=True, client=client)
    with task_stream(client) as stream, Timer() as timer:
        search.fit(workload["X"], workload["y"])
    history = search.history_
    evaluations = int(np.sum(history["evaluations"])) if "evaluations" in history else len(
        search.cv_results_["params"])
    cache_hits = int(np.sum(history["cache_hits"])) if "cache_hits" in history else 0
    return _summary(
        f"dasktrain GeneticSearchCV ({strategy})", timer.seconds, search.best_score_,
        evaluations, search.cv_results_, search.n_splits_,
        {"distinct_candidates": len(search.cv_results_["params"]), "cache_hits": cache_hits,
         "tasks": stream["tasks"], "busy_seconds_tasks": stream["busy_seconds"],
         "utilisation_tasks": ratio(stream["busy_seconds"], timer.seconds * N_WORKERS)})


def _run_gasearchcv(workload, seed, pop, gens):
    import random

    from sklearn_genetic import GASearchCV

    # GASearchCV draws from the global RNGs (DEAP uses `random`); seed both
    random.seed(seed)
    np.random.seed(seed)
    search = GASearchCV(workload["estimator"], cv=workload["cv"],
                        param_grid=_sklearn_genetic_space(workload["space"]),
                        population_size=pop, generations=gens, n_jobs=N_WORKERS,
                        verbose=False, refit=False, return_train_score=False)
    with Timer() as timer:
        search.fit(workload["X"], workload["y"])
    results = search.cv_results_
    return _summary("sklearn-genetic-opt GASearchCV(n_jobs=2)", timer.seconds,
                    np.nanmax(results["mean_test_score"]), len(results["params"]), results,
                    search.n_splits_,
                    {"computes_train_scores": "mean_train_score" in results})


def _run_sklearn_random(workload, seed, n_iter):
    from sklearn.model_selection import RandomizedSearchCV

    search = RandomizedSearchCV(workload["estimator"], _scipy_space(workload["space"]),
                                n_iter=n_iter, cv=workload["cv"], n_jobs=N_WORKERS, refit=False,
                                random_state=seed)
    with Timer() as timer:
        search.fit(workload["X"], workload["y"])
    return _summary("scikit-learn RandomizedSearchCV(n_jobs=2)", timer.seconds,
                    search.best_score_, n_iter, search.cv_results_, search.n_splits_)


def _run_daskml_random(workload, seed, n_iter, client):
    from dask_ml.model_selection import RandomizedSearchCV

    search = RandomizedSearchCV(workload["estimator"], _scipy_space(workload["space"]),
                                n_iter=n_iter, cv=workload["cv"], refit=False,
                                random_state=seed, scheduler=client)
    # dask-ml looks the client up as the current one while it collects results
    with client.as_current(), task_stream(client) as stream, Timer() as timer:
        search.fit(workload["X"], workload["y"])
    # best_score_ is not available with refit=False in dask-ml
    return _summary("dask-ml RandomizedSearchCV (2 workers)", timer.seconds,
                    np.nanmax(search.cv_results_["mean_test_score"]), n_iter, search.cv_results_, search.n_splits_,
                    {"tasks": stream["tasks"], "busy_seconds_tasks": stream["busy_seconds"],
                     "utilisation_tasks": ratio(stream["busy_seconds"],
                                                timer.seconds * N_WORKERS)})


def _guard(method, fn):
    """Run one measurement; a failing method is recorded, not fatal."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except Exception as exc:  # a peer or an unfinished estimator: record and go on
        log(f"  {method} failed: {type(exc).__name__}: {exc}")
        return {"method": method, "error": f"{type(exc).__name__}: {exc}"}


def _warm_fit(estimator, X, y):
    """Fit `estimator` once on a small slice, so a worker has imported what it needs."""
    from sklearn.base import clone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clone(estimator).fit(X[:300], y[:300])


def warm_up(workload, client) -> None:
    """Untimed: the Dask workers and joblib's worker processes import the workload's modules."""
    from sklearn.model_selection import cross_val_score

    client.run(_warm_fit, workload["estimator"], workload["X"], workload["y"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cross_val_score(workload["estimator"], workload["X"][:300], workload["y"][:300], cv=2,
                        n_jobs=N_WORKERS)


METHODS = ("generational", "steady_state", "gasearchcv", "sklearn_random", "daskml_random")


def measure_workload(workload, pop, gens, repeats, client) -> dict:
    """Every method on one workload, `repeats` seeds each: the runs and their medians."""
    n_iter = pop * (gens + 1)
    runners = {
        "generational": lambda seed: _run_genetic(workload, seed, pop, gens, client,
                                                  "generational"),
        "steady_state": lambda seed: _run_genetic(workload, seed, pop, gens, client,
                                                  "steady_state"),
        "gasearchcv": lambda seed: _run_gasearchcv(workload, seed, pop, gens),
        "sklearn_random": lambda seed: _run_sklearn_random(workload, seed, n_iter),
        "daskml_random": lambda seed: _run_daskml_random(workload, seed, n_iter, client),
    }
    out = {}
    warm_up(workload, client)
    # seeds outermost, so that a change in the machine's load hits every method alike
    runs = {method: [] for method in METHODS}
    for seed in range(repeats):
        for method in METHODS:
            log(f"  seed {seed}: {method}")
            runs[method].append(_guard(method, lambda: runners[method](seed)))
    for method in METHODS:
        good = [run for run in runs[method] if "error" not in run]
        if not good:
            out[method] = {"error": runs[method][0]["error"], "runs": runs[method]}
            continue
        numeric = [k for k, v in good[0].items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        out[method] = {"median": {k: median([run[k] for run in good]) for k in numeric},
                       "runs": runs[method], "name": good[0]["method"]}
    return out


def _table(workload_name, workload, measured, pop, gens):
    reference = measured.get("gasearchcv", {}).get("median", {}).get("wall_seconds")
    rows = []
    for method in METHODS:
        entry = measured[method]
        if "error" in entry:
            rows.append([method, None, None, None, None, None, None,
                         entry["error"].splitlines()[0][:80]])
            continue
        m = entry["median"]
        rows.append([entry["name"], m["wall_seconds"], ratio(m["wall_seconds"], reference),
                     m["evaluations"], m["evaluations_per_second"], m["best_score"],
                     m.get("utilisation_tasks", m["utilisation_cv_results"]), ""])
    return {
        "title": f"Search: {workload_name} - population {pop} x {gens} generations, "
                 f"cv={workload['cv']}",
        "columns": ["method", "wall s", "wall / GASearchCV", "evaluations", "evals/s",
                    "best CV score", "utilisation", "error"],
        "rows": rows,
        "notes": (f"{workload['description']}. Medians over the seeds. Evaluations: candidates "
                  "whose CV was actually run (GASearchCV breeds 2 x population children per "
                  "generation; random searches get population x (generations + 1)). "
                  "Utilisation: task-stream compute time / (wall x 2) for Dask methods, "
                  "cv_results_ fit+score times / (wall x 2) otherwise."),
    }


def _quality_table(all_measured):
    rows = []
    for workload_name, measured in all_measured.items():
        random_scores = [run.get("best_score") for run in
                         measured["sklearn_random"].get("runs", []) if "error" not in run]
        for method in ("generational", "steady_state", "gasearchcv"):
            scores = [run.get("best_score") for run in measured[method].get("runs", [])
                      if "error" not in run]
            rows.append([workload_name, method, median(scores), median(random_scores),
                         median(scores) - median(random_scores) if scores else None,
                         ", ".join(f"{s:.4f}" for s in scores)])
    return {
        "title": "Quality: best CV score vs RandomizedSearchCV with the same number of "
                 "evaluations (median over seeds)",
        "columns": ["workload", "method", "best CV (median)", "random search (median)",
                    "difference", "per seed"],
        "rows": rows,
        "notes": "",
    }


def run(quick: bool) -> dict:
    workloads = _workloads(quick)
    pop, gens = (6, 2) if quick else (16, 10)
    repeats = 1 if quick else REPEATS
    if quick:
        workloads["nystroem"]["description"] = workloads["nystroem"]["description"].replace(
            "600", "200")
    result = {"title": "Genetic search against its peers", "population_size": pop,
              "generations": gens, "repeats": repeats, "workloads": {}, "tables": [],
              "targets": []}
    measured_all = {}
    with two_worker_cluster(N_WORKERS) as client:
        for name, workload in workloads.items():
            log(f"search workload {name}")
            measured = measure_workload(workload, pop, gens, repeats, client)
            measured_all[name] = measured
            result["workloads"][name] = {"description": workload["description"],
                                         "cv": workload["cv"], "methods": measured}
            result["tables"].append(_table(name, workload, measured, pop, gens))
    result["tables"].append(_quality_table(measured_all))

    for name, measured in measured_all.items():
        ga = measured["gasearchcv"].get("median", {})
        rs = measured["sklearn_random"]
        for strategy in ("generational", "steady_state"):
            ours = measured[strategy].get("median", {})
            result["targets"].append(target(
                f"{name}: wall of GeneticSearchCV ({strategy}) / GASearchCV",
                ratio(ours.get("wall_seconds"), ga.get("wall_seconds")), 0.5, "max"))
            ours_scores = [r["best_score"] for r in measured[strategy].get("runs", [])
                           if "error" not in r]
            ga_scores = [r["best_score"] for r in measured["gasearchcv"].get("runs", [])
                         if "error" not in r]
            rs_scores = [r["best_score"] for r in rs.get("runs", []) if "error" not in r]
            result["targets"].append(target(
                f"{name}: best CV of GeneticSearchCV ({strategy}) - GASearchCV (median)",
                median(ours_scores) - median(ga_scores), 0.0, "min"))
            result["targets"].append(target(
                f"{name}: best CV of GeneticSearchCV ({strategy}) - RandomizedSearchCV (median)",
                median(ours_scores) - median(rs_scores), 0.0, "min"))
        if name == "digits":
            for strategy, limit in (("steady_state", 0.85), ("generational", 0.75)):
                ours = measured[strategy].get("median", {})
                result["targets"].append(target(
                    f"digits: utilisation of {strategy}", ours.get("utilisation_tasks",
                                                                   float("nan")),
                    limit, "min"))
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv), indent=1, default=str))
