"""Several objectives and feature selection against their peers (issue 15).

Every comparison runs over the seeds :data:`SEEDS`; for one seed every method
gets the same folds (``StratifiedKFold(shuffle=True, random_state=seed)``),
its own random state set to the seed, and the same budget. Tables give the
mean over the seeds and each seed's figure.

Multi-objective (digits, StandardScaler -> PCA -> SVC, accuracy against the
bytes of the pickled fitted pipeline): ``GeneticSearchCV(objectives=["score",
"model_size"])``, the single-objective ``GeneticSearchCV`` and TPOT 1.x's
NSGA-II, all on the same space (PCA ``n_components`` in [2, 60]; SVC ``C`` in
[1e-2, 1e3] and ``gamma`` in [1e-4, 1e-1], both log-uniform; ``kernel`` rbf or
poly), the same 3 folds and ``population_size * (generations + 1)``
candidates (TPOT counts its initial population as a generation: it is given
``generations + 1``). Every evaluated candidate of every method becomes the
point (1 - its mean CV accuracy, MB of the pipeline refit on all the data),
the size measured here by one function; the hypervolume (moocore's, the
package DEAP's indicator uses) of each method's non-dominated points up to one
reference point for all methods and seeds. What cannot be made equal is in
:data:`TPOT_NOTE`.

Feature selection (``make_classification(n_samples=500, n_features=40,
n_informative=6, shuffle=False)`` so that features 0-5 are the informative
ones and 6-7 redundant, and breast_cancer), LogisticRegression: dasktrain's
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
import random
import subprocess
import sys
import warnings

import numpy as np
from _common import Timer, log, target

#: The seeds every comparison runs over (folds and random states).
SEEDS = (0, 1, 2, 3, 4)
#: A Python with TPOT 1.x installed (TPOT pins its own dependencies: a separate venv).
TPOT_PYTHON = os.environ.get("TPOT_PYTHON", "/tmp/tpotvenv/bin/python")
TPOT_NOTE = (
    "TPOT runs in its own venv (same scikit-learn and numpy versions) on the same space "
    "(its EstimatorNode/ConfigSpace spaces with the same bounds and log scales), the same "
    "folds (the same StratifiedKFold object as cv=) and the same number of generations "
    "(plus one: its initial population counts as one). What differs: (1) its size "
    "objective is the pickled pipeline refit on all the data (TPOT's extra objectives "
    "receive the unfitted pipeline), dasktrain's the mean pickled size of the fold fits; "
    "both are scored here by the same all-data size; (2) its own variation operators "
    "(a mutation resamples a node's parameters; crossover swaps nodes) and parent "
    "selection; (3) it evaluates on its own Dask LocalCluster (n_jobs=2), so its wall "
    "time includes that cluster's start.")

DIGITS_SPACE = {"pca__n_components": (2, 60), "svc__C": (1e-2, 1e3),
                "svc__gamma": (1e-4, 1e-1), "svc__kernel": ("rbf", "poly")}


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


def _folds(seed: int, n_splits: int = 3):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits, shuffle=True, random_state=seed)


def _budget(quick: bool) -> tuple[int, int]:
    return (8, 2) if quick else (12, 5)


def _pipeline():
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return Pipeline([("scaler", StandardScaler()), ("pca", PCA(random_state=0)),
                     ("svc", SVC())])


def _plain(params: dict) -> dict:
    """`params` with numpy scalars as Python numbers (a stable cache key and JSON)."""
    out = {}
    for key, value in params.items():
        out[key] = value.item() if hasattr(value, "item") else value
    return out


class _Sizes:
    """MB of the pickled pipeline refit on all the data, per parameters (cached)."""

    def __init__(self, X, y):
        self.X, self.y, self.cache = X, y, {}

    def __call__(self, params: dict) -> float:
        key = json.dumps(_plain(params), sort_keys=True)
        if key not in self.cache:
            fitted = _pipeline().set_params(**params).fit(self.X, self.y)
            self.cache[key] = len(pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6
        return self.cache[key]


def tpot_run(quick: bool, seed: int, population: int, generations: int) -> dict:
    """Run in TPOT's venv: TPOT's NSGA-II on the same space, folds and objectives."""
    import time

    import tpot
    from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from tpot.search_spaces.nodes import EstimatorNode
    from tpot.search_spaces.pipelines import SequentialPipeline

    X, y = _digits(quick)
    low, high = DIGITS_SPACE["pca__n_components"]
    space = SequentialPipeline([
        EstimatorNode(StandardScaler, {}),
        EstimatorNode(PCA, ConfigurationSpace(space={
            "n_components": Integer("n_components", (low, high)), "random_state": 0})),
        EstimatorNode(SVC, ConfigurationSpace(space={
            "C": Float("C", DIGITS_SPACE["svc__C"], log=True),
            "gamma": Float("gamma", DIGITS_SPACE["svc__gamma"], log=True),
            "kernel": Categorical("kernel", list(DIGITS_SPACE["svc__kernel"]))}))])

    def model_size(pipeline):
        from sklearn.base import clone

        fitted = clone(pipeline).fit(X, y)
        return len(pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6

    search = tpot.TPOTEstimator(
        search_space=space, scorers=["accuracy"], scorers_weights=[1.0],
        other_objective_functions=[model_size], other_objective_functions_weights=[-1.0],
        objective_function_names=["model_size"], classification=True, cv=_folds(seed),
        population_size=population, generations=generations + 1, n_jobs=2, verbose=0,
        random_state=seed, max_time_mins=None)
    began = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - began
    frame = search.evaluated_individuals
    rows = []
    for individual, accuracy in zip(frame["Individual"], frame["accuracy_score"]):
        accuracy = float(accuracy)
        if not np.isfinite(accuracy):
            continue
        pipeline = individual.export_pipeline()
        pca = next(step for _, step in pipeline.steps if isinstance(step, PCA))
        svc = next(step for _, step in pipeline.steps if isinstance(step, SVC))
        rows.append({"accuracy": accuracy, "params": {
            "pca__n_components": int(pca.n_components), "svc__C": float(svc.C),
            "svc__gamma": float(svc.gamma), "svc__kernel": str(svc.kernel)}})
    return {"rows": rows, "seconds": seconds, "evaluated": len(frame),
            "version": tpot.__version__}


def _run_tpot(quick: bool, seed: int, population: int, generations: int) -> dict | None:
    if not os.path.exists(TPOT_PYTHON):
        return None
    command = [TPOT_PYTHON, os.path.abspath(__file__), "--tpot", str(int(quick)), str(seed),
               str(population), str(generations)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False,
                          cwd=os.path.dirname(os.path.abspath(__file__)))
    if done.returncode:
        log(f"TPOT failed: {done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ours(objectives, X, y, seed: int, quick: bool) -> dict:
    from dasktrain import GeneticSearchCV
    from dasktrain.space import Categorical, Continuous, Integer

    space = {"pca__n_components": Integer(*DIGITS_SPACE["pca__n_components"]),
             "svc__C": Continuous(*DIGITS_SPACE["svc__C"], log=True),
             "svc__gamma": Continuous(*DIGITS_SPACE["svc__gamma"], log=True),
             "svc__kernel": Categorical(list(DIGITS_SPACE["svc__kernel"]))}
    population, generations = _budget(quick)
    search = GeneticSearchCV(_pipeline(), space, population_size=population,
                             generations=generations, cv=_folds(seed), random_state=seed,
                             n_jobs=2, objectives=objectives, refit=False)
    with Timer() as timer:
        search.fit(X, y)
    results = search.cv_results_
    ok = np.isfinite(results["mean_test_score"])
    return {"rows": [{"accuracy": float(score), "params": _plain(params)}
                     for score, params, good in zip(results["mean_test_score"],
                                                    results["params"], ok) if good],
            "seconds": timer.seconds, "evaluated": len(results["params"])}


MULTI = "GeneticSearchCV objectives=[score, model_size]"
SINGLE = "GeneticSearchCV single objective"


def multi_objective(quick: bool) -> dict:
    X, y = _digits(quick)
    sizes = _Sizes(X, y)
    population, generations = _budget(quick)
    seeds = SEEDS[:1] if quick else SEEDS
    runs: dict = {}  # method -> seed -> run
    tpot_name = None
    for seed in seeds:
        for name, objectives in ((MULTI, ["score", "model_size"]), (SINGLE, None)):
            log(f"multi-objective: seed {seed}: {name}")
            runs.setdefault(name, {})[seed] = _ours(objectives, X, y, seed, quick)
        log(f"multi-objective: seed {seed}: TPOT")
        tpot = _run_tpot(quick, seed, population, generations)
        if tpot is not None:
            tpot_name = f"TPOT {tpot['version']} NSGA-II"
            runs.setdefault(tpot_name, {})[seed] = tpot
    for per_seed in runs.values():  # the points, measured here the same way for every method
        for run in per_seed.values():
            run["points"] = np.array([[1 - row["accuracy"], sizes(row["params"])]
                                      for row in run["rows"]], dtype=float).reshape(-1, 2)
    largest = max(float(run["points"][:, 1].max()) for per_seed in runs.values()
                  for run in per_seed.values())
    reference = (1.0, round(1.1 * largest, 4))
    summary: dict = {}
    for name, per_seed in runs.items():
        for seed, run in per_seed.items():
            front = _front(run["points"])
            run["front"] = front
            run["hypervolume"] = _hypervolume(front, reference)
        summary[name] = {
            key: [float(f(run)) for run in per_seed.values()] for key, f in (
                ("evaluated", lambda r: r["evaluated"]),
                ("front size", lambda r: len(r["front"])),
                ("hypervolume", lambda r: r["hypervolume"]),
                ("best accuracy", lambda r: 1 - r["points"][:, 0].min()),
                ("smallest front MB", lambda r: r["front"][:, 1].min()),
                ("seconds", lambda r: r["seconds"]))}
    covers = []
    for seed in seeds:  # the multi front contains or dominates the single search's best point
        single = runs[SINGLE][seed]["points"]
        best = single[np.lexsort((single[:, 1], single[:, 0]))[0]]  # best error, then size
        front = runs[MULTI][seed]["front"]
        covers.append(bool(np.any((front[:, 0] <= best[0] + 1e-12)
                                  & (front[:, 1] <= best[1] + 1e-12))))
    rows = []
    for name, values in summary.items():
        rows.append([name] + [_mean_and_seeds(values[key], key) for key in
                              ("evaluated", "front size", "hypervolume", "best accuracy",
                               "smallest front MB", "seconds")])
    targets = [target("front contains or dominates the single search's best point "
                      "(seeds where it does / seeds)", float(np.mean(covers)), 1.0, "min")]
    if tpot_name is not None:
        ours_hv = np.mean(summary[MULTI]["hypervolume"])
        tpot_hv = np.mean(summary[tpot_name]["hypervolume"])
        targets.append(target(f"hypervolume minus {tpot_name}'s (mean over seeds)",
                              float(ours_hv - tpot_hv), 0.0, "min"))
    return {
        "table": {"title": "Accuracy against model size, digits PCA -> SVC",
                  "columns": ["method", "candidates", "front size", "hypervolume",
                              "best accuracy", "smallest front model (MB)", "wall s"],
                  "rows": rows,
                  "notes": f"Mean over seeds {list(seeds)} (each seed's value in brackets). "
                           f"Hypervolume of (1 - CV accuracy, MB refit on all the data) up to "
                           f"{reference}, the same for every method and seed; higher is "
                           f"better. Same 3 folds per seed for every method. Front contains or "
                           f"dominates the single search's best point on seeds: "
                           f"{dict(zip(seeds, covers))}. "
                           + (TPOT_NOTE if tpot_name is not None else
                              "TPOT was not run: no TPOT_PYTHON.")},
        "targets": targets,
        "raw": {"reference": reference, "covers": dict(zip(map(str, seeds), covers)),
                "runs": {name: {str(seed): {"points": run["points"].tolist(),
                                            "params": [row["params"] for row in run["rows"]],
                                            "seconds": run["seconds"],
                                            "evaluated": run["evaluated"],
                                            "hypervolume": run["hypervolume"]}
                                for seed, run in per_seed.items()}
                         for name, per_seed in runs.items()}},
    }


def _mean_and_seeds(values, key: str = "") -> str:
    digits = 0 if key in ("evaluated", "front size") else (1 if key == "seconds" else 4)
    text = "/".join(f"{value:.{digits}f}" for value in values)
    return f"{np.mean(values):.{digits if digits else 1}f} ({text})"


# --------------------------------------------------------------------------- feature selection

def _datasets(quick: bool) -> dict:
    from sklearn.datasets import load_breast_cancer, make_classification
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=300 if quick else 500, n_features=40,
                               n_informative=6, shuffle=False, random_state=0)
    out = {"make_classification(40 features, 6 informative)": (X, y, set(range(6)))}
    X, y = load_breast_cancer(return_X_y=True)
    out["breast_cancer (30 features)"] = (StandardScaler().fit_transform(X), y, None)
    return out


OURS = "dasktrain GeneticFeatureSelectionCV"
SFS = "scikit-learn SequentialFeatureSelector (forward, tol=1e-3)"


def _selectors(quick: bool, cv, seed: int):
    from sklearn.feature_selection import RFECV, SequentialFeatureSelector
    from sklearn.linear_model import LogisticRegression

    from dasktrain import GeneticFeatureSelectionCV

    population, generations = (10, 4) if quick else (20, 10)
    model = LogisticRegression(max_iter=2000)
    yield OURS, lambda: GeneticFeatureSelectionCV(
        model, cv=cv, population_size=population, generations=generations, random_state=seed,
        n_jobs=2)
    try:
        from sklearn_genetic import GAFeatureSelectionCV
    except ImportError:
        pass
    else:
        def genetic():
            random.seed(seed)  # sklearn-genetic-opt draws from the global generators
            np.random.seed(seed)
            return GAFeatureSelectionCV(model, cv=cv, population_size=population,
                                        generations=generations, n_jobs=2, verbose=False)

        yield "sklearn-genetic-opt GAFeatureSelectionCV", genetic
    yield "scikit-learn RFECV", lambda: RFECV(model, cv=cv, n_jobs=2)
    yield SFS, lambda: SequentialFeatureSelector(model, n_features_to_select="auto", tol=1e-3,
                                                 cv=cv, n_jobs=2)


def _evaluations(selector) -> int | None:
    results = getattr(selector, "cv_results_", None)
    if isinstance(results, dict) and "params" in results:
        return len(results["params"])
    return None


def _warm_up() -> None:
    """Start, untimed, the process pools the methods run on: dasktrain's local pool and
    joblib's reusable one (GAFeatureSelectionCV, RFECV and SequentialFeatureSelector),
    both of 2 processes, so that no method's time includes a pool's start."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from dasktrain import GeneticFeatureSelectionCV

    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    GeneticFeatureSelectionCV(LogisticRegression(), cv=2, population_size=2, generations=0,
                              random_state=0, n_jobs=2).fit(X, y)
    cross_val_score(LogisticRegression(), X, y, cv=2, n_jobs=2)


def feature_selection(quick: bool) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    seeds = SEEDS[:1] if quick else SEEDS
    _warm_up()
    tables, targets, raw = [], [], {}
    for data_name, (X, y, informative) in _datasets(quick).items():
        measured: dict = {}  # method -> list over seeds
        for seed in seeds:
            select_cv = StratifiedKFold(3, shuffle=True, random_state=seed)
            score_cv = StratifiedKFold(5, shuffle=True, random_state=100 + seed)
            for name, make in _selectors(quick, select_cv, seed):
                log(f"feature selection: {data_name}: seed {seed}: {name}")
                selector = make()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with Timer() as timer:
                        selector.fit(X, y)
                support = np.asarray(selector.get_support())
                score = cross_val_score(LogisticRegression(max_iter=2000), X[:, support], y,
                                        cv=score_cv).mean()
                found = (len(informative & set(np.flatnonzero(support).tolist()))
                         if informative is not None else None)
                measured.setdefault(name, []).append({
                    "seed": seed, "score": float(score), "n_features": int(support.sum()),
                    "informative": found, "seconds": timer.seconds,
                    "evaluations": _evaluations(selector),
                    "support": np.flatnonzero(support).tolist()})
        rows = []
        for name, per_seed in measured.items():
            column = {key: [m[key] for m in per_seed] for key in per_seed[0]}
            rows.append([name, _mean_and_seeds(column["score"]),
                         _mean_and_seeds(column["n_features"], "front size"),
                         "-" if informative is None
                         else _mean_and_seeds(column["informative"], "front size"),
                         _mean_and_seeds(column["seconds"], "seconds")])
        tables.append({"title": f"Feature selection: {data_name}",
                       "columns": ["method", "CV accuracy (5 other folds)", "features",
                                   "informative of 6 kept", "wall s"],
                       "rows": rows,
                       "notes": f"Mean over seeds {list(seeds)} (each seed's value in "
                                "brackets); per seed every method selects with the same 3 "
                                "folds and is scored on the same 5 other folds. Both "
                                "genetic searches have the same population and generations "
                                f"({'10 and 4' if quick else '20 and 10'}); "
                                "every method runs with n_jobs=2 on pools started before "
                                "timing."})
        mean = {name: {key: float(np.mean([m[key] for m in per_seed]))
                       for key in ("score", "n_features", "seconds")}
                for name, per_seed in measured.items()}
        ours = mean[OURS]
        for name, other in mean.items():
            if name == OURS:
                continue
            targets.append(target(f"{data_name}: mean score minus {name}'s",
                                  ours["score"] - other["score"], -0.005, "min"))
            targets.append(target(f"{data_name}: mean features minus {name}'s",
                                  ours["n_features"] - other["n_features"], 0.0, "max"))
        ratios = [o["seconds"] / s["seconds"] for o, s in zip(measured[OURS], measured[SFS])]
        targets.append(target(f"{data_name}: wall time / SequentialFeatureSelector's "
                              f"(mean of per-seed ratios {[round(r, 2) for r in ratios]})",
                              float(np.mean(ratios)), 1.0, "max"))
        if informative is not None:
            kept = [m["informative"] for m in measured[OURS]]
            targets.append(target(f"{data_name}: fewest informative features kept over "
                                  f"seeds ({kept})", float(min(kept)), 5, "min"))
        raw[data_name] = measured
    return {"tables": tables, "targets": targets, "raw": raw}


def run(quick: bool) -> dict:
    parts = os.environ.get("BENCH_MULTIOBJECTIVE_PARTS", "selection,multi").split(",")
    selection = feature_selection(quick) if "selection" in parts else \
        {"tables": [], "targets": [], "raw": {}}
    multi = multi_objective(quick) if "multi" in parts else \
        {"table": None, "targets": [], "raw": {}}
    return {"title": "Several objectives and feature selection",
            "tables": [t for t in (multi["table"], *selection["tables"]) if t is not None],
            "targets": multi["targets"] + selection["targets"],
            "notes": f"Seeds {list(SEEDS[:1] if quick else SEEDS)}; machine load varies "
                     "(2 shared cores): wall times are noisy, their ratios are per seed.",
            "raw": {"multi_objective": multi["raw"], "feature_selection": selection["raw"]}}


def _print(result: dict) -> None:
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["--tpot"]:
        quick, seed, population, generations = (int(value) for value in sys.argv[2:6])
        print(json.dumps(tpot_run(bool(quick), seed, population, generations)))
        sys.exit(0)
    result = run("--quick" in sys.argv)
    _print(result)
    with open("/tmp/bench_multiobjective_fsel.json", "w") as out:
        json.dump(result, out, indent=1, default=str)
