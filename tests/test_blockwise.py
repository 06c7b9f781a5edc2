"""Prediction on dask inputs: block by block, lazily, returning dask collections."""

from __future__ import annotations

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from dask.base import is_dask_collection
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from dasktrain import PartitionedEnsemble, RepeatedClassifier, StackingEnsemble


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Two cores are shared by many processes: BLAS threads would only fight each other."""
    with threadpool_limits(1):
        yield


def tree(depth=2):
    return DecisionTreeClassifier(max_depth=depth, random_state=0)


#: name -> (unfitted estimator, data set, methods to apply blockwise)
CASES = {
    "stacking-classifier": (
        lambda: StackingEnsemble([("tree", tree()), ("nb", GaussianNB())], cv=3),
        "iris", ["predict", "predict_proba", "decision_function", "transform"]),
    "stacking-binary": (
        lambda: StackingEnsemble([("tree", tree()), ("nb", GaussianNB())], cv=3),
        "binary", ["predict", "predict_proba", "decision_function"]),
    "voting-hard": (
        lambda: StackingEnsemble([("tree", tree()), ("nb", GaussianNB()), ("deep", tree(4))],
                                 combine="voting", voting="hard"),
        "iris", ["predict"]),
    "stacking-regressor": (
        lambda: StackingEnsemble([("tree", DecisionTreeRegressor(max_depth=3)),
                                  ("ridge", Ridge())], cv=3, passthrough=True),
        "diabetes", ["predict", "transform"]),
    "partitioned-classifier": (
        lambda: PartitionedEnsemble(GaussianNB(), n_partitions=3, random_state=0),
        "iris", ["predict", "predict_proba", "predict_log_proba"]),
    "partitioned-regressor": (
        lambda: PartitionedEnsemble(Ridge(), n_partitions=2, random_state=0),
        "diabetes", ["predict"]),
    "repeated-classifier": (
        lambda: RepeatedClassifier(DecisionTreeClassifier(max_depth=2), n_repeats=2,
                                   random_state=0),
        "iris", ["predict", "predict_proba"]),
}


def load(name):
    if name == "diabetes":
        return load_diabetes(return_X_y=True)
    X, y = load_iris(return_X_y=True)
    return (X, y) if name == "iris" else (X, (y == 1).astype(int))


@pytest.fixture(scope="module")
def fitted():
    """Each case fitted once, on in-memory data, in this process."""
    result = {}
    for name, (make, data, _) in CASES.items():
        X, y = load(data)
        result[name] = make().fit(X, y), X
    return result


def explode(block):
    raise AssertionError("a block of X was computed while building the prediction")


METHOD_CASES = [(name, method) for name, (_, _, methods) in CASES.items() for method in methods]


@pytest.mark.parametrize("name, method", METHOD_CASES)
def test_dask_array_gives_a_lazy_dask_array(fitted, name, method):
    estimator, X = fitted[name]
    expected = getattr(estimator, method)(X)
    untouchable = da.from_array(X, chunks=(40, -1)).map_blocks(explode, dtype=X.dtype)
    lazy = getattr(estimator, method)(untouchable)  # builds the graph, computes nothing
    assert isinstance(lazy, da.Array)
    assert lazy.shape == expected.shape

    result = getattr(estimator, method)(da.from_array(X, chunks=(40, -1)))
    assert isinstance(result, da.Array) and result.numblocks[0] == -(-len(X) // 40)
    computed = result.compute()
    assert computed.shape == result.shape == expected.shape
    np.testing.assert_allclose(computed, expected, rtol=0, atol=1e-12)

    # columns split over blocks: whole rows are put together first
    split_columns = getattr(estimator, method)(da.from_array(X, chunks=(40, 2)))
    np.testing.assert_allclose(split_columns.compute(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, method", METHOD_CASES)
def test_dask_dataframe_gives_a_dask_collection(fitted, name, method):
    estimator, X = fitted[name]
    frame = dd.from_pandas(pd.DataFrame(X), npartitions=3)
    result = getattr(estimator, method)(frame)
    assert is_dask_collection(result)
    np.testing.assert_allclose(np.asarray(result.compute()), getattr(estimator, method)(X),
                               rtol=0, atol=1e-12)


def test_prediction_graph_runs_on_cluster_workers(process_client):
    """Fitted with a Client, the estimators still go into graphs the workers run."""
    X, y = load_iris(return_X_y=True)
    estimators = [
        StackingEnsemble([("tree", tree()), ("nb", GaussianNB())], cv=3, use_dask=True,
                         client=process_client),
        PartitionedEnsemble(tree(), n_partitions=2, random_state=0, use_dask=True,
                            client=process_client),
    ]
    X_dask = da.from_array(X, chunks=(50, -1))
    frame = dd.from_pandas(pd.DataFrame(X), npartitions=2)
    for estimator in estimators:
        estimator.fit(X, y)
        for method in ("predict", "predict_proba"):
            expected = getattr(estimator, method)(X)
            for data in (X_dask, frame):
                graph = getattr(estimator, method)(data)
                computed = process_client.compute(graph).result()
                np.testing.assert_allclose(np.asarray(computed), expected, rtol=0, atol=1e-12)
        assert estimator.client is process_client  # blockwise used a copy without it


def test_in_process_client_and_dataframe(inprocess_client):
    """A Client on the estimator is never tokenized into a dataframe's graph."""
    X, y = load_iris(return_X_y=True)
    stack = StackingEnsemble([("tree", tree()), ("nb", GaussianNB())], cv=3, use_dask=True,
                             client=inprocess_client).fit(X, y)
    frame = dd.from_pandas(pd.DataFrame(X), npartitions=2)
    result = stack.transform(frame)
    assert is_dask_collection(result)
    np.testing.assert_allclose(np.asarray(result.compute()), stack.transform(X), rtol=0,
                               atol=1e-12)


def test_several_regression_targets_keep_their_columns():
    """ParallelPostFit drops the column axis of predict; the shared blockwise keeps it."""
    import dask.array as da
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge

    from dasktrain import RepeatedRegressor

    X, y = make_regression(n_samples=60, n_features=4, n_targets=2, random_state=0)
    model = RepeatedRegressor(Ridge(), n_repeats=2, random_state=0).fit(X, y)
    lazy = model.predict(da.from_array(X, chunks=25))
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), model.predict(X))
