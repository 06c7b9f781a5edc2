"""StackingEnsemble: 2 workers vs serial, next to scikit-learn's StackingClassifier (issue 7 part 5).

Four base estimators stacked by out-of-fold predictions (cv=5) under a
logistic regression, on the digits data. dasktrain submits every (estimator,
fold) fit and every final base fit as its own task, all at once; scikit-learn
parallelises over base estimators only (``n_jobs``), each running its folds
in turn.
"""

from __future__ import annotations

from _common import SHORT_FIT_REPEATS, log, target, two_worker_cluster
from _parallel import compare_modes


def _base(quick: bool):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    n_trees = 50 if quick else 200
    return [("svc", make_pipeline(StandardScaler(), SVC(C=10, gamma=0.01, random_state=0))),
            ("rf", RandomForestClassifier(n_estimators=n_trees, random_state=0)),
            ("lr", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))),
            ("knn", KNeighborsClassifier())]


def _cv(quick: bool) -> int:
    return 3 if quick else 5


def _ours(quick: bool):
    from sklearn.linear_model import LogisticRegression

    from dasktrain import StackingEnsemble

    return StackingEnsemble(_base(quick), final_estimator=LogisticRegression(max_iter=500),
                            cv=_cv(quick))


def _sklearn(quick: bool, n_jobs):
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression

    return StackingClassifier(_base(quick), final_estimator=LogisticRegression(max_iter=500),
                              cv=_cv(quick), n_jobs=n_jobs)


def run(quick: bool) -> dict:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    repeats = 1 if quick else SHORT_FIT_REPEATS
    peers = {"scikit-learn StackingClassifier (n_jobs=1)": lambda: _sklearn(quick, None),
             "scikit-learn StackingClassifier (n_jobs=2)": lambda: _sklearn(quick, 2)}
    with two_worker_cluster() as client:
        log("stacking: serial, n_jobs=2, 2 workers, scikit-learn")
        table, measured = compare_modes(lambda: _ours(quick), X, y, client, repeats, peers)
    table["title"] = (f"StackingEnsemble of SVC, RandomForest, LogisticRegression, KNN "
                      f"(cv={_cv(quick)}) on digits")
    return {
        "title": "StackingEnsemble: 2 workers vs serial",
        "repeats": repeats, "measured": measured, "tables": [table],
        "targets": [target("StackingEnsemble: 2 workers / serial",
                           measured["dask"]["ratio_to_serial"], 0.6, "max")],
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--quick" in sys.argv), indent=1, default=str))
