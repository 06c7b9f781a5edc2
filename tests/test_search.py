"""GeneticSearchCV: parity across backends and with scikit-learn, budgets, failures, resume."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import FitFailedWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from dasktrain import GeneticSearchCV
from dasktrain._execution import WorkersLostError
from dasktrain.callbacks import Callback
from dasktrain.model_selection import _evaluator as evaluator_module
from dasktrain.model_selection import _search as search_module
from dasktrain.model_selection._evaluator import Evaluator
from dasktrain.space import Categorical, Continuous, Integer

X, y = load_iris(return_X_y=True)
CV = KFold(3, shuffle=True, random_state=0)
PIPE = make_pipeline(StandardScaler(), PCA(random_state=0), RidgeClassifier())
SPACE = {"pca__n_components": Integer(1, 4),
         "ridgeclassifier__alpha": Continuous(1e-3, 1e3, log=True)}


class CandidateError(RuntimeError):
    """Raised by SlowClassifier for the candidates it refuses."""


class SlowClassifier(ClassifierMixin, BaseEstimator):
    """Nearest class mean on the first feature; can sleep, fail, or log its fits to a file."""

    def __init__(self, delay=0.0, fail=False, shift=0.0, log=None):
        self.delay = delay
        self.fail = fail
        self.shift = shift
        self.log = log

    def fit(self, X, y):
        if self.fail:
            raise CandidateError("refused")
        time.sleep(self.delay)
        if self.log is not None:
            with open(self.log, "a") as stream:
                stream.write("fit\n")
        X = np.asarray(X)
        self.classes_ = np.unique(y)
        self.means_ = np.array([X[y == c, 0].mean() for c in self.classes_]) + self.shift
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        distances = np.abs(np.asarray(X)[:, :1] - self.means_[None, :])
        return self.classes_[np.argmin(distances, axis=1)]


class StopAfter(Callback):
    def __init__(self, generation):
        self.generation = generation
        self.records = []

    def on_generation(self, search, record):
        self.records.append(record)
        return record["generation"] >= self.generation


def small_search(**params):
    defaults = dict(population_size=5, generations=2, cv=CV, random_state=0)
    return GeneticSearchCV(PIPE, SPACE, **{**defaults, **params})


def comparable(results: dict) -> pd.DataFrame:
    """The backend-independent part of cv_results_ (timings dropped)."""
    frame = pd.DataFrame({key: list(value) for key, value in results.items()
                          if "time" not in key})
    frame["params"] = frame["params"].map(repr)
    return frame


def assert_same_search(search, reference) -> None:
    """The same cv_results_ (timings aside) and history_ (seconds aside)."""
    pd.testing.assert_frame_equal(comparable(search.cv_results_),
                                  comparable(reference.cv_results_))
    pd.testing.assert_frame_equal(search.history_.drop(columns="seconds"),
                                  reference.history_.drop(columns="seconds"))


@pytest.fixture
def warm_backend(backend):
    """The backend's keyword arguments, its worker processes started (so budgets measure work)."""
    GeneticSearchCV(SlowClassifier(), {"shift": [0.0, 1.0]}, population_size=2, generations=0,
                    cv=2, **backend).fit(X, y)
    return backend


@pytest.fixture(scope="module")
def reference():
    return small_search().fit(X, y)


# --------------------------------------------------------------------------- behaviour

def test_same_candidates_and_scores_on_every_backend(backend, reference):
    search = small_search(**backend).fit(X, y)
    assert_same_search(search, reference)
    assert search.best_params_ == reference.best_params_


def test_results_match_cross_validate_and_sklearn_layout(reference):
    results = reference.cv_results_
    n = len(results["params"])
    for index in (0, n - 1):
        model = PIPE.set_params(**results["params"][index])
        expected = cross_validate(model, X, y, cv=CV)["test_score"]
        got = [results[f"split{k}_test_score"][index] for k in range(3)]
        np.testing.assert_allclose(got, expected)
        assert results["mean_test_score"][index] == pytest.approx(np.mean(expected))
    for name in ("pca__n_components", "ridgeclassifier__alpha"):
        column = results[f"param_{name}"]
        assert isinstance(column, np.ma.MaskedArray) and not column.mask.any()
    assert results["rank_test_score"][reference.best_index_] == 1
    assert reference.best_score_ == max(results["mean_test_score"])
    assert len({repr(p) for p in results["params"]}) == n  # one row per distinct candidate
    assert set(results["status"]) == {"ok"} and set(results["error"]) == {""}
    assert results["generation"][0] == 0 and np.all(np.diff(results["generation"]) >= 0)
    assert reference.n_splits_ == 3 and reference.refit_time_ >= 0
    assert reference.scorer_ is not None and reference.multimetric_ is False


def test_history_counts_evaluations_and_the_best_never_drops(reference):
    history = reference.history_
    assert list(history.columns) == ["generation", "best", "mean", "std", "evaluations",
                                     "cache_hits", "pruned", "seconds"]
    assert list(history["generation"]) == [0, 1, 2]
    assert history["evaluations"].sum() == len(reference.cv_results_["params"])
    assert history["evaluations"].iloc[0] == 5
    # an honest budget: every generation evaluates population_size new candidates
    assert list(history["evaluations"]) == [5, 5, 5]
    assert (history["cache_hits"] >= 0).all()
    assert np.all(np.diff(history["best"]) >= 0)
    assert history["best"].iloc[-1] == pytest.approx(reference.best_score_)


def test_equal_candidates_are_never_fitted_twice(tmp_path):
    log = tmp_path / "fits.log"
    search = GeneticSearchCV(SlowClassifier(log=str(log)), {"shift": [0.0, 0.1, 0.2]},
                             population_size=4, generations=3, cv=3, random_state=0).fit(X, y)
    n_rows = len(search.cv_results_["params"])
    assert n_rows == 3  # the whole space, each point once
    assert len(log.read_text().splitlines()) == n_rows * 3 + 1  # + the refit
    # a space with no new candidate left ends the search
    assert list(search.history_["generation"]) == [0]


def test_a_child_equal_to_an_evaluated_candidate_is_bred_again():
    search = GeneticSearchCV(SlowClassifier(), {"shift": Integer(0, 11)}, population_size=4,
                             generations=2, cv=2, random_state=0).fit(X, y)
    # 12 points, 12 evaluations: every generation evaluates population_size new ones
    assert list(search.history_["evaluations"]) == [4, 4, 4]
    assert search.history_["cache_hits"].sum() > 0
    keys = [repr(sorted(params.items())) for params in search.cv_results_["params"]]
    assert len(set(keys)) == len(keys) == 12


def test_elitism_keeps_the_best_even_with_random_survival():
    search = small_search(tournament_size=1, population_size=4, generations=3).fit(X, y)
    assert np.all(np.diff(search.history_["best"]) >= 0)


def test_delegates_to_the_refit_best_estimator(reference):
    best = reference.best_estimator_
    np.testing.assert_array_equal(reference.predict(X), best.predict(X))
    np.testing.assert_array_equal(reference.decision_function(X), best.decision_function(X))
    np.testing.assert_array_equal(reference.classes_, [0, 1, 2])
    assert reference.score(X, y) == pytest.approx(best.score(X, y))
    assert reference.n_features_in_ == 4
    assert not hasattr(reference, "predict_proba") and not hasattr(reference, "transform")
    unfitted = small_search(refit=False)
    assert not hasattr(unfitted, "predict")


def test_max_time_cancels_running_work_and_still_refits(warm_backend):
    search = GeneticSearchCV(SlowClassifier(delay=0.5), {"shift": Continuous(0.0, 1.0)},
                             population_size=6, generations=5, cv=3, max_time=4.0,
                             random_state=0, **warm_backend)
    began = time.monotonic()
    search.fit(X, y)
    assert time.monotonic() - began < 45  # the whole search needs 108 fits x 0.5 s
    assert 0 < len(search.cv_results_["params"]) < 36
    assert set(search.cv_results_["status"]) == {"ok"}
    assert hasattr(search, "best_estimator_")


def test_eval_timeout_marks_the_candidates_it_stopped():
    # enforced on every backend: tests/test_evaluate.py
    search = GeneticSearchCV(SlowClassifier(), {"delay": [0.0, 30.0]}, population_size=2,
                             generations=0, cv=2, eval_timeout=0.5, random_state=0)
    began = time.monotonic()
    with pytest.warns(FitFailedWarning, match="timed out after 0.5 s"):
        search.fit(X, y)
    assert time.monotonic() - began < 25
    results = search.cv_results_
    status = dict(zip((p["delay"] for p in results["params"]), results["status"]))
    assert status == {0.0: "ok", 30.0: "timeout"}
    assert search.best_params_ == {"delay": 0.0}


def test_error_score_nan_records_the_error():
    search = GeneticSearchCV(SlowClassifier(), {"fail": [True, False]}, population_size=2,
                             generations=0, cv=2, random_state=0)
    with pytest.warns(FitFailedWarning, match="CandidateError: refused"):
        search.fit(X, y)
    results = search.cv_results_
    failed = [i for i, p in enumerate(results["params"]) if p["fail"]][0]
    assert results["status"][failed] == "error"
    assert results["error"][failed] == "CandidateError: refused"
    assert np.isnan(results["mean_test_score"][failed])
    assert results["rank_test_score"][failed] == 2
    assert search.best_params_ == {"fail": False}


def test_error_score_raise_reraises_with_the_candidate(backend):
    search = GeneticSearchCV(SlowClassifier(), {"fail": [True, False]}, population_size=2,
                             generations=0, cv=2, error_score="raise", random_state=0,
                             **backend)
    with pytest.raises(CandidateError, match=re.escape("refused (raised while fitting the "
                                                       "candidate {'fail': True})")):
        search.fit(X, y)


def test_all_failures_raise_like_scikit_learn():
    search = GeneticSearchCV(SlowClassifier(fail=True), {"shift": [0.0, 1.0]},
                             population_size=2, generations=1, cv=2, random_state=0)
    with pytest.raises(ValueError, match="All the 4 fits failed"):
        search.fit(X, y)


class Ends(Callback):
    def __init__(self):
        self.calls = []

    def on_start(self, search):
        self.calls.append("start")

    def on_end(self, search):
        self.calls.append("end")


def test_lost_workers_fail_the_fit_and_callbacks_still_end(monkeypatch):
    def workers_gone(*args, **kwargs):
        raise WorkersLostError("no worker for 1 s (worker_timeout=1)")

    monkeypatch.setattr(evaluator_module, "fit_and_score_splits", workers_gone)
    ends = Ends()
    search = GeneticSearchCV(SlowClassifier(), {"shift": [0.0, 1.0]}, population_size=2,
                             generations=1, cv=2, callbacks=[ends], random_state=0)
    with pytest.raises(WorkersLostError, match="no worker"):
        search.fit(X, y)
    assert ends.calls == ["start", "end"]
    assert not hasattr(search, "cv_results_")


def test_callbacks_end_when_every_fit_failed():
    ends = Ends()
    search = GeneticSearchCV(SlowClassifier(fail=True), {"shift": [0.0, 1.0]},
                             population_size=2, generations=0, cv=2, callbacks=[ends])
    with pytest.raises(ValueError, match="All the 4 fits failed"):
        search.fit(X, y)
    assert ends.calls == ["start", "end"]


def test_multimetric_refits_on_the_named_metric():
    search = small_search(scoring=["accuracy", "balanced_accuracy"], refit="balanced_accuracy",
                          return_train_score=True, generations=1).fit(X, y)
    results = search.cv_results_
    for metric in ("accuracy", "balanced_accuracy"):
        for key in (f"mean_test_{metric}", f"rank_test_{metric}", f"split2_test_{metric}",
                    f"mean_train_{metric}"):
            assert key in results
    assert search.multimetric_ and set(search.scorer_) == {"accuracy", "balanced_accuracy"}
    assert search.best_score_ == max(results["mean_test_balanced_accuracy"])
    assert search.score(X, y) == pytest.approx(
        search.scorer_["balanced_accuracy"](search.best_estimator_, X, y))
    unrefit = small_search(scoring={"acc": "accuracy", "bal": "balanced_accuracy"}, refit=False,
                           generations=0).fit(X, y)
    assert not hasattr(unrefit, "best_index_") and not hasattr(unrefit, "best_estimator_")


def test_callable_refit_picks_the_index():
    search = small_search(generations=0, refit=lambda results: 0).fit(X, y)
    assert search.best_index_ == 0 and not hasattr(search, "best_score_")
    assert search.best_params_ == search.cv_results_["params"][0]


def test_n_repeats_reports_folds_times_repeats():
    tree = DecisionTreeClassifier(max_features=1)
    search = GeneticSearchCV(tree, {"max_depth": Integer(2, 6)}, population_size=3,
                             generations=0, cv=3, n_repeats=2, random_state=0).fit(X, y)
    results = search.cv_results_
    assert "split5_test_score" in results and "split6_test_score" not in results
    per_repeat = np.vstack([results["mean_test_score_repeat0"],
                            results["mean_test_score_repeat1"]])
    np.testing.assert_allclose(per_repeat.mean(axis=0), results["mean_test_score"])
    np.testing.assert_allclose(per_repeat.std(axis=0),
                               results["std_test_score_across_repeats"])


def test_fit_params_and_groups_are_split_like_scikit_learn():
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.1, 2.0, size=len(y))
    groups = np.arange(len(y)) % 5
    search = GeneticSearchCV(RidgeClassifier(), {"alpha": [0.1, 10.0]}, population_size=2,
                             generations=0, cv=GroupKFold(5), random_state=0)
    search.fit(X, y, groups=groups, sample_weight=weights)
    # scikit-learn's searches weight the test scores with sample_weight too
    grid = GridSearchCV(RidgeClassifier(), {"alpha": [0.1, 10.0]}, cv=GroupKFold(5))
    grid.fit(X, y, groups=groups, sample_weight=weights)
    expected = dict(zip(map(repr, grid.cv_results_["params"]),
                        grid.cv_results_["mean_test_score"]))
    for params, scores in zip(search.cv_results_["params"],
                              search.cv_results_["mean_test_score"]):
        assert scores == pytest.approx(expected[repr(params)])


def test_pandas_input_keeps_column_names():
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    search = GeneticSearchCV(KNeighborsClassifier(), {"n_neighbors": Integer(1, 15)},
                             population_size=3, generations=1, cv=3, random_state=0)
    search.fit(frame, pd.Series(y))
    assert list(search.feature_names_in_) == ["a", "b", "c", "d"]


def test_callbacks_stop_the_search_and_see_each_generation():
    stop = StopAfter(1)
    search = small_search(generations=5, callbacks=[stop]).fit(X, y)
    assert list(search.history_["generation"]) == [0, 1]
    assert [record["generation"] for record in stop.records] == [0, 1]
    first = stop.records[0]
    assert first["best_params"] is not None and len(first["candidates"]) == 5
    assert {"params", "generation", "status", "mean_test_score"} <= set(first["candidates"][0])


def test_verbose_shows_a_progress_bar(capsys):
    small_search(generations=1, verbose=1).fit(X, y)
    assert "2/2" in capsys.readouterr().err


# --------------------------------------------------------------------------- checkpoints

def test_resuming_from_a_checkpoint_equals_an_uninterrupted_run(tmp_path):
    path = tmp_path / "search.ckpt"
    small_search(generations=4, checkpoint=str(path), callbacks=[StopAfter(2)]).fit(X, y)
    resumed = small_search(generations=4, checkpoint=str(path)).fit(X, y)
    direct = small_search(generations=4).fit(X, y)
    pd.testing.assert_frame_equal(comparable(resumed.cv_results_),
                                  comparable(direct.cv_results_))
    pd.testing.assert_frame_equal(resumed.history_.drop(columns="seconds"),
                                  direct.history_.drop(columns="seconds"))
    assert resumed.best_params_ == direct.best_params_


def test_a_truncated_or_foreign_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "search.ckpt"
    small_search(generations=0, checkpoint=path).fit(X, y)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match="'checkpoint' file .* truncated"):
        small_search(generations=0, checkpoint=path).fit(X, y)
    path.write_bytes(content)
    with pytest.raises(ValueError, match="different search .*population_size"):
        small_search(generations=0, population_size=6, checkpoint=path).fit(X, y)
    path.write_bytes(b"not a checkpoint\n")
    with pytest.raises(ValueError, match="not a dasktrain checkpoint"):
        small_search(generations=0, checkpoint=path).fit(X, y)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".checkpoint-")]


# --------------------------------------------------------------------------- steady state

def test_steady_state_runs_population_times_generations_evaluations(backend):
    search = small_search(strategy="steady_state", population_size=4, generations=2,
                          **backend).fit(X, y)
    assert len(search.cv_results_["params"]) == 4 * 3
    assert list(search.history_["generation"]) == [0, 1, 2]
    assert list(search.history_["evaluations"]) == [4, 4, 4]
    assert np.all(np.diff(search.history_["best"]) >= 0)
    assert list(np.bincount(search.cv_results_["generation"])) == [4, 4, 4]


def test_steady_state_stops_on_a_callback():
    stop = StopAfter(0)
    search = small_search(strategy="steady_state", population_size=3, generations=4,
                          callbacks=[stop]).fit(X, y)
    assert [record["generation"] for record in stop.records] == [0]
    # what was in flight when it stopped and had finished is kept, in a last partial row
    n_rows = len(search.cv_results_["params"])
    assert 3 <= n_rows < 3 * 5
    assert search.history_["evaluations"].sum() == n_rows


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("params, err, match", [
    ({"population_size": 1}, ValueError, "'population_size' parameter of GeneticSearchCV"),
    ({"generations": -1}, ValueError, "'generations' parameter"),
    ({"crossover_probability": 1.5}, ValueError, "'crossover_probability' parameter"),
    ({"crossover_probability": 0.7, "mutation_probability": 0.5}, ValueError, "sum to at most"),
    ({"tournament_size": 0}, ValueError, "'tournament_size' parameter"),
    ({"strategy": "random"}, ValueError, "'strategy' parameter"),
    ({"estimator": RidgeClassifier}, ValueError, "'estimator' parameter.*not the class"),
    ({"init": "grid"}, ValueError, "'init' parameter"),
    ({"screening": 0.5}, ValueError, "'screening' parameter"),
    ({"pruning": "halving"}, ValueError, "'pruning' parameter"),
    ({"recycle": "yes"}, ValueError, "'recycle' parameter"),
    ({"n_repeats": 0}, ValueError, "'n_repeats' parameter"),
    ({"max_time": 0}, ValueError, "'max_time' parameter"),
    ({"eval_timeout": -1.0}, ValueError, "'eval_timeout' parameter"),
    ({"error_score": "ignore"}, ValueError, "'error_score' parameter"),
    ({"scoring": "not-a-metric"}, ValueError, "'scoring' parameter"),
    ({"scoring": ["accuracy", "nope"]}, ValueError, "'scoring' parameter"),
    ({"scoring": ["accuracy", "f1_macro"]}, ValueError, "refit must be set to a scorer key"),
    ({"cv": 1}, ValueError, "'cv' parameter"),
    ({"cv": 200}, ValueError, "Cannot have number of splits"),
    ({"param_distributions": {"pca__n_component": [1, 2]}}, ValueError,
     "Did you mean 'pca__n_components'"),
    ({"param_distributions": []}, ValueError, "a non-empty list of dicts"),
    ({"param_distributions": [1, 2]}, TypeError, "'param_distributions' parameter"),
    ({"estimator": "svc"}, ValueError, "'estimator' parameter"),
    ({"callbacks": [object()]}, TypeError, "'callbacks' parameter"),
    ({"checkpoint": 3}, ValueError, "'checkpoint' parameter"),
    ({"random_state": "zero"}, ValueError, "'random_state' parameter"),
    ({"use_dask": "yes"}, ValueError, "'use_dask' parameter"),
    ({"client": "tcp://nowhere:8786", "use_dask": True}, ValueError, "'client' parameter"),
    ({"n_jobs": 0}, ValueError, "'n_jobs' parameter"),
])
def test_bad_parameters_are_rejected_before_any_work(params, err, match):
    search = GeneticSearchCV(**{"estimator": PIPE, "param_distributions": SPACE, **params})
    with pytest.raises(err, match=match):
        search.fit(X, y)


X_NAN = X.copy()
X_NAN[5, 2] = np.nan
X_INF = X.copy()
X_INF[0, 0] = -np.inf


@pytest.mark.parametrize("data, err, match", [
    (X_NAN, ValueError, "Input X contains NaN: GeneticSearchCV .* RidgeClassifier"),
    (X_INF, ValueError, "Input X contains infinity"),
    (pd.DataFrame(X_NAN).assign(name="x"), ValueError, "Input X contains NaN"),
    (sparse.csr_matrix(X_INF), ValueError, "Input X contains infinity"),
    (X_NAN.tolist(), ValueError, "Input X contains NaN"),
])
def test_nan_or_inf_in_x_is_rejected_before_any_work(data, err, match, monkeypatch):
    def no_evaluator(*args, **kwargs):
        raise AssertionError("the search started evaluating bad input")

    monkeypatch.setattr(search_module, "Evaluator", no_evaluator)
    search = GeneticSearchCV(RidgeClassifier(), {"alpha": [0.1, 1.0]}, population_size=2,
                             generations=0, cv=2)
    with pytest.raises(err, match=match):
        search.fit(data, y)


def test_nan_is_accepted_when_the_estimator_or_its_first_step_takes_it():
    for estimator, space in [
        (make_pipeline(SimpleImputer(), RidgeClassifier()), {"ridgeclassifier__alpha": [0.1, 1.0]}),
        (HistGradientBoostingClassifier(max_iter=5), {"max_depth": [2, 3]}),
    ]:
        search = GeneticSearchCV(estimator, space, population_size=2, generations=0, cv=2,
                                 random_state=0).fit(X_NAN, y)
        assert set(search.cv_results_["status"]) == {"ok"}


def test_inconsistent_lengths_are_rejected():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        small_search().fit(X, y[:-1])


# --------------------------------------------------------------------------- scikit-learn

@parametrize_with_checks([
    GeneticSearchCV(DecisionTreeClassifier(random_state=0),
                    {"min_samples_split": Categorical([2, 3])}, population_size=2,
                    generations=1, cv=2, error_score="raise", random_state=0),
    GeneticSearchCV(Ridge(), {"alpha": Continuous(0.1, 10.0, log=True)}, population_size=2,
                    generations=1, cv=2, error_score="raise", random_state=0),
])
def test_scikit_learn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def in_flight(monkeypatch):
    """The number of candidates in flight each time the engine waits, as a list."""
    seen = []
    original = Evaluator.wait

    def wait(self, deadline=None):
        seen.append(self.in_flight)
        return original(self, deadline)

    monkeypatch.setattr(Evaluator, "wait", wait)
    return seen


def test_steady_state_keeps_more_cheap_candidates_in_flight(in_flight):
    seen = in_flight
    search = GeneticSearchCV(SlowClassifier(), {"shift": Continuous(0.0, 1.0)},
                             strategy="steady_state", population_size=8, generations=3, cv=2,
                             n_jobs=2, random_state=0).fit(X, y)
    assert len(search.cv_results_["params"]) == 8 * 4
    # two slots: two candidates each in flight at first, then (cheap fits) a population's worth
    assert seen[0] == 4 and max(seen) == 8


class JitteryClassifier(SlowClassifier):
    """SlowClassifier whose fits take a random 0-10 ms: times that differ from run to run."""

    def fit(self, X, y):
        time.sleep(np.random.default_rng().uniform(0.0, 0.01))
        return super().fit(X, y)


def test_steady_state_is_the_same_from_run_to_run_when_tasks_run_one_by_one(in_flight):
    """With n_jobs=1 tasks run in order: nothing depends on the fit times measured (the
    number in flight, the order told), so steady_state repeats itself for a random_state."""
    seen = in_flight

    def run():
        search = GeneticSearchCV(JitteryClassifier(), {"shift": Continuous(0.0, 1.0)},
                                 strategy="steady_state", population_size=6, generations=5,
                                 cv=2, refit=False, random_state=0).fit(X, y)
        return search.cv_results_["params"], list(search.cv_results_["mean_test_score"])

    first = run()
    assert max(seen) == 2  # cheap fits, but not more in flight: that would depend on times
    assert all(run() == first for _ in range(2))


# --------------------------------------------------------------------------- conditional spaces

class LoggingScaler(StandardScaler):
    """StandardScaler that appends a line to `log` on every fit (readable across processes)."""

    def __init__(self, log=None):
        super().__init__()
        self.log = log

    def fit(self, X, y=None, sample_weight=None):
        if self.log is not None:
            with open(self.log, "a") as stream:
                stream.write("fit\n")
        return super().fit(X, y, sample_weight=sample_weight)


FAMILIES = [
    {"clf": [RidgeClassifier()], "clf__alpha": Continuous(1e-3, 1e3, log=True)},
    {"clf": [KNeighborsClassifier()], "clf__n_neighbors": Integer(1, 15),
     "clf__weights": ["uniform", "distance"]},
    {"clf": [DecisionTreeClassifier(random_state=0)], "clf__max_depth": Integer(1, 8)},
]


def conditional_search(log=None, **params):
    pipe = Pipeline([("scale", LoggingScaler(log=log)), ("clf", RidgeClassifier())])
    defaults = dict(population_size=6, generations=2, cv=CV, random_state=0)
    return GeneticSearchCV(pipe, FAMILIES, **{**defaults, **params})


@pytest.fixture(scope="module")
def conditional_reference():
    return conditional_search().fit(X, y)


def test_a_space_over_three_families_is_the_same_on_every_backend(backend,
                                                                    conditional_reference,
                                                                    tmp_path):
    log = tmp_path / "scaler-fits.log"
    search = conditional_search(log=str(log), **backend).fit(X, y)
    reference = conditional_reference.cv_results_
    frame = comparable(search.cv_results_).drop(columns=["params", "param_clf"])
    expected = comparable(reference).drop(columns=["params", "param_clf"])
    pd.testing.assert_frame_equal(frame, expected)
    assert [repr(p) for p in search.cv_results_["params"]] == [repr(p) for p in
                                                               reference["params"]]
    families = {type(params["clf"]).__name__ for params in search.cv_results_["params"]}
    assert len(families) >= 2
    # the scaler is shared by every candidate: fitted once per fold (+ once for the refit)
    assert len(log.read_text().splitlines()) == CV.get_n_splits() + 1


def test_a_conditional_space_masks_the_parameters_a_candidate_does_not_have(
        conditional_reference):
    results = conditional_reference.cv_results_
    for index, params in enumerate(results["params"]):
        for name in ("clf__alpha", "clf__n_neighbors", "clf__max_depth"):
            assert bool(results[f"param_{name}"].mask[index]) == (name not in params)
        # each candidate's scores are those of its own pipeline
        pipe = Pipeline([("scale", StandardScaler()), ("clf", RidgeClassifier())])
        expected = cross_validate(pipe.set_params(**params), X, y, cv=CV)["test_score"]
        np.testing.assert_allclose([results[f"split{k}_test_score"][index] for k in range(3)],
                                   expected)
    assert conditional_reference.best_estimator_.named_steps["clf"] is not FAMILIES[0]["clf"][0]


def test_a_nested_parameter_of_another_family_is_rejected_before_any_work():
    pipe = Pipeline([("scale", StandardScaler()), ("clf", RidgeClassifier())])
    search = GeneticSearchCV(pipe, [{"clf": [KNeighborsClassifier()], "clf__alpha": [1.0]}])
    with pytest.raises(ValueError, match="'clf__alpha' that is not a parameter of "
                                         "KNeighborsClassifier"):
        search.fit(X, y)


# --------------------------------------------------------------------------- limits (issue 18)

def test_infinite_limits_mean_no_limit():
    search = small_search(eval_timeout=float("inf"), max_time=float("inf"),
                          generations=1).fit(X, y)
    assert set(search.cv_results_["status"]) == {"ok"}
    assert len(search.cv_results_["params"]) == 10


def test_a_timeout_error_that_is_not_the_deadline_is_raised(inprocess_client):
    """A TimeoutError raised while the search waits (here by a real SIGALRM handler) is
    not taken for max_time: it leaves fit, instead of ending the search early."""
    import signal

    def alarm(signum, frame):
        raise TimeoutError("raised by a signal handler")

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        search = GeneticSearchCV(SlowClassifier(delay=0.2), {"shift": Continuous(0.0, 1.0)},
                                 population_size=4, generations=4, cv=2, random_state=0,
                                 use_dask=True, client=inprocess_client)
        with pytest.raises(TimeoutError, match="signal handler"):
            search.fit(X, y)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not hasattr(search, "cv_results_")


def test_a_checkpoint_in_a_missing_directory_is_refused_before_any_work(tmp_path, monkeypatch):
    def no_evaluator(*args, **kwargs):
        raise AssertionError("the search started evaluating")

    monkeypatch.setattr(search_module, "Evaluator", no_evaluator)
    search = small_search(checkpoint=str(tmp_path / "missing" / "search.ckpt"))
    with pytest.raises(ValueError, match="'checkpoint' parameter.*does not exist"):
        search.fit(X, y)


# --------------------------------------------------------------------------- pruning (issue 14)

class ScriptedClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the majority class, or the truth: `quality` is the share of test rows it gets
    right, the same on every fold; every fit appends its `quality` to the file `log`."""

    def __init__(self, quality=0.5, log=None):
        self.quality = quality
        self.log = log

    def fit(self, X, y):
        if self.log is not None:
            with open(self.log, "a") as stream:
                stream.write(f"{self.quality}\n")
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        X = np.asarray(X)
        right = np.arange(len(X)) < round(self.quality * len(X))
        return np.where(right, X[:, -1].astype(int), (X[:, -1].astype(int) + 1) % 3)


def scripted_data():
    X_, y_ = load_iris(return_X_y=True)
    return np.column_stack([X_, y_]), y_  # the last column is the truth, read by predict


def scripted_search(log=None, **params):
    qualities = [round(q, 2) for q in np.linspace(0.05, 0.95, 19)]
    defaults = dict(population_size=6, generations=3, cv=KFold(3), random_state=0,
                    pruning="folds")
    return GeneticSearchCV(ScriptedClassifier(log=log), {"quality": qualities},
                           **{**defaults, **params})


def test_pruning_stops_candidates_whose_first_fold_is_poor_and_never_good_ones(tmp_path):
    log = tmp_path / "fits.log"
    Xs, ys = scripted_data()
    search = scripted_search(log=str(log)).fit(Xs, ys)
    results = search.cv_results_
    fits = [float(line) for line in log.read_text().splitlines()[:-1]]  # the refit last
    pruned = results["status"] == "pruned"
    assert pruned.any() and search.history_["pruned"].sum() == pruned.sum()
    assert search.history_["pruned"].iloc[0] == 0  # the first generation is never pruned
    best_complete = max(q["quality"] for q, p in zip(results["params"], pruned) if not p)
    for params, was_pruned in zip(results["params"], pruned):
        quality = params["quality"]
        # fitted on one fold when pruned, on all three otherwise
        assert fits.count(quality) == (1 if was_pruned else 3)
        if was_pruned:
            assert quality < best_complete
    assert search.best_params_ == {"quality": best_complete}
    assert not pruned[search.best_index_]


def test_pruned_candidates_have_scikit_learns_layout_and_rank_last():
    Xs, ys = scripted_data()
    results = scripted_search().fit(Xs, ys).cv_results_
    pruned = results["status"] == "pruned"
    assert set(results["error"][pruned]) == {""}
    np.testing.assert_array_equal(np.isnan(results["split1_test_score"]), pruned)
    np.testing.assert_array_equal(np.isnan(results["split2_test_score"]), pruned)
    np.testing.assert_allclose(results["mean_test_score"][pruned],
                               results["split0_test_score"][pruned])
    assert results["rank_test_score"][pruned].min() > results["rank_test_score"][~pruned].max()


def test_pruning_gives_the_same_results_on_every_backend(backend):
    Xs, ys = scripted_data()
    reference = scripted_search().fit(Xs, ys)
    search = scripted_search(**backend).fit(Xs, ys)
    assert_same_search(search, reference)


def test_pruning_resumes_from_a_checkpoint_like_an_uninterrupted_run(tmp_path):
    Xs, ys = scripted_data()
    whole = scripted_search().fit(Xs, ys)
    path = tmp_path / "search.ckpt"
    scripted_search(checkpoint=str(path), callbacks=[StopAfter(1)]).fit(Xs, ys)
    resumed = scripted_search(checkpoint=str(path)).fit(Xs, ys)
    pd.testing.assert_frame_equal(comparable(resumed.cv_results_),
                                  comparable(whole.cv_results_))


def test_pruning_with_several_repeats_prunes_all_repeats_of_the_remaining_folds():
    Xs, ys = scripted_data()
    results = scripted_search(n_repeats=2).fit(Xs, ys).cv_results_
    pruned = results["status"] == "pruned"
    assert pruned.any()
    for split in (0, 3):  # fold 0 of each repeat was fitted
        assert np.isfinite(results[f"split{split}_test_score"][pruned]).all()
    for split in (1, 2, 4, 5):
        assert np.isnan(results[f"split{split}_test_score"][pruned]).all()


def test_a_scorer_returning_nan_is_warned_about_as_scikit_learn_does():
    def nan_for_small_alpha(estimator, X_, y_):
        return float("nan") if estimator.alpha < 1 else 0.5

    search = GeneticSearchCV(RidgeClassifier(), {"alpha": [0.1, 10.0]}, population_size=2,
                             generations=0, cv=2, scoring=nan_for_small_alpha, random_state=0)
    with pytest.warns(UserWarning, match="One or more of the test scores are non-finite"):
        search.fit(X, y)
    assert search.best_params_ == {"alpha": 10.0}


def test_on_end_runs_only_for_callbacks_whose_on_start_completed():
    class Refuses(Callback):
        def on_start(self, search):
            raise ConnectionError("tracking server unreachable")

        def on_end(self, search):
            raise AssertionError("on_end of a callback that never started")

    first, last = Ends(), Ends()
    search = small_search(callbacks=[first, Refuses(), last])
    with pytest.raises(ConnectionError, match="unreachable"):
        search.fit(X, y)
    assert first.calls == ["start", "end"] and last.calls == []
