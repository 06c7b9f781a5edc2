"""Pruning: the time to reach the unpruned search's best score, its cost, and its peers (issue 14).

For each workload and seed, the same GeneticSearchCV runs without pruning,
with ``pruning="folds"`` and with ``pruning="rows"`` on the same 2-worker cluster (dasktrain's own
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

Peers, on ``costly`` and ``digits``, same space, same folds (``StratifiedKFold``
without shuffling, as dasktrain's ``cv=k``), two parallel workers, same seeds:

- scikit-learn's ``HalvingRandomSearchCV`` (``n_candidates`` = the search's
  budget of ``population_size * (generations + 1)``, ``factor=3``,
  ``resource="n_samples"``, ``min_resources="exhaust"`` so that its last round
  fits on all the rows, ``n_jobs=2``);
- TPOT 1.x (``TPOTEstimator`` with the same three-step pipeline and ranges as
  a ConfigSpace space, ``threshold_evaluation_pruning=TPOT_PRUNING``, the same
  population and ``generations + 1`` generations, ``n_jobs=2``: its own
  2-worker LocalCluster) in its own venv, given by the ``TPOT_PYTHON``
  environment variable (default ``/tmp/tpotvenv/bin/python``; see
  benchmarks/README.md); skipped, with a note, when that interpreter is absent.

Each peer's best CV score is compared with dasktrain's best at the same wall
time (the best at the last generation that ended by then; NaN before the
first, which counts as a miss), and dasktrain's final best with the peer's best
at dasktrain's whole time: TPOT's evaluations carry completion times;
HalvingRandomSearchCV, which has none, is run again with 2, 4, ... times the
candidates (at most ``2 ** HALVING_DOUBLINGS``) until a run takes as long as
dasktrain's search, and its best run within that time counts.

Each rule has its own rows: "folds" (``pruned`` in the raw results) and
"rows" (``rows``), each against the same unpruned run (``plain``).

Usage::

    python benchmarks/bench_pruning.py [--quick] [--no-peers]
    TPOT_PYTHON=/path/to/venv/bin/python python benchmarks/bench_pruning.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings

import numpy as np
from _common import (
    Timer,
    log,
    markdown_table,
    median,
    ratio,
    target,
    task_stream,
    two_worker_cluster,
    write_result,
)

TOLERANCE = 0.002
#: A Python with TPOT 1.x installed (TPOT pins its own dependencies: a separate venv).
TPOT_PYTHON = os.environ.get("TPOT_PYTHON", "/tmp/tpotvenv/bin/python")
#: TPOT's threshold pruning: a fold's score below this percentile (moving from the first
#: value to the second over the generations) of the scores seen so far stops the evaluation.
TPOT_PRUNING = [30, 80]
#: Bounds of the SVC pipelines' spaces (PCA components, SVC C and gamma, the last two on a
#: log scale), by workload and mode.
RANGES = {"costly": {"n_components": (5, 60), "C": (1e-2, 1e3), "gamma": (1e-5, 1e-1)},
          "digits": {"n_components": (5, 40), "C": (1e-2, 1e3), "gamma": (1e-5, 1e-1)}}


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


def _data(name: str, quick: bool) -> dict:
    """The data, folds and sizes of a workload (scikit-learn only: TPOT's venv runs it too)."""
    from sklearn.datasets import load_digits, make_classification
    from sklearn.model_selection import StratifiedKFold

    generations = 2 if quick else 5
    if name == "costly":
        X, y = make_classification(n_samples=1000 if quick else 3000, n_features=60,
                                   n_informative=20, random_state=0)
        return {"X": X, "y": y, "cv": StratifiedKFold(3), "population_size": 12,
                "generations": generations}
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return {"X": X, "y": y, "cv": StratifiedKFold(5), "population_size": 12,
                "generations": generations}
    X, y = make_classification(n_samples=200, n_features=10, random_state=0)
    return {"X": X, "y": y, "cv": StratifiedKFold(5), "population_size": 20,
            "generations": generations}


def _svc_pipeline():
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), PCA(random_state=0), SVC())


def _workload(name: str, quick: bool) -> dict:
    from scipy.stats import loguniform
    from sklearn.dummy import DummyClassifier

    from dasktrain.space import Integer

    work = _data(name, quick)
    if name in RANGES:
        ranges = RANGES[name]
        space = {"pca__n_components": Integer(*ranges["n_components"]),
                 "svc__C": loguniform(*ranges["C"]), "svc__gamma": loguniform(*ranges["gamma"])}
        return dict(work, estimator=_svc_pipeline(), space=space)
    return dict(work, estimator=DummyClassifier(strategy="prior"),
                space={"constant": Integer(0, 10**6)})


def _search(work: dict, seed: int, pruning, client) -> dict:
    from dasktrain import GeneticSearchCV

    clock = _Clock()
    search = GeneticSearchCV(work["estimator"], work["space"], cv=work["cv"],
                             population_size=work["population_size"],
                             generations=work["generations"], pruning=pruning,
                             callbacks=[clock], refit=False, random_state=seed,
                             use_dask=True, client=client)
    with task_stream(client) as stream, Timer() as timer:
        search.fit(work["X"], work["y"])
    results = search.cv_results_
    status = results["status"]
    # fit + score seconds of the splits fitted, per generation (pruned: the folds it saw)
    n_fitted = np.sum([np.isfinite(results[f"split{k}_test_score"]) | (status != "pruned")
                       for k in range(search.n_splits_)], axis=0)
    spent = (results["mean_fit_time"] + results["mean_score_time"]) * n_fitted
    if "rung_time" in results:  # pruning="rows": every candidate's rung too
        spent = spent + np.nan_to_num(results["rung_time"])
    generation = np.asarray(results["generation"])
    return {"seconds": timer.seconds, "best": float(np.nanmax(
        results["mean_test_score"][status != "pruned"])),
        "points": clock.points, "pruned": int((status == "pruned").sum()),
        "evaluated": len(status), "busy_seconds": stream["busy_seconds"],
        "tasks": stream["tasks"], "splits_fitted": int(n_fitted.sum()),
        "fit_seconds": [float(spent[generation == g].sum())
                        for g in range(len(clock.points))]}


def _time_to(points, score: float, whole: float) -> tuple[float, bool]:
    for seconds, best in points:
        if best >= score - TOLERANCE:
            return seconds, True
    return whole, False


def _fit_seconds_to(pruned: dict, score: float, plain: dict) -> float:
    """Fit + score seconds of the pruned search's splits up to the generation where it first
    reaches `score`, over those of the whole unpruned search (all of it when never)."""
    reached = [g for g, (_, best) in enumerate(pruned["points"]) if best >= score - TOLERANCE]
    last = reached[0] if reached else len(pruned["fit_seconds"]) - 1
    return ratio(sum(pruned["fit_seconds"][:last + 1]), sum(plain["fit_seconds"]))


def _best_at(points, seconds: float) -> float:
    """The best score of a (seconds, best so far) curve at `seconds` (NaN before it starts)."""
    reached = [best for at, best in points if at <= seconds]
    return max(reached) if reached else float("nan")


def _halving(name: str, work: dict, seed: int, n_candidates: int | None = None) -> dict:
    """scikit-learn's HalvingRandomSearchCV on the same space, folds and budget, n_jobs=2
    (`n_candidates`: another budget)."""
    from scipy.stats import loguniform, randint
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV

    ranges = RANGES[name]
    low, high = ranges["n_components"]
    space = {"pca__n_components": randint(low, high + 1), "svc__C": loguniform(*ranges["C"]),
             "svc__gamma": loguniform(*ranges["gamma"])}
    search = HalvingRandomSearchCV(
        _svc_pipeline(), space,
        n_candidates=n_candidates or work["population_size"] * (work["generations"] + 1),
        factor=3, resource="n_samples", min_resources="exhaust", cv=work["cv"], n_jobs=2,
        refit=False, random_state=seed, error_score=np.nan)
    with warnings.catch_warnings(), Timer() as timer:
        warnings.simplefilter("ignore")  # fits of small rounds with more components than rows
        search.fit(work["X"], work["y"])
    results = search.cv_results_
    last = results["iter"] == results["iter"].max()
    return {"seconds": timer.seconds, "best": float(search.best_score_),
            "fits": int(np.sum(results["n_resources"] > 0) * work["cv"].get_n_splits()),
            "failed": int(np.sum(~np.isfinite(results["mean_test_score"]))),
            "finalists": int(last.sum()), "n_candidates": int(search.n_candidates_[0])}


#: HalvingRandomSearchCV given more time: its budget doubled at most this many times.
HALVING_DOUBLINGS = 4


def _halving_longer(name: str, work: dict, seed: int, first: dict, seconds: float) -> list:
    """HalvingRandomSearchCV given up to `seconds` (dasktrain's own wall time): runs with
    twice, four times, ... the candidates of `first` until one takes `seconds` or more
    (at most :data:`HALVING_DOUBLINGS`); each run's time, budget and best."""
    runs = [first]
    budget = first["n_candidates"]
    for _ in range(HALVING_DOUBLINGS):
        if runs[-1]["seconds"] >= seconds:
            break
        budget *= 2
        runs.append(_halving(name, work, seed, n_candidates=budget))
        log(f"{name} seed {seed}: halving n_candidates={budget} {runs[-1]['seconds']:.1f} s "
            f"best {runs[-1]['best']:.4f}")
    return [{key: run[key] for key in ("seconds", "best", "n_candidates")} for run in runs]


def _halving_within(pair: dict, seconds: float) -> float:
    """The best HalvingRandomSearchCV reached in a run of at most `seconds` (its best budget
    in hindsight), NaN when every run took longer."""
    bests = [run["best"] for run in pair.get("halving_longer", [pair["halving"]])
             if run["seconds"] <= seconds]
    return max(bests) if bests else float("nan")


def tpot_search(name: str, quick: bool, seed: int) -> dict:
    """Run in TPOT's venv: TPOT with threshold pruning on the same space; its timeline."""
    import tpot
    from ConfigSpace import ConfigurationSpace, Constant, Float, Integer
    from distributed import Client, LocalCluster
    from sklearn import model_selection
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from tpot.search_spaces.nodes import EstimatorNode
    from tpot.search_spaces.pipelines import SequentialPipeline

    work, ranges = _data(name, quick), RANGES[name]
    # TPOT 1.1 with pruning needs an int ``cv`` (it is also its number of pruning steps),
    # which it turns into StratifiedKFold(shuffle=True): give it the unshuffled folds of the
    # other methods instead (this process runs TPOT only)
    plain = model_selection.StratifiedKFold
    model_selection.StratifiedKFold = lambda n_splits, **options: plain(n_splits)
    pca = ConfigurationSpace()
    pca.add([Integer("n_components", ranges["n_components"]), Constant("random_state", 0)])
    svc = ConfigurationSpace()
    svc.add([Float("C", ranges["C"], log=True), Float("gamma", ranges["gamma"], log=True)])
    space = SequentialPipeline([EstimatorNode(StandardScaler, {}), EstimatorNode(PCA, pca),
                                EstimatorNode(SVC, svc)])
    # the cluster TPOT would start for n_jobs=2, started before the clock as dasktrain's is
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           silence_logs=50, dashboard_address=None)
    client = Client(cluster)
    search = tpot.TPOTEstimator(
        search_space=space, scorers=["accuracy"], scorers_weights=[1.0], classification=True,
        cv=work["cv"].get_n_splits(), population_size=work["population_size"],
        generations=work["generations"] + 1, threshold_evaluation_pruning=TPOT_PRUNING,
        max_time_mins=None, n_jobs=2, verbose=0, random_state=seed, client=client)
    began = time.time()
    search.fit(work["X"], work["y"])
    seconds = time.time() - began
    client.close()
    cluster.close()
    frame = search.evaluated_individuals
    column = "accuracy_score" if "accuracy_score" in frame else "accuracy"
    scores = frame[column].astype(float)  # NaN for the pruned: only complete ones have it
    done = frame["Completed Timestamp"].astype(float) - began
    complete = np.isfinite(scores.to_numpy(dtype=float))
    if "Eval Error" in frame:
        complete &= frame["Eval Error"].isna().to_numpy()
    order = np.argsort(done.to_numpy())
    points, best = [], -np.inf
    for index in order:
        if complete[index] and scores.iloc[index] > best:
            best = float(scores.iloc[index])
            points.append((float(done.iloc[index]), best))
    errors = frame["Eval Error"].astype(str).value_counts().to_dict() if "Eval Error" in frame \
        else {}
    return {"seconds": seconds, "best": best, "points": points, "evaluated": len(frame),
            "complete": int(complete.sum()), "errors": errors, "version": tpot.__version__}


def _tpot(name: str, quick: bool, seed: int) -> dict | None:
    """TPOT's run in its own interpreter, or None (with a note on stderr) when it cannot run."""
    if not os.path.exists(TPOT_PYTHON):
        return None
    command = [TPOT_PYTHON, os.path.abspath(__file__), "--tpot", name, str(int(quick)),
               str(seed)]
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900,
                              env=env, cwd=os.path.dirname(os.path.abspath(__file__)))
    except subprocess.TimeoutExpired:
        log(f"TPOT on {name} seed {seed}: no result within 900 s")
        return None
    if done.returncode:
        log(f"TPOT on {name} seed {seed} failed: {done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


#: The pruning rules measured: the value of ``pruning`` -> its key in the raw results.
RULES = {"folds": "pruned", "rows": "rows"}


def _peer_rows(name: str, pairs: list) -> list:
    """One row per method: medians over seeds of its time, best score, and dasktrain's best
    (each rule, unpruned) at that same time."""
    rows = []
    for method in ("halving", "tpot"):
        runs = [(p, p[method]) for p in pairs if p.get(method)]
        if not runs:
            continue
        rows.append([name, "HalvingRandomSearchCV" if method == "halving"
                     else f"TPOT {runs[0][1]['version']} (threshold pruning)", len(runs),
                     median([run["seconds"] for _, run in runs]),
                     median([run["best"] for _, run in runs]),
                     *[median([_best_at(p[key]["points"], run["seconds"]) for p, run in runs])
                       for key in RULES.values()],
                     median([_best_at(p["plain"]["points"], run["seconds"]) for p, run in runs]),
                     *[median([_best_at(run["points"], p[key]["seconds"]) if method == "tpot"
                               else _halving_within(p, p[key]["seconds"]) for p, run in runs])
                       for key in RULES.values()]])
    return rows


def run(quick: bool = False, peers: bool = True,
        workloads=("costly", "digits", "cheap")) -> dict:
    seeds = [0] if quick else [0, 1, 2]
    rows, peer_rows, measured, targets, notes = [], [], {}, [], []
    with_tpot = peers and os.path.exists(TPOT_PYTHON)
    if peers and not with_tpot:
        notes.append(f"TPOT was not run: no interpreter at TPOT_PYTHON={TPOT_PYTHON} (see "
                     "benchmarks/README.md to make its venv).")
    with two_worker_cluster() as client:
        for name in workloads:
            work = _workload(name, quick)
            pairs = []
            for seed in seeds:
                plain = _search(work, seed, None, client)
                pair = {"seed": seed, "plain": plain}
                log(f"{name} seed {seed}: plain {plain['seconds']:.1f} s best "
                    f"{plain['best']:.4f}")
                for rule, key in RULES.items():
                    pruned = _search(work, seed, rule, client)
                    reach, reached = _time_to(pruned["points"], plain["best"],
                                              pruned["seconds"])
                    pruned.update(time_to_best=reach, reached=reached)
                    pair[key] = pruned
                    log(f"{name} seed {seed}: {rule} {pruned['seconds']:.1f} s best "
                        f"{pruned['best']:.4f}, reached in {reach:.1f} s "
                        f"({pruned['pruned']} pruned)")
                if peers and name in RANGES:
                    pair["halving"] = _halving(name, work, seed)
                    log(f"{name} seed {seed}: halving {pair['halving']['seconds']:.1f} s best "
                        f"{pair['halving']['best']:.4f}")
                    pair["halving_longer"] = _halving_longer(
                        name, work, seed, pair["halving"],
                        max(pair[key]["seconds"] for key in RULES.values()))
                    if with_tpot:
                        pair["tpot"] = _tpot(name, quick, seed)
                        if pair["tpot"]:
                            log(f"{name} seed {seed}: TPOT {pair['tpot']['seconds']:.1f} s "
                                f"best {pair['tpot']['best']:.4f}")
                pairs.append(pair)
            measured[name] = pairs
            for rule, key in RULES.items():
                time_ratio = median([ratio(p[key]["time_to_best"], p["plain"]["seconds"])
                                     for p in pairs])
                wall_ratio = median([ratio(p[key]["seconds"], p["plain"]["seconds"])
                                     for p in pairs])
                score_gap = median([p[key]["best"] - p["plain"]["best"] for p in pairs])
                work_ratio = median([_fit_seconds_to(p[key], p["plain"]["best"], p["plain"])
                                     for p in pairs])
                busy_ratio = median([ratio(p[key]["busy_seconds"],
                                           p["plain"]["busy_seconds"]) for p in pairs])
                rows.append([name, rule, len(seeds),
                             median([p["plain"]["seconds"] for p in pairs]),
                             median([p[key]["seconds"] for p in pairs]), time_ratio,
                             wall_ratio, busy_ratio, work_ratio, score_gap,
                             median([p[key]["pruned"] for p in pairs]),
                             sum(p[key]["reached"] for p in pairs)])
                if name == "cheap":
                    targets.append(target(f"cheap, {rule}: wall time with pruning / without",
                                          wall_ratio, 1.2))
                else:
                    targets.append(target(f"{name}, {rule}: time to the unpruned best / "
                                          "unpruned time", time_ratio, 0.5))
                    targets.append(target(f"{name}, {rule}: best score gap (pruned - "
                                          "unpruned)", -score_gap, TOLERANCE))
            if name in RANGES:
                peer_rows.extend(_peer_rows(name, pairs))
    columns = ["workload", "pruning", "seeds", "unpruned s", "pruned s",
               "time to best (ratio)", "wall (ratio)", "worker busy (ratio)",
               "fit s to best (ratio)", "best score gap", "pruned candidates", "reached"]
    table = {"title": "Pruning on 2 workers (medians over seeds)", "columns": columns,
             "rows": rows,
             "notes": "time to best: when the pruned search first reaches the unpruned "
                      f"search's final best (within {TOLERANCE}), as a ratio of the unpruned "
                      "search's wall time; worker busy: the sum of the task compute times "
                      "the scheduler saw, pruned / unpruned (the work done, less sensitive "
                      "to the machine's load than wall time); fit s to best: the fit + score "
                      "seconds of the splits the pruned search fitted up to the generation "
                      "where it reached that best, over those of the whole unpruned search "
                      "(from cv_results_; the split counts behind it are the same on every "
                      "backend)."}
    tables = [table]
    print(markdown_table(columns, rows))
    if peer_rows:
        peer_columns = ["workload", "peer", "seeds", "peer s", "peer best",
                        *[f"dasktrain {rule} best at peer s" for rule in RULES],
                        "dasktrain unpruned best at peer s",
                        *[f"peer best at dasktrain {rule} s" for rule in RULES]]
        tables.append({
            "title": "Pruning peers at the same wall time, 2 workers (medians over seeds)",
            "columns": peer_columns, "rows": peer_rows,
            "notes": "dasktrain's best at a time is the best at the last generation that "
                     "ended by then (NaN: none had); HalvingRandomSearchCV "
                     "(min_resources='exhaust', factor=3, n_jobs=2) has no timeline: its "
                     "best at dasktrain's time is the best of its runs that took no longer, "
                     "with the search's budget of candidates and with 2, 4, ... times as "
                     f"many (at most {2 ** HALVING_DOUBLINGS} times, until a run takes as "
                     "long as the slower rule), the best budget in hindsight; more "
                     "candidates start its first round on fewer rows. TPOT "
                     f"(threshold_evaluation_pruning={TPOT_PRUNING}, n_jobs=2) has a "
                     "timeline. Same StratifiedKFold folds and ranges; TPOT's own variation "
                     "operators."})
        print(markdown_table(peer_columns, peer_rows))
        for row in peer_rows:
            for offset, rule in enumerate(RULES):
                # no generation ended by the peer's time: dasktrain had no model, a miss
                ours_then = -math.inf if math.isnan(row[5 + offset]) else row[5 + offset]
                targets.append(target(f"{row[0]}: dasktrain {rule} best - {row[1]} best, "
                                      "at the peer's time (-inf: no generation had ended)",
                                      ours_then - row[4], 0.0, "min"))
            for offset, rule in enumerate(RULES):
                key = RULES[rule]
                ours = median([p[key]["best"] for p in measured[row[0]]])
                targets.append(target(f"{row[0]}: dasktrain {rule} best - {row[1]} best, "
                                      f"at the time of dasktrain's {rule} search",
                                      ours - row[8 + offset],
                                      0.0, "min"))
    result = {"title": "Pruning: time to the same best model", "measured": measured,
              "tables": tables, "targets": targets}
    if notes:
        result["notes"] = " ".join(notes)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-peers", action="store_true",
                        help="only dasktrain with and without pruning")
    parser.add_argument("--workloads", nargs="+", choices=("costly", "digits", "cheap"),
                        default=("costly", "digits", "cheap"),
                        help="the workloads to run (all by default)")
    args = parser.parse_args()
    write_result("pruning", run(args.quick, peers=not args.no_peers,
                                workloads=tuple(args.workloads)))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--tpot"]:  # in TPOT's venv, from _tpot
        name, quick, seed = sys.argv[2], bool(int(sys.argv[3])), int(sys.argv[4])
        print(json.dumps(tpot_search(name, quick, seed)))
        raise SystemExit(0)
    raise SystemExit(main())
