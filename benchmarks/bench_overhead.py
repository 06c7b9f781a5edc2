"""Task overhead: the cost of one evaluation when the model costs nothing (issue 7 part 3).

A search over ``DummyClassifier`` on 200 x 10 samples spends almost all its
time in overhead: breeding, keys, submission, scheduling, result transfer and
bookkeeping. Its wall time per evaluation is compared, in the same run and on
the same 2-worker cluster, with the wall time per task of a bare
``client.map(noop, ...)`` + ``client.gather`` of as many tasks: the least a
Dask round trip costs. The peers run the same dummy search with as many
evaluations.
"""

from __future__ import annotations

import warnings

from _common import (REPEATS, Timer, log, median, ratio, target, task_stream,
                     two_worker_cluster)

N_WORKERS = 2


def noop(value):
    """The task of the bare measurement: returns its argument."""
    return value


def _data():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=200, n_features=10, random_state=0)


def _bare_map(client, n_tasks: int) -> dict:
    with task_stream(client) as stream, Timer() as timer:
        futures = client.map(noop, range(n_tasks), pure=False)
        client.gather(futures)
    del futures
    return {"wall_seconds": timer.seconds, "tasks": n_tasks,
            "seconds_per_task": timer.seconds / n_tasks,
            "busy_seconds_tasks": stream["busy_seconds"]}


def _dasktrain(client, X, y, pop, gens, cv, seed, strategy, screening=None) -> dict:
    from sklearn.dummy import DummyClassifier

    from dasktrain import GeneticSearchCV
    from dasktrain.space import Categorical, Integer

    space = {"strategy": Categorical(["prior", "stratified", "uniform", "most_frequent"]),
             "random_state": Integer(0, 10**9)}
    search = GeneticSearchCV(DummyClassifier(), space, cv=cv, population_size=pop,
                             generations=gens, strategy=strategy, refit=False,
                             random_state=seed, use_dask=True, client=client)
    if screening is not None:
        search.set_params(screening=screening)
    with task_stream(client) as stream, Timer() as timer:
        search.fit(X, y)
    evaluations = int(search.history_["evaluations"].sum())
    return {"wall_seconds": timer.seconds, "evaluations": evaluations,
            "tasks": stream["tasks"], "seconds_per_evaluation": timer.seconds / evaluations,
            "seconds_per_task": ratio(timer.seconds, stream["tasks"]),
            "busy_seconds_tasks": stream["busy_seconds"],
            "sklearn_seconds": _sklearn_work(search.cv_results_, cv)}


def _sklearn_random(X, y, n_iter, cv, seed) -> dict:
    from scipy.stats import randint
    from sklearn.dummy import DummyClassifier
    from sklearn.model_selection import RandomizedSearchCV

    space = {"strategy": ["prior", "stratified", "uniform", "most_frequent"],
             "random_state": randint(0, 10**9)}
    search = RandomizedSearchCV(DummyClassifier(), space, n_iter=n_iter, cv=cv,
                                n_jobs=N_WORKERS, refit=False, random_state=seed)
    with Timer() as timer:
        search.fit(X, y)
    return {"wall_seconds": timer.seconds, "evaluations": n_iter,
            "seconds_per_evaluation": timer.seconds / n_iter,
            "sklearn_seconds": _sklearn_work(search.cv_results_, cv)}


def _daskml_random(client, X, y, n_iter, cv, seed) -> dict:
    from dask_ml.model_selection import RandomizedSearchCV
    from scipy.stats import randint
    from sklearn.dummy import DummyClassifier

    space = {"strategy": ["prior", "stratified", "uniform", "most_frequent"],
             "random_state": randint(0, 10**9)}
    search = RandomizedSearchCV(DummyClassifier(), space, n_iter=n_iter, cv=cv, refit=False,
                                random_state=seed, scheduler=client)
    with client.as_current(), task_stream(client) as stream, Timer() as timer:
        search.fit(X, y)
    return {"wall_seconds": timer.seconds, "evaluations": n_iter, "tasks": stream["tasks"],
            "seconds_per_evaluation": timer.seconds / n_iter,
            "sklearn_seconds": _sklearn_work(search.cv_results_, cv)}


def _gasearchcv(X, y, pop, gens, cv, seed) -> dict:
    import random

    import numpy as np
    from sklearn.dummy import DummyClassifier
    from sklearn_genetic import GASearchCV
    from sklearn_genetic.space import Categorical, Integer

    random.seed(seed)
    np.random.seed(seed)
    space = {"strategy": Categorical(["prior", "stratified", "uniform", "most_frequent"]),
             "random_state": Integer(0, 10**9)}
    search = GASearchCV(DummyClassifier(), cv=cv, param_grid=space, population_size=pop,
                        generations=gens, n_jobs=N_WORKERS, verbose=False, refit=False)
    with Timer() as timer:
        search.fit(X, y)
    evaluations = len(search.cv_results_["params"])
    out = {"wall_seconds": timer.seconds, "evaluations": evaluations,
           "seconds_per_evaluation": timer.seconds / evaluations}
    if "mean_fit_time" in search.cv_results_ and "mean_score_time" in search.cv_results_:
        out["sklearn_seconds"] = _sklearn_work(search.cv_results_, cv)
    return out


def _sklearn_work(cv_results: dict, n_splits: int) -> float:
    """Seconds scikit-learn spent in the estimator's fit and the scorers, all folds together.

    From ``cv_results_``'s per-fold means (``mean_fit_time``, ``mean_score_time``) of every
    candidate evaluated: the work any search pays; what the search costs beyond it is
    overhead.
    """
    import numpy as np

    fit = np.nan_to_num(np.asarray(cv_results["mean_fit_time"], dtype=float))
    score = np.nan_to_num(np.asarray(cv_results["mean_score_time"], dtype=float))
    return float((fit + score).sum() * n_splits)


def _medians(runs: list[dict]) -> dict:
    good = [run for run in runs if "error" not in run]
    if not good:
        return {"error": runs[0]["error"] if runs else "not run"}
    return {key: median([run[key] for run in good]) for key, value in good[0].items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def _guard(name, fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except Exception as exc:  # record and go on: a peer or an unfinished estimator
        log(f"  {name} failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}


def run(quick: bool) -> dict:
    X, y = _data()
    pop, gens = (20, 4) if quick else (50, 9)
    cv = 5
    n_evaluations = pop * (gens + 1)
    repeats = 1 if quick else REPEATS
    runs = {name: [] for name in ("bare_map", "bare_map_per_fold", "generational",
                                  "steady_state", "generational_unscreened",
                                  "steady_state_unscreened", "sklearn_random",
                                  "daskml_random", "gasearchcv")}
    with two_worker_cluster(N_WORKERS) as client:
        client.gather(client.map(noop, range(100), pure=False))  # warm the workers up
        # and untimed, one small search: the workers import scikit-learn and dasktrain once,
        # so that cost is not charged to whichever method happens to be timed first
        _guard("warm-up", lambda: _dasktrain(client, X, y, 4, 1, cv, 0, "generational"))
        for seed in range(repeats):
            log(f"overhead seed {seed}")
            measures = {
                "bare_map": lambda: _bare_map(client, n_evaluations),
                "bare_map_per_fold": lambda: _bare_map(client, n_evaluations * cv),
                "generational": lambda: _dasktrain(client, X, y, pop, gens, cv, seed,
                                                   "generational"),
                "steady_state": lambda: _dasktrain(client, X, y, pop, gens, cv, seed,
                                                   "steady_state"),
                "generational_unscreened": lambda: _dasktrain(
                    client, X, y, pop, gens, cv, seed, "generational", screening=1),
                "steady_state_unscreened": lambda: _dasktrain(
                    client, X, y, pop, gens, cv, seed, "steady_state", screening=1),
                "sklearn_random": lambda: _sklearn_random(X, y, n_evaluations, cv, seed),
                "daskml_random": lambda: _daskml_random(client, X, y, n_evaluations, cv, seed),
                "gasearchcv": lambda: _gasearchcv(X, y, pop, gens, cv, seed),
            }
            for name, measure in measures.items():
                log(f"  {name}")
                runs[name].append(_guard(name, measure))
    med = {name: _medians(items) for name, items in runs.items()}
    bare = med["bare_map"].get("seconds_per_task")
    bare_fold = med["bare_map_per_fold"].get("seconds_per_task")

    labels = {
        "bare_map": f"bare client.map(noop) + gather, {n_evaluations} tasks",
        "bare_map_per_fold": f"bare client.map(noop) + gather, {n_evaluations * cv} tasks",
        "generational": "dasktrain GeneticSearchCV (generational), 2 workers",
        "steady_state": "dasktrain GeneticSearchCV (steady_state), 2 workers",
        "generational_unscreened": "dasktrain (generational, screening=1), 2 workers",
        "steady_state_unscreened": "dasktrain (steady_state, screening=1), 2 workers",
        "sklearn_random": "scikit-learn RandomizedSearchCV(n_jobs=2)",
        "daskml_random": "dask-ml RandomizedSearchCV, 2 workers",
        "gasearchcv": "sklearn-genetic-opt GASearchCV(n_jobs=2)",
    }
    # A bare task does no work: all of its cost, in worker-ms (wall x workers), is overhead.
    bare_worker = None if bare is None else bare * N_WORKERS
    rows = []
    overhead = {}
    for name, label in labels.items():
        m = med[name]
        if "error" in m:
            rows.append([label, None, None, None, None, None, None, None, None, None,
                         m["error"][:80]])
            continue
        count = m.get("evaluations", m.get("tasks"))
        per_eval = m.get("seconds_per_evaluation", m.get("seconds_per_task"))
        busy = m.get("busy_seconds_tasks")
        idle = None if busy is None else (m["wall_seconds"] * N_WORKERS - busy) / count
        work = 0.0 if name.startswith("bare_map") else m.get("sklearn_seconds")
        overhead[name] = (None if work is None
                          else (m["wall_seconds"] * N_WORKERS - work) / count)
        rows.append([label, m["wall_seconds"], count, m.get("tasks"), per_eval * 1e3,
                     ratio(per_eval, bare),
                     None if work is None else work / count * 1e3,
                     None if overhead[name] is None else overhead[name] * 1e3,
                     ratio(overhead[name], bare_worker),
                     None if busy is None else busy / count * 1e3,
                     None if idle is None else idle * 1e3, ""])
    result = {
        "title": "Task overhead: a search over DummyClassifier vs a bare client.map",
        "population_size": pop, "generations": gens, "cv": cv, "repeats": repeats,
        "runs": runs, "medians": med,
        "tables": [{
            "title": f"Overhead per evaluation ({n_evaluations} evaluations x {cv} folds, "
                     "DummyClassifier on 200 x 10)",
            "columns": ["method", "wall s", "evaluations (or tasks)", "Dask tasks",
                        "wall ms per evaluation (or task)", "wall / bare task",
                        "scikit-learn fit+score worker-ms per evaluation",
                        "overhead worker-ms per evaluation", "overhead / bare task",
                        "task compute worker-ms per evaluation",
                        "idle worker-ms per evaluation", "error"],
            "rows": rows,
            "notes": ("One evaluation is a candidate cross-validated on all folds. Its cost has "
                      "two parts: scikit-learn's own work (DummyClassifier.fit and the scorer on "
                      "every fold, from cv_results_'s mean_fit_time and mean_score_time; mostly "
                      "input validation, the same in every search) and the overhead: "
                      "(wall x 2 workers - that work) per evaluation, in worker-ms, which is "
                      "everything else (cloning, indexing the folds, serialisation, scheduling, "
                      "client-side work, idle workers). A bare no-op task has no work, so its "
                      "whole cost, wall x 2 per task, is overhead; the target compares the two. "
                      "'Dask tasks' "
                      "counts every task the scheduler ran, from its task stream; 'worker compute' is "
                      "the time those tasks computed on the workers, and 'idle worker-ms' is "
                      "(wall x 2 workers - compute) per evaluation: scheduling, transfers, "
                      "client-side work and waiting. The default screening=8 adds the "
                      "surrogate's client CPU (breeding 8x the children, ranking them, the "
                      "fit): on these 2 cores it competes with the 2 workers; screening=1 "
                      "rows are the engine alone. "
                      f"A bare task cost {format_ms(bare)} with {n_evaluations} tasks and "
                      f"{format_ms(bare_fold)} with {n_evaluations * cv}."),
        }],
        "targets": [],
    }
    for strategy in ("generational", "steady_state"):
        result["targets"].append(target(
            f"overhead per evaluation ({strategy}) / bare client.map task",
            ratio(overhead.get(strategy), bare_worker), 1.5, "max"))
    for strategy in ("generational", "steady_state"):  # the engine without the surrogate
        result["targets"].append(target(
            f"overhead per evaluation ({strategy}, screening=1) / bare client.map task",
            ratio(overhead.get(f"{strategy}_unscreened"), bare_worker), 1.5, "max"))
    return result


def format_ms(seconds) -> str:
    """Seconds as milliseconds with 2 decimals, '-' when missing."""
    if seconds is None or seconds != seconds:
        return "-"
    return f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv), indent=1, default=str))
