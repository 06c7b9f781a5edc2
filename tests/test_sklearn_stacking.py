"""scikit-learn's own stacking tests (sklearn/ensemble/tests/test_stacking.py), run on StackingEnsemble.

Each test keeps the scenario of its scikit-learn original (same data, estimators,
folds and assertions) with StackingEnsemble in place of StackingClassifier /
StackingRegressor and, wherever the folds are deterministic, also asserts that
StackingEnsemble gives scikit-learn's predictions. Where StackingEnsemble
behaves differently on purpose, the test asserts what it does instead and the
difference is listed, with its reason, in docs/user_guide/ensembles.rst
("Differences from scikit-learn's stacking"). scikit-learn's mocks and private
test helpers are replaced by small estimators written here.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_regressor
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_iris, make_classification,
                              make_multilabel_classification, make_regression)
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (RandomForestClassifier, RandomForestRegressor, StackingClassifier,
                              StackingRegressor)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import scale
from sklearn.svm import SVC, LinearSVC, LinearSVR
from sklearn.utils._testing import assert_allclose, assert_allclose_dense_sparse

from dasktrain import StackingEnsemble

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

diabetes = load_diabetes()
X_diabetes, y_diabetes = diabetes.data, diabetes.target
iris = load_iris()
X_iris, y_iris = iris.data, iris.target
X_multilabel, y_multilabel = make_multilabel_classification(n_classes=3, random_state=42)
X_binary, y_binary = make_classification(n_classes=2, random_state=42)

SPARSE_CONTAINERS = [sparse.coo_matrix, sparse.coo_array, sparse.csc_matrix, sparse.csc_array,
                     sparse.csr_matrix, sparse.csr_array]


def assert_same_predictions(ours, theirs, X, methods=("predict", "predict_proba", "transform")):
    for method in methods:
        if hasattr(theirs, method):
            assert_allclose(np.asarray(getattr(ours, method)(X), dtype=float),
                            np.asarray(getattr(theirs, method)(X), dtype=float),
                            rtol=1e-10, atol=1e-10)


def assert_meta_features(stack, X_test, n_columns, passthrough):
    """transform gives `n_columns` columns, ending with X itself with passthrough."""
    X_trans = stack.transform(X_test)
    assert X_trans.shape[1] == n_columns
    if passthrough:
        assert_allclose(X_test, X_trans[:, -X_test.shape[1]:])


@pytest.mark.parametrize("cv", [3, StratifiedKFold(n_splits=3, shuffle=True, random_state=42)])
@pytest.mark.parametrize("final_estimator", [None, RandomForestClassifier(random_state=42)])
@pytest.mark.parametrize("passthrough", [False, True])
def test_stacking_classifier_iris(cv, final_estimator, passthrough):
    X_train, X_test, y_train, y_test = train_test_split(
        scale(X_iris), y_iris, stratify=y_iris, random_state=42)
    estimators = [("lr", LogisticRegression()), ("svc", LinearSVC())]
    clf = StackingEnsemble(estimators=estimators, final_estimator=final_estimator, cv=cv,
                           passthrough=passthrough)
    clf.fit(X_train, y_train)
    clf.predict(X_test)
    clf.predict_proba(X_test)
    assert clf.score(X_test, y_test) > 0.8
    theirs = StackingClassifier(estimators, final_estimator=final_estimator, cv=cv,
                                passthrough=passthrough).fit(X_train, y_train)
    assert_same_predictions(clf, theirs, X_test)

    assert_meta_features(clf, X_test, 10 if passthrough else 6, passthrough)

    clf.set_params(lr="drop")
    clf.fit(X_train, y_train)
    clf.predict(X_test)
    clf.predict_proba(X_test)
    if final_estimator is None:
        clf.decision_function(X_test)
    assert_meta_features(clf, X_test, 7 if passthrough else 3, passthrough)


def test_stacking_classifier_drop_column_binary_classification():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(scale(X), y, stratify=y, random_state=42)
    estimators = [("lr", LogisticRegression()),
                  ("rf", RandomForestClassifier(n_estimators=10, random_state=42))]
    clf = StackingEnsemble(estimators=estimators, cv=3)
    clf.fit(X_train, y_train)
    assert clf.transform(X_test).shape[1] == 2
    assert_same_predictions(clf, StackingClassifier(estimators, cv=3).fit(X_train, y_train),
                            X_test)

    clf.set_params(estimators=[("lr", LogisticRegression()), ("svc", LinearSVC())])
    clf.fit(X_train, y_train)
    assert clf.transform(X_test).shape[1] == 2


def test_stacking_classifier_drop_estimator():
    X_train, X_test, y_train, _ = train_test_split(
        scale(X_iris), y_iris, stratify=y_iris, random_state=42)
    estimators = [("lr", "drop"), ("svc", LinearSVC(random_state=0))]
    rf = RandomForestClassifier(n_estimators=10, random_state=42)
    clf = StackingEnsemble(estimators=[("svc", LinearSVC(random_state=0))], final_estimator=rf,
                           cv=5)
    clf_drop = StackingEnsemble(estimators=estimators, final_estimator=rf, cv=5)
    clf.fit(X_train, y_train)
    clf_drop.fit(X_train, y_train)
    assert_allclose(clf.predict(X_test), clf_drop.predict(X_test))
    assert_allclose(clf.predict_proba(X_test), clf_drop.predict_proba(X_test))
    assert_allclose(clf.transform(X_test), clf_drop.transform(X_test))


def test_stacking_regressor_drop_estimator():
    X_train, X_test, y_train, _ = train_test_split(scale(X_diabetes), y_diabetes,
                                                   random_state=42)
    estimators = [("lr", "drop"), ("ridge", Ridge(alpha=1.0))]
    rf = RandomForestRegressor(n_estimators=10, random_state=42)
    reg = StackingEnsemble(estimators=[("ridge", Ridge(alpha=1.0))], final_estimator=rf, cv=5)
    reg_drop = StackingEnsemble(estimators=estimators, final_estimator=rf, cv=5)
    reg.fit(X_train, y_train)
    reg_drop.fit(X_train, y_train)
    assert_allclose(reg.predict(X_test), reg_drop.predict(X_test))
    assert_allclose(reg.transform(X_test), reg_drop.transform(X_test))


@pytest.mark.parametrize("cv", [3, KFold(n_splits=3, shuffle=True, random_state=42)])
@pytest.mark.parametrize("final_estimator, predict_params", [
    (None, {}),
    (RandomForestRegressor(n_estimators=20, random_state=42), {}),
    (DummyRegressor(), {"return_std": True}),
])
@pytest.mark.parametrize("passthrough", [False, True])
def test_stacking_regressor_diabetes(cv, final_estimator, predict_params, passthrough):
    X_train, X_test, y_train, _ = train_test_split(scale(X_diabetes), y_diabetes,
                                                   random_state=42)
    estimators = [("lr", LinearRegression()), ("svr", LinearSVR())]
    reg = StackingEnsemble(estimators=estimators, final_estimator=final_estimator, cv=cv,
                           passthrough=passthrough)
    reg.fit(X_train, y_train)
    result = reg.predict(X_test, **predict_params)
    if predict_params:
        assert len(result) == 2
    if predict_params:  # the same (mean, std) as scikit-learn's; LinearSVR() is unseeded,
        # so only a final estimator that ignores its inputs can be compared exactly
        theirs = StackingRegressor(estimators, final_estimator=final_estimator, cv=cv,
                                   passthrough=passthrough).fit(X_train, y_train)
        assert_allclose(np.asarray(result), np.asarray(theirs.predict(X_test, **predict_params)),
                        rtol=1e-10, atol=1e-10)

    assert_meta_features(reg, X_test, 12 if passthrough else 2, passthrough)

    reg.set_params(lr="drop")
    reg.fit(X_train, y_train)
    reg.predict(X_test)
    assert_meta_features(reg, X_test, 11 if passthrough else 1, passthrough)


#: scikit-learn's test_stacking_{regressor,classifier}_sparse_passthrough, one table
SPARSE_CASES = {
    "regressor": (X_diabetes, y_diabetes, [("lr", LinearRegression()), ("svr", LinearSVR())],
                  RandomForestRegressor(n_estimators=10, random_state=42)),
    "classifier": (X_iris, y_iris, [("lr", LogisticRegression()), ("svc", LinearSVC())],
                   RandomForestClassifier(n_estimators=10, random_state=42)),
}


@pytest.mark.parametrize("case", sorted(SPARSE_CASES))
@pytest.mark.parametrize("sparse_container", SPARSE_CONTAINERS)
def test_stacking_sparse_passthrough(case, sparse_container):
    X, y, estimators, final_estimator = SPARSE_CASES[case]
    X_train, X_test, y_train, _ = train_test_split(sparse_container(scale(X)), y,
                                                   random_state=42)
    clf = StackingEnsemble(estimators=estimators, final_estimator=final_estimator, cv=5,
                           passthrough=True)
    clf.fit(X_train, y_train)
    X_trans = clf.transform(X_test)
    assert_allclose_dense_sparse(X_test, X_trans[:, -X.shape[1]:])
    assert sparse.issparse(X_trans)
    assert X_test.format == X_trans.format


def test_stacking_classifier_drop_binary_prob():
    X_, y_ = scale(X_iris[:100]), y_iris[:100]
    estimators = [("lr", LogisticRegression()), ("rf", RandomForestClassifier(n_estimators=10))]
    clf = StackingEnsemble(estimators=estimators)
    clf.fit(X_, y_)
    assert clf.transform(X_).shape[1] == 2


class NoWeightRegressor(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        self.reg = DummyRegressor()
        return self.reg.fit(X, y)

    def predict(self, X):
        return np.ones(X.shape[0])


class NoWeightClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.clf = DummyClassifier(strategy="stratified")
        return self.clf.fit(X, y)


#: scikit-learn's test_stacking_classifier_error and test_stacking_regressor_error, one table
STACKING_ERRORS = [
    # scikit-learn: "Invalid 'estimators' attribute,"; the message names the parameter
    ("iris", {"estimators": []}, ValueError,
     "The 'estimators' parameter of StackingEnsemble must be a non-empty list"),
    ("iris", {"estimators": [("lr", LogisticRegression()), ("svm", SVC(max_iter=50_000))],
              "stack_method": "predict_proba"},
     ValueError, "does not implement the method predict_proba"),
    ("iris", {"estimators": [("lr", LogisticRegression()), ("cor", NoWeightClassifier())]},
     TypeError, "does not support sample weight"),
    ("iris", {"estimators": [("lr", LogisticRegression()), ("cor", LinearSVC(max_iter=50_000))],
              "final_estimator": NoWeightClassifier()},
     TypeError, "does not support sample weight"),
    ("diabetes", {"estimators": []}, ValueError,
     "The 'estimators' parameter of StackingEnsemble must be a non-empty list"),
    ("diabetes", {"estimators": [("lr", LinearRegression()), ("cor", NoWeightRegressor())]},
     TypeError, "does not support sample weight"),
    ("diabetes", {"estimators": [("lr", LinearRegression()), ("cor", LinearSVR())],
                  "final_estimator": NoWeightRegressor()},
     TypeError, "does not support sample weight"),
]


@pytest.mark.parametrize("data, params, type_err, msg_err", STACKING_ERRORS)
def test_stacking_error(data, params, type_err, msg_err):
    X, y = (X_iris, y_iris) if data == "iris" else (X_diabetes, y_diabetes)
    with pytest.raises(type_err, match=msg_err):
        StackingEnsemble(**params, cv=3).fit(scale(X), y, sample_weight=np.ones(X.shape[0]))


@pytest.mark.parametrize("estimator, X, y", [
    (StackingEnsemble(estimators=[("first", LogisticRegression(random_state=0)),
                                  ("second", LinearSVC(random_state=0))]),
     X_iris[:100], y_iris[:100]),
    (StackingEnsemble(estimators=[("first", Ridge(alpha=1.0)), ("second", Ridge(alpha=1e-6))]),
     X_diabetes, y_diabetes),
], ids=["StackingClassifier", "StackingRegressor"])
def test_stacking_randomness(estimator, X, y):
    estimator_full = clone(estimator)
    estimator_full.set_params(cv=KFold(shuffle=True, random_state=np.random.RandomState(0)))
    estimator_drop = clone(estimator)
    estimator_drop.set_params(first="drop")
    estimator_drop.set_params(cv=KFold(shuffle=True, random_state=np.random.RandomState(0)))
    assert_allclose(estimator_full.fit(X, y).transform(X)[:, 1:],
                    estimator_drop.fit(X, y).transform(X))


def test_stacking_classifier_stratify_default():
    clf = StackingEnsemble(estimators=[("lr", LogisticRegression(max_iter=10_000)),
                                       ("svm", LinearSVC(max_iter=10_000))])
    clf.fit(X_iris, y_iris)  # iris is sorted: unstratified folds would miss classes


@pytest.mark.parametrize("stacker, X, y", [
    (StackingEnsemble(estimators=[("lr", LogisticRegression()),
                                  ("svm", LinearSVC(random_state=42))],
                      final_estimator=LogisticRegression(),
                      cv=KFold(shuffle=True, random_state=42)),
     *load_breast_cancer(return_X_y=True)),
    (StackingEnsemble(estimators=[("first", Ridge(alpha=1.0)), ("second", Ridge(alpha=1e-6))],
                      final_estimator=LinearRegression(),
                      cv=KFold(shuffle=True, random_state=42)),
     X_diabetes, y_diabetes),
], ids=["StackingClassifier", "StackingRegressor"])
def test_stacking_with_sample_weight(stacker, X, y):
    n_half_samples = len(y) // 2
    total_sample_weight = np.array([0.1] * n_half_samples + [0.9] * (len(y) - n_half_samples))
    X_train, X_test, y_train, _, sample_weight_train, _ = train_test_split(
        X, y, total_sample_weight, random_state=42)
    stacker = clone(stacker)
    stacker.fit(X_train, y_train)
    y_pred_no_weight = stacker.predict(X_test)
    stacker.fit(X_train, y_train, sample_weight=np.ones(y_train.shape))
    y_pred_unit_weight = stacker.predict(X_test)
    assert_allclose(y_pred_no_weight, y_pred_unit_weight)
    stacker.fit(X_train, y_train, sample_weight=sample_weight_train)
    y_pred_biased = stacker.predict(X_test)
    assert np.abs(y_pred_no_weight - y_pred_biased).sum() > 0
    # the same weighted model as scikit-learn's
    Theirs = StackingRegressor if is_regressor(stacker) else StackingClassifier
    theirs = Theirs(stacker.estimators, final_estimator=stacker.final_estimator, cv=stacker.cv)
    theirs.fit(X_train, y_train, sample_weight=sample_weight_train)
    assert_allclose(y_pred_biased, theirs.predict(X_test))


class WeightCheckingClassifier(ClassifierMixin, BaseEstimator):
    """Fails unless fit is given sample_weight (scikit-learn uses its CheckingClassifier)."""

    def fit(self, X, y, sample_weight=None):
        assert sample_weight is not None, "fit was not given sample_weight"
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])

    def predict_proba(self, X):
        proba = np.zeros((len(X), len(self.classes_)))
        proba[:, 0] = 1.0
        return proba


def test_stacking_classifier_sample_weight_fit_param():
    stacker = StackingEnsemble(estimators=[("lr", WeightCheckingClassifier())],
                               final_estimator=WeightCheckingClassifier())
    stacker.fit(X_iris, y_iris, sample_weight=np.ones(X_iris.shape[0]))


@pytest.mark.parametrize("stacker, X, y", [
    (StackingEnsemble(estimators=[("lr", LogisticRegression()),
                                  ("svm", LinearSVC(random_state=42))],
                      final_estimator=LogisticRegression()),
     *load_breast_cancer(return_X_y=True)),
    (StackingEnsemble(estimators=[("ridge1", Ridge(alpha=1.0)), ("ridge2", Ridge(alpha=1e-6))],
                      final_estimator=LinearRegression()),
     X_diabetes, y_diabetes),
], ids=["StackingClassifier", "StackingRegressor"])
def test_stacking_cv_influence(stacker, X, y):
    stacker_cv_3 = clone(stacker).set_params(cv=3)
    stacker_cv_5 = clone(stacker).set_params(cv=5)
    stacker_cv_3.fit(X, y)
    stacker_cv_5.fit(X, y)
    for est_cv_3, est_cv_5 in zip(stacker_cv_3.estimators_, stacker_cv_5.estimators_):
        assert_allclose(est_cv_3.coef_, est_cv_5.coef_)
    with pytest.raises(AssertionError, match="Not equal"):
        assert_allclose(stacker_cv_3.final_estimator_.coef_,
                        stacker_cv_5.final_estimator_.coef_)


def _counting(Estimator):
    """An estimator that counts its fits (scikit-learn's test mocks fit instead)."""

    class Counting(Estimator):
        def fit(self, X, y):
            self.n_fits_ = getattr(self, "n_fits_", 0) + 1
            return super().fit(X, y)

    return Counting


@pytest.mark.parametrize("Estimator, stack_method, final_estimator, X, y", [
    (DummyClassifier, "predict_proba", LogisticRegression(random_state=42), X_iris, y_iris),
    (DummyRegressor, "predict", LinearRegression(), X_diabetes, y_diabetes),
])
def test_stacking_prefit(Estimator, stack_method, final_estimator, X, y):
    X_train1, X_train2, y_train1, y_train2 = train_test_split(X, y, random_state=42,
                                                              test_size=0.5)
    Counting = _counting(Estimator)
    estimators = [("d0", Counting().fit(X_train1, y_train1)),
                  ("d1", Counting().fit(X_train1, y_train1))]
    stacker = StackingEnsemble(estimators=estimators, cv="prefit",
                               final_estimator=final_estimator)
    stacker.fit(X_train2, y_train2)
    assert stacker.estimators_ == [estimator for _, estimator in estimators]
    assert all(estimator.n_fits_ == 1 for estimator in stacker.estimators_)  # not refitted
    # the final estimator learnt from the stack method's outputs on X_train2
    theirs = StackingRegressor if is_regressor(stacker) else StackingClassifier
    expected = theirs(estimators=estimators, cv="prefit", final_estimator=final_estimator)
    expected.fit(X_train2, y_train2)
    assert_allclose(stacker.final_estimator_.coef_, expected.final_estimator_.coef_)
    assert_allclose(stacker.transform(X_train2), expected.transform(X_train2))


@pytest.mark.parametrize("stacker, X, y", [
    (StackingEnsemble(estimators=[("lr", LogisticRegression()), ("svm", SVC())], cv="prefit"),
     X_iris, y_iris),
    (StackingEnsemble(estimators=[("lr", LinearRegression()), ("svm", LinearSVR())],
                      cv="prefit"),
     X_diabetes, y_diabetes),
])
def test_stacking_prefit_error(stacker, X, y):
    with pytest.raises(NotFittedError):
        stacker.fit(X, y)


@pytest.mark.parametrize("make_dataset, Estimator", [
    (make_classification, LogisticRegression),
    (make_regression, LinearRegression),
])
def test_stacking_without_n_features_in(make_dataset, Estimator):
    # Difference: StackingEnsemble validates X itself and always sets n_features_in_,
    # where scikit-learn takes it from its first base estimator (an AttributeError here).
    class MyEstimator(Estimator):
        def fit(self, X, y):
            super().fit(X, y)
            del self.n_features_in_

    X, y = make_dataset(random_state=0, n_samples=100)
    stacker = StackingEnsemble(estimators=[("lr", MyEstimator())])
    with pytest.raises(AttributeError, match="n_features_in_"):
        stacker.n_features_in_
    stacker.fit(X, y)  # does not raise
    assert stacker.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("estimator", [
    MLPClassifier(random_state=42, max_iter=50),
    RandomForestClassifier(random_state=42),
], ids=["MLPClassifier", "RandomForestClassifier"])
def test_stacking_classifier_multilabel_predict_proba(estimator):
    X_train, X_test, y_train, y_test = train_test_split(
        X_multilabel, y_multilabel, stratify=y_multilabel, random_state=42)
    stacker = StackingEnsemble(estimators=[("est", estimator)],
                               final_estimator=KNeighborsClassifier(),
                               stack_method="predict_proba").fit(X_train, y_train)
    X_trans = stacker.transform(X_test)
    assert X_trans.shape == (X_test.shape[0], 3)
    assert not any(np.isclose(X_trans.sum(axis=1), 1.0))
    assert stacker.predict(X_test).shape == y_test.shape
    theirs = StackingClassifier([("est", estimator)], final_estimator=KNeighborsClassifier(),
                                stack_method="predict_proba").fit(X_train, y_train)
    assert_same_predictions(stacker, theirs, X_test)


def test_stacking_classifier_multilabel_decision_function():
    X_train, X_test, y_train, y_test = train_test_split(
        X_multilabel, y_multilabel, stratify=y_multilabel, random_state=42)
    stacker = StackingEnsemble(estimators=[("est", RidgeClassifier())],
                               final_estimator=KNeighborsClassifier(),
                               stack_method="decision_function").fit(X_train, y_train)
    assert stacker.transform(X_test).shape == (X_test.shape[0], 3)
    assert stacker.predict(X_test).shape == y_test.shape


@pytest.mark.parametrize("stack_method", ["auto", "predict"])
@pytest.mark.parametrize("passthrough", [False, True])
def test_stacking_classifier_multilabel_auto_predict(stack_method, passthrough):
    X_train, X_test, y_train, y_test = train_test_split(
        X_multilabel, y_multilabel, stratify=y_multilabel, random_state=42)
    y_train_before_fit = y_train.copy()
    estimators = [("mlp", MLPClassifier(random_state=42, max_iter=50)),
                  ("rf", RandomForestClassifier(n_estimators=10, random_state=42)),
                  ("ridge", RidgeClassifier())]
    clf = StackingEnsemble(estimators=estimators, final_estimator=KNeighborsClassifier(),
                           passthrough=passthrough, stack_method=stack_method)
    clf.fit(X_train, y_train)
    assert_array_equal(y_train_before_fit, y_train)
    assert clf.predict(X_test).shape == y_test.shape
    expected = (["predict_proba", "predict_proba", "decision_function"]
                if stack_method == "auto" else ["predict"] * len(estimators))
    assert clf.stack_method_ == expected
    n_features_X_trans = 3 * len(estimators) + (X_train.shape[1] if passthrough else 0)
    assert clf.transform(X_test).shape == (X_test.shape[0], n_features_X_trans)
    assert_array_equal(clf.classes_, [np.array([0, 1])] * 3)
    theirs = StackingClassifier(estimators, final_estimator=KNeighborsClassifier(),
                                passthrough=passthrough, stack_method=stack_method)
    assert_same_predictions(clf, theirs.fit(X_train, y_train), X_test)


@pytest.mark.parametrize("stacker, feature_names, X, y, expected_names", [
    (StackingEnsemble(estimators=[("lr", LogisticRegression(random_state=0)),
                                  ("svm", LinearSVC(random_state=0))]),
     iris.feature_names, X_iris, y_iris,
     [f"stackingensemble_{name}{i}" for name in ("lr", "svm") for i in range(3)]),
    (StackingEnsemble(estimators=[("lr", LogisticRegression(random_state=0)),
                                  ("other", "drop"), ("svm", LinearSVC(random_state=0))]),
     iris.feature_names, X_iris[:100], y_iris[:100],
     ["stackingensemble_lr", "stackingensemble_svm"]),
    (StackingEnsemble(estimators=[("lr", LinearRegression()),
                                  ("svm", LinearSVR(random_state=0))]),
     diabetes.feature_names, X_diabetes, y_diabetes,
     ["stackingensemble_lr", "stackingensemble_svm"]),
], ids=["StackingClassifier_multiclass", "StackingClassifier_binary", "StackingRegressor"])
@pytest.mark.parametrize("passthrough", [True, False])
def test_get_feature_names_out(stacker, feature_names, X, y, expected_names, passthrough):
    # the prefix is the class name, lower-cased, as in scikit-learn
    stacker = clone(stacker).set_params(passthrough=passthrough)
    stacker.fit(scale(X), y)
    if passthrough:
        expected_names = np.concatenate((expected_names, feature_names))
    assert_array_equal(stacker.get_feature_names_out(feature_names), expected_names)


def test_stacking_classifier_base_regressor():
    # Difference: the task follows the base estimators, so regressors alone make a
    # regression stack (scikit-learn's StackingClassifier accepts them as a first layer).
    X_train, X_test, y_train, y_test = train_test_split(
        scale(X_iris), y_iris, stratify=y_iris, random_state=42)
    stack = StackingEnsemble(estimators=[("ridge", Ridge())]).fit(X_train, y_train)
    assert is_regressor(stack) and not hasattr(stack, "predict_proba")
    assert stack.score(X_test, y_test) > 0.8
    with pytest.raises(ValueError, match="'final_estimator' parameter .* must be a regressor"):
        StackingEnsemble([("ridge", Ridge())], final_estimator=LogisticRegression()).fit(
            X_train, y_train)


def test_stacking_final_estimator_attribute_error():
    X, y = make_classification(random_state=42)
    estimators = [("lr", LogisticRegression()),
                  ("rf", RandomForestClassifier(n_estimators=2, random_state=42))]
    final_estimator = RandomForestClassifier(n_estimators=2, random_state=42)
    clf = StackingEnsemble(estimators=estimators, final_estimator=final_estimator, cv=3)
    outer_msg = "This 'StackingEnsemble' has no attribute 'decision_function'"
    inner_msg = "'RandomForestClassifier' object has no attribute 'decision_function'"
    with pytest.raises(AttributeError, match=outer_msg) as exec_info:
        clf.fit(X, y).decision_function(X)
    assert isinstance(exec_info.value.__cause__, AttributeError)
    assert inner_msg in str(exec_info.value.__cause__)


def test_routing_passed_metadata_not_supported():
    # Difference: no metadata routing; fit takes sample_weight only, and anything else is
    # refused by Python before any work (scikit-learn: "only supported if
    # enable_metadata_routing=True").
    with pytest.raises(TypeError, match="unexpected keyword argument 'metadata'"):
        StackingEnsemble([("clf", LogisticRegression())]).fit(
            X_iris, y_iris, sample_weight=np.ones(len(y_iris)), metadata="a")


def test_get_params_and_set_params_are_scikit_learn_composition():
    """The estimators list behaves as in StackingClassifier (via _BaseComposition)."""
    estimators = [("lr", LogisticRegression(C=2.0)), ("svc", LinearSVC())]
    ours = StackingEnsemble(estimators, final_estimator=LogisticRegression())
    theirs = StackingClassifier(estimators, final_estimator=LogisticRegression())
    ours_params, theirs_params = ours.get_params(), theirs.get_params()
    shared = set(theirs_params) & set(ours_params)
    assert {"lr", "svc", "lr__C", "svc__C", "final_estimator__C"} <= shared
    assert {key for key in theirs_params if "__" in key or key in ("lr", "svc")} <= shared
    for key in shared:
        if "__" in key:  # the nested parameters are the base estimators' own
            assert ours_params[key] == theirs_params[key], key
    ours.set_params(lr__C=5.0, svc="drop")
    assert ours.get_params()["lr__C"] == 5.0
    assert dict(ours.estimators)["svc"] == "drop"
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        ours.set_params(nope=1)
