"""Several objectives and feature selection against their peers (issue 15).

Multi-objective (digits, StandardScaler -> PCA -> SVC, accuracy against the bytes
of the pickled fitted pipeline): ``GeneticSearchCV(objectives=["score",
"model_size"])`` and the single-objective search with the same budget
(``population_size * (generations + 1)`` candidates). The front's hypervolume
(moocore's, as DEAP's indicator, on (1 - accuracy, size in MB), reference point (1, 1.1 x the
largest size seen)) and whether the front contains or dominates the single
search's best point; TPOT 1.x's NSGA-II on the same two objectives (``TPOT_NOTE``).

Feature selection (``make_classification(n_samples=500, n_features=40,
n_informative=6, shuffle=False)`` so that features 0-5 are the informative ones
and 6-7 redundant, and breast_cancer), LogisticRegression: dasktrain's
``GeneticFeatureSelectionCV`` and sklearn-genetic-opt's ``GAFeatureSelectionCV``
(same population and generations), scikit-learn's ``RFECV`` and
``SequentialFeatureSelector`` (forward, ``tol=1e-3``). Every method selects
with the same 3 folds; the selected columns are then scored with 5 other
folds. All run with ``n_jobs=2`` on the same 2 cores.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
from _common import Timer, log, target

#: A Python with TPOT 1.x installed (TPOT pins its own dependencies: a separate venv).
TPOT_PYTHON = os.environ.get("TPOT_PYTHON", "/tmp/tpotvenv/bin/python")
TPOT_NOTE = ("TPOT runs its own PCA -> SVC space (tpot.config.get_search_space: PCA's "
             "n_components as a fraction of variance, its own SVC ranges) with NSGA-II over "
             "accuracy and the same model size (its objective function refits the pipeline "
             "on all the data), in a separate venv, with n_jobs=2 on its own LocalCluster.")


# --------------------------------------------------------------------------- multi-objective

def _hypervolume(points: np.ndarray, reference) -> float:
    """The hypervolume of minimisation `points` up to `reference`, by moocore (the
    package DEAP's ``tools.indicator.hypervolume`` computes it with)."""
    import moocore

    points = np.asarray(points, dtype=float)
    inside = points[(points < np.asarray(reference)).all(axis=1)]
    return float(moocore.hypervolume(inside, ref=np.asarray(reference, dtype=float))) \
        if len(inside) else 0.0


def _front(points: np.ndarray) -> np.ndarray:
    """Non-dominated rows of minimisation `points`."""
    keep = []
    for i, p in enumerate(points):
        dominated = any(np.all(q <= p) and np.any(q < p) for j, q in enumerate(points) if j != i)
        if not dominated:
            keep.append(i)
    return points[keep]


def _digits(quick: bool):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X[:600], y[:600]) if quick else (X, y)


def _size_on_all_data(model, X, y) -> float:
    """MB of the pickled `model` refit on all the data (the same measure for every method)."""
    from sklearn.base import clone

    fitted = clone(model).fit(X, y)
    return len(pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6


def tpot_points(quick: bool, population: int, generations: int) -> dict:
    """Run in TPOT's venv: TPOT's NSGA-II on the same objectives; its points as JSON."""
    import time

    import tpot
    from tpot.config import get_search_space
    from tpot.search_spaces.pipelines import SequentialPipeline

    X, y = _digits(quick)
    space = SequentialPipeline([get_search_space("PCA"), get_search_space("SVC")])

    def model_size(pipeline):
        return _size_on_all_data(pipeline, X, y)

    search = tpot.TPOTEstimator(
        search_space=space, scorers=["accuracy"], scorers_weights=[1.0],
        other_objective_functions=[model_size], other_objective_functions_weights=[-1.0],
        objective_function_names=["model_size"], classification=True, cv=3,
        population_size=population, generations=generations, n_jobs=2, verbose=0,
        random_state=0)
    began = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - began
    frame = search.evaluated_individuals.dropna(subset=["accuracy_score", "model_size"])
    frame = frame[np.isfinite(frame["accuracy_score"].astype(float))]
    return {"points": np.column_stack([1 - frame["accuracy_score"].astype(float),
                                       frame["model_size"].astype(float)]).tolist(),
            "seconds": seconds, "evaluated": len(search.evaluated_individuals),
            "version": tpot.__version__}


def _run_tpot(quick: bool, population: int, generations: int) -> dict | None:
    if not os.path.exists(TPOT_PYTHON):
        return None
    command = [TPOT_PYTHON, os.path.abspath(__file__), "--tpot", str(int(quick)),
               str(population), str(generations)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False,
                          cwd=os.path.dirname(os.path.abspath(__file__)))
    if done.returncode:
        log(f"TPOT failed: {done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def multi_objective(quick: bool) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from dasktrain import GeneticSearchCV
    from dasktrain.space import Categorical, Continuous, Integer

    X, y = _digits(quick)
    pipe = Pipeline([("scaler", StandardScaler()), ("pca", PCA(random_state=0)),
                     ("svc", SVC())])
    space = {"pca__n_components": Integer(2, 60), "svc__C": Continuous(1e-2, 1e3, log=True),
             "svc__gamma": Continuous(1e-4, 1e-1, log=True),
             "svc__kernel": Categorical(["rbf", "poly"])}
    population, generations = (8, 2) if quick else (12, 5)
    rows, points = [], {}
    for name, objectives in (("GeneticSearchCV objectives=[score, model_size]",
                              ["score", "model_size"]),
                             ("GeneticSearchCV single objective", None)):
        log(f"multi-objective: {name}")
        search = GeneticSearchCV(pipe, space, population_size=population,
                                 generations=generations, cv=3, random_state=0, n_jobs=2,
                                 objectives=objectives, refit=False)
        with Timer() as timer:
            search.fit(X, y)
        results = search.cv_results_
        sizes = np.array([_size_on_all_data(pipe.set_params(**params), X, y)
                          for params in results["params"]])
        errors = 1 - results["mean_test_score"]
        points[name] = {"all": np.column_stack([errors, sizes])}
        if objectives is None:
            best = int(np.argmax(results["mean_test_score"]))
            points[name]["best"] = (errors[best], sizes[best])
        points[name]["seconds"] = timer.seconds
        points[name]["evaluated"] = len(results["params"])
    log("multi-objective: TPOT")
    tpot_run = _run_tpot(quick, population, generations)
    if tpot_run is not None:
        points[f"TPOT {tpot_run['version']} NSGA-II"] = {
            "all": np.asarray(tpot_run["points"], dtype=float),
            "seconds": tpot_run["seconds"], "evaluated": tpot_run["evaluated"]}
    largest = max(float(p["all"][:, 1].max()) for p in points.values())
    reference = (1.0, 1.1 * largest)
    multi = points["GeneticSearchCV objectives=[score, model_size]"]
    single = points["GeneticSearchCV single objective"]
    front = _front(multi["all"])
    best_error, best_size = single["best"]
    covers = bool(np.any((front[:, 0] <= best_error + 1e-12) & (front[:, 1] <= best_size * 1.02)))
    for name, p in points.items():
        f = _front(p["all"])
        rows.append([name, p["evaluated"], len(f), _hypervolume(f, reference),
                     float(1 - p["all"][:, 0].min()),
                     float(f[:, 1].min()), p["seconds"]])
    return {
        "table": {"title": "Accuracy against model size, digits PCA -> SVC",
                  "columns": ["method", "candidates", "front size", "hypervolume",
                              "best accuracy", "smallest front model (MB)", "wall s"],
                  "rows": rows,
                  "notes": f"Hypervolume of (1 - accuracy, MB) up to {reference}; "
                           "higher is better. Accuracy is each method's own 3-fold CV mean; "
                           "every size is the pickled candidate refit on all the data, "
                           "measured the same way for every method (dasktrain's search "
                           "itself minimised the size of its fold fits). "
                           + (TPOT_NOTE if tpot_run is not None else
                              "TPOT was not run: no TPOT_PYTHON.")},
        "targets": [target("front contains or dominates the single search's best point "
                           "(within 2% size)", float(covers), 1.0, "min")],
        "raw": {name: {"points": p["all"].tolist(), "seconds": p["seconds"]}
                for name, p in points.items()},
    }


# --------------------------------------------------------------------------- feature selection

def _datasets(quick: bool) -> dict:
    from sklearn.datasets import load_breast_cancer, make_classification

    X, y = make_classification(n_samples=300 if quick else 500, n_features=40,
                               n_informative=6, shuffle=False, random_state=0)
    out = {"make_classification(40 features, 6 informative)": (X, y, set(range(6)))}
    X, y = load_breast_cancer(return_X_y=True)
    from sklearn.preprocessing import StandardScaler

    out["breast_cancer (30 features)"] = (StandardScaler().fit_transform(X), y, None)
    return out


def _selectors(quick: bool, cv):
    from sklearn.feature_selection import RFECV, SequentialFeatureSelector
    from sklearn.linear_model import LogisticRegression

    from dasktrain import GeneticFeatureSelectionCV

    population, generations = (10, 4) if quick else (20, 10)
    model = LogisticRegression(max_iter=2000)
    yield "dasktrain GeneticFeatureSelectionCV", lambda: GeneticFeatureSelectionCV(
        model, cv=cv, population_size=population, generations=generations, random_state=0,
        n_jobs=2)
    try:
        from sklearn_genetic import GAFeatureSelectionCV
    except ImportError:
        pass
    else:
        yield "sklearn-genetic-opt GAFeatureSelectionCV", lambda: GAFeatureSelectionCV(
            model, cv=cv, population_size=population, generations=generations, n_jobs=2,
            verbose=False)
    yield "scikit-learn RFECV", lambda: RFECV(model, cv=cv, n_jobs=2)
    yield "scikit-learn SequentialFeatureSelector (forward, tol=1e-3)", \
        lambda: SequentialFeatureSelector(model, n_features_to_select="auto", tol=1e-3, cv=cv,
                                          n_jobs=2)


def feature_selection(quick: bool) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    tables, targets, raw = [], [], {}
    for data_name, (X, y, informative) in _datasets(quick).items():
        select_cv = StratifiedKFold(3, shuffle=True, random_state=0)
        score_cv = StratifiedKFold(5, shuffle=True, random_state=1)
        rows, measured = [], {}
        for name, make in _selectors(quick, select_cv):
            log(f"feature selection: {data_name}: {name}")
            selector = make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Timer() as timer:
                    selector.fit(X, y)
            support = np.asarray(selector.get_support())
            score = cross_val_score(LogisticRegression(max_iter=2000), X[:, support], y,
                                    cv=score_cv).mean()
            found = (len(informative & set(np.flatnonzero(support)))
                     if informative is not None else None)
            measured[name] = {"score": float(score), "n_features": int(support.sum()),
                              "informative": found, "seconds": timer.seconds}
            rows.append([name, float(score), int(support.sum()),
                         "-" if found is None else found, timer.seconds])
        tables.append({"title": f"Feature selection: {data_name}",
                       "columns": ["method", "CV accuracy (5 other folds)", "features",
                                   "informative of 6 kept", "wall s"],
                       "rows": rows,
                       "notes": "Selected with the same 3 folds; scored on 5 other folds."})
        ours = measured["dasktrain GeneticFeatureSelectionCV"]
        for name, other in measured.items():
            if name.startswith("dasktrain"):
                continue
            targets.append(target(f"{data_name}: score minus {name}'s",
                                  ours["score"] - other["score"], -0.005, "min"))
        sfs = next(v for k, v in measured.items() if "Sequential" in k)
        targets.append(target(f"{data_name}: wall time / SequentialFeatureSelector's",
                              ours["seconds"] / sfs["seconds"], 1.0, "max"))
        if informative is not None:
            targets.append(target(f"{data_name}: informative features kept",
                                  ours["informative"], 5, "min"))
        raw[data_name] = measured
    return {"tables": tables, "targets": targets, "raw": raw}


def run(quick: bool) -> dict:
    selection = feature_selection(quick)
    multi = multi_objective(quick)
    return {"title": "Several objectives and feature selection",
            "tables": [multi["table"], *selection["tables"]],
            "targets": multi["targets"] + selection["targets"],
            "raw": {"multi_objective": multi["raw"], "feature_selection": selection["raw"]}}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--tpot"]:
        quick, population, generations = (int(value) for value in sys.argv[2:5])
        print(json.dumps(tpot_points(bool(quick), population, generations)))
        sys.exit(0)
    result = run("--quick" in sys.argv)
    for table in result["tables"]:
        print(f"\n### {table['title']}\n")
        print("| " + " | ".join(table["columns"]) + " |")
        print("|" + "---|" * len(table["columns"]))
        for row in table["rows"]:
            print("| " + " | ".join(f"{c:.4g}" if isinstance(c, float) else str(c)
                                    for c in row) + " |")
        print(f"\n{table['notes']}")
    print("\nTargets:")
    for item in result["targets"]:
        print(f"- {item['name']}: {item['value']:.4g} ({item['kind']} {item['limit']}) "
              f"met={item['met']}")
    with open("/tmp/bench_multiobjective.json", "w") as out:
        json.dump(result, out, indent=1, default=str)
