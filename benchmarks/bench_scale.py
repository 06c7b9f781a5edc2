"""Scale: how the client's time and memory grow with the number of candidates (issue 7 part 4).

1. Breed and submit: a population of N random candidates is scored at random,
   N children are bred from it (tournament selection, uniform crossover,
   mutation: GeneticSearchCV's own operators), and the children are submitted
   to the 2-worker cluster through GeneticSearchCV's evaluator (one content-keyed
   task per candidate, its folds batched). Timed for N = 1k and 10k (quick: 200
   and 2k); what is submitted is then cancelled. The client's peak Python
   memory is measured with tracemalloc in a separate repetition (tracemalloc
   slows Python down).
2. Evaluate: a whole GeneticSearchCV over DummyClassifier with 5k candidate
   evaluations (quick: 500) on the cluster: wall time and client peak memory.
3. Client cost per evaluation as the search grows (issue 17): one search of
   population 500 over 41 generations (20.5k evaluations; quick: 100 x 11),
   each strategy with its default screening, on the cluster. A callback notes
   the CPU time of the client's main thread (``time.thread_time``: breeding,
   screening, submitting, collecting, bookkeeping; not the workers, not
   Dask's event-loop thread) at every generation; the cost per evaluation
   over evaluations 500-3,000 is compared with that over the last 2,500
   (18k-20.5k): windows of five generations, as one full garbage collection
   can cost a tenth of a millisecond per evaluation of the generation it falls
   in. CPU time, unlike wall time, does not count waiting.
"""

from __future__ import annotations

import warnings

import numpy as np

from _common import REPEATS, Timer, log, median, ratio, target, traced_peak, two_worker_cluster

N_WORKERS = 2
N_FOLDS = 2
WINDOW = 2500  # evaluations over which the client's cost per evaluation is compared


def _space():
    from dasktrain.space import Categorical, Continuous, Integer

    return {"strategy": Categorical(["prior", "stratified", "uniform", "most_frequent"]),
            "random_state": Integer(0, 10**9),
            "unused_scale": Continuous(1e-3, 1e3, log=True)}


def _data():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=200, n_features=10, random_state=0)


def _breed_and_submit(client, n_candidates: int, seed: int, memory: bool) -> dict:
    """Breed `n_candidates` children and submit them; seconds for each part (or memory)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.metrics import check_scoring
    from sklearn.model_selection import StratifiedKFold

    from dasktrain._execution import execution_backend
    from dasktrain.model_selection._evaluator import Evaluator
    from dasktrain.model_selection._tasks import Settings
    from dasktrain.model_selection._genetic import breed, random_candidate

    space = _space()
    space.pop("unused_scale")  # DummyClassifier has no such parameter; kept for breeding only
    breed_space = _space()
    X, y = _data()
    folds = list(StratifiedKFold(N_FOLDS).split(X, y))
    scorers = {"score": check_scoring(DummyClassifier())}
    rng = np.random.default_rng(seed)
    with execution_backend(use_dask=True, client=client) as backend:
        evaluator = Evaluator(backend, DummyClassifier(), X, y, {}, folds, scorers,
                              repeat_seeds=[seed], settings=Settings())
        try:
            with traced_peak() if memory else _nothing() as peak, Timer() as total:
                with Timer() as breeding:
                    parents = [random_candidate(breed_space, rng) for _ in range(n_candidates)]
                    children = breed(parents, rng.random(n_candidates).tolist(), breed_space,
                                     rng, n_children=n_candidates, crossover_probability=0.5,
                                     mutation_probability=0.5, tournsize=3)
                    for child in children:
                        child.pop("unused_scale")
                with Timer() as submitting:
                    _, hits = evaluator.submit(children)
        finally:
            evaluator.close()
    out = {"n_candidates": n_candidates, "distinct": n_candidates - hits}
    if memory:
        out["peak_mb"] = peak["peak_bytes"] / 2**20
    else:
        out.update(seconds=total.seconds, breed_seconds=breeding.seconds,
                   submit_seconds=submitting.seconds)
    return out


class _nothing:
    def __enter__(self):
        return {}

    def __exit__(self, *exc_info):
        return None


def _evaluate(client, pop: int, gens: int, seed: int, memory: bool) -> dict:
    from sklearn.dummy import DummyClassifier

    from dasktrain import GeneticSearchCV

    space = _space()
    space.pop("unused_scale")
    X, y = _data()
    search = GeneticSearchCV(DummyClassifier(), space, cv=N_FOLDS, population_size=pop,
                             generations=gens, refit=False, random_state=seed, use_dask=True,
                             client=client)
    with traced_peak() if memory else _nothing() as peak, Timer() as timer:
        search.fit(X, y)
    evaluations = int(search.history_["evaluations"].sum())
    out = {"evaluations": evaluations}
    if memory:
        out["peak_mb"] = peak["peak_bytes"] / 2**20
    else:
        out.update(seconds=timer.seconds, ms_per_evaluation=timer.seconds / evaluations * 1e3)
    return out


class _ClientClock:
    """A callback noting (evaluations so far, main-thread CPU seconds) at each generation."""

    def __init__(self):
        import time

        self._clock = time.thread_time
        self.marks = [(0, self._clock())]

    def on_generation(self, search, record):
        self.marks.append((self.marks[-1][0] + record["evaluations"], self._clock()))


def _per_evaluation(marks, start: int, stop: int) -> float:
    """Milliseconds of client CPU per evaluation between the generations closest to
    `start` and `stop` evaluations."""
    def nearest(count):
        return min(marks, key=lambda mark: abs(mark[0] - count))

    (n0, t0), (n1, t1) = nearest(start), nearest(stop)
    return (t1 - t0) / (n1 - n0) * 1e3 if n1 > n0 else float("nan")


def _growth(client, strategy: str, pop: int, gens: int) -> dict:
    from sklearn.dummy import DummyClassifier

    from dasktrain import GeneticSearchCV

    space = _space()
    space.pop("unused_scale")
    X, y = _data()
    clock = _ClientClock()
    search = GeneticSearchCV(DummyClassifier(), space, cv=N_FOLDS, population_size=pop,
                             generations=gens, strategy=strategy, refit=False, random_state=0,
                             use_dask=True, client=client, callbacks=[clock])
    with Timer() as timer:
        search.fit(X, y)
    total = clock.marks[-1][0]
    early = _per_evaluation(clock.marks, pop, pop + WINDOW)
    late = _per_evaluation(clock.marks, total - WINDOW, total)
    return {"strategy": strategy, "evaluations": total, "seconds": timer.seconds,
            "early_ms": early, "late_ms": late, "growth": ratio(late, early),
            "marks": clock.marks}


def _guarded(name, fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except Exception as exc:  # an unfinished estimator: record and go on
        log(f"  {name} failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}


def _med(runs, key):
    return median([run.get(key) for run in runs if "error" not in run])


def run(quick: bool) -> dict:
    sizes = (200, 2000) if quick else (1000, 10000)
    pop, gens = (50, 4) if quick else (500, 9)  # pop x (gens + 1) evaluations at most
    repeats = 1 if quick else REPEATS
    breed_runs = {size: [] for size in sizes}
    breed_memory = {}
    eval_runs = []
    with two_worker_cluster(N_WORKERS) as client:
        for size in sizes:
            for seed in range(repeats):
                log(f"scale: breed and submit {size}, seed {seed}")
                breed_runs[size].append(_guarded(
                    "breed", lambda: _breed_and_submit(client, size, seed, memory=False)))
            log(f"scale: breed and submit {size}, memory")
            breed_memory[size] = _guarded(
                "breed memory", lambda: _breed_and_submit(client, size, 0, memory=True))
        for seed in range(repeats):
            log(f"scale: evaluate {pop * (gens + 1)} candidates, seed {seed}")
            eval_runs.append(_guarded("evaluate",
                                      lambda: _evaluate(client, pop, gens, seed, memory=False)))
        log("scale: evaluate, memory")
        eval_memory = _guarded("evaluate memory",
                               lambda: _evaluate(client, pop, gens, 0, memory=True))
        growth_pop, growth_gens = (100, 10) if quick else (500, 40)
        growth_runs = []
        for strategy in ("generational", "steady_state"):
            log(f"scale: client cost per evaluation, {strategy}, "
                f"{growth_pop * (growth_gens + 1):,} evaluations")
            growth_runs.append(_guarded(f"growth {strategy}", lambda: _growth(
                client, strategy, growth_pop, growth_gens)))

    rows = []
    for size in sizes:
        runs = breed_runs[size]
        errors = [run["error"] for run in runs if "error" in run]
        rows.append([f"breed + submit {size:,} candidates", _med(runs, "distinct"),
                     _med(runs, "breed_seconds"), _med(runs, "submit_seconds"),
                     _med(runs, "seconds"), ratio(_med(runs, "seconds"), size) * 1e3,
                     breed_memory[size].get("peak_mb"),
                     errors[0][:80] if errors else breed_memory[size].get("error", "")[:80]])
    errors = [run["error"] for run in eval_runs if "error" in run]
    rows.append([f"GeneticSearchCV over DummyClassifier, {pop} x {gens + 1} generations",
                 _med(eval_runs, "evaluations"), None, None, _med(eval_runs, "seconds"),
                 _med(eval_runs, "ms_per_evaluation"), eval_memory.get("peak_mb"),
                 errors[0][:80] if errors else eval_memory.get("error", "")[:80]])
    growth_rows = [[run.get("strategy", "?"), run.get("evaluations"), run.get("early_ms"),
                    run.get("late_ms"), run.get("growth"), run.get("seconds"),
                    run.get("error", "")[:80]] for run in growth_runs]
    small, large = sizes
    time_growth = ratio(_med(breed_runs[large], "seconds"), _med(breed_runs[small], "seconds"))
    memory_growth = ratio(breed_memory[large].get("peak_mb"),
                          breed_memory[small].get("peak_mb"))
    factor = large / small
    return {
        "title": "Scale: breeding, submitting and evaluating many candidates",
        "sizes": sizes, "folds": N_FOLDS, "repeats": repeats,
        "breed_runs": {str(k): v for k, v in breed_runs.items()},
        "breed_memory": {str(k): v for k, v in breed_memory.items()},
        "evaluate_runs": eval_runs, "evaluate_memory": eval_memory,
        "growth_runs": growth_runs,
        "tables": [{
            "title": f"Client time and memory ({N_FOLDS} folds, 2 workers)",
            "columns": ["work", "candidates", "breed s", "submit s", "total s",
                        "ms per candidate", "client peak MB (tracemalloc)", "error"],
            "rows": rows,
            "notes": (f"From {small:,} to {large:,} candidates ({factor:.0f}x) the time grew "
                      f"{time_growth:.2f}x and the client's peak memory {memory_growth:.2f}x. "
                      "Submitting includes content keys, planning shared pipeline prefixes and "
                      "one keyed client.map of one Dask task per candidate (its folds batched: "
                      "nothing measured yet). Breeding and submitting run with Python's cyclic "
                      "garbage collector paused; the objects they make are examined by the "
                      "collections that follow (partly inside the timed part). Memory is "
                      "measured in a separate run."),
        }, {
            "title": "Client CPU per evaluation as the search grows (2 folds, 2 workers)",
            "columns": ["strategy", "evaluations", "ms per evaluation, evaluations 500-3,000",
                        "ms per evaluation, last 2,500", "last / first", "wall s", "error"],
            "rows": growth_rows,
            "notes": ("CPU time of the client's main thread (time.thread_time), read by a "
                      "callback at each generation, over DummyClassifier with each "
                      "strategy's default screening; it excludes the workers and Dask's "
                      "event-loop thread, and does not count waiting."),
        }],
        "targets": [target(f"time to breed + submit {large:,} / {small:,} candidates "
                           f"(linear = {factor:.0f})", time_growth, factor, "max")]
        + [target(f"{run['strategy']}: client CPU per evaluation, last 2,500 / first 2,500",
                  run["growth"], 1.2, "max") for run in growth_runs if "growth" in run],
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv), indent=1, default=str))
