"""RepeatedClassifier(n_repeats=8): 2 workers vs serial (issue 7 part 5, issue 2).

The same RepeatedClassifier of MLPs on the digits data is fitted serially in
this process (``use_dask=False``), with two local processes (``n_jobs=2``) and
on the 2-worker cluster (``use_dask=True``); every process uses one BLAS
thread, so the ratios show how well the 8 independent fits use two cores.
"""

from __future__ import annotations

from _common import SHORT_FIT_REPEATS, log, target, two_worker_cluster
from _parallel import compare_modes


def _model(quick: bool):
    from sklearn.neural_network import MLPClassifier

    from dasktrain import RepeatedClassifier

    member = (MLPClassifier(hidden_layer_sizes=(32,), max_iter=60) if quick
              else MLPClassifier(hidden_layer_sizes=(100,), max_iter=300))
    return RepeatedClassifier(member, n_repeats=8, random_state=0)


def run(quick: bool) -> dict:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    repeats = 1 if quick else SHORT_FIT_REPEATS
    with two_worker_cluster() as client:
        log("repeated: serial, n_jobs=2, 2 workers")
        table, measured = compare_modes(lambda: _model(quick), X, y, client, repeats)
    ratio_dask = measured["dask"]["ratio_to_serial"]
    member = "MLPClassifier((32,), max_iter=60)" if quick else "MLPClassifier((100,), max_iter=300)"
    table["title"] = f"RepeatedClassifier({member}, n_repeats=8) on digits"
    return {
        "title": "RepeatedClassifier: 2 workers vs serial",
        "repeats": repeats, "measured": measured, "tables": [table],
        "targets": [target("RepeatedClassifier(n_repeats=8): 2 workers / serial", ratio_dask,
                           0.6, "max"),
                    target("RepeatedClassifier(n_repeats=8): 2 workers / serial (issue 2)",
                           ratio_dask, 0.65, "max")],
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv), indent=1, default=str))
