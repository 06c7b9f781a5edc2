"""The evaluator: keyed tasks, shared pipeline prefixes, caching, failures, time limits."""

from __future__ import annotations

import dataclasses
import pickle
import time

import numpy as np
import pytest
from _recording import RecordingBackend, calls
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import accuracy_score, get_scorer
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from dasktrain._execution import TaskKilledError, WorkersLostError, execution_backend
from dasktrain.model_selection import _evaluator as evaluator_module
from dasktrain.model_selection._evaluator import Evaluator
from dasktrain.model_selection._records import Status
from dasktrain.model_selection._tasks import Settings, fit_and_score, fit_and_score_splits, seed_for

STATUS_OK, STATUS_ERROR, STATUS_TIMEOUT, STATUS_BUDGET = (Status.OK, Status.ERROR,
                                                          Status.TIMEOUT, Status.BUDGET)

X, y = load_iris(return_X_y=True)
FOLDS = list(KFold(3, shuffle=True, random_state=0).split(X, y))
ACCURACY = {"score": get_scorer("accuracy")}


class CandidateError(RuntimeError):
    """Raised by FlakyClassifier for the candidates it refuses."""


class CountingScaler(TransformerMixin, BaseEstimator):
    """Standardise; every fit appends a line to the file `log` (readable across processes)."""

    def __init__(self, log=None, fail=False):
        self.log = log
        self.fail = fail

    def fit(self, X, y=None):
        if self.fail:
            raise ValueError("this scaler refuses to fit")
        if self.log is not None:
            with open(self.log, "a") as stream:
                stream.write("fit\n")
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0) + 1e-12
        return self

    def transform(self, X):
        return (X - self.mean_) / self.scale_


class FlakyClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the majority class; can fail, sleep, or log its fits."""

    def __init__(self, fail=False, delay=0.0, log=None, alpha=1.0):
        self.fail = fail
        self.delay = delay
        self.log = log
        self.alpha = alpha

    def fit(self, X, y):
        if self.fail:
            raise CandidateError("refused")
        time.sleep(self.delay)
        if self.log is not None:
            with open(self.log, "a") as stream:
                stream.write("fit\n")
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


def count_lines(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def make_evaluator(backend, estimator, *, scorers=ACCURACY, repeat_seeds=(None,),
                   splits_per_task=None, task_seconds=0.1, **settings):
    return Evaluator(backend, estimator, X, y, {}, FOLDS, scorers, repeat_seeds=repeat_seeds,
                     settings=Settings(**settings), splits_per_task=splits_per_task,
                     task_seconds=task_seconds)


@pytest.fixture
def execution(backend):
    with execution_backend(**backend) as running:
        yield running


def test_shared_prefixes_score_like_cross_validate(execution):
    pipe = make_pipeline(StandardScaler(), PCA(random_state=0), RidgeClassifier())
    candidates = [{"pca__n_components": n, "ridgeclassifier__alpha": alpha}
                  for n in (2, 3) for alpha in (0.1, 1.0, 10.0)]
    evaluator = make_evaluator(execution, pipe)
    keys, hits = evaluator.evaluate(candidates)
    assert hits == 0
    # the scaler is shared by all six candidates, each PCA by three: 3 + 2 * 3 prefix tasks
    assert evaluator.n_prefix_tasks == 3 + 6
    assert evaluator.live_prefixes == 0
    for key, params in zip(keys, candidates):
        expected = cross_validate(pipe.set_params(**params), X, y, cv=FOLDS)["test_score"]
        result = evaluator.results[key]
        assert result.status == STATUS_OK
        np.testing.assert_allclose(result.test["score"], expected)
    evaluator.close()


def test_a_shared_transformer_is_fitted_once_per_fold(execution, tmp_path):
    log = tmp_path / "scaler.log"
    pipe = Pipeline([("scale", CountingScaler(log=str(log))), ("ridge", RidgeClassifier())])
    candidates = [{"ridge__alpha": alpha} for alpha in (0.01, 0.1, 1.0, 10.0, 100.0)]
    evaluator = make_evaluator(execution, pipe)
    keys, _ = evaluator.evaluate(candidates)
    assert all(evaluator.results[key].status == STATUS_OK for key in keys)
    assert count_lines(log) == len(FOLDS) < len(candidates) * len(FOLDS)
    evaluator.close()


def test_without_sharing_every_candidate_fits_its_own_transformer(tmp_path):
    log = tmp_path / "scaler.log"
    pipe = Pipeline([("scale", CountingScaler(log=str(log))), ("ridge", RidgeClassifier())])
    with execution_backend() as backend:
        evaluator = Evaluator(backend, pipe, X, y, {}, FOLDS, ACCURACY, repeat_seeds=[None],
                              settings=Settings(), share_prefixes=False)
        evaluator.evaluate([{"ridge__alpha": 0.1}, {"ridge__alpha": 1.0}])
    assert count_lines(log) == 2 * len(FOLDS)
    assert evaluator.n_prefix_tasks == 0


def test_callable_scorers_see_the_whole_fitted_pipeline():
    seen = []

    def scorer(estimator, X_test, y_test):
        seen.append((type(estimator).__name__, len(estimator.steps), X_test.shape[1]))
        return accuracy_score(y_test, estimator.predict(X_test))

    pipe = make_pipeline(StandardScaler(), PCA(n_components=2), RidgeClassifier())
    with execution_backend() as backend:
        evaluator = make_evaluator(backend, pipe, scorers={"score": scorer},
                                   score_transformed=False)
        keys, _ = evaluator.evaluate([{"ridgeclassifier__alpha": a} for a in (0.1, 1.0)])
    expected = cross_validate(pipe, X, y, cv=FOLDS)["test_score"]
    np.testing.assert_allclose(evaluator.results[keys[1]].test["score"], expected)
    assert set(seen) == {("Pipeline", 3, X.shape[1])}


def test_equal_candidates_are_evaluated_once(execution, tmp_path):
    log = tmp_path / "fits.log"
    evaluator = make_evaluator(execution, FlakyClassifier(log=str(log)))
    candidates = [{"alpha": 1.0}, {"alpha": 2.0}, {"alpha": 1.0}]
    keys, hits = evaluator.evaluate(candidates)
    assert hits == 1 and keys[0] == keys[2] != keys[1]
    assert count_lines(log) == 2 * len(FOLDS)
    # a later batch: both already evaluated (cache hits), one new
    keys, hits = evaluator.evaluate([{"alpha": 2.0}, {"alpha": 3.0}, {"alpha": 1.0}])
    assert hits == 2
    assert count_lines(log) == 3 * len(FOLDS)
    assert len(evaluator.results) == 3
    evaluator.close()


@pytest.mark.parametrize("error_score", [np.nan, -1.0])
def test_failures_become_records(error_score):
    with execution_backend() as backend:
        evaluator = make_evaluator(backend, FlakyClassifier(), error_score=error_score)
        keys, _ = evaluator.evaluate([{"fail": True}, {"fail": False}])
    failed, fine = (evaluator.results[key] for key in keys)
    assert failed.status == STATUS_ERROR
    assert failed.error == "CandidateError: refused"
    np.testing.assert_array_equal(failed.test["score"], [error_score] * len(FOLDS))
    assert fine.status == STATUS_OK and np.all(np.isfinite(fine.test["score"]))


def test_error_score_raise_keeps_the_type_and_names_the_candidate(execution):
    evaluator = make_evaluator(execution, FlakyClassifier(), error_score="raise")
    with pytest.raises(CandidateError, match=r"refused.*'fail': True"):
        evaluator.evaluate([{"fail": False, "alpha": 2.0}, {"fail": True, "alpha": 3.0}])
    assert evaluator.in_flight == 0
    evaluator.close()


def test_a_failing_prefix_fails_its_candidates_only():
    pipe = Pipeline([("scale", CountingScaler()), ("ridge", RidgeClassifier())])
    candidates = [{"scale__fail": fail, "ridge__alpha": alpha}
                  for fail in (True, False) for alpha in (0.1, 1.0)]
    with execution_backend() as backend:
        evaluator = make_evaluator(backend, pipe)
        keys, _ = evaluator.evaluate(candidates)
    statuses = [evaluator.results[key].status for key in keys]
    assert statuses == [STATUS_ERROR, STATUS_ERROR, STATUS_OK, STATUS_OK]
    assert evaluator.results[keys[0]].error == "ValueError: this scaler refuses to fit"
    assert evaluator.n_prefix_tasks == 2 * len(FOLDS)


def test_eval_timeout_is_enforced_while_the_fit_runs(execution):
    evaluator = make_evaluator(execution, FlakyClassifier(), eval_timeout=0.5)
    evaluator.evaluate([{"alpha": 2.0}])  # the pool started (slow on a loaded machine)
    began = time.monotonic()
    keys, _ = evaluator.evaluate([{"delay": 30.0}, {"delay": 0.0}])
    assert time.monotonic() - began < 20  # far below one 30 s fit
    slow, fast = (evaluator.results[key] for key in keys)
    assert slow.status == STATUS_TIMEOUT and "timed out after 0.5 s" in slow.error
    assert np.isnan(slow.test["score"]).all()
    assert fast.status == STATUS_OK
    evaluator.close()


def test_the_deadline_cancels_work_in_flight(execution):
    evaluator = make_evaluator(execution, FlakyClassifier(delay=0.4))
    began = time.monotonic()
    keys, _ = evaluator.evaluate([{"alpha": float(a)} for a in range(20)],
                                 deadline=time.monotonic() + 1.0)
    assert time.monotonic() - began < 15  # 20 candidates x 3 folds x 0.4 s would take 24 s
    assert evaluator.out_of_time
    assert evaluator.in_flight == 0
    assert len(evaluator.results) < 20
    assert all(evaluator.results[key].status == STATUS_OK for key in keys
               if key in evaluator.results)
    evaluator.close()


def test_repeats_seed_every_random_state_by_name(execution):
    tree = DecisionTreeClassifier(max_features=1)
    seeds = [11, 12]
    evaluator = make_evaluator(execution, tree, repeat_seeds=seeds, seed_unset_only=False)
    (key,), _ = evaluator.evaluate([{"max_depth": 3}])
    scores = evaluator.results[key].test["score"]
    assert len(scores) == 2 * len(FOLDS)
    for repeat, seed in enumerate(seeds):
        seeded = DecisionTreeClassifier(max_features=1, max_depth=3,
                                        random_state=seed_for(seed, "random_state"))
        expected = cross_validate(seeded, X, y, cv=FOLDS)["test_score"]
        np.testing.assert_allclose(scores[repeat * len(FOLDS):(repeat + 1) * len(FOLDS)],
                                   expected)
    evaluator.close()


def test_one_repeat_only_seeds_unset_random_states():
    fixed = DecisionTreeClassifier(max_features=1, random_state=3)
    with execution_backend() as backend:
        evaluator = make_evaluator(backend, fixed, repeat_seeds=[99], seed_unset_only=True)
        (key,), _ = evaluator.evaluate([{"max_depth": 4}])
    expected = cross_validate(fixed.set_params(max_depth=4), X, y, cv=FOLDS)["test_score"]
    np.testing.assert_allclose(evaluator.results[key].test["score"], expected)


def test_the_task_returns_a_small_record():
    data = (X, y, {}, {})
    record = fit_and_score(RidgeClassifier(), {"alpha": 1.0}, data, FOLDS, 0, None, ACCURACY,
                           Settings(return_train_score=True))
    # scores and times only: nothing fitted travels back
    assert {f.name for f in dataclasses.fields(record)} == {
        "status", "error", "test", "train", "fit_time", "score_time", "fit_failed", "stuck_in",
        "costs"}
    assert len(pickle.dumps(record)) < 1000
    assert record.status == STATUS_OK and record.error == ""
    assert 0 <= record.test["score"] <= 1 and 0 <= record.train["score"] <= 1


# --------------------------------------------------------------------------- batched splits

def _scores_by_params(evaluator, keys, candidates):
    return {repr(params): evaluator.results[key].test["score"]
            for key, params in zip(keys, candidates)}


@pytest.mark.parametrize("splits_per_task", [2, 6, 12])
def test_batched_splits_give_the_same_results_as_one_task_per_split(execution,
                                                                    splits_per_task):
    pipe = make_pipeline(StandardScaler(), PCA(random_state=0),
                         DecisionTreeClassifier(max_features=2))
    candidates = [{"pca__n_components": n, "decisiontreeclassifier__max_depth": depth}
                  for n in (2, 3) for depth in (1, 3, None)]
    outcomes = {}
    for size in (1, splits_per_task):
        evaluator = Evaluator(execution, pipe, X, y, {}, FOLDS, ACCURACY, repeat_seeds=[5, 6],
                              settings=Settings(seed_unset_only=False), splits_per_task=size)
        keys, _ = evaluator.evaluate(candidates)
        assert evaluator.n_prefix_tasks > 0  # the batched tasks build on shared prefixes
        # 2 repeats x 3 folds = 6 splits per candidate, in tasks of `size` (12: two candidates)
        expected = len(candidates) * -(-6 // size) if size <= 6 else len(candidates) // 2
        assert evaluator.n_tasks == expected
        outcomes[size] = _scores_by_params(evaluator, keys, candidates)
        assert all(evaluator.results[key].status == STATUS_OK for key in keys)
        evaluator.close()
    assert outcomes[1].keys() == outcomes[splits_per_task].keys()
    for name, scores in outcomes[1].items():
        np.testing.assert_array_equal(scores, outcomes[splits_per_task][name])


def test_a_batch_is_sent_with_one_map_and_gathered_together():
    pipe = make_pipeline(StandardScaler(), PCA(random_state=0), RidgeClassifier())
    candidates = [{"pca__n_components": n, "ridgeclassifier__alpha": alpha}
                  for n in (2, 3) for alpha in (0.1, 1.0, 10.0)]
    with execution_backend() as real:
        log = []
        evaluator = make_evaluator(RecordingBackend(real, log), pipe, splits_per_task=3)
        evaluator.evaluate(candidates)
    # prefixes of depth 1 (scaler) and 2 (scaler + PCA), then the candidates' tasks
    assert len(calls(log, "map")) == 3 and calls(log, "submit") == []
    assert evaluator.n_tasks == len(candidates)
    # the serial backend finishes every task while submitting: one gather collects all
    assert len(calls(log, "gather")) == 1


def test_cheap_splits_are_batched_costly_ones_are_not():
    with execution_backend() as backend:
        cheap = make_evaluator(backend, FlakyClassifier())
        cheap.evaluate([{"alpha": 1.0}])  # one candidate, nothing measured: a task per split
        assert cheap.n_tasks == len(FOLDS)
        cheap.evaluate([{"alpha": 2.0}, {"alpha": 3.0}])  # measured cheap: a task each
        assert cheap.n_tasks == len(FOLDS) + 2
        assert cheap.split_seconds < 0.1
        # eight cheap ones: whole candidates share tasks, two tasks for the one worker
        cheap.evaluate([{"alpha": float(a)} for a in range(10, 18)])
        assert cheap.n_tasks == len(FOLDS) + 2 + 2
        costly = make_evaluator(backend, FlakyClassifier(delay=0.05), task_seconds=0.02)
        costly.evaluate([{"alpha": 1.0}])
        costly.evaluate([{"alpha": 2.0}, {"alpha": 3.0}])
        assert costly.n_tasks == 3 * len(FOLDS)
        unbatched = make_evaluator(backend, FlakyClassifier(), task_seconds=0)
        unbatched.evaluate([{"alpha": float(a)} for a in range(8)])
        assert unbatched.n_tasks == 8 * len(FOLDS)


def test_a_failing_split_of_a_batched_task_fails_its_candidate_only(execution):
    evaluator = make_evaluator(execution, FlakyClassifier(), splits_per_task=len(FOLDS))
    keys, _ = evaluator.evaluate([{"fail": True}, {"fail": False}])
    failed, fine = (evaluator.results[key] for key in keys)
    assert failed.status == STATUS_ERROR and fine.status == STATUS_OK
    assert evaluator.n_tasks == 2
    evaluator.close()


def test_a_batched_task_out_of_budget_runs_no_more_fits(tmp_path):
    log = tmp_path / "fits.log"
    splits = [({"delay": 0.0}, fold, None) for fold in range(len(FOLDS))]
    records = fit_and_score_splits(splits, estimator=FlakyClassifier(log=str(log)),
                                   data=(X, y, {}, {}), folds=FOLDS, scorers=ACCURACY,
                                   settings=Settings(), budget=0.0)
    assert [record.status for record in records] == [STATUS_BUDGET] * len(FOLDS)
    assert count_lines(log) == 0
    records = fit_and_score_splits(splits, estimator=FlakyClassifier(log=str(log)),
                                   data=(X, y, {}, {}), folds=FOLDS, scorers=ACCURACY,
                                   settings=Settings(), budget=60.0)
    assert [record.status for record in records] == [STATUS_OK] * len(FOLDS)
    assert count_lines(log) == len(FOLDS)


def test_candidates_predicted_to_take_longest_are_submitted_first():
    with execution_backend() as backend:  # serial: tasks finish in the order they are sent
        evaluator = make_evaluator(backend, FlakyClassifier(), task_seconds=0.01)
        evaluator.evaluate([{"delay": 0.0, "alpha": 1.0}, {"delay": 0.04, "alpha": 1.0}])
        batch = [{"delay": 0.001, "alpha": 2.0}, {"delay": 0.002, "alpha": 3.0},
                 {"delay": 0.035, "alpha": 2.0}]
        keys, _ = evaluator.evaluate(batch)
    assert list(evaluator.results)[-3:] == [keys[2], keys[0], keys[1]]
    # the order of the returned keys stays that of the candidates
    assert [evaluator.results[key].params for key in keys] == batch


def _dying_when(marker, error):
    """fit_and_score_splits, except that a task holding a split of `marker` dies with `error`."""
    original = evaluator_module.fit_and_score_splits
    sizes = []

    def task(splits, *args, **kwargs):
        sizes.append(len(splits))
        if any(params.get("delay") == marker for params, _, _ in splits):
            raise error
        return original(splits, *args, **kwargs)

    return task, sizes


def test_a_killed_batched_task_runs_its_splits_again_alone_and_only_the_culprit_fails(
        monkeypatch):
    candidates = [{"alpha": 1.0, "delay": 0.0}, {"alpha": 2.0, "delay": 0.001},
                  {"alpha": 3.0, "delay": 0.0}]
    with execution_backend() as backend:
        undisturbed = make_evaluator(backend, FlakyClassifier(), splits_per_task=6)
        expected, _ = undisturbed.evaluate(candidates)
        task, sizes = _dying_when(0.001, TaskKilledError("Task 'x' was lost: out of memory"))
        monkeypatch.setattr(evaluator_module, "fit_and_score_splits", task)
        evaluator = make_evaluator(backend, FlakyClassifier(), splits_per_task=6)
        keys, _ = evaluator.evaluate(candidates)
    assert keys == expected
    # two candidates per task: the first task (candidates 0 and 1) died and its six splits
    # ran again one per task; only those of the culprit died again
    assert sizes == [6, 3] + [1] * 6
    assert evaluator.n_retries == 6
    culprit = evaluator.results[keys[1]]
    assert culprit.status == STATUS_ERROR
    assert culprit.error.startswith("TaskKilledError") and "out of memory" in culprit.error
    assert np.isnan(culprit.test["score"]).all()
    for key in (keys[0], keys[2]):
        assert evaluator.results[key].status == STATUS_OK
        assert evaluator.results[key].test == undisturbed.results[key].test


def test_lost_workers_fail_the_evaluation_instead_of_being_recorded(monkeypatch):
    task, _ = _dying_when(0.0, WorkersLostError("no worker for 1 s (worker_timeout=1)"))
    monkeypatch.setattr(evaluator_module, "fit_and_score_splits", task)
    with execution_backend() as backend:
        evaluator = make_evaluator(backend, FlakyClassifier())
        with pytest.raises(WorkersLostError, match="no worker"):
            evaluator.evaluate([{"delay": 0.0}, {"delay": 0.0, "alpha": 2.0}])
        assert not evaluator.results and not evaluator.in_flight
