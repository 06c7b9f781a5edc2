"""How the evaluator stages a pruned search's folds (issue 14): what each pruning decision
sees, what is submitted when, and what is cancelled. The search-level tests of
pruning="folds" (rule, cv_results_ layout, parity, checkpoints) are in test_search.py;
those of pruning="rows" (one rung of successive halving on the training rows) here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import Ridge
from sklearn.model_selection import StratifiedKFold
from test_evaluate import ACCURACY, FOLDS, FlakyClassifier, count_lines, make_evaluator
from test_evaluate import X as Xe
from test_evaluate import y as ye
from test_search import StopAfter, assert_same_search, comparable, scripted_data

from dasktrain import GeneticSearchCV
from dasktrain._execution import execution_backend
from dasktrain.model_selection import _search as search_module
from dasktrain.model_selection._evaluator import Evaluator
from dasktrain.model_selection._records import Status
from dasktrain.model_selection._tasks import Settings

Xs, ys = scripted_data()


@pytest.fixture
def execution(backend):
    with execution_backend(**backend) as running:
        yield running


class Pruner:
    """Prunes the candidates whose ``alpha`` is below 1 at their first decision; notes, for
    each call, the candidate's alpha and the splits it was shown."""

    def __init__(self):
        self.seen = []

    def __call__(self, params, records):
        self.seen.append((params["alpha"], tuple(i for i, r in enumerate(records)
                                                 if r is not None)))
        return params["alpha"] < 1


CANDIDATES = [{"alpha": alpha} for alpha in (0.1, 0.5, 2.0, 3.0)]


@pytest.mark.parametrize("repeat_seeds, shown", [
    ((None,), [(0,), (0, 1)]),  # 3 folds: decisions after fold 0 and after folds 0, 1
    ((1, 2), [(0, 3), (0, 1, 3, 4)]),  # split = repeat * 3 + fold: a fold's repeats together
])
def test_each_decision_sees_the_stages_so_far_only_on_every_backend(execution, repeat_seeds,
                                                                    shown):
    pruner = Pruner()
    evaluator = make_evaluator(execution, FlakyClassifier(), repeat_seeds=repeat_seeds,
                               splits_per_task=1)
    evaluator.pruner = pruner
    keys, _ = evaluator.evaluate(CANDIDATES)
    n_splits = len(FOLDS) * len(repeat_seeds)
    for key, candidate in zip(keys, CANDIDATES):
        calls = [splits for alpha, splits in pruner.seen if alpha == candidate["alpha"]]
        result = evaluator.results[key]
        scores = np.asarray(result.test["score"])
        if candidate["alpha"] < 1:  # pruned at its first decision, whatever ran ahead
            assert calls == shown[:1]
            assert result.status == Status.PRUNED
            assert np.isfinite(scores[list(shown[0])]).all()
            assert np.isnan(np.delete(scores, shown[0])).all()
        else:
            assert calls == shown
            assert result.status == Status.OK and np.isfinite(scores).all()
            assert len(scores) == n_splits
    assert evaluator.n_pruned == 2
    evaluator.close()


@pytest.mark.parametrize("n_jobs, splits_sent", [
    (1, len(CANDIDATES)),  # one slot: the first stage only, the next once it passes
    (2, len(CANDIDATES) * len(FOLDS)),  # several: every stage at once, stage by stage
])
def test_stages_sent_at_once_with_several_slots_and_one_by_one_with_one(n_jobs, splits_sent):
    with execution_backend(n_jobs=n_jobs, isolate=True) as backend:
        evaluator = make_evaluator(backend, FlakyClassifier(delay=0.05), splits_per_task=1)
        evaluator.pruner = Pruner()
        evaluator.submit(CANDIDATES)
        assert evaluator.n_tasks == splits_sent
        while evaluator.in_flight:
            evaluator.wait()
        assert evaluator.n_pruned == 2
        evaluator.close()


def test_cheap_candidates_go_in_the_same_batched_tasks_as_without_pruning():
    """Once splits are known to be cheap, a pruned search sends a candidate's folds together
    (no round trip per fold), as many tasks as an unpruned one."""
    tasks = {}
    for pruned in (False, True):
        with execution_backend(n_jobs=2) as backend:
            evaluator = make_evaluator(backend, FlakyClassifier(), task_seconds=10.0)
            evaluator.pruner = (lambda params, records: False) if pruned else None
            evaluator.evaluate([{"alpha": float(alpha)} for alpha in range(8)])  # measured
            before = evaluator.n_tasks
            evaluator.evaluate([{"alpha": float(alpha)} for alpha in range(8, 16)])
            tasks[pruned] = evaluator.n_tasks - before
            evaluator.close()
    assert tasks[True] == tasks[False] < 8


@pytest.mark.parametrize("backend_options", [
    {"n_jobs": 2},
    {"use_dask": True, "client": "inprocess_client"},
], ids=["local-n2", "dask-inprocess"])
def test_tasks_of_pruned_candidates_are_cancelled(backend_options, request, tmp_path):
    options = dict(backend_options)
    if options.get("client") == "inprocess_client":
        options["client"] = request.getfixturevalue("inprocess_client")
    log = tmp_path / "fits.log"
    with execution_backend(**options) as backend:
        evaluator = make_evaluator(backend, FlakyClassifier(delay=0.3, log=str(log)),
                                   splits_per_task=1)
        evaluator.pruner = lambda params, records: True  # every candidate, after fold 0
        keys, _ = evaluator.evaluate([{"alpha": float(alpha)} for alpha in range(4)])
        assert all(evaluator.results[key].status == Status.PRUNED for key in keys)
        later = 4 * (len(FOLDS) - 1)  # the splits of folds 1 and 2, all sent ahead
        # each was cancelled with its task, or came back and was ignored
        assert evaluator.n_cancelled + evaluator.n_discarded == later
        # the earlier stage runs first, so most of the later one never started (a pool or
        # a worker may have taken a task or two of it before the decision arrived)
        assert count_lines(log) <= 4 + later // 2
        evaluator.close()


# --------------------------------------------------------------------------- pruning="rows"

class RungScripted(ClassifierMixin, BaseEstimator):
    """Gets the first `quality` share of the test rows right, whatever it was fitted on (so a
    rung scores as the folds do); every fit appends ``quality rows classes weights`` to the
    file `log`, and a `sample_weight` not aligned with X fails the fit."""

    def __init__(self, quality=0.5, log=None):
        self.quality = quality
        self.log = log

    def fit(self, X, y, sample_weight=None):
        X = np.asarray(X)
        if sample_weight is not None and len(sample_weight) != len(X):
            raise ValueError("sample_weight is not split with X")
        if self.log is not None:
            weights = -1 if sample_weight is None else int(np.sum(sample_weight))
            with open(self.log, "a") as stream:
                stream.write(f"{self.quality} {len(X)} {len(np.unique(y))} {weights}\n")
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        X = np.asarray(X)
        right = np.arange(len(X)) < round(self.quality * len(X))
        return np.where(right, X[:, -1].astype(int), (X[:, -1].astype(int) + 1) % 3)


QUALITIES = [round(q, 2) for q in np.linspace(0.05, 0.95, 19)]


def rung_search(log=None, **params):
    defaults = dict(population_size=6, generations=3, cv=StratifiedKFold(3), random_state=0,
                    pruning="rows")
    return GeneticSearchCV(RungScripted(log=log), {"quality": QUALITIES},
                           **{**defaults, **params})


def read_fits(log) -> list[tuple]:
    lines = log.read_text().splitlines()[:-1]  # the refit last
    return [(float(q), int(rows), int(classes), int(weights))
            for q, rows, classes, weights in (line.split() for line in lines)]


@pytest.mark.parametrize("strategy", ["generational", "steady_state"])
def test_rows_stops_candidates_whose_rung_is_poor_and_never_good_ones(tmp_path, strategy):
    log = tmp_path / "fits.log"
    search = rung_search(log=log, strategy=strategy).fit(Xs, ys)
    results = search.cv_results_
    pruned = results["status"] == "pruned"
    rung = results["rung_test_score"]
    assert pruned.any() and (~pruned).sum() >= 2
    assert search.history_["pruned"].sum() == pruned.sum()
    fits = read_fits(log)
    folds = [len(train) for train, _ in StratifiedKFold(3).split(Xs, ys)]
    for params, was_pruned in zip(results["params"], pruned):
        mine = [fit for fit in fits if fit[0] == params["quality"]]
        # the rung on a third of each class of the first fold's training rows (33 of 33 + 33
        # + 33), then the three folds on all of them unless pruned
        assert sorted(rows for _, rows, _, _ in mine) == sorted(
            [33] + ([] if was_pruned else folds))
        assert all(classes == 3 for _, _, classes, _ in mine)
    # a candidate whose rung beats every rung before it (and every one of its generation, the
    # candidates judged with it) is never pruned
    generation = results["generation"]
    for index in range(len(rung)):
        if strategy == "generational":
            earlier = rung[generation <= generation[index]]
        else:  # judged against the population, of candidates told before (in order here)
            earlier = rung[:index + 1]
        if rung[index] >= earlier.max():
            assert not pruned[index]
    assert not pruned[search.best_index_]
    assert search.best_params_["quality"] == max(p["quality"] for p, was in
                                                 zip(results["params"], pruned) if not was)


def test_rows_prunes_the_first_generation_to_the_best_half_of_its_rungs():
    results = rung_search(generations=0, population_size=9).fit(Xs, ys).cv_results_
    pruned = results["status"] == "pruned"
    rung = results["rung_test_score"]
    assert (~pruned).sum() == 5  # half of 9, rounded up (no ties here)
    assert rung[pruned].max() < rung[~pruned].min()


def test_rows_cv_results_layout_of_pruned_candidates():
    search = rung_search().fit(Xs, ys)
    results = search.cv_results_
    pruned = results["status"] == "pruned"
    assert set(results["error"][pruned]) == {""}
    for split in range(3):
        np.testing.assert_array_equal(np.isnan(results[f"split{split}_test_score"]), pruned)
    assert np.isnan(results["mean_test_score"][pruned]).all()
    assert np.isfinite(results["rung_test_score"]).all() and (results["rung_time"] > 0).all()
    ranks = results["rank_test_score"]
    assert ranks[pruned].min() > ranks[~pruned].max()
    # the pruned rank by their rung score among themselves
    order = np.argsort(ranks[pruned], kind="stable")
    assert np.all(np.diff(results["rung_test_score"][pruned][order]) <= 0)
    # the rung of a complete candidate scores its first fold's test rows
    complete = ~pruned
    np.testing.assert_allclose(results["rung_test_score"][complete],
                               results["split0_test_score"][complete])


def test_rows_gives_the_same_results_on_every_backend(backend):
    reference = rung_search().fit(Xs, ys)
    search = rung_search(**backend).fit(Xs, ys)
    assert_same_search(search, reference)


def test_rows_resumes_from_a_checkpoint_like_an_uninterrupted_run(tmp_path):
    whole = rung_search().fit(Xs, ys)
    path = tmp_path / "search.ckpt"
    stopped = rung_search(checkpoint=str(path), callbacks=[StopAfter(1)]).fit(Xs, ys)
    assert len(stopped.history_) == 2
    resumed = rung_search(checkpoint=str(path)).fit(Xs, ys)
    pd.testing.assert_frame_equal(comparable(resumed.cv_results_),
                                  comparable(whole.cv_results_))
    with pytest.raises(ValueError, match="differs in pruning"):
        rung_search(checkpoint=str(path), pruning="folds").fit(Xs, ys)


def test_rows_splits_sample_weight_with_the_rung(tmp_path):
    log = tmp_path / "fits.log"
    weights = np.arange(1, len(Xs) + 1)
    rung_search(log=log, generations=0).fit(Xs, ys, sample_weight=weights)
    fits = read_fits(log)
    folds = list(StratifiedKFold(3).split(Xs, ys))
    rungs = [fit for fit in fits if fit[1] == 33]
    assert len(rungs) == 6  # one rung per candidate, on the same rows: the same weights
    assert len({weight for *_, weight in rungs}) == 1
    assert 0 < rungs[0][3] < weights[folds[0][0]].sum() / 2


def test_the_rung_waits_for_its_decision_and_the_generation_is_judged_together():
    """With several slots, only the rungs go first; the rule is asked once every rung is
    back, and the folds of the candidates it passes are sent then."""
    calls, alpha = [], {}

    def rule(ready, outstanding):
        calls.append((len(ready), outstanding))
        if outstanding:
            return {}
        assert all(0 <= scores["score"] <= 1 for scores in ready.values())
        return {key: alpha[key] < 1 for key in ready}

    with execution_backend(n_jobs=2, isolate=True) as backend:
        evaluator = Evaluator(backend, FlakyClassifier(delay=0.05), Xe, ye, {}, FOLDS, ACCURACY,
                              repeat_seeds=(None,), settings=Settings(), splits_per_task=1,
                              rung_rows=np.sort(FOLDS[0][0][::3]), rung_rule=rule)
        keys, _ = evaluator.submit(CANDIDATES)
        alpha.update(zip(keys, (candidate["alpha"] for candidate in CANDIDATES)))
        assert evaluator.n_tasks == len(CANDIDATES)  # the rungs only
        while evaluator.in_flight:
            evaluator.wait()
        assert calls[-1][1] == 0 and all(outstanding for _, outstanding in calls[:-1])
        assert calls[-1][0] == len(CANDIDATES)
        for key in keys:
            result = evaluator.results[key]
            assert result.status == (Status.PRUNED if alpha[key] < 1 else Status.OK)
            assert np.isfinite(result.rung["score"])
        assert evaluator.n_tasks == len(CANDIDATES) + 2 * len(FOLDS)  # two passed
        assert evaluator.n_pruned == 2
        evaluator.close()


@pytest.mark.parametrize("params, data, match", [
    ({"pruning": "halving"}, "iris", "'pruning' parameter of GeneticSearchCV must be"),
    ({"pruning": "rows"}, "tiny", "'pruning' parameter of GeneticSearchCV is 'rows'.*class 0 "
     "would have 1 row in the rung"),
    ({"pruning": "rows", "estimator": Ridge(), "param_distributions": {"alpha": [1.0, 2.0]}},
     "tiny-regression", "'pruning' parameter.*the rung would have 1 row, fewer than 2"),
])
def test_bad_pruning_is_refused_before_any_work(params, data, match, monkeypatch):
    def no_evaluator(*args, **kwargs):
        raise AssertionError("the search started evaluating")

    monkeypatch.setattr(search_module, "Evaluator", no_evaluator)
    four = np.r_[0:4, 50:54, 100:104]  # four rows of each class: two or three to train on
    X_data, y_data = {"iris": (Xs, ys), "tiny": (Xs[four], ys[four]),
                      "tiny-regression": (Xs[:6], ys[:6])}[data]
    options = {"estimator": RungScripted(), "param_distributions": {"quality": QUALITIES},
               "population_size": 2, "generations": 0, "cv": 3, **params}
    with pytest.raises(ValueError, match=match):
        GeneticSearchCV(**options).fit(X_data, y_data)
