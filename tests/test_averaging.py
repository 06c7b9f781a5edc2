"""ParameterAveragingClassifier and ParameterAveragingRegressor: local training, averaged rounds."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from dasktrain.ensemble import ParameterAveragingClassifier, ParameterAveragingRegressor
from dasktrain.ensemble._averaging import model_parameters
from dasktrain.utils import InvalidParameterError, set_random_states, spawn_seeds


def easy_classification(n_samples=400, n_classes=2, seed=0):
    X, y = make_classification(n_samples=n_samples, n_features=8, n_informative=5,
                               n_redundant=0, n_classes=n_classes, class_sep=2.0,
                               random_state=seed)
    return StandardScaler().fit_transform(X), y


def easy_regression(n_samples=400, seed=0):
    X, y = make_regression(n_samples=n_samples, n_features=8, noise=1.0, random_state=seed)
    return X, y / np.std(y)


def parameters_of(model):
    return model_parameters(model.estimator_ if hasattr(model, "estimator_") else model)


def assert_same_parameters(a, b):
    for first, second in zip(parameters_of(a), parameters_of(b), strict=True):
        assert_array_equal(first, second)


@parametrize_with_checks([
    ParameterAveragingClassifier(SGDClassifier(random_state=0), random_state=0),
    ParameterAveragingRegressor(SGDRegressor(random_state=0), random_state=0),
])
def test_scikit_learn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------------
# What averaging learns
# ---------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator, rounds", [
    (SGDClassifier(random_state=0), 10),
    (MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0), 30),
])
def test_averaged_classifier_nearly_as_accurate_as_training_on_all_data(estimator, rounds):
    X, y = easy_classification(n_classes=3)
    X_test, y_test = X[300:], y[300:]
    full = clone(estimator).set_params(max_iter=rounds).fit(X[:300], y[:300])
    averaged = ParameterAveragingClassifier(estimator, n_partitions=4, rounds=rounds,
                                            random_state=0).fit(X[:300], y[:300])
    assert averaged.score(X_test, y_test) >= 0.95 * full.score(X_test, y_test)
    assert_array_equal(averaged.classes_, [0, 1, 2])
    assert hasattr(averaged, "predict_proba") == hasattr(full, "predict_proba")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator, rounds", [
    (SGDRegressor(random_state=0), 10),
    (MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0), 30),
])
def test_averaged_regressor_nearly_as_accurate_as_training_on_all_data(estimator, rounds):
    X, y = easy_regression()
    full = clone(estimator).set_params(max_iter=rounds).fit(X[:300], y[:300])
    averaged = ParameterAveragingRegressor(estimator, n_partitions=4, rounds=rounds,
                                           random_state=0).fit(X[:300], y[:300])
    assert averaged.score(X[300:], y[300:]) >= 0.95 * full.score(X[300:], y[300:])


@pytest.mark.parametrize("Model, estimator, data", [
    (ParameterAveragingClassifier, SGDClassifier(random_state=3), easy_classification),
    (ParameterAveragingClassifier, MLPClassifier(hidden_layer_sizes=(4,)), easy_classification),
    (ParameterAveragingRegressor, SGDRegressor(), easy_regression),
    (ParameterAveragingRegressor, MLPRegressor(hidden_layer_sizes=(4,)), easy_regression),
])
def test_one_partition_equals_plain_training(Model, estimator, data):
    X, y = data(n_samples=120)
    model = Model(estimator, n_partitions=1, rounds=3, local_epochs=2, random_state=7).fit(X, y)
    plain = set_random_states(clone(estimator), spawn_seeds(7, 2)[1])
    classes = {"classes": np.unique(y)} if Model is ParameterAveragingClassifier else {}
    for _ in range(3 * 2):
        plain.partial_fit(X, y, **classes)
    assert_same_parameters(model, plain)
    assert_array_equal(model.predict(X), plain.predict(X))
    assert_array_equal(model.partition_sizes_, [120])


def test_average_is_weighted_by_partition_size():
    # two dask blocks of 30 and 90 rows: one round, one epoch, weights 1/4 and 3/4
    X, y = easy_regression(n_samples=120)
    model = ParameterAveragingRegressor(SGDRegressor(), rounds=1, random_state=5).fit(
        da.from_array(X, chunks=((30, 90), (8,))), da.from_array(y, chunks=((30, 90),)))
    assert_array_equal(model.partition_sizes_, [30, 90])
    first_seed = spawn_seeds(5, 3)[1]  # the first round: every copy uses partition 0's seed
    copies = [set_random_states(SGDRegressor(), first_seed).partial_fit(X[rows], y[rows])
              for rows in (slice(0, 30), slice(30, 120))]
    assert_allclose(model.estimator_.coef_, 0.25 * copies[0].coef_ + 0.75 * copies[1].coef_,
                    rtol=1e-12)
    assert_allclose(model.estimator_.intercept_,
                    0.25 * copies[0].intercept_ + 0.75 * copies[1].intercept_, rtol=1e-12)


def test_copies_start_each_round_from_the_average(monkeypatch):
    # with rounds=2, the second round's copies must all begin from the first round's average
    import dasktrain.ensemble._averaging as averaging

    starts = []
    original = averaging.set_model_parameters

    def recording(estimator, parameters):
        starts.append([np.array(p) for p in parameters])
        original(estimator, parameters)

    monkeypatch.setattr(averaging, "set_model_parameters", recording)
    X, y = easy_classification(n_samples=200)
    model = ParameterAveragingClassifier(SGDClassifier(random_state=0), n_partitions=3,
                                         rounds=2, random_state=0).fit(X, y)
    assert len(starts) == 3 + 1  # three copies in round 2, then the final model
    for start in starts[1:3]:
        for got, expected in zip(start, starts[0], strict=True):
            assert_array_equal(got, expected)
    assert not np.array_equal(starts[0][0], starts[3][0])  # round 2 moved the average
    assert_array_equal(model.estimator_.coef_, starts[3][0])


# ---------------------------------------------------------------------------------------------
# Same result on every backend; dask inputs
# ---------------------------------------------------------------------------------------------

def test_same_parameters_on_every_backend(backend):
    X, y = easy_classification(n_samples=200)
    estimator = MLPClassifier(hidden_layer_sizes=(6,), random_state=0)
    params = {"n_partitions": 3, "rounds": 3, "random_state": 11}
    local = ParameterAveragingClassifier(estimator, **params).fit(X, y)
    model = ParameterAveragingClassifier(estimator, **params, **backend).fit(X, y)
    for got, expected in zip(parameters_of(model), parameters_of(local), strict=True):
        assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    assert_array_equal(model.partition_sizes_, local.partition_sizes_)


def test_dask_blocks_are_the_partitions(backend):
    X, y = easy_classification(n_samples=200)
    X_dask, y_dask = da.from_array(X, chunks=(50, 8)), da.from_array(y, chunks=50)
    params = {"rounds": 2, "random_state": 0}
    model = ParameterAveragingClassifier(SGDClassifier(random_state=0), **params,
                                         **backend).fit(X_dask, y_dask)
    # the same partitions in memory: consecutive rows, no shuffling
    in_memory = ParameterAveragingClassifier(SGDClassifier(random_state=0), n_partitions=4,
                                             shuffle=False, **params).fit(X, y)
    assert_array_equal(model.partition_sizes_, [50, 50, 50, 50])
    assert_same_parameters(model, in_memory)
    predicted = model.predict(X_dask)
    assert isinstance(predicted, da.Array)
    assert_array_equal(predicted.compute(), in_memory.predict(X))


def test_random_state_fixes_the_partitions_and_the_result():
    X, y = easy_classification(n_samples=200)

    def fit(seed):
        return ParameterAveragingClassifier(SGDClassifier(), n_partitions=3, rounds=2,
                                            random_state=seed).fit(X, y)

    assert_same_parameters(fit(1), fit(1))
    assert not np.array_equal(fit(1).estimator_.coef_, fit(2).estimator_.coef_)


# ---------------------------------------------------------------------------------------------
# Bad parameters and inputs: clear errors before any work
# ---------------------------------------------------------------------------------------------

class NoParameters(ClassifierMixin, BaseEstimator):
    """Has partial_fit but learns neither coef_/intercept_ nor coefs_/intercepts_."""

    def partial_fit(self, X, y, classes=None):
        self.classes_ = np.asarray(classes)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


@pytest.fixture
def no_work(monkeypatch):
    def refuse(self):
        raise AssertionError("work was sent before the parameters were checked")

    for Model in (ParameterAveragingClassifier, ParameterAveragingRegressor):
        monkeypatch.setattr(Model, "_execution_backend", refuse)


@pytest.mark.parametrize("params, err, match", [
    ({"estimator": LogisticRegression()}, TypeError,
     r"The 'estimator' parameter of ParameterAveragingClassifier must be an estimator "
     r"instance implementing 'partial_fit' and 'predict' .*Got LogisticRegression\(\) instead"),
    ({"estimator": SGDClassifier}, TypeError,
     r"'estimator' parameter of ParameterAveragingClassifier must be an estimator instance"
     r".*Got <class"),
    ({"estimator": SGDRegressor()}, ValueError,
     r"The 'estimator' parameter of ParameterAveragingClassifier must be a classifier. Got "
     r"SGDRegressor\(\), a regressor; use ParameterAveragingRegressor"),
    ({"n_partitions": 41}, ValueError,
     "ParameterAveragingClassifier cannot make n_partitions=41 partitions of n_samples=40"),
    ({"estimator": MLPClassifier(solver="lbfgs")}, TypeError, "'estimator' parameter"),
    ({"estimator": SGDClassifier(average=True)}, ValueError,
     r"'estimator' parameter .* must not average its own iterates \(average=True\)"),
    ({"rounds": 0}, InvalidParameterError,
     r"The 'rounds' parameter of ParameterAveragingClassifier must be an int in the range "
     r"\[1, inf\). Got 0 instead"),
    ({"local_epochs": 1.5}, InvalidParameterError, "'local_epochs' parameter"),
    ({"n_partitions": 0}, InvalidParameterError, "'n_partitions' parameter"),
    ({"shuffle": "yes"}, InvalidParameterError, "'shuffle' parameter"),
    ({"random_state": "seed"}, InvalidParameterError, "'random_state' parameter"),
    ({"n_jobs": 0}, InvalidParameterError, "'n_jobs' parameter"),
    ({"client": object(), "use_dask": True}, InvalidParameterError, "'client' parameter"),
])
def test_bad_parameters(no_work, params, err, match):
    X, y = easy_classification(n_samples=40)
    params = {"estimator": SGDClassifier(), **params}
    with pytest.raises(err, match=match):
        ParameterAveragingClassifier(**params).fit(X, y)


X_GOOD, Y_GOOD = easy_classification(n_samples=40)


def _with_nan(X):
    X = X.copy()
    X[2, 3] = np.nan
    return X


@pytest.mark.parametrize("X, y, err, match", [
    (_with_nan(X_GOOD), Y_GOOD, ValueError, "Input X contains NaN"),
    (X_GOOD, np.zeros(40), ValueError,
     "needs samples of at least 2 classes in the data, but the data contains only one class"),
    (X_GOOD, Y_GOOD[:-1], ValueError, "inconsistent numbers of samples"),
    (X_GOOD, np.linspace(0, 1, 40), ValueError, "Unknown label type"),
    (da.from_array(X_GOOD, chunks=10), da.from_array(Y_GOOD, chunks=20), ValueError,
     "do not line up: X has 4 blocks of rows and y has 2"),
])
def test_bad_inputs(no_work, X, y, err, match):
    with pytest.raises(err, match=match):
        ParameterAveragingClassifier(SGDClassifier()).fit(X, y)


def test_estimator_without_averageable_parameters():
    with pytest.raises(TypeError, match="The 'estimator' parameter of "
                       "ParameterAveragingClassifier must learn coef_ and intercept_ .* "
                       "Got NoParameters, which learns neither"):
        ParameterAveragingClassifier(NoParameters(), rounds=1).fit(X_GOOD, Y_GOOD)
