"""PartitionedEnsemble: one seeded model per part of the data, in memory or block by block."""

from __future__ import annotations

import tracemalloc

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from _recording import RecordingBackend, calls
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier, SGDRegressor
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from dasktrain import PartitionedEnsemble
from dasktrain.utils import InvalidParameterError, set_random_states


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Two cores are shared by many processes: BLAS threads would only fight each other."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=300, n_features=8, n_informative=4, n_classes=3,
                               random_state=0)


def sgd():
    return SGDClassifier(loss="log_loss", max_iter=300, tol=1e-3)


def member_like(ensemble, index, X, y):
    """The estimator a member should equal: a clone seeded as the member, fitted on X, y."""
    return set_random_states(clone(ensemble.estimator), ensemble.seeds_[index]).fit(X, y)


@pytest.fixture
def submitted(monkeypatch):
    """The log of backend calls made by PartitionedEnsemble fits in this test."""
    log = []
    original = PartitionedEnsemble._execution_backend
    monkeypatch.setattr(PartitionedEnsemble, "_execution_backend",
                        lambda self: RecordingBackend(original(self), log))
    return log


# ----------------------------------------------------------------- in-memory data


def test_same_model_on_every_backend(backend, data):
    X, y = data
    reference = PartitionedEnsemble(sgd(), n_partitions=3, random_state=0).fit(X, y)
    ours = PartitionedEnsemble(sgd(), n_partitions=3, random_state=0, **backend).fit(X, y)
    assert ours.seeds_ == reference.seeds_
    for part, expected in zip(ours.partition_indices_, reference.partition_indices_):
        np.testing.assert_array_equal(part, expected)
    np.testing.assert_array_equal(ours.predict_proba(X), reference.predict_proba(X))


def test_one_partition_is_the_estimator_on_the_shuffled_data(backend, data):
    X, y = data
    ours = PartitionedEnsemble(sgd(), n_partitions=1, random_state=4, **backend).fit(X, y)
    rows = ours.partition_indices_[0]
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(y)))
    assert not np.array_equal(rows, np.arange(len(y)))  # shuffled
    alone = member_like(ours, 0, X[rows], y[rows])
    np.testing.assert_array_equal(ours.estimators_[0].coef_, alone.coef_)
    np.testing.assert_array_equal(ours.predict_proba(X), alone.predict_proba(X))
    np.testing.assert_array_equal(ours.predict(X), alone.predict(X))


def test_n_partitions_none_means_one_per_worker(backend, data):
    X, y = data
    ours = PartitionedEnsemble(sgd(), random_state=0, **backend).fit(X, y)
    expected = 1 if backend == {"use_dask": False, "client": None, "n_jobs": None} else 2
    assert ours.n_partitions_ == len(ours.estimators_) == expected


def test_partitions_are_stratified_disjoint_and_balanced():
    y = np.array([0] * 50 + [1] * 31 + [2] * 7)
    X = np.arange(len(y), dtype=float).reshape(-1, 1)
    ensemble = PartitionedEnsemble(DecisionTreeClassifier(), n_partitions=7,
                                   random_state=1).fit(X, y)
    parts = ensemble.partition_indices_
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(len(y)))
    assert max(ensemble.partition_sizes_) - min(ensemble.partition_sizes_) <= 1
    for label, total in [(0, 50), (1, 31), (2, 7)]:
        counts = [int(np.sum(y[part] == label)) for part in parts]
        assert set(counts) <= {total // 7, -(-total // 7)}
    for member in ensemble.estimators_:
        np.testing.assert_array_equal(member.classes_, [0, 1, 2])
    other = PartitionedEnsemble(DecisionTreeClassifier(), n_partitions=7,
                                random_state=2).fit(X, y)
    assert not np.array_equal(other.partition_indices_[0], parts[0])


def test_soft_and_hard_voting_and_any_label_type(data):
    X, y = data
    labels = np.array(["low", "mid", "high"], dtype=object)[y]
    soft = PartitionedEnsemble(sgd(), n_partitions=3, random_state=0).fit(X, labels)
    np.testing.assert_array_equal(soft.classes_, ["high", "low", "mid"])
    mean = np.mean([member.predict_proba(X) for member in soft.estimators_], axis=0)
    np.testing.assert_allclose(soft.predict_proba(X), mean, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(soft.predict(X), soft.classes_[mean.argmax(axis=1)])

    hard = PartitionedEnsemble(DecisionTreeClassifier(max_depth=2), n_partitions=3,
                               voting="hard", random_state=0).fit(X, labels)
    votes = np.stack([member.predict(X) for member in hard.estimators_], axis=1)
    majority = [np.bincount(row, minlength=3).argmax() for row in votes]
    np.testing.assert_array_equal(hard.predict(X), hard.classes_[majority])
    assert not hasattr(hard, "predict_proba")


def test_regression_averages_the_members():
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    ensemble = PartitionedEnsemble(DecisionTreeRegressor(max_depth=4), n_partitions=4,
                                   random_state=0).fit(X, y)
    assert ensemble.partition_sizes_ == [50, 50, 50, 50]
    mean = np.mean([member.predict(X) for member in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(ensemble.predict(X), mean, rtol=0, atol=1e-12)
    assert not hasattr(ensemble, "classes_")


def test_accuracy_close_to_one_model_on_all_data():
    X, y = make_classification(n_samples=4000, n_features=20, random_state=1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    full = LogisticRegression().fit(X_train, y_train).score(X_test, y_test)
    ensemble = PartitionedEnsemble(LogisticRegression(), n_partitions=4, random_state=0)
    assert ensemble.fit(X_train, y_train).score(X_test, y_test) >= full - 0.03
    assert full > 0.8


# ----------------------------------------------------------------- dask inputs


def test_dask_array_one_member_per_block(backend, data):
    X, y = data
    X_dask, y_dask = da.from_array(X, chunks=(75, 4)), da.from_array(y, chunks=75)
    ensemble = PartitionedEnsemble(sgd(), random_state=0, **backend).fit(X_dask, y_dask)
    assert ensemble.n_partitions_ == 4 and ensemble.partition_sizes_ == [75] * 4
    assert ensemble.partition_indices_ is None and ensemble.n_features_in_ == 8
    for index, start in enumerate(range(0, 300, 75)):
        alone = member_like(ensemble, index, X[start:start + 75], y[start:start + 75])
        np.testing.assert_array_equal(ensemble.estimators_[index].coef_, alone.coef_)
    prediction = ensemble.predict(X_dask)
    assert isinstance(prediction, da.Array)
    np.testing.assert_array_equal(prediction.compute(), ensemble.predict(X))
    proba = ensemble.predict_proba(X_dask)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), ensemble.predict_proba(X), rtol=0, atol=1e-12)


def test_dask_dataframe_with_string_labels(backend, data):
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    labels = pd.Series(np.array(["a", "b", "c"], dtype=object)[y])
    X_dask = dd.from_pandas(frame, npartitions=3)
    y_dask = dd.from_pandas(labels, npartitions=3)
    ensemble = PartitionedEnsemble(sgd(), random_state=0, **backend).fit(X_dask, y_dask)
    np.testing.assert_array_equal(ensemble.classes_, ["a", "b", "c"])
    np.testing.assert_array_equal(ensemble.feature_names_in_, frame.columns)
    assert sum(ensemble.partition_sizes_) == 300 and ensemble.n_partitions_ == 3
    prediction = ensemble.predict(X_dask)  # a dask series with the index of X
    assert isinstance(prediction, dd.Series)
    np.testing.assert_array_equal(prediction.compute().to_numpy(), ensemble.predict(frame))


def test_n_partitions_rechunks_a_dask_array_lazily(data):
    X, y = data
    X_dask, y_dask = da.from_array(X, chunks=(100, 8)), da.from_array(y, chunks=100)
    ensemble = PartitionedEnsemble(sgd(), n_partitions=4, random_state=0).fit(X_dask, y_dask)
    assert ensemble.partition_sizes_ == [75] * 4
    assert X_dask.chunks[0] == (100, 100, 100)  # the caller's array is unchanged
    alone = member_like(ensemble, 1, X[75:150], y[75:150])
    np.testing.assert_array_equal(ensemble.estimators_[1].coef_, alone.coef_)


def test_dask_data_never_reaches_the_client(process_client):
    """Fit on 200k x 20 float64 (32 MB) made on the workers; the client sees only models.

    The check would fail if the data were gathered: computing X here under the
    same measurement goes far over the bound (asserted below as a control).
    """
    n_rows, n_features = 200_000, 20
    data_bytes = n_rows * n_features * 8
    bound = data_bytes // 4  # well above what the models take, well below the data
    X = da.random.RandomState(0).random_sample((n_rows, n_features), chunks=(50_000, -1))
    y = (X[:, 0] + X[:, 1] > 1.0).astype(int)
    ensemble = PartitionedEnsemble(SGDClassifier(loss="log_loss", max_iter=5, tol=None),
                                   random_state=0, use_dask=True, client=process_client)
    tracemalloc.start()
    try:
        ensemble.fit(X, y)
        fit_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        gathered = process_client.compute(X).result()
        gather_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ensemble.partition_sizes_ == [50_000] * 4
    assert fit_peak < bound
    assert gathered.nbytes == data_bytes and gather_peak > data_bytes
    del gathered
    prediction = ensemble.predict(X[:1000])
    assert isinstance(prediction, da.Array)
    assert process_client.compute(prediction).result().mean() > 0.1


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("params, err, match", [
    ({"n_partitions": 0}, InvalidParameterError,
     "The 'n_partitions' parameter of PartitionedEnsemble must be None or an int in the "
     "range \\[1, inf\\). Got 0 instead."),
    ({"n_partitions": 2.0}, InvalidParameterError, "'n_partitions' parameter"),
    ({"voting": "average"}, InvalidParameterError, "'voting' parameter"),
    ({"estimator": "tree"}, InvalidParameterError, "'estimator' parameter"),
    ({"estimator": DecisionTreeClassifier}, InvalidParameterError,
     r"The 'estimator' parameter of PartitionedEnsemble must be an estimator instance "
     r"implementing 'fit' \(an instance such as LogisticRegression\(\), not the class"),
    ({"estimator": LinearSVC()}, ValueError,
     "'voting' parameter of PartitionedEnsemble is 'soft', but LinearSVC\\(\\) has no "
     "predict_proba"),
    ({"random_state": "seed"}, InvalidParameterError, "'random_state' parameter"),
    ({"n_partitions": 301}, ValueError,
     "cannot make n_partitions=301 partitions of n_samples=300 samples"),
    ({"n_partitions": 100}, ValueError,  # the classes have 99, 100 and 101 samples
     "cannot spread class 0 over n_partitions=100 partitions: it has only 99 sample"),
])
def test_bad_parameters_fail_before_any_work(submitted, data, params, err, match):
    X, y = data
    with pytest.raises(err, match=match):
        PartitionedEnsemble(**{"estimator": sgd(), **params}).fit(X, y)
    assert calls(submitted, "submit") == []


def _dask(X, y, X_chunks, y_chunks):
    return da.from_array(X, chunks=(X_chunks, -1)), da.from_array(y, chunks=(y_chunks,))


def _frames(X, y, X_divisions, y_divisions, known=True):
    X_frame = dd.from_pandas(pd.DataFrame(X), npartitions=1).repartition(divisions=X_divisions)
    y_frame = dd.from_pandas(pd.Series(y), npartitions=1).repartition(divisions=y_divisions)
    if not known:
        X_frame, y_frame = X_frame.clear_divisions(), y_frame.clear_divisions()
    return X_frame, y_frame


@pytest.mark.parametrize("make, params, match, summarized", [
    (lambda X, y: (da.from_array(X, chunks=(100, -1)), y), {},
     "both in memory or both as dask collections", False),
    (lambda X, y: _dask(X, y, 75, 100), {}, "X has 4 blocks of rows and y has 3", False),
    (lambda X, y: _dask(X, y, (50, 100, 150), (100, 100, 100)), {},
     "X has blocks of \\[50, 100, 150\\] rows and y of \\[100, 100, 100\\] rows", False),
    (lambda X, y: _frames(X, y, [0, 150, 299], [0, 100, 299]), {},
     "divisions differ", False),
    (lambda X, y: _frames(X, y, [0, 150, 299], [0, 100, 299], known=False), {},
     "block 0 of X has 150 rows but block 0 of y has 100", True),
    (lambda X, y: _frames(X, y, [0, 150, 299], [0, 150, 299]), {"n_partitions": 3},
     "n_partitions=3, but X has 2 partitions", False),
    (lambda X, y: _dask(X, y, (150, 0, 150), (150, 0, 150)), {},
     "Block 1 of the data given to PartitionedEnsemble is empty", True),
    (lambda X, y: _dask(X, np.sort(y), 100, 100), {},
     "Block 0 of the data given to PartitionedEnsemble has no sample of class 2", True),
    (lambda X, y: _dask(X, y, 100, 100), {"n_partitions": 301},
     "cannot make n_partitions=301 partitions of n_samples=300", False),
])
def test_bad_dask_blocks_fail_before_any_fit(submitted, data, make, params, match, summarized):
    X, y = data
    X_in, y_in = make(X, y)
    with pytest.raises(ValueError, match=match):
        PartitionedEnsemble(sgd(), **params).fit(X_in, y_in)
    assert "fit_block" not in calls(submitted, "submit")
    assert ("summarize_block" in calls(submitted, "submit")) == summarized


def test_bad_in_memory_data_fails_before_any_work(submitted):
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        PartitionedEnsemble(sgd()).fit(np.zeros((10, 2)), np.arange(9) % 2)
    with pytest.raises(ValueError, match="Unknown label type"):
        PartitionedEnsemble(sgd()).fit(np.zeros((10, 2)), np.linspace(0, 1, 10))
    assert calls(submitted, "submit") == []


# ----------------------------------------------------------------- scikit-learn's checks


@parametrize_with_checks([
    PartitionedEnsemble(DecisionTreeClassifier(max_depth=3)),
    PartitionedEnsemble(DecisionTreeClassifier(max_depth=3), n_partitions=2, voting="hard",
                        random_state=0),
    PartitionedEnsemble(Ridge(), n_partitions=2, random_state=0),
    PartitionedEnsemble(SGDRegressor(max_iter=20, tol=None)),
], expected_failed_checks=lambda estimator: {
    "check_sample_weight_equivalence_on_dense_data":
        "a repeated sample may be dealt to another part than its weighted original",
    "check_sample_weight_equivalence_on_sparse_data":
        "a repeated sample may be dealt to another part than its weighted original",
})
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ----------------------------------------------------------------- sample weights


def test_sample_weight_gives_each_member_its_rows(backend, data):
    X, y = data
    weights = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    ensemble = PartitionedEnsemble(DecisionTreeClassifier(max_depth=3), n_partitions=3,
                                   random_state=0, **backend).fit(X, y, sample_weight=weights)
    for index, rows in enumerate(ensemble.partition_indices_):
        alone = set_random_states(DecisionTreeClassifier(max_depth=3), ensemble.seeds_[index])
        alone.fit(X[rows], y[rows], sample_weight=weights[rows])
        np.testing.assert_array_equal(ensemble.estimators_[index].tree_.value,
                                      alone.tree_.value)


def test_sample_weight_with_dask_input_is_refused_before_any_work(submitted, data):
    X, y = data
    with pytest.raises(ValueError, match="'sample_weight' of PartitionedEnsemble.fit is only "
                                         "used with in-memory data"):
        PartitionedEnsemble(sgd()).fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100),
                                       sample_weight=np.ones(len(y)))
    assert not calls(submitted, "submit")
