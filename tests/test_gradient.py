"""DistributedLogisticRegression and DistributedLinearRegression: same optimum as scikit-learn."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from dasktrain._execution import LocalBackend
from dasktrain.linear_model import DistributedLinearRegression, DistributedLogisticRegression
from dasktrain.linear_model import _gradient
from dasktrain.utils import InvalidParameterError


def classification_data(n_classes=2, n_samples=240, seed=0):
    X, y = make_classification(n_samples=n_samples, n_features=6, n_informative=4,
                               n_redundant=0, n_classes=n_classes, random_state=seed)
    return X, y


def regression_data(n_targets=1, seed=0):
    X, y = make_regression(n_samples=240, n_features=6, n_targets=n_targets, noise=5.0,
                           random_state=seed)
    return X + 1.0, y + 10.0  # not centred: the intercept matters


def relative_error(ours, reference):
    return np.max(np.abs(np.asarray(ours) - reference)) / np.max(np.abs(reference))


@parametrize_with_checks([DistributedLogisticRegression(), DistributedLinearRegression()])
def test_scikit_learn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------------
# Parity with scikit-learn, on every backend
# ---------------------------------------------------------------------------------------------

def check_logistic_parity(n_classes, C, fit_intercept, **backend):
    X, y = classification_data(n_classes)
    reference = LogisticRegression(C=C, fit_intercept=fit_intercept, tol=1e-12,
                                   max_iter=10_000).fit(X, y)
    model = DistributedLogisticRegression(C=C, fit_intercept=fit_intercept, tol=1e-8,
                                          n_partitions=2, **backend).fit(X, y)
    assert model.coef_.shape == reference.coef_.shape
    assert relative_error(model.coef_, reference.coef_) < 1e-4
    assert_allclose(model.intercept_, reference.intercept_, rtol=1e-4, atol=1e-6)
    assert_array_equal(model.classes_, reference.classes_)
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-6)
    assert_array_equal(model.predict(X), reference.predict(X))
    assert model.n_partitions_ == 2 and model.n_features_in_ == 6
    return model


def check_ridge_parity(n_targets, alpha, **backend):
    X, y = regression_data(n_targets)
    reference = Ridge(alpha=alpha).fit(X, y)
    model = DistributedLinearRegression(alpha=alpha, tol=1e-8, n_partitions=2,
                                        **backend).fit(X, y)
    assert np.shape(model.coef_) == reference.coef_.shape
    assert relative_error(model.coef_, reference.coef_) < 1e-4
    assert_allclose(model.intercept_, reference.intercept_, rtol=1e-4)
    expected = reference.predict(X)
    assert_allclose(model.predict(X), expected, atol=1e-6 * np.abs(expected).max())
    return model


def test_scikit_learn_optimum_on_every_backend(backend):
    # one test per backend (binary, multinomial, ridge) keeps the local pool and clusters warm
    for n_classes in (2, 3):
        model = check_logistic_parity(n_classes, 0.5, True, **backend)
        # and the same path as in this process, step for step
        local = DistributedLogisticRegression(C=0.5, tol=1e-8, n_partitions=2).fit(
            *classification_data(n_classes))
        assert_allclose(model.coef_, local.coef_, rtol=1e-9, atol=1e-12)
        assert model.n_iter_ == local.n_iter_
    model = check_ridge_parity(1, 1.0, **backend)
    local = DistributedLinearRegression(tol=1e-8, n_partitions=2).fit(*regression_data())
    assert_allclose(model.coef_, local.coef_, rtol=1e-9)
    assert model.n_iter_ == local.n_iter_


@pytest.mark.parametrize("n_classes, C, fit_intercept",
                         [(2, 100.0, False), (3, 0.01, True), (4, 10.0, False)])
def test_logistic_regression_parity_variants(n_classes, C, fit_intercept):
    check_logistic_parity(n_classes, C, fit_intercept)


@pytest.mark.parametrize("n_targets, alpha, fit_intercept",
                         [(2, 25.0, True), (1, 0.0, True), (3, 1.0, False)])
def test_linear_regression_parity_variants(n_targets, alpha, fit_intercept):
    X, y = regression_data(n_targets)
    reference = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X, y)
    model = DistributedLinearRegression(alpha=alpha, fit_intercept=fit_intercept, tol=1e-8,
                                        n_partitions=3).fit(X, y)
    assert relative_error(model.coef_, reference.coef_) < 1e-4
    assert_allclose(model.intercept_, reference.intercept_, atol=1e-6)


def test_string_labels_and_dataframe_features():
    X, y = classification_data(3)
    labels = np.array(["ant", "bee", "cat"])[y]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    model = DistributedLogisticRegression(tol=1e-10, n_partitions=2).fit(frame, labels)
    reference = LogisticRegression(tol=1e-12, max_iter=1000).fit(frame, labels)
    assert_array_equal(model.classes_, ["ant", "bee", "cat"])
    assert_array_equal(model.feature_names_in_, frame.columns)
    assert_array_equal(model.predict(frame), reference.predict(frame))


def test_sparse_input_gives_the_dense_result():
    X, y = classification_data(3)
    X[np.abs(X) < 0.8] = 0.0
    dense = DistributedLogisticRegression(tol=1e-10, n_partitions=3).fit(X, y)
    csr = DistributedLogisticRegression(tol=1e-10, n_partitions=3).fit(sparse.csr_matrix(X), y)
    assert_allclose(csr.coef_, dense.coef_, rtol=1e-8)
    assert_allclose(csr.predict_proba(sparse.csr_matrix(X)), dense.predict_proba(X), rtol=1e-8)


@pytest.mark.parametrize("Model, data, reference", [
    (DistributedLogisticRegression, classification_data, LogisticRegression(tol=1e-12)),
    (DistributedLinearRegression, regression_data, Ridge()),
])
def test_gradient_descent_solver_reaches_the_same_optimum(Model, data, reference):
    X, y = data()
    X = StandardScaler().fit_transform(X)  # plain gradient descent needs a well-conditioned problem
    reference = reference.fit(X, y)
    model = Model(solver="gd", tol=1e-9, max_iter=5000, n_partitions=2).fit(X, y)
    assert relative_error(model.coef_, reference.coef_) < 1e-4
    assert model.loss_curve_[-1] <= model.loss_curve_[0]


def test_not_converging_warns():
    X, y = classification_data(3)
    with pytest.warns(ConvergenceWarning, match="did not converge after 2 iterations"):
        model = DistributedLogisticRegression(max_iter=2).fit(X, y)
    assert model.n_iter_ == 2


# ---------------------------------------------------------------------------------------------
# How the work is distributed
# ---------------------------------------------------------------------------------------------

class RecordingBackend(LocalBackend):
    """A local backend that records what an estimator asks of it."""

    def __init__(self):
        super().__init__()
        self.scatters, self.tasks, self.gathered = [], [], 0

    def scatter(self, data, *, broadcast=False, cache=True):
        self.scatters.append((type(data).__name__, broadcast, cache))
        return super().scatter(data, broadcast=broadcast, cache=cache)

    def submit(self, fn, *args, key=None, **kwargs):
        self.tasks.append(fn.__name__)
        return super().submit(fn, *args, key=key, **kwargs)

    def gather(self, futures):
        futures = list(futures)
        self.gathered += len(futures)
        return super().gather(futures)


@pytest.mark.parametrize("reduction, n_combines, n_gathered", [("tree", 4, 0), ("gather", 0, 5)])
def test_one_broadcast_and_one_task_per_block_each_step(monkeypatch, reduction, n_combines,
                                                        n_gathered):
    X, y = classification_data()
    recording = RecordingBackend()
    monkeypatch.setattr(DistributedLogisticRegression, "_execution_backend",
                        lambda self: recording)
    model = DistributedLogisticRegression(n_partitions=5, reduction=reduction).fit(X, y)
    n_steps = len(model.loss_curve_)
    assert n_steps >= model.n_iter_ >= 2
    # the data: five blocks, scattered once per fit, not content-hashed
    assert recording.scatters[:5] == [("tuple", False, False)] * 5
    # the parameters: broadcast once per step
    assert recording.scatters[5:] == [("ndarray", True, False)] * n_steps
    assert recording.tasks.count("logistic_loss_gradient") == 5 * n_steps
    assert recording.tasks.count("add_loss_gradients") == n_combines * n_steps
    assert recording.gathered == n_gathered * n_steps


def test_tree_and_gather_reductions_give_identical_results(process_client):
    X, y = classification_data(3)
    on_cluster = {"use_dask": True, "client": process_client}
    tree = DistributedLogisticRegression(n_partitions=5, reduction="tree", **on_cluster)
    gather = DistributedLogisticRegression(n_partitions=5, reduction="gather", **on_cluster)
    tree.fit(X, y)
    gather.fit(X, y)
    assert_array_equal(tree.coef_, gather.coef_)
    assert tree.loss_curve_ == gather.loss_curve_


class EightWorkerBackend(LocalBackend):
    n_workers = 8


def test_default_blocks_do_not_depend_on_the_workers(monkeypatch):
    monkeypatch.setattr(_gradient, "TARGET_BLOCK_BYTES", 6 * 8 * 60)  # 60 rows of 6 features
    X, y = classification_data()
    one_worker = DistributedLogisticRegression().fit(X, y)
    monkeypatch.setattr(DistributedLogisticRegression, "_execution_backend",
                        lambda self: EightWorkerBackend())
    eight_workers = DistributedLogisticRegression().fit(X, y)
    assert one_worker.n_partitions_ == eight_workers.n_partitions_ == 4
    assert_array_equal(one_worker.coef_, eight_workers.coef_)


# ---------------------------------------------------------------------------------------------
# Dask inputs: blocks stay on the workers
# ---------------------------------------------------------------------------------------------

def test_dask_array_blocks_give_the_in_memory_result(backend):
    X, y = classification_data(3)
    in_memory = DistributedLogisticRegression(n_partitions=2, tol=1e-6).fit(X, y)
    X_dask = da.from_array(X, chunks=(120, 3))  # column chunks are joined
    model = DistributedLogisticRegression(tol=1e-6, **backend).fit(X_dask,
                                                                   da.from_array(y, chunks=120))
    assert model.n_partitions_ == 2
    assert_allclose(model.coef_, in_memory.coef_, rtol=1e-9, atol=1e-12)
    predicted = model.predict(X_dask)
    assert isinstance(predicted, da.Array)
    assert_array_equal(predicted.compute(), in_memory.predict(X))
    assert_allclose(model.predict_proba(X_dask).compute(), in_memory.predict_proba(X),
                    rtol=1e-8)
    assert model.decision_function(X_dask).shape == (240, 3)


def test_dask_blocks_grouped_into_partitions():
    X, y = regression_data()
    X_dask, y_dask = da.from_array(X, chunks=40), da.from_array(y, chunks=40)
    grouped = DistributedLinearRegression(n_partitions=2, tol=1e-10).fit(X_dask, y_dask)
    in_memory = DistributedLinearRegression(n_partitions=2, tol=1e-10).fit(X, y)
    assert grouped.n_partitions_ == 2
    assert_allclose(grouped.coef_, in_memory.coef_, rtol=1e-9)
    # a numpy y is cut like the dask X
    assert_allclose(DistributedLinearRegression(tol=1e-10).fit(X_dask, y).coef_,
                    grouped.coef_, rtol=1e-6)


@pytest.mark.parametrize("on_cluster", [False, True])
def test_dask_dataframe_input(request, on_cluster):
    X, y = regression_data()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    X_dask = dd.from_pandas(frame, npartitions=3)
    y_dask = dd.from_pandas(pd.Series(y, name="target"), npartitions=3)
    backend = ({"use_dask": True, "client": request.getfixturevalue("process_client")}
               if on_cluster else {})
    model = DistributedLinearRegression(tol=1e-8, **backend).fit(X_dask, y_dask)
    reference = Ridge().fit(frame, y)
    assert relative_error(model.coef_, reference.coef_) < 1e-4
    assert_array_equal(model.feature_names_in_, frame.columns)
    predicted = model.predict(X_dask)
    assert isinstance(predicted, dd.Series)
    assert_allclose(predicted.compute().to_numpy(), reference.predict(frame), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Bad parameters and bad inputs: clear errors before any work
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if an estimator asks for a backend (i.e. starts sending work)."""
    def refuse(self):
        raise AssertionError("work was sent before the inputs were checked")

    for Model in (DistributedLogisticRegression, DistributedLinearRegression):
        monkeypatch.setattr(Model, "_execution_backend", refuse)


@pytest.mark.parametrize("Model, params, err, match", [
    (DistributedLogisticRegression, {"C": 0.0}, InvalidParameterError,
     r"The 'C' parameter of DistributedLogisticRegression must be a float in the range "
     r"\(0, inf\)\. Got 0.0 instead"),
    (DistributedLogisticRegression, {"C": "strong"}, InvalidParameterError, "'C' parameter"),
    (DistributedLinearRegression, {"alpha": -1.0}, InvalidParameterError,
     r"'alpha' parameter of DistributedLinearRegression must be a float in the range \[0, inf\)"),
    (DistributedLogisticRegression, {"max_iter": 0}, InvalidParameterError,
     "'max_iter' parameter"),
    (DistributedLinearRegression, {"tol": -1e-3}, InvalidParameterError, "'tol' parameter"),
    (DistributedLogisticRegression, {"solver": "newton"}, InvalidParameterError,
     r"'solver' parameter .* must be a str among \{'lbfgs', 'gd'\}"),
    (DistributedLinearRegression, {"reduction": "sum"}, InvalidParameterError,
     r"'reduction' parameter .* \{'tree', 'gather'\}"),
    (DistributedLogisticRegression, {"n_partitions": 0}, InvalidParameterError,
     "'n_partitions' parameter"),
    (DistributedLogisticRegression, {"n_partitions": 10**6}, ValueError,
     r"DistributedLogisticRegression cannot make n_partitions=1000000 partitions of "
     r"n_samples=\d+ samples"),
    (DistributedLinearRegression, {"n_partitions": 10**6}, ValueError,
     r"DistributedLinearRegression cannot make n_partitions=1000000 partitions"),
    (DistributedLinearRegression, {"fit_intercept": "yes"}, InvalidParameterError,
     "'fit_intercept' parameter"),
    (DistributedLogisticRegression, {"n_jobs": 0}, InvalidParameterError, "'n_jobs' parameter"),
    (DistributedLogisticRegression, {"use_dask": "no"}, InvalidParameterError,
     "'use_dask' parameter"),
    (DistributedLogisticRegression, {"client": "tcp://127.0.0.1:8786", "use_dask": True},
     InvalidParameterError, "'client' parameter"),
])
def test_bad_parameters(no_work, Model, params, err, match):
    X, y = classification_data()
    with pytest.raises(err, match=match):
        Model(**params).fit(X, y)


def _with_nan(X):
    X = X.copy()
    X[3, 2] = np.nan
    return X


def _with_inf(X):
    X = X.copy()
    X[5, 1] = np.inf
    return X


X_GOOD, Y_GOOD = classification_data(3)


@pytest.mark.parametrize("Model, X, y, err, match", [
    (DistributedLogisticRegression, np.array([["a", "b"], ["c", "d"]]), [0, 1], ValueError,
     "could not convert string to float"),
    (DistributedLogisticRegression, _with_nan(X_GOOD), Y_GOOD, ValueError, "Input X contains NaN"),
    (DistributedLinearRegression, _with_inf(X_GOOD), Y_GOOD, ValueError,
     "Input X contains infinity"),
    (DistributedLogisticRegression, X_GOOD, np.ones(len(X_GOOD)), ValueError,
     "at least 2 classes in the data, but the data contains only one class: 1.0"),
    (DistributedLogisticRegression, X_GOOD, Y_GOOD[:-1], ValueError,
     "inconsistent numbers of samples"),
    (DistributedLogisticRegression, X_GOOD, np.linspace(0, 1, len(X_GOOD)), ValueError,
     "Unknown label type"),
    (DistributedLinearRegression, X_GOOD, np.where(Y_GOOD == 1, np.nan, 0.0), ValueError,
     "Input y contains NaN"),
    (DistributedLogisticRegression, X_GOOD, None, ValueError, "requires y to be passed"),
])
def test_bad_inputs(no_work, Model, X, y, err, match):
    with pytest.raises(err, match=match):
        Model().fit(X, y)


def _dask(values, chunks):
    return da.from_array(np.asarray(values), chunks=chunks)


FRAME = pd.DataFrame(X_GOOD, columns=[f"f{i}" for i in range(6)])


@pytest.mark.parametrize("Model, X, y, err, match", [
    (DistributedLogisticRegression, _dask(X_GOOD, 60), _dask(Y_GOOD, 80), ValueError,
     r"do not line up: X has 4 blocks of rows and y has 3"),
    (DistributedLogisticRegression, _dask(X_GOOD, ((60, 60, 60, 60), (6,))),
     _dask(Y_GOOD, ((60, 60, 50, 70),)), ValueError,
     r"do not line up: X has blocks of \[60, 60, 60, 60\] rows and y of \[60, 60, 50, 70\] rows"),
    (DistributedLogisticRegression, dd.from_pandas(FRAME, npartitions=3),
     dd.from_pandas(pd.Series(Y_GOOD), npartitions=2), ValueError,
     "do not line up: X has 3 blocks of rows and y has 2"),
    (DistributedLogisticRegression, dd.from_pandas(FRAME.assign(kind="a"), npartitions=2),
     dd.from_pandas(pd.Series(Y_GOOD), npartitions=2), ValueError,
     "X must be numeric. Column\\(s\\) 'kind'"),
    (DistributedLogisticRegression, _dask(X_GOOD.astype(str), 60), _dask(Y_GOOD, 60), ValueError,
     "X must be numeric"),
    (DistributedLogisticRegression, dd.from_pandas(FRAME, npartitions=2), Y_GOOD, ValueError,
     "y must be a dask array or series when X is a dask dataframe"),
    (DistributedLogisticRegression, X_GOOD, _dask(Y_GOOD, 60), ValueError,
     "X must be a dask collection when y is one"),
])
def test_bad_dask_inputs_rejected_from_metadata(no_work, Model, X, y, err, match):
    with pytest.raises(err, match=match):
        Model().fit(X, y)


@pytest.mark.parametrize("Model, X, y, match", [
    (DistributedLogisticRegression, _dask(_with_nan(X_GOOD), 60), _dask(Y_GOOD, 60),
     r"Input X contains NaN or infinity \(in partition 0\)"),
    (DistributedLinearRegression, _dask(X_GOOD, 60), _dask(np.where(Y_GOOD > 1, np.inf, 0), 60),
     r"Input y contains NaN or infinity"),
    (DistributedLogisticRegression, _dask(X_GOOD, 60), _dask(np.zeros(240), 60),
     "at least 2 classes in the data, but the data contains only one class"),
    (DistributedLogisticRegression, _dask(X_GOOD, 60), _dask(np.linspace(0, 1, 240), 60),
     "Unknown label type: continuous"),
    (DistributedLogisticRegression, dd.from_pandas(FRAME, npartitions=2).clear_divisions(),
     dd.from_pandas(pd.Series(Y_GOOD[:-1]), npartitions=2).clear_divisions(),
     r"do not line up: block 1 of X has 120 rows but block 1 of y has 119"),
])
def test_bad_dask_values_rejected_before_training(monkeypatch, Model, X, y, match):
    # NaN, classes and the rows of unknown-length blocks are only known after a pass over
    # the blocks; the optimiser must not have started
    def refuse(*args, **kwargs):
        raise AssertionError("training started before the blocks were checked")

    monkeypatch.setattr(Model, "_minimize", refuse)
    with pytest.raises(ValueError, match=match):
        Model().fit(X, y)
