"""StackingEnsemble: parity with scikit-learn's stacking and voting, on every backend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _recording import RecordingBackend
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.ensemble import (StackingClassifier, StackingRegressor, VotingClassifier,
                              VotingRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from dasktrain import RepeatedClassifier, RepeatedRegressor, StackingEnsemble
from dasktrain.utils import InvalidParameterError

TOL = 1e-10


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Two cores are shared by many processes: BLAS threads would only fight each other."""
    with threadpool_limits(1):
        yield


def tree(depth=3, seed=0):
    return DecisionTreeClassifier(max_depth=depth, random_state=seed)


def classifiers():
    return [("tree", tree()), ("nb", GaussianNB()), ("svm", LinearSVC(random_state=0))]


def regressors():
    return [("tree", DecisionTreeRegressor(max_depth=3, random_state=0)), ("ridge", Ridge())]


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def binary():
    return make_classification(n_samples=120, n_features=6, random_state=0)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X[:200], y[:200]


@pytest.fixture
def record(monkeypatch):
    """The log of backend calls made by StackingEnsemble fits in this test."""
    log = []
    original = StackingEnsemble._execution_backend
    monkeypatch.setattr(StackingEnsemble, "_execution_backend",
                        lambda self: RecordingBackend(original(self), log))
    return log


# ----------------------------------------------------------------- parity with scikit-learn


@pytest.mark.parametrize("data, params", [
    ("iris", {"cv": KFold(4, shuffle=True, random_state=0)}),
    ("binary", {"cv": StratifiedKFold(3), "passthrough": True}),
])
def test_classifier_parity_with_sklearn(backend, data, params, request):
    X, y = request.getfixturevalue(data)
    ours = StackingEnsemble(classifiers(), LogisticRegression(C=0.5), **params, **backend)
    ours.fit(X, y)
    theirs = StackingClassifier(classifiers(), LogisticRegression(C=0.5), **params).fit(X, y)
    assert ours.stack_method_ == theirs.stack_method_
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X),
                               rtol=0, atol=TOL)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert list(ours.named_estimators_) == list(theirs.named_estimators_)


def test_regressor_parity_with_sklearn(backend, diabetes):
    X, y = diabetes
    cv = KFold(5, shuffle=True, random_state=3)
    ours = StackingEnsemble(regressors(), cv=cv, passthrough=True, **backend).fit(X, y)
    theirs = StackingRegressor(regressors(), cv=cv, passthrough=True).fit(X, y)
    assert ours.stack_method_ == ["predict", "predict"]
    assert type(ours.final_estimator_).__name__ == "RidgeCV"
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=0, atol=TOL)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=TOL)


def test_default_cv_matches_sklearn_default_folds(iris):
    """cv=5 means StratifiedKFold(5) for classifiers, as scikit-learn's cv=None."""
    X, y = iris
    ours = StackingEnsemble(classifiers()[:2]).fit(X, y)
    theirs = StackingClassifier(classifiers()[:2]).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=TOL)


@pytest.mark.parametrize("stack_method", ["predict_proba", "decision_function", "predict"])
def test_explicit_stack_method_matches_sklearn(binary, stack_method):
    X, y = binary
    estimators = [("logistic", LogisticRegression()), ("tree", tree())] if (
        stack_method != "decision_function") else [("logistic", LogisticRegression())]
    ours = StackingEnsemble(estimators, stack_method=stack_method, cv=3).fit(X, y)
    theirs = StackingClassifier(estimators, stack_method=stack_method, cv=3).fit(X, y)
    assert ours.stack_method_ == theirs.stack_method_
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=TOL)


def test_string_labels_and_pandas_features(iris):
    X, y = iris
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    ours = StackingEnsemble(classifiers()[:2], cv=3).fit(frame, labels)
    theirs = StackingClassifier(classifiers()[:2], cv=3).fit(frame, labels)
    np.testing.assert_array_equal(ours.predict(frame), theirs.predict(frame))
    np.testing.assert_array_equal(ours.classes_, ["setosa", "versicolor", "virginica"])
    np.testing.assert_array_equal(ours.feature_names_in_, ["sl", "sw", "pl", "pw"])
    assert [name.split("_", 1)[1] for name in ours.get_feature_names_out()] == [
        name.split("_", 1)[1] for name in theirs.get_feature_names_out()]


def test_missing_class_in_a_fold_is_filled_as_sklearn_does():
    X, y = make_classification(n_samples=60, n_classes=3, n_informative=4, random_state=0)
    y[:2] = 3  # a rare class that some training folds lack
    cv = KFold(3)  # not stratified: the fold without the rare rows lacks class 3
    estimators = [("nb", GaussianNB()), ("tree", tree())]
    with pytest.warns(RuntimeWarning, match="Number of classes in training fold"):
        ours = StackingEnsemble(estimators, cv=cv).fit(X, y)
    with pytest.warns(RuntimeWarning):
        theirs = StackingClassifier(estimators, cv=cv).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=TOL)


def test_dropped_estimator(iris):
    X, y = iris
    estimators = [("tree", tree()), ("gone", "drop"), ("nb", GaussianNB())]
    ours = StackingEnsemble(estimators, cv=3).fit(X, y)
    theirs = StackingClassifier(estimators, cv=3).fit(X, y)
    assert ours.named_estimators_["gone"] == "drop"
    assert len(ours.estimators_) == 2
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=TOL)


# ----------------------------------------------------------------- voting


@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_voting_matches_sklearn_voting_classifier(iris, voting):
    X, y = iris
    estimators = [("tree", tree(2)), ("nb", GaussianNB()), ("tree5", tree(5, seed=1))]
    ours = StackingEnsemble(estimators, combine="voting", voting=voting).fit(X, y)
    theirs = VotingClassifier(estimators, voting=voting).fit(X, y)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert not hasattr(ours, "final_estimator_")
    if voting == "soft":
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0,
                                   atol=TOL)
    else:
        assert not hasattr(ours, "predict_proba")
    assert not hasattr(ours, "transform")


def test_voting_regression_averages_like_sklearn(diabetes):
    X, y = diabetes
    ours = StackingEnsemble(regressors(), combine="voting").fit(X, y)
    theirs = VotingRegressor(regressors()).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=0, atol=TOL)


# ----------------------------------------------------------------- tasks and seeds


def test_every_fit_is_its_own_task_all_submitted_before_waiting(record, iris):
    X, y = iris
    StackingEnsemble(classifiers(), cv=4).fit(X, y)
    assert [entry for entry in record if entry[0] == "scatter"] == [
        ("scatter", "ndarray"), ("scatter", "ndarray")]
    submits = [name for kind, name in record if kind == "submit"]
    assert submits.count("fit_fold_and_predict") == 3 * 4
    assert submits.count("fit_clone") == 3
    assert submits.count("fit_final_estimator") == 1
    # the results are waited for (each fetched as its task ends) only once all is submitted
    first_wait = next(i for i, (kind, _) in enumerate(record)
                      if kind in ("gather", "as_completed"))
    assert record[first_wait] == ("as_completed", 3 + 1)
    assert all(kind != "submit" for kind, _ in record[first_wait:])


def test_random_state_seeds_an_unseeded_shuffling_cv(backend, iris):
    X, y = iris
    cv = KFold(3, shuffle=True)
    reference = StackingEnsemble(classifiers()[:2], cv=cv, random_state=7).fit(X, y)
    again = StackingEnsemble(classifiers()[:2], cv=cv, random_state=7, **backend).fit(X, y)
    other = StackingEnsemble(classifiers()[:2], cv=cv, random_state=8).fit(X, y)
    assert cv.random_state is None  # the user's splitter is left alone
    np.testing.assert_array_equal(again.predict_proba(X), reference.predict_proba(X))
    assert not np.array_equal(other.predict_proba(X), reference.predict_proba(X))


# ----------------------------------------------------------------- Repeated members


def test_repeated_estimator_contributes_each_member(iris):
    X, y = iris
    rep = RepeatedClassifier(tree(2, seed=None), n_repeats=3, random_state=0)
    stack = StackingEnsemble([("rep", rep), ("nb", GaussianNB())], cv=3).fit(X, y)
    assert list(stack.named_estimators_) == ["rep_0", "rep_1", "rep_2", "nb"]
    members = rep.fit(X, y).estimators_
    expected = [(f"rep_{i}", clone(member)) for i, member in enumerate(members)]
    theirs = StackingClassifier([*expected, ("nb", GaussianNB())], cv=3).fit(X, y)
    np.testing.assert_allclose(stack.predict_proba(X), theirs.predict_proba(X), rtol=0,
                               atol=TOL)


@pytest.mark.parametrize("fitted", [False, True])
def test_from_repeated_stacks_the_members(iris, fitted):
    X, y = iris
    rep = RepeatedClassifier(DecisionTreeClassifier(max_depth=2, max_features=2), n_repeats=3,
                             random_state=0)
    if fitted:
        rep.fit(X, y)
    stack = StackingEnsemble.from_repeated(rep, LogisticRegression(C=2.0), cv=3)
    assert [name for name, _ in stack.estimators] == ["repeat_0", "repeat_1", "repeat_2"]
    stack.fit(X, y)
    members = RepeatedClassifier(**rep.get_params(deep=False)).fit(X, y).estimators_
    for ours, theirs in zip(stack.estimators_, members):
        assert ours.get_params() == theirs.get_params()
        np.testing.assert_array_equal(ours.predict_proba(X), theirs.predict_proba(X))
    reference = StackingClassifier([(f"repeat_{i}", clone(m)) for i, m in enumerate(members)],
                                   LogisticRegression(C=2.0), cv=3).fit(X, y)
    np.testing.assert_allclose(stack.predict_proba(X), reference.predict_proba(X), rtol=0,
                               atol=TOL)


def test_from_repeated_regressor_with_voting(diabetes):
    X, y = diabetes
    rep = RepeatedRegressor(DecisionTreeRegressor(max_depth=3, max_features=4), n_repeats=3,
                            random_state=1).fit(X, y)
    voted = StackingEnsemble.from_repeated(rep, combine="voting").fit(X, y)
    np.testing.assert_allclose(voted.predict(X), rep.predict(X), rtol=0, atol=TOL)


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("params, err, match", [
    ({"estimators": []}, ValueError, "non-empty list of \\(str, estimator\\) tuples"),
    ({"estimators": [tree()]}, ValueError, "non-empty list of \\(str, estimator\\) tuples"),
    ({"estimators": [("a", "not an estimator")]}, ValueError, "has a 'fit' method"),
    ({"estimators": ("a", tree())}, InvalidParameterError, "'estimators' parameter"),
    ({"estimators": [("a", tree()), ("a", GaussianNB())]}, ValueError, "not unique"),
    ({"estimators": [("a__b", tree())]}, ValueError,
     "'estimators' parameter of StackingEnsemble has bad names: .*must not contain __"),
    ({"estimators": [("cv", tree())]}, ValueError,
     "'estimators' parameter of StackingEnsemble has bad names: .*conflict with constructor "
     "arguments: \\['cv'\\]"),
    ({"estimators": [("lr", LogisticRegression)]}, TypeError,
     "The estimator 'lr' in the 'estimators' parameter of StackingEnsemble is the class "
     "LogisticRegression, not an instance of it. Pass LogisticRegression\\(\\) instead."),
    ({"final_estimator": LogisticRegression}, InvalidParameterError,
     "The 'final_estimator' parameter of StackingEnsemble must be None or an estimator instance"),
    ({"cv": "prefit"}, NotFittedError, "DecisionTreeClassifier instance is not fitted yet"),
    ({"cv": "prefit", "combine": "voting"}, ValueError,
     "'cv' parameter of StackingEnsemble is 'prefit', which is only used with "
     "combine='stacking'"),
    ({"estimators": [("a", "drop")]}, ValueError, "All estimators of StackingEnsemble are"),
    ({"estimators": [("a", tree()), ("b", Ridge())]}, ValueError,
     "all be classifiers or all be regressors.*'b' \\(Ridge\\) is not"),
    ({"estimators": [("a", Ridge()), ("b", tree())]}, ValueError,
     "the first one is not a classifier but 'b'"),
    ({"final_estimator": Ridge()}, ValueError, "'final_estimator' parameter .* classifier"),
    ({"final_estimator": "lr"}, InvalidParameterError, "'final_estimator' parameter"),
    ({"combine": "voting", "final_estimator": LogisticRegression()}, ValueError,
     "only used with combine='stacking'"),
    ({"combine": "average"}, InvalidParameterError,
     "'combine' parameter of StackingEnsemble must be a str among"),
    ({"voting": "mean"}, InvalidParameterError, "'voting' parameter"),
    ({"estimators": [("svm", LinearSVC())], "combine": "voting"}, ValueError,
     "'voting' parameter of StackingEnsemble is 'soft'.*'svm' \\(LinearSVC\\)"),
    ({"estimators": [("svm", LinearSVC())], "stack_method": "predict_proba"}, ValueError,
     "'svm' \\(LinearSVC\\) .* does not implement the method predict_proba"),
    ({"stack_method": "predict_log"}, InvalidParameterError, "'stack_method' parameter"),
    ({"cv": 1}, InvalidParameterError, "'cv' parameter"),
    ({"cv": ShuffleSplit(3, test_size=0.2, random_state=0)}, ValueError,
     "partition the samples"),
    ({"passthrough": "yes"}, InvalidParameterError, "'passthrough' parameter"),
    ({"random_state": -1}, InvalidParameterError, "'random_state' parameter"),
    ({"n_jobs": 0}, InvalidParameterError, "'n_jobs' parameter"),
])
def test_bad_parameters_fail_before_any_work(record, iris, params, err, match):
    X, y = iris
    params = {"estimators": [("tree", tree()), ("nb", GaussianNB())], **params}
    with pytest.raises(err, match=match):
        StackingEnsemble(**params).fit(X, y)
    assert not [entry for entry in record if entry[0] == "submit"]


@pytest.mark.parametrize("X, y, err, match", [
    (np.zeros((10, 2)), None, ValueError, "requires y to be passed"),
    (np.zeros((10, 2)), np.arange(9), ValueError, "inconsistent numbers of samples"),
    (np.full((10, 2), np.nan), np.arange(10) % 2, ValueError, "NaN"),
    (np.zeros((10, 2)), np.linspace(0, 1, 10), ValueError, "Unknown label type"),
])
def test_bad_data_fails_before_any_work(record, X, y, err, match):
    with pytest.raises(err, match=match):
        # trees accept NaN but GaussianNB does not: one base estimator that refuses is enough
        StackingEnsemble([("tree", tree()), ("nb", GaussianNB())], cv=2).fit(X, y)
    assert not [entry for entry in record if entry[0] == "submit"]


def test_dask_training_data_is_refused_clearly(record, iris):
    import dask.array as da

    X, y = iris
    with pytest.raises(TypeError, match="needs X and y in memory .* PartitionedEnsemble"):
        StackingEnsemble([("tree", tree())], cv=2).fit(da.from_array(X), y)
    assert not [entry for entry in record if entry[0] == "submit"]


def test_from_repeated_needs_a_repeated_estimator():
    with pytest.raises(TypeError, match="needs a RepeatedClassifier or RepeatedRegressor"):
        StackingEnsemble.from_repeated(tree())


def test_get_and_set_nested_params():
    stack = StackingEnsemble([("tree", tree()), ("lr", LogisticRegression())], Ridge())
    params = stack.get_params()
    assert params["tree__max_depth"] == 3 and params["final_estimator__alpha"] == 1.0
    stack.set_params(tree__max_depth=5, lr=GaussianNB(), final_estimator__alpha=2.0)
    assert stack.estimators[0][1].max_depth == 5
    assert isinstance(stack.estimators[1][1], GaussianNB)
    assert stack.final_estimator.alpha == 2.0
    assert clone(stack).get_params()["tree__max_depth"] == 5


# ----------------------------------------------------------------- scikit-learn's checks


@parametrize_with_checks([
    StackingEnsemble([("a", tree(3, 0)), ("b", tree(3, 1))], cv=3),
    StackingEnsemble([("a", DecisionTreeRegressor(max_depth=3, random_state=0)),
                      ("b", LinearRegression())], cv=3),
    StackingEnsemble([("a", tree(3, 0)), ("b", tree(2, 1))], combine="voting"),
    StackingEnsemble([("a", tree(3, 0)), ("b", tree(2, 1))], combine="voting", voting="hard"),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ----------------------------------------------------------------- scikit-learn's fit options


class ReturnsNothing(DecisionTreeClassifier):
    """A classifier whose fit returns None (against scikit-learn's convention)."""

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)


def test_sample_weight_reaches_every_fit_as_in_sklearn(backend, iris):
    X, y = iris
    weights = np.random.default_rng(0).uniform(0.1, 2.0, len(y))
    cv = KFold(4, shuffle=True, random_state=1)
    estimators = [("tree", tree()), ("logistic", LogisticRegression(max_iter=1000))]
    ours = StackingEnsemble(estimators, LogisticRegression(C=0.5), cv=cv, **backend)
    ours.fit(X, y, sample_weight=weights)
    theirs = StackingClassifier(estimators, LogisticRegression(C=0.5), cv=cv)
    theirs.fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=TOL)
    unweighted = clone(ours).fit(X, y)
    assert not np.allclose(unweighted.predict_proba(X), ours.predict_proba(X))


def test_prefit_and_fit_returning_none_on_every_backend(backend, iris):
    X, y = iris
    prefitted = [("tree", tree().fit(X[::2], y[::2])), ("nb", GaussianNB().fit(X[::2], y[::2]))]
    ours = StackingEnsemble(prefitted, cv="prefit", **backend).fit(X[1::2], y[1::2])
    theirs = StackingClassifier(prefitted, cv="prefit").fit(X[1::2], y[1::2])
    assert ours.estimators_[0] is prefitted[0][1]
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=TOL)
    odd = StackingEnsemble([("odd", ReturnsNothing(max_depth=2, random_state=0))], cv=3,
                           **backend).fit(X, y)
    assert isinstance(odd.estimators_[0], ReturnsNothing)
    assert odd.predict(X).shape == y.shape


def test_multilabel_stacking_matches_sklearn(backend):
    from sklearn.datasets import make_multilabel_classification
    from sklearn.neighbors import KNeighborsClassifier

    X, Y = make_multilabel_classification(n_samples=80, n_classes=3, random_state=0)
    estimators = [("tree", DecisionTreeClassifier(max_depth=3, random_state=0))]
    ours = StackingEnsemble(estimators, KNeighborsClassifier(), cv=3, **backend).fit(X, Y)
    theirs = StackingClassifier(estimators, KNeighborsClassifier(), cv=3).fit(X, Y)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=0, atol=TOL)


def test_predict_params_go_to_the_final_estimator(diabetes):
    from sklearn.linear_model import BayesianRidge

    X, y = diabetes
    ours = StackingEnsemble(regressors(), BayesianRidge(), cv=3).fit(X, y)
    theirs = StackingRegressor(regressors(), BayesianRidge(), cv=3).fit(X, y)
    mean, std = ours.predict(X, return_std=True)
    np.testing.assert_allclose(mean, theirs.predict(X, return_std=True)[0], rtol=0, atol=TOL)
    np.testing.assert_allclose(std, theirs.predict(X, return_std=True)[1], rtol=0, atol=TOL)
    with pytest.raises(TypeError, match="takes no other argument with a dask X"):
        import dask.array as da

        ours.predict(da.from_array(X, chunks=50), return_std=True)
