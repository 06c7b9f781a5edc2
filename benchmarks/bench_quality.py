"""Search quality at equal budget: the best CV score each search finds (issue 13).

Every method gets the same number of evaluations (the *budget*), the same
folds (one ``StratifiedKFold(3, shuffle=True, random_state=seed)`` object for
classification, ``KFold`` for regression, handed to every method) and the same
seed; it runs in this process with ``use_dask=False``/``n_jobs=1``, so the
machine's load cannot change a score. Wall time is recorded but not compared:
it is noisy on the shared machine.

Methods
-------
``generational``, ``steady_state``
    dasktrain's ``GeneticSearchCV`` with its default settings other than
    ``population_size=8`` and ``generations = budget / 8 - 1`` (48 = 8 x (5 + 1),
    96 = 8 x (11 + 1)). A proposal already evaluated is not evaluated again but
    counts against the budget: ``distinct`` says how many were evaluated.
``tpe``
    Optuna's ``TPESampler(seed=seed)`` (its defaults), ``n_trials = budget``,
    each trial the mean of ``cross_val_score`` on the same folds.
``random``
    scikit-learn's ``RandomizedSearchCV(n_iter=budget)`` on the same folds.
``gasearchcv``
    sklearn-genetic-opt's ``GASearchCV`` (defaults, ``eaMuPlusLambda``) with
    ``population_size=8``. Its budget counts differently: the initial
    population is evaluated, then each generation breeds ``2 x population``
    children, all varied (crossover 0.2 + mutation 0.8 = 1), so ``g``
    generations propose ``8 + 16 g`` candidates and no ``g`` gives 48 or 96
    exactly. It runs ``g = ceil((budget - 8) / 16)`` generations (3 for 48,
    6 for 96) and only its first ``budget`` proposals, in the order it
    evaluated them (its logbook order, cache hits included), count. It draws
    from the global ``random`` and ``numpy.random`` generators, which are
    seeded with ``seed`` before each fit.

Bayesmark tasks
---------------
Datasets iris, wine, breast_cancer, digits (accuracy) and diabetes (negative
mean squared error), from scikit-learn's loaders, as Bayesmark loads them (no
preprocessing) and cut as Bayesmark does: the search sees the 80% training part
of ``train_test_split(test_size=0.2, random_state=0, shuffle=True)``. Models
knn, svm, dt, rf, ada with Bayesmark's search spaces, taken from
``bayesmark/sklearn_funcs.py`` in github.com/uber/bayesmark (``knn_cfg``,
``svm_cfg``, ``dt_cfg``, ``rf_cfg``, ``ada_cfg``/``ada_cfg_reg``) with its fixed
parameters (SVM: rbf kernel; RF: 10 trees; DT/RF: ``max_leaf_nodes=None``).
Three departures, the same for every method: Bayesmark's "logit" reals are
searched uniformly on their range (none of the four libraries has a logit
scale); ``SVC(probability=True)`` is dropped (``predict``, hence accuracy, does
not use the probabilities, and it costs five internal fits); the tree models
get ``random_state=0`` so that every method optimises the same deterministic
function (dasktrain would otherwise seed them itself and the others not). The
issue's earlier table used 12 tasks whose list it does not give, so all 25
run; ``--tasks`` selects some (a task name such as ``wine/dt``, a dataset or a
model).

Five-family task
----------------
``make_classification(1500, 25, n_informative=10, n_redundant=5,
random_state=0)``, a ``Pipeline([("scale", StandardScaler()), ("clf", ...)])``
whose ``clf`` is one of logistic regression, SVC, random forest, gradient
boosting and KNN, each with its own space; 100 and 200 evaluations, 3 seeds,
accuracy. dasktrain and RandomizedSearchCV get the space as a list of dicts
(``[{"clf": [LogisticRegression(...)], "clf__C": ...}, ...]``), TPE the same
conditional space define-by-run (the family first). dasktrain uses
``population_size=20``; a version of GeneticSearchCV that refuses a list of
dicts is reported as "not supported by this version". sklearn-genetic-opt has
no conditional spaces and does not run it.

Usage::

    python benchmarks/bench_quality.py --quick                 # smoke check, a minute or two
    python benchmarks/bench_quality.py --budgets 48 --seeds 5 \\
        --output benchmarks/results/quality_before.json
    python benchmarks/bench_quality.py --tasks wine/dt,diabetes --methods generational,tpe
    python benchmarks/bench_quality.py --resume --output ...   # skip the runs already in it

The tables are printed as Markdown. ``run.py --only quality`` runs the full
suite through :func:`run` (budgets 48 and 96, 5 seeds, every task).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import sys
import warnings
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import RESULTS_DIR, Timer, log, machine_info, markdown_table, target
from bench_search import _dasktrain_space, _guard, _scipy_space, _sklearn_genetic_space

#: Population of GeneticSearchCV and GASearchCV on the Bayesmark tasks.
POPULATION = 8
#: Population of GeneticSearchCV on the five-family task.
FAMILY_POPULATION = 20

METHODS = ("generational", "steady_state", "tpe", "random", "gasearchcv")
METHOD_NAMES = {"generational": "dasktrain generational", "steady_state": "dasktrain steady_state",
                "tpe": "Optuna TPE", "random": "RandomizedSearchCV",
                "gasearchcv": "sklearn-genetic-opt GASearchCV"}
DASKTRAIN = ("generational", "steady_state")

#: In the order they run: the cheapest first, so that a partial run covers the most tasks.
DATASETS = {"iris": "classification", "wine": "classification",
            "breast_cancer": "classification", "diabetes": "regression",
            "digits": "classification"}

# Bayesmark's spaces (bayesmark/sklearn_funcs.py), as (name, kind, low, high):
# "int" inclusive, "logfloat" log-uniform, "float" uniform (Bayesmark's "linear"
# and "logit" reals). The order is Bayesmark's.
_TREE_SPACE = [("max_depth", "int", 1, 15),
               ("min_samples_split", "float", 0.01, 0.99),
               ("min_samples_leaf", "float", 0.01, 0.49),
               ("min_weight_fraction_leaf", "float", 0.01, 0.49),
               ("max_features", "float", 0.01, 0.99),
               ("min_impurity_decrease", "float", 0.0, 0.5)]
MODELS = {
    "knn": {"classes": ("sklearn.neighbors", "KNeighborsClassifier", "KNeighborsRegressor"),
            "fixed": {},
            "space": [("n_neighbors", "int", 1, 25), ("p", "int", 1, 4)]},
    "svm": {"classes": ("sklearn.svm", "SVC", "SVR"),
            "fixed": {"kernel": "rbf"},
            "space": [("C", "logfloat", 1.0, 1e3), ("gamma", "logfloat", 1e-4, 1e-3),
                      ("tol", "logfloat", 1e-5, 1e-1)]},
    "dt": {"classes": ("sklearn.tree", "DecisionTreeClassifier", "DecisionTreeRegressor"),
           "fixed": {"max_leaf_nodes": None, "random_state": 0},
           "space": _TREE_SPACE},
    "rf": {"classes": ("sklearn.ensemble", "RandomForestClassifier", "RandomForestRegressor"),
           "fixed": {"n_estimators": 10, "max_leaf_nodes": None, "random_state": 0},
           "space": [_TREE_SPACE[0], _TREE_SPACE[4], *_TREE_SPACE[1:4], _TREE_SPACE[5]]},
    "ada": {"classes": ("sklearn.ensemble", "AdaBoostClassifier", "AdaBoostRegressor"),
            "fixed": {"random_state": 0},
            "space": [("n_estimators", "int", 10, 100), ("learning_rate", "logfloat", 1e-4, 1e1)]},
}
TASKS = tuple(f"{dataset}/{model}" for dataset in DATASETS for model in MODELS)
FAMILY_TASK = "five_family"

#: The five-family task: each family's estimator (in the pipeline step "clf") and space.
FAMILIES = {
    "logreg": {"estimator": ("sklearn.linear_model", "LogisticRegression", {"max_iter": 1000}),
               "space": [("C", "logfloat", 1e-4, 1e2)]},
    "svc": {"estimator": ("sklearn.svm", "SVC", {}),
            "space": [("C", "logfloat", 1e-2, 1e3), ("gamma", "logfloat", 1e-4, 1.0)]},
    "rf": {"estimator": ("sklearn.ensemble", "RandomForestClassifier", {"random_state": 0}),
           "space": [("n_estimators", "int", 10, 100), ("max_depth", "int", 2, 20),
                     ("min_samples_leaf", "int", 1, 10), ("max_features", "float", 0.1, 1.0)]},
    "gb": {"estimator": ("sklearn.ensemble", "GradientBoostingClassifier", {"random_state": 0}),
           "space": [("n_estimators", "int", 10, 100), ("learning_rate", "logfloat", 1e-3, 1.0),
                     ("max_depth", "int", 1, 5), ("subsample", "float", 0.5, 1.0)]},
    "knn": {"estimator": ("sklearn.neighbors", "KNeighborsClassifier", {}),
            "space": [("n_neighbors", "int", 1, 50), ("weights", "cat", ["uniform", "distance"])]},
}


# ----------------------------------------------------------------------------- tasks

def _make(module: str, name: str, params: dict):
    import importlib

    return getattr(importlib.import_module(module), name)(**params)


@functools.cache
def _bayesmark_data(dataset: str):
    """The 80% part Bayesmark's CV objective sees: (X, y)."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0, shuffle=True)
    return X_train, y_train


def bayesmark_task(name: str) -> dict:
    """Estimator, space spec, data, scoring and fold class of a task ``dataset/model``."""
    dataset, model = name.split("/")
    spec = MODELS[model]
    classification = DATASETS[dataset] == "classification"
    module, clf, reg = spec["classes"]
    X, y = _bayesmark_data(dataset)
    return {"name": name, "estimator": _make(module, clf if classification else reg,
                                             spec["fixed"]),
            "space": spec["space"], "X": X, "y": y, "classification": classification,
            "scoring": "accuracy" if classification else "neg_mean_squared_error"}


def family_task() -> dict:
    """The five-family task; its space is a list of (family, estimator, spec)."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=1500, n_features=25, n_informative=10,
                               n_redundant=5, random_state=0)
    families = [(family, _make(*spec["estimator"]), spec["space"])
                for family, spec in FAMILIES.items()]
    return {"name": FAMILY_TASK, "X": X, "y": y, "classification": True, "scoring": "accuracy",
            "estimator": Pipeline([("scale", StandardScaler()),
                                   ("clf", LogisticRegression(max_iter=1000))]),
            "families": families}


def folds(task: dict, seed: int):
    """The one CV splitter every method gets for this task and seed."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = StratifiedKFold if task["classification"] else KFold
    return splitter(n_splits=3, shuffle=True, random_state=seed)


# ----------------------------------------------------------------------------- spaces

def _linear_float(library: str, low: float, high: float):
    if library == "dasktrain":
        from dasktrain.space import Continuous

        return Continuous(low, high)
    if library == "scipy":
        from scipy.stats import uniform

        return uniform(low, high - low)
    from sklearn_genetic.space import Continuous

    return Continuous(low, high)


def space(spec, library: str, prefix: str = "") -> dict:
    """`spec` in one library's vocabulary ("dasktrain", "scipy", "sklearn_genetic").

    The kinds of ``bench_search`` plus "float" (uniform); names get `prefix`.
    """
    convert = {"dasktrain": _dasktrain_space, "scipy": _scipy_space,
               "sklearn_genetic": _sklearn_genetic_space}[library]
    converted = convert([item for item in spec if item[1] != "float"])
    out = {}
    for name, kind, *args in spec:
        out[prefix + name] = (_linear_float(library, *args) if kind == "float"
                              else converted[name])
    return out


def family_space(families, library: str) -> list[dict]:
    """The five-family space as a list of dicts, one per family (step "clf")."""
    return [{"clf": [estimator], **space(spec, library, prefix="clf__")}
            for _, estimator, spec in families]


def _suggest(trial, spec, prefix: str = "") -> dict:
    params = {}
    for name, kind, *args in spec:
        key = prefix + name
        if kind == "int":
            params[key] = trial.suggest_int(key, args[0], args[1])
        elif kind == "logfloat":
            params[key] = trial.suggest_float(key, args[0], args[1], log=True)
        elif kind == "float":
            params[key] = trial.suggest_float(key, args[0], args[1])
        else:
            params[key] = trial.suggest_categorical(key, list(args[0]))
    return params


def _params_key(params: dict) -> str:
    from dasktrain.space import value_key

    return value_key(dict(params))


# ----------------------------------------------------------------------------- methods

def _record(best_score, proposals, distinct, seconds, **extra) -> dict:
    return {"best_score": float(best_score), "proposals": int(proposals),
            "distinct": int(distinct), "seconds": round(seconds, 2), **extra}


def _run_dasktrain(task, cv, budget, seed, strategy, population):
    from dasktrain import GeneticSearchCV

    if "families" in task:
        distributions = family_space(task["families"], "dasktrain")
    else:
        distributions = space(task["space"], "dasktrain")
    search = GeneticSearchCV(task["estimator"], distributions, scoring=task["scoring"], cv=cv,
                             population_size=population, generations=budget // population - 1,
                             strategy=strategy, refit=False, random_state=seed,
                             use_dask=False, n_jobs=1)
    with Timer() as timer:
        try:
            search.fit(task["X"], task["y"])
        except (TypeError, ValueError) as exc:
            if isinstance(distributions, list) and "param_distributions" in str(exc):
                return {"error": f"not supported by this version: {exc}"[:200],
                        "unsupported": True}
            raise
    scores = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    history = search.history_
    return _record(np.nanmax(scores), budget, len(scores), timer.seconds,
                   evaluations=int(history["evaluations"].sum()),
                   cache_hits=int(history["cache_hits"].sum()))


def _run_tpe(task, cv, budget, seed):
    import optuna
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    families = {family: (estimator, spec) for family, estimator, spec in task.get("families", [])}

    def objective(trial):
        if families:
            family = trial.suggest_categorical("clf", list(families))
            estimator, spec = families[family]
            params = {"clf": clone(estimator), **_suggest(trial, spec, prefix="clf__")}
        else:
            params = _suggest(trial, task["space"])
        model = clone(task["estimator"]).set_params(**params)
        return float(np.mean(cross_val_score(model, task["X"], task["y"], cv=cv,
                                             scoring=task["scoring"], error_score=np.nan)))

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    with Timer() as timer:
        study.optimize(objective, n_trials=budget)
    values = [t.value for t in study.trials if t.value is not None]
    distinct = len({_params_key(t.params) for t in study.trials})
    return _record(np.nanmax(values) if values else np.nan, len(study.trials), distinct,
                   timer.seconds)


def _run_random(task, cv, budget, seed):
    from sklearn.model_selection import RandomizedSearchCV

    if "families" in task:
        distributions = family_space(task["families"], "scipy")
    else:
        distributions = space(task["space"], "scipy")
    search = RandomizedSearchCV(task["estimator"], distributions, n_iter=budget,
                                scoring=task["scoring"], cv=cv, refit=False, n_jobs=1,
                                random_state=seed)
    with Timer() as timer:
        search.fit(task["X"], task["y"])
    scores = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    distinct = len({_params_key(p) for p in search.cv_results_["params"]})
    return _record(np.nanmax(scores), len(scores), distinct, timer.seconds)


def gasearchcv_generations(budget: int, population: int = POPULATION) -> int:
    """Generations of GASearchCV whose proposals (population + 2 population each) reach budget."""
    return max(0, math.ceil((budget - population) / (2 * population)))


def _run_gasearchcv(task, cv, budget, seed):
    import random

    from sklearn_genetic import GASearchCV

    random.seed(seed)
    np.random.seed(seed)
    search = GASearchCV(task["estimator"], cv=cv, param_grid=space(task["space"],
                                                                   "sklearn_genetic"),
                        scoring=task["scoring"], population_size=POPULATION,
                        generations=gasearchcv_generations(budget), n_jobs=1, verbose=False,
                        refit=False, return_train_score=False)
    # its __init__ hands scikit-learn's BaseSearchCV.__init__ no return_train_score, which
    # resets it to True; set again, it is honoured (the test scores do not change)
    search.set_params(return_train_score=False)
    with Timer() as timer:
        search.fit(task["X"], task["y"])
    results = search.cv_results_
    names = [key[len("param_"):] for key in results if key.startswith("param_")]
    counted = min(budget, len(results["mean_test_score"]))
    scores = np.asarray(results["mean_test_score"][:counted], dtype=float)
    distinct = len({_params_key({n: results[f"param_{n}"][i] for n in names})
                    for i in range(counted)})
    return _record(np.nanmax(scores), counted, distinct, timer.seconds,
                   proposed_in_all=len(results["mean_test_score"]),
                   computes_train_scores=any(key.endswith("_train_score") for key in results))


def run_method(method: str, task: dict, budget: int, seed: int) -> dict:
    """One search of `task` by `method` with `budget` evaluations; a failure is recorded."""
    cv = folds(task, seed)
    family = "families" in task

    def measure():
        if method in DASKTRAIN:
            return _run_dasktrain(task, cv, budget, seed, method,
                                  FAMILY_POPULATION if family else POPULATION)
        if method == "tpe":
            return _run_tpe(task, cv, budget, seed)
        if method == "random":
            return _run_random(task, cv, budget, seed)
        if family:
            return {"error": "no conditional spaces in sklearn-genetic-opt", "unsupported": True}
        return _run_gasearchcv(task, cv, budget, seed)

    record = _guard(method, measure)
    record.pop("method", None)
    return {"task": task["name"], "method": method, "budget": budget, "seed": seed, **record}


# ----------------------------------------------------------------------------- analysis

def _rounded(value: float) -> float:
    """Scores compared after rounding: the same CV mean computed by two libraries ties."""
    return round(float(value), 10)


def summarise(runs: list[dict], methods, tasks, budget: int) -> dict:
    """Mean best score per (task, method), ranks and the counts the issue's goal uses."""
    from scipy.stats import rankdata

    mine = [r for r in runs if r["budget"] == budget and r["task"] in tasks
            and r["method"] in methods]
    # only the seeds every method has run on a task (a partial run compares like with like)
    complete = set()
    for task in tasks:
        ran = [{r["seed"] for r in mine if r["task"] == task and r["method"] == m}
               for m in methods]
        complete |= {(task, seed) for seed in set.intersection(*ran)} if ran else set()
    good = [r for r in mine if "error" not in r and (r["task"], r["seed"]) in complete]
    per_task = {}
    for task in tasks:
        means, spread = {}, {}
        for method in methods:
            scores = [r["best_score"] for r in good if r["task"] == task and r["method"] == method]
            if scores:
                means[method] = _rounded(np.mean(scores))
                spread[method] = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
        if not means:
            continue
        ranked = list(means)
        ranks = rankdata([-means[m] for m in ranked], method="average")
        per_task[task] = {"mean": means, "std": spread,
                          "rank": dict(zip(ranked, map(float, ranks))),
                          "seeds": {m: len([r for r in good if r["task"] == task
                                            and r["method"] == m]) for m in ranked}}
    by_method = {}
    for method in methods:
        entries = [t for t in per_task.values() if method in t["mean"]]
        if not entries:
            continue
        distinct = [r["distinct"] for r in good if r["method"] == method]
        row = {"tasks": len(entries),
               "mean_rank": float(np.mean([t["rank"][method] for t in entries])),
               "won": sum(t["rank"][method] == min(t["rank"].values()) for t in entries),
               "ge_random": sum(t["mean"][method] >= t["mean"]["random"] for t in entries
                                if "random" in t["mean"]),
               "gt_tpe": sum(t["mean"][method] > t["mean"]["tpe"] for t in entries
                             if "tpe" in t["mean"]),
               "distinct_mean": float(np.mean(distinct)), "distinct_min": int(min(distinct)),
               "seconds": float(sum(r["seconds"] for r in good if r["method"] == method))}
        by_method[method] = row
    return {"per_task": per_task, "by_method": by_method}


def _score_cell(value: float, regression: bool) -> str:
    return f"{value:.1f}" if regression else f"{value:.4f}"


def tables(summary: dict, methods, budget: int) -> list[dict]:
    """The Markdown-ready tables of one budget: per task, summary, dasktrain's losses."""
    per_task, by_method = summary["per_task"], summary["by_method"]
    shown = [m for m in methods if m in by_method]
    rows = []
    for task, entry in per_task.items():
        regression = task.startswith("diabetes")
        row = [task, max(entry["seeds"].values())]
        for method in shown:
            if method in entry["mean"]:
                row.append(f"{_score_cell(entry['mean'][method], regression)} "
                           f"({entry['rank'][method]:g})")
            else:
                row.append("-")
        rows.append(row)
    per_task_table = {
        "title": f"Quality, budget {budget}: mean best CV score over the seeds (rank)",
        "columns": ["task", "seeds", *[METHOD_NAMES[m] for m in shown]], "rows": rows,
        "notes": ("Accuracy, or negative MSE for diabetes; 3-fold CV on the same folds for "
                  "every method; rank 1 = best, ties averaged.")}
    n_tasks = len(per_task)
    summary_rows = []
    for method in shown:
        row = by_method[method]
        summary_rows.append([METHOD_NAMES[method], row["mean_rank"], row["won"],
                             f"{row['ge_random']}/{n_tasks}",
                             f"{row['gt_tpe']}/{n_tasks}" if method != "tpe" else "-",
                             row["distinct_mean"], row["distinct_min"], row["seconds"]])
    summary_table = {
        "title": f"Quality, budget {budget}: ranks over {n_tasks} tasks",
        "columns": ["method", "mean rank", "tasks won", "tasks >= random", "tasks > TPE",
                    "distinct candidates (mean)", "distinct (min)", "wall s (sum)"],
        "rows": summary_rows,
        "notes": ("Tasks won: rank 1, ties included. Distinct candidates: of the budget's "
                  "proposals, how many were actually cross-validated. Wall time is noted, "
                  "not compared: the machine is shared.")}
    loss_rows = []
    for task, entry in per_task.items():
        means = entry["mean"]
        best_method = max(means, key=means.get)
        for method in DASKTRAIN:
            if method not in means:
                continue
            for other in ("tpe", "random"):
                if other in means and means[method] < means[other]:
                    regression = task.startswith("diabetes")
                    loss_rows.append([
                        task, METHOD_NAMES[method], _score_cell(means[method], regression),
                        METHOD_NAMES[other], _score_cell(means[other], regression),
                        _score_cell(means[method] - means[other], regression),
                        " / ".join(_score_cell(entry["std"][m], regression)
                                   for m in (method, other)),
                        " ".join((METHOD_NAMES[best_method],
                                  _score_cell(means[best_method], regression)))])
    loss_table = {
        "title": f"Quality, budget {budget}: where dasktrain is behind TPE or random search",
        "columns": ["task", "dasktrain", "score", "behind", "its score", "difference",
                    "sd over seeds (both)", "best"],
        "rows": loss_rows,
        "notes": "Mean best CV scores over the seeds; sd: their standard deviation."}
    return [per_task_table, summary_table, loss_table]


def goal_targets(summary: dict, budget: int) -> list[dict]:
    """The issue's goal for each dasktrain strategy at this budget."""
    by_method = summary["by_method"]
    n_tasks = len(summary["per_task"])
    out = []
    for method in DASKTRAIN:
        if method not in by_method:
            continue
        row = by_method[method]
        # the peers': each strategy is to rank ahead of every peer, not of the other one
        # (ranks are still over all the methods)
        peers = [r["mean_rank"] for m, r in by_method.items() if m not in DASKTRAIN]
        out.append(target(f"budget {budget}: {method} mean rank - best peer's mean rank",
                          row["mean_rank"] - min(peers) if peers else float("nan"), 0.0,
                          "max"))
        if "random" in by_method:
            out.append(target(f"budget {budget}: {method} tasks >= random search",
                              row["ge_random"], n_tasks, "min"))
        if "tpe" in by_method:
            out.append(target(f"budget {budget}: {method} tasks > Optuna TPE",
                              row["gt_tpe"], math.ceil(2 * n_tasks / 3), "min"))
    return out


def family_table(runs: list[dict], methods, budgets) -> dict:
    rows = []
    for budget in budgets:
        for method in methods:
            mine = [r for r in runs if r["task"] == FAMILY_TASK and r["budget"] == budget
                    and r["method"] == method]
            if not mine:
                continue
            good = [r for r in mine if "error" not in r]
            if not good:
                rows.append([budget, METHOD_NAMES[method], None, "", None, None,
                             mine[0]["error"][:90]])
                continue
            scores = [r["best_score"] for r in good]
            rows.append([budget, METHOD_NAMES[method], float(np.mean(scores)),
                         ", ".join(f"{s:.4f}" for s in scores),
                         float(np.mean([r["distinct"] for r in good])),
                         float(sum(r["seconds"] for r in good)), ""])
    return {"title": "Five-family task: mean best CV accuracy",
            "columns": ["budget", "method", "mean best CV", "per seed", "distinct candidates",
                        "wall s (sum)", "note"],
            "rows": rows,
            "notes": ("make_classification(1500, 25, n_informative=10, n_redundant=5), "
                      "StandardScaler then one of logistic regression, SVC, random forest, "
                      "gradient boosting, KNN; 3-fold CV on the same folds.")}


# ----------------------------------------------------------------------------- driver

def _select_tasks(tokens) -> list[str]:
    if not tokens:
        return [*TASKS, FAMILY_TASK]
    chosen = [t for t in [*TASKS, FAMILY_TASK]
              if any(tok in (t, *t.split("/")) for tok in tokens)]
    unknown = [tok for tok in tokens
               if not any(tok in (t, *t.split("/")) for t in [*TASKS, FAMILY_TASK])]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; a task ({', '.join(TASKS)}, "
                         f"{FAMILY_TASK}), a dataset or a model")
    return chosen


def _save(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n")
    tmp.replace(path)


def suite(budgets=(48, 96), seeds=5, tasks=None, methods=METHODS, family_budgets=(100, 200),
          family_seeds=3, output: Path | None = None, resume: bool = False) -> dict:
    """Run the selected tasks and methods; returns the result dict (tables included)."""
    tasks = _select_tasks(tasks)
    bayesmark = [t for t in tasks if t != FAMILY_TASK]
    result = {"title": "Search quality at equal budget", "budgets": list(budgets),
              "seeds": seeds, "tasks": tasks, "methods": list(methods),
              "family_budgets": list(family_budgets), "family_seeds": family_seeds,
              "population": POPULATION, "family_population": FAMILY_POPULATION,
              "gasearchcv_generations": {b: gasearchcv_generations(b) for b in budgets},
              "machine": machine_info(), "runs": []}
    done = set()
    if resume and output is not None and output.exists():
        result["runs"] = [r for r in json.loads(output.read_text()).get("runs", [])]
        done = {(r["task"], r["method"], r["budget"], r["seed"]) for r in result["runs"]}
    started = datetime.datetime.now(datetime.UTC)
    with Timer() as total:
        plan = [(budget, name, seed) for budget in budgets for name in bayesmark
                for seed in range(seeds)]
        if FAMILY_TASK in tasks:
            plan += [(budget, FAMILY_TASK, seed) for budget in family_budgets
                     for seed in range(family_seeds)]
        for budget, name, seed in plan:
            task = family_task() if name == FAMILY_TASK else bayesmark_task(name)
            for method in methods:
                if (name, method, budget, seed) in done:
                    continue
                record = run_method(method, task, budget, seed)
                log(f"budget {budget} {name} seed {seed} {method}: "
                    + (record["error"][:80] if "error" in record else
                       f"{record['best_score']:.4f} ({record['distinct']} distinct, "
                       f"{record['seconds']:.1f} s)"))
                result["runs"].append(record)
                if output is not None:
                    _save(output, result)
    result["date"] = started.isoformat(timespec="seconds")
    result["seconds"] = round(total.seconds, 1)
    tabulate(result)
    if output is not None:
        _save(output, result)
    return result


def tabulate(result: dict) -> dict:
    """Fill the tables, targets and notes of `result` from its ``runs``; returns it.

    The budgets, tasks and methods are those present in the runs (in this
    module's order), so results merged from several files are tabulated alike.
    """
    runs = result["runs"]
    methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    bayesmark = [t for t in TASKS if any(r["task"] == t for r in runs)]
    budgets = sorted({r["budget"] for r in runs if r["task"] in bayesmark})
    family_budgets = sorted({r["budget"] for r in runs if r["task"] == FAMILY_TASK})
    result["tables"], result["targets"], result["summaries"] = [], [], {}
    for budget in budgets:
        summary = summarise(runs, methods, bayesmark, budget)
        result["summaries"][budget] = summary
        result["tables"] += tables(summary, methods, budget)
        result["targets"] += goal_targets(summary, budget)
    if family_budgets:
        result["tables"].append(family_table(runs, methods, family_budgets))
    gas = [r for r in runs if r["method"] == "gasearchcv" and "error" not in r]
    result["notes"] = (
        f"dasktrain: population {POPULATION}, generations = budget / {POPULATION} - 1 "
        f"(five-family: population {FAMILY_POPULATION}). GASearchCV: population {POPULATION}, "
        "generations " + (", ".join(f"{gasearchcv_generations(b)} for {b}" for b in budgets)
                          or f"ceil((budget - {POPULATION}) / {2 * POPULATION})")
        + ", its first `budget` proposals counted"
        + ("; it computed train scores although given return_train_score=False (more "
           "time, the same test scores)" if any(r.get("computes_train_scores") for r in gas)
           else "; it computed no train scores (return_train_score=False set again after "
           "construction: its __init__ resets it to True)")
        + ". Optuna TPE: TPESampler(seed) defaults. Every method: use_dask=False/n_jobs=1.")
    return result


def merge(paths) -> dict:
    """The runs of several result files in one result (a later file's run replaces an
    earlier one of the same task, method, budget and seed), tabulated."""
    runs = {}
    for path in paths:
        for run in json.loads(Path(path).read_text()).get("runs", []):
            runs[(run["task"], run["method"], run["budget"], run["seed"])] = run
    return tabulate({"title": "Search quality at equal budget",
                     "merged_from": [str(p) for p in paths], "machine": machine_info(),
                     "runs": list(runs.values())})


def markdown(result: dict) -> str:
    """The tables and targets of `result` as Markdown."""
    lines = []
    for table in result.get("tables", []):
        lines += [f"### {table['title']}", "", markdown_table(table["columns"], table["rows"]),
                  ""]
        if table.get("notes"):
            lines += [table["notes"], ""]
    if result.get("targets"):
        rows = [[t["name"], t["value"], ("<= " if t["kind"] == "max" else ">= ")
                 + str(t["limit"]), "met" if t["met"] else "**missed**"]
                for t in result["targets"]]
        lines += ["### The issue's goal", "",
                  markdown_table(["target", "measured", "limit", "verdict"], rows), ""]
    if result.get("notes"):
        lines += [result["notes"], ""]
    return "\n".join(lines)


QUICK = {"budgets": (16,), "seeds": 1, "tasks": ["iris/knn", "wine/dt", "diabetes/dt",
                                                  FAMILY_TASK],
         "family_budgets": (40,), "family_seeds": 1}


def run(quick: bool) -> dict:
    """The entry point of ``run.py``: the full suite, or a smoke-sized one."""
    return suite(**QUICK) if quick else suite()


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=_int_list, default=(48, 96),
                        help=f"Bayesmark budgets, multiples of {POPULATION} (default 48,96)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--tasks", default="",
                        help="comma-separated tasks, datasets or models (default: all 25 "
                             f"and {FAMILY_TASK})")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--family-budgets", type=_int_list, default=(100, 200),
                        help=f"five-family budgets, multiples of {FAMILY_POPULATION}")
    parser.add_argument("--family-seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny run for smoke checks")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "quality.json",
                        help="JSON file, rewritten after every run")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in --output and skip them")
    parser.add_argument("--tables-only", nargs="+", type=Path, metavar="FILE",
                        help="run nothing: print the tables of these result files merged "
                             "(written to --output when it is given explicitly)")
    args = parser.parse_args(argv)
    if args.tables_only:
        result = merge(args.tables_only)
        print(markdown(result))
        if "--output" in (argv if argv is not None else sys.argv):
            _save(args.output, result)
        return 0

    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    options = dict(QUICK) if args.quick else {
        "budgets": args.budgets, "seeds": args.seeds, "family_budgets": args.family_budgets,
        "family_seeds": args.family_seeds,
        "tasks": [t for t in args.tasks.split(",") if t] or None}
    if args.quick and args.tasks:
        options["tasks"] = [t for t in args.tasks.split(",") if t]
    for name, values, step in (("--budgets", options["budgets"], POPULATION),
                               ("--family-budgets", options["family_budgets"],
                                FAMILY_POPULATION)):
        bad = [b for b in values if b < 2 * step or b % step]
        if bad:
            parser.error(f"{name} must be multiples of {step} of at least {2 * step}; "
                         f"got {', '.join(map(str, bad))}")
    if options["seeds"] < 1 or options["family_seeds"] < 1:
        parser.error("--seeds and --family-seeds must be at least 1")
    try:
        _select_tasks(options["tasks"])
    except ValueError as exc:
        parser.error(f"--tasks: {exc}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = suite(methods=methods, output=args.output, resume=args.resume, **options)
    print(markdown(result))
    log(f"wrote {args.output} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
