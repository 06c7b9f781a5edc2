"""RepeatedClassifier and RepeatedRegressor: seeds, parity with scikit-learn and across backends."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_diabetes, make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from dasktrain import RepeatedClassifier, RepeatedRegressor
from dasktrain.ensemble import _repeated
from dasktrain.utils import random_state_params, set_random_states, spawn_seeds

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_clf, y_clf = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3,
                                   random_state=0)
X_reg, y_reg = load_diabetes(return_X_y=True)
X_reg, y_reg = X_reg[:150], y_reg[:150]


def small_mlp_classifier():
    return make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=40))


def small_mlp_regressor():
    return MLPRegressor(hidden_layer_sizes=(8,), max_iter=40, learning_rate_init=0.05)


class SeedLabelClassifier(ClassifierMixin, BaseEstimator):
    """Predicts one class for every sample, chosen by its random_state (to test voting)."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.label_ = self.classes_[self.random_state % len(self.classes_)]
        return self

    def predict(self, X):
        return np.full(len(X), self.label_)


class FailingClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise ArithmeticError("this member cannot fit")

    def predict_proba(self, X):  # pragma: no cover - never fitted
        return np.ones((len(X), 2)) / 2


# --- parity across backends --------------------------------------------------------------

@pytest.fixture(scope="module")
def serial_classifier():
    return RepeatedClassifier(small_mlp_classifier(), n_repeats=4, random_state=3).fit(X_clf, y_clf)


@pytest.fixture(scope="module")
def serial_regressor():
    return RepeatedRegressor(small_mlp_regressor(), n_repeats=4, random_state=3).fit(X_reg, y_reg)


def test_same_seeds_and_predictions_on_every_backend(backend, serial_classifier,
                                                     serial_regressor):
    clf = RepeatedClassifier(small_mlp_classifier(), n_repeats=4, random_state=3, **backend)
    clf.fit(X_clf, y_clf)
    assert clf.seeds_ == serial_classifier.seeds_ == spawn_seeds(3, 4)
    np.testing.assert_array_equal(clf.predict_proba(X_clf), serial_classifier.predict_proba(X_clf))
    np.testing.assert_array_equal(clf.predict(X_clf), serial_classifier.predict(X_clf))
    for member, serial_member in zip(clf.estimators_, serial_classifier.estimators_):
        assert member[-1].random_state == serial_member[-1].random_state

    reg = RepeatedRegressor(small_mlp_regressor(), n_repeats=4, random_state=3, **backend)
    reg.fit(X_reg, y_reg)
    assert reg.seeds_ == serial_regressor.seeds_
    np.testing.assert_array_equal(reg.predict(X_reg), serial_regressor.predict(X_reg))


def test_members_differ_from_each_other(serial_classifier):
    probas = [member.predict_proba(X_clf) for member in serial_classifier.estimators_]
    assert not np.allclose(probas[0], probas[1])


# --- seeds and parity with scikit-learn ----------------------------------------------------

def test_every_nested_random_state_is_set_and_distinct():
    pipe = make_pipeline(PCA(n_components=3, svd_solver="randomized"),
                         RandomForestClassifier(n_estimators=3))
    clf = RepeatedClassifier(pipe, n_repeats=3, random_state=0).fit(X_clf, y_clf)
    names = random_state_params(pipe)
    assert names == ["pca__random_state", "randomforestclassifier__random_state"]
    seen = []
    for member in clf.estimators_:
        values = [member.get_params()[name] for name in names]
        assert all(isinstance(value, int) for value in values)
        seen.extend(values)
    assert len(set(seen)) == len(seen) == 6
    assert pipe.get_params()["pca__random_state"] is None  # the given estimator is untouched


def test_member_equals_sklearn_estimator_fitted_with_its_seed():
    clf = RepeatedClassifier(MLPClassifier(hidden_layer_sizes=(8,), max_iter=40), n_repeats=3,
                             random_state=11).fit(X_clf, y_clf)
    expected_probas = []
    for seed, member in zip(clf.seeds_, clf.estimators_):
        own_seed = spawn_seeds(seed, 1)[0]
        assert member.random_state == own_seed
        reference = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=own_seed)
        reference.fit(X_clf, y_clf)
        np.testing.assert_array_equal(member.predict_proba(X_clf), reference.predict_proba(X_clf))
        expected_probas.append(reference.predict_proba(X_clf))
    np.testing.assert_allclose(clf.predict_proba(X_clf), np.mean(expected_probas, axis=0))
    np.testing.assert_array_equal(clf.predict(X_clf),
                                  np.argmax(np.mean(expected_probas, axis=0), axis=1))


def test_regressor_averages_sklearn_estimators_fitted_with_the_seeds():
    reg = RepeatedRegressor(DecisionTreeRegressor(max_features=0.5), n_repeats=3,
                            random_state=5).fit(X_reg, y_reg)
    references = [set_random_states(DecisionTreeRegressor(max_features=0.5), seed).fit(X_reg, y_reg)
                  for seed in reg.seeds_]
    np.testing.assert_allclose(reg.predict(X_reg),
                               np.mean([ref.predict(X_reg) for ref in references], axis=0))


def test_random_state_none_draws_fresh_seeds_and_int_repeats():
    first = RepeatedRegressor(Ridge(), n_repeats=3).fit(X_reg, y_reg).seeds_
    second = RepeatedRegressor(Ridge(), n_repeats=3).fit(X_reg, y_reg).seeds_
    assert first != second
    assert RepeatedRegressor(Ridge(), n_repeats=3, random_state=1).fit(X_reg, y_reg).seeds_ == \
        spawn_seeds(1, 3)


# --- voting, labels, inputs ----------------------------------------------------------------

def test_hard_voting_majority_with_ties_to_the_lowest_label():
    y = np.array(["cat", "dog", "eel"] * 10)
    X = np.arange(len(y), dtype=float).reshape(-1, 1)
    for random_state in range(6):
        clf = RepeatedClassifier(SeedLabelClassifier(), n_repeats=4, voting="hard",
                                 random_state=random_state).fit(X, y)
        labels = [member.label_ for member in clf.estimators_]
        counts = {label: labels.count(label) for label in ["cat", "dog", "eel"]}
        top = max(counts.values())
        expected = min(label for label, count in counts.items() if count == top)
        assert list(clf.classes_) == ["cat", "dog", "eel"]
        assert set(clf.predict(X[:5])) == {expected}
    assert not hasattr(clf, "predict_proba")


def test_hard_voting_on_a_real_classifier_matches_a_manual_vote():
    clf = RepeatedClassifier(DecisionTreeClassifier(max_features=2), n_repeats=5, voting="hard",
                             random_state=0).fit(X_clf, y_clf)
    votes = np.array([member.predict(X_clf) for member in clf.estimators_])
    counts = np.stack([(votes == label).sum(axis=0) for label in clf.classes_])
    np.testing.assert_array_equal(clf.predict(X_clf), clf.classes_[np.argmax(counts, axis=0)])


def test_string_labels_and_dataframe_input():
    frame = pd.DataFrame(X_clf, columns=[f"f{i}" for i in range(X_clf.shape[1])])
    labels = np.array(["a", "b", "c"])[y_clf]
    clf = RepeatedClassifier(LogisticRegression(), n_repeats=2, random_state=0).fit(frame, labels)
    assert list(clf.classes_) == ["a", "b", "c"]
    assert list(clf.feature_names_in_) == list(frame.columns)
    assert list(clf.estimators_[0].feature_names_in_) == list(frame.columns)
    assert set(clf.predict(frame)) <= {"a", "b", "c"}
    assert clf.n_features_in_ == X_clf.shape[1]


def test_nan_is_accepted_when_the_estimator_takes_it():
    X = X_clf.copy()
    X[::7, 0] = np.nan
    clf = RepeatedClassifier(DecisionTreeClassifier(), n_repeats=2, random_state=0).fit(X, y_clf)
    assert clf.predict(X).shape == (len(X),)


def test_dask_array_is_predicted_blockwise(serial_classifier, serial_regressor):
    X_dask = da.from_array(X_clf, chunks=50)
    lazy = serial_classifier.predict_proba(X_dask)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), serial_classifier.predict_proba(X_clf))
    np.testing.assert_array_equal(serial_classifier.predict(X_dask).compute(),
                                  serial_classifier.predict(X_clf))
    np.testing.assert_allclose(serial_regressor.predict(da.from_array(X_reg, chunks=64)).compute(),
                               serial_regressor.predict(X_reg))


def test_dask_dataframe_is_predicted_blockwise():
    import dask.dataframe as dd

    frame = pd.DataFrame(X_clf, columns=[f"f{i}" for i in range(X_clf.shape[1])])
    clf = RepeatedClassifier(LogisticRegression(), n_repeats=2, random_state=0).fit(frame, y_clf)
    lazy_frame = dd.from_pandas(frame, npartitions=3)
    np.testing.assert_array_equal(np.asarray(clf.predict(lazy_frame).compute()),
                                  clf.predict(frame))
    np.testing.assert_allclose(np.asarray(clf.predict_proba(lazy_frame).compute()),
                               clf.predict_proba(frame))


def test_progress_bar_counts_the_repeats(capsys):
    RepeatedRegressor(Ridge(), n_repeats=3, random_state=0, verbose=1).fit(X_reg, y_reg)
    captured = capsys.readouterr()
    assert "3/3" in captured.err
    assert captured.out == ""


def test_a_failing_member_fails_fit():
    with pytest.raises(ArithmeticError, match="cannot fit"):
        RepeatedClassifier(FailingClassifier(), n_repeats=2).fit(X_clf, y_clf)


# --- repeat_scores -------------------------------------------------------------------------

def test_repeat_scores_one_row_per_repeat(serial_classifier):
    scores = serial_classifier.repeat_scores(X_clf, y_clf, scoring="accuracy")
    assert list(scores.columns) == ["repeat", "seed", "score"]
    assert list(scores["repeat"]) == [0, 1, 2, 3]
    assert list(scores["seed"]) == serial_classifier.seeds_
    expected = [accuracy_score(y_clf, m.predict(X_clf)) for m in serial_classifier.estimators_]
    np.testing.assert_allclose(scores["score"], expected)
    default = serial_classifier.repeat_scores(X_clf, y_clf)
    np.testing.assert_allclose(default["score"], expected)


def test_repeat_scores_several_metrics(serial_classifier):
    scores = serial_classifier.repeat_scores(X_clf, y_clf, scoring=["accuracy", "neg_log_loss"])
    assert list(scores.columns) == ["repeat", "seed", "accuracy", "neg_log_loss"]
    expected = [-log_loss(y_clf, m.predict_proba(X_clf)) for m in serial_classifier.estimators_]
    np.testing.assert_allclose(scores["neg_log_loss"], expected)


# --- bad input: every error comes before any work is sent ---------------------------------

X_nan = X_clf.copy()
X_nan[0, 0] = np.nan


@pytest.mark.parametrize(
    "Estimator, params, X, y, err, match",
    [
        (RepeatedClassifier, {"n_repeats": 0}, X_clf, y_clf, ValueError,
         r"The 'n_repeats' parameter of RepeatedClassifier must be an int in the range \[1, inf\)"),
        (RepeatedRegressor, {"n_repeats": 2.5}, X_reg, y_reg, ValueError, "'n_repeats' parameter"),
        (RepeatedClassifier, {"voting": "average"}, X_clf, y_clf, ValueError,
         r"The 'voting' parameter of RepeatedClassifier must be a str among \{'soft', 'hard'\}"),
        (RepeatedClassifier, {"estimator": "LogisticRegression"}, X_clf, y_clf, TypeError,
         "The 'estimator' parameter of RepeatedClassifier must be an estimator instance "
         "implementing 'fit'"),
        (RepeatedClassifier, {"estimator": LogisticRegression}, X_clf, y_clf, TypeError,
         r"The 'estimator' parameter of RepeatedClassifier must be an estimator instance.*"
         r"not the class LogisticRegression\). Got <class"),
        (RepeatedRegressor, {"estimator": Ridge}, X_reg, y_reg, TypeError,
         "The 'estimator' parameter of RepeatedRegressor must be an estimator instance"),
        (RepeatedRegressor, {"estimator": LogisticRegression()}, X_clf, y_clf, ValueError,
         r"The 'estimator' parameter of RepeatedRegressor must be a regressor. Got "
         r"LogisticRegression\(\), a classifier; use RepeatedClassifier"),
        (RepeatedClassifier, {"estimator": Ridge()}, X_clf, y_clf, ValueError,
         r"The 'estimator' parameter of RepeatedClassifier must be a classifier. Got "
         r"Ridge\(\), a regressor; use RepeatedRegressor"),
        (RepeatedRegressor, {"estimator": object()}, X_reg, y_reg, TypeError,
         "'estimator' parameter of RepeatedRegressor"),
        (RepeatedClassifier, {"random_state": "zero"}, X_clf, y_clf, ValueError,
         "'random_state' parameter"),
        (RepeatedClassifier, {"n_jobs": 0}, X_clf, y_clf, ValueError, "'n_jobs' parameter"),
        (RepeatedClassifier, {}, X_clf, y_clf[:-1], ValueError, "inconsistent numbers of samples"),
        (RepeatedRegressor, {}, X_reg[:10], y_reg, ValueError, "inconsistent numbers of samples"),
        (RepeatedClassifier, {}, X_nan, y_clf, ValueError, "Input X contains NaN"),
        (RepeatedClassifier, {"estimator": LinearSVC()}, X_clf, y_clf, ValueError,
         "The 'voting' parameter of RepeatedClassifier is 'soft'.*LinearSVC has no predict_proba"),
        (RepeatedClassifier, {}, X_clf, y_clf + 0.5, ValueError, "Unknown label type"),
    ],
)
def test_bad_input_is_rejected_before_any_work(monkeypatch, Estimator, params, X, y, err, match):
    def no_work(self):
        raise AssertionError("work was sent before the input was checked")

    monkeypatch.setattr(_repeated._BaseRepeated, "_execution_backend", no_work)
    default = LogisticRegression() if Estimator is RepeatedClassifier else Ridge()
    estimator = Estimator(**{"estimator": default, **params})
    with pytest.raises(err, match=match):
        estimator.fit(X, y)


def test_hard_voting_accepts_a_member_without_predict_proba():
    clf = RepeatedClassifier(LinearSVC(), n_repeats=2, voting="hard", random_state=0)
    assert clf.fit(X_clf, y_clf).predict(X_clf).shape == y_clf.shape


def test_clone_keeps_the_parameters():
    clf = RepeatedClassifier(LogisticRegression(C=2.0), n_repeats=7, voting="hard", random_state=4)
    params = clone(clf).get_params()
    assert params["n_repeats"] == 7 and params["voting"] == "hard" and params["estimator__C"] == 2.0


# --- scikit-learn's estimator checks -------------------------------------------------------

@parametrize_with_checks([
    RepeatedClassifier(LogisticRegression(), n_repeats=2),
    RepeatedClassifier(DecisionTreeClassifier(), n_repeats=2, voting="hard"),
    RepeatedRegressor(Ridge(), n_repeats=2),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --- sample weights and unusual estimators ------------------------------------------------

class ReturnsNothing(DecisionTreeClassifier):
    """A classifier whose fit returns None (against scikit-learn's convention)."""

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)


def test_sample_weight_reaches_every_member(backend):
    weights = np.random.default_rng(0).uniform(0.1, 3.0, len(y_clf))
    ours = RepeatedClassifier(DecisionTreeClassifier(max_depth=3), n_repeats=3, random_state=0,
                              **backend).fit(X_clf, y_clf, sample_weight=weights)
    for seed, member in zip(ours.seeds_, ours.estimators_):
        alone = set_random_states(DecisionTreeClassifier(max_depth=3), seed)
        alone.fit(X_clf, y_clf, sample_weight=weights)
        np.testing.assert_array_equal(member.tree_.value, alone.tree_.value)
    odd = RepeatedClassifier(ReturnsNothing(max_depth=2), n_repeats=2, random_state=0,
                             **backend).fit(X_clf, y_clf)
    assert all(isinstance(member, ReturnsNothing) for member in odd.estimators_)


@pytest.mark.parametrize("Estimator, estimator, weights, err, match", [
    (RepeatedClassifier, LinearSVC(), np.ones(len(y_clf)), ValueError, "'voting' parameter"),
    (RepeatedRegressor, make_pipeline(StandardScaler(), Ridge()), np.ones(len(y_reg)), TypeError,
     r"The estimator of RepeatedRegressor \(Pipeline\) does not support sample weights"),
    (RepeatedRegressor, Ridge(), np.ones(3), ValueError,
     r"'sample_weight' given to RepeatedRegressor.fit must have one value per sample \(150\)"),
    (RepeatedRegressor, Ridge(), np.full(len(y_reg), np.nan), ValueError,
     "'sample_weight' given to RepeatedRegressor.fit contains NaN"),
])
def test_bad_sample_weight_is_refused_before_any_work(monkeypatch, Estimator, estimator, weights,
                                                      err, match):
    def no_work(self):
        raise AssertionError("work was sent before the input was checked")

    monkeypatch.setattr(_repeated._BaseRepeated, "_execution_backend", no_work)
    X, y = (X_clf, y_clf) if Estimator is RepeatedClassifier else (X_reg, y_reg)
    with pytest.raises(err, match=match):
        Estimator(estimator, n_repeats=2).fit(X, y, sample_weight=weights)
