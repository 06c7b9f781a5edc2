"""delayed_fit: the same fit as ``fit``, as a lazy dask graph, on every Dask scheduler."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from _recording import RecordingBackend, calls
from dask.delayed import Delayed
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier

from dasktrain import (PartitionedEnsemble, RepeatedClassifier, RepeatedRegressor,
                       StackingEnsemble, delayed_fit)
from dasktrain.utils import InvalidParameterError


def tree(depth=2, seed=0):
    return DecisionTreeClassifier(max_depth=depth, random_state=seed)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


#: name -> unfitted estimator; each is fitted by delayed_fit and by fit, and compared
ESTIMATORS = {
    "repeated": lambda: RepeatedClassifier(tree(3), n_repeats=3, random_state=0),
    "stacking": lambda: StackingEnsemble([("tree", tree()), ("nb", GaussianNB())], cv=3,
                                         random_state=0),
    "voting": lambda: StackingEnsemble([("tree", tree()), ("nb", GaussianNB())],
                                       combine="voting"),
    "partitioned": lambda: PartitionedEnsemble(GaussianNB(), n_partitions=3, random_state=0),
    "plain": lambda: LogisticRegression(max_iter=500),
}


def check_same_model(delayed_result, fitted, X):
    assert type(delayed_result) is type(fitted)
    for method in ("predict", "predict_proba"):
        np.testing.assert_allclose(getattr(delayed_result, method)(X),
                                   getattr(fitted, method)(X), rtol=0, atol=1e-12)


def compute_all(iris, scheduler):
    X, y = iris
    made = {name: make() for name, make in ESTIMATORS.items()}
    lazy = [delayed_fit(estimator, X, y) for estimator in made.values()]
    assert all(isinstance(item, Delayed) for item in lazy)
    results = dask.compute(*lazy, scheduler=scheduler)
    for (name, estimator), result in zip(made.items(), results):
        assert not hasattr(estimator, "estimators_") and not hasattr(estimator, "coef_")
        check_same_model(result, clone(estimator).fit(X, y), X)


@pytest.mark.parametrize("scheduler", ["synchronous", "threads", "processes"])
def test_computes_on_local_schedulers_as_fit(iris, scheduler):
    compute_all(iris, scheduler)


def test_computes_on_a_distributed_cluster_as_fit(iris, process_client):
    compute_all(iris, process_client.get)


def test_regressor_and_dask_input_as_fit(iris):
    X, y = iris
    regressor = RepeatedRegressor(Ridge(), n_repeats=2, random_state=0)
    np.testing.assert_allclose(delayed_fit(regressor, X, y.astype(float)).compute().predict(X),
                               clone(regressor).fit(X, y.astype(float)).predict(X))
    order = np.random.default_rng(0).permutation(len(y))
    X_dask = da.from_array(X[order], chunks=(50, -1))
    y_dask = da.from_array(y[order], chunks=50)
    partitioned = PartitionedEnsemble(GaussianNB(), random_state=0)
    result = delayed_fit(partitioned, X_dask, y_dask).compute(scheduler="threads")
    assert result.partition_sizes_ == [50, 50, 50]
    check_same_model(result, clone(partitioned).fit(X_dask, y_dask), X)


def test_one_task_per_member_and_fold_keyed_by_content(iris):
    X, y = iris
    stack = StackingEnsemble([("tree", tree()), ("nb", GaussianNB())],
                             LogisticRegression(random_state=0), cv=4)
    graph = dict(delayed_fit(stack, X, y).__dask_graph__())
    names = [str(key).rsplit("-", 1)[0] for key in graph]
    assert names.count("fit_fold_and_predict") == 2 * 4
    assert names.count("fit_clone") == 2
    assert names.count("fit_final_estimator") == 1
    assert names.count("data") == 2  # X and y, one key each
    # the same description, built again, has the same keys
    assert set(graph) == set(dict(delayed_fit(stack, X, y).__dask_graph__()))
    rep = RepeatedClassifier(tree(), n_repeats=5, random_state=0)
    rep_names = [str(key).rsplit("-", 1)[0] for key in delayed_fit(rep, X, y).__dask_graph__()]
    assert rep_names.count("fit_clone") == 5


def test_fit_runs_the_tasks_that_delayed_fit_describes(iris, monkeypatch):
    X, y = iris
    log = []
    original = StackingEnsemble._execution_backend
    monkeypatch.setattr(StackingEnsemble, "_execution_backend",
                        lambda self: RecordingBackend(original(self), log))
    stack = StackingEnsemble([("tree", tree()), ("nb", GaussianNB())], cv=3)
    stack.fit(X, y)
    graph = delayed_fit(stack, X, y).__dask_graph__()
    described = sorted(str(key).rsplit("-", 1)[0] for key in graph
                       if not str(key).startswith(("data-", "stackingensemble-")))
    assert sorted(calls(log, "submit")) == described


def test_composed_fits_send_the_data_once_and_share_equal_fits(iris):
    X, y = iris
    folds = KFold(3, shuffle=True, random_state=0)
    first = StackingEnsemble([("tree", tree()), ("nb", GaussianNB())], cv=folds)
    second = StackingEnsemble([("tree", tree()), ("deep", tree(4))], cv=folds)
    rep = RepeatedClassifier(tree(3), n_repeats=2, random_state=0)
    lazy = [delayed_fit(first, X, y), delayed_fit(second, X, y), delayed_fit(rep, X, y)]
    merged = {}
    total = 0
    for item in lazy:
        graph = dict(item.__dask_graph__())
        total += len(graph)
        merged.update(graph)
    names = [str(key).rsplit("-", 1)[0] for key in merged]
    assert names.count("data") == 2  # X and y once for the three fits
    # the tree's 3 fold fits and its full fit are shared by both stacks
    assert names.count("fit_fold_and_predict") == 3 * 3
    assert names.count("fit_clone") == 3 + 2
    assert len(merged) < total
    fitted_first, fitted_second, _ = dask.compute(*lazy, scheduler="synchronous")
    check_same_model(fitted_first, clone(first).fit(X, y), X)
    check_same_model(fitted_second, clone(second).fit(X, y), X)
    # one shared task, two fitted objects
    assert fitted_first.estimators_[0] is not fitted_second.estimators_[0]


def test_equal_base_estimators_in_one_stack_are_fitted_once_but_kept_apart(iris):
    X, y = iris
    stack = StackingEnsemble([("a", tree()), ("b", tree())], cv=3)
    names = [str(key).rsplit("-", 1)[0] for key in delayed_fit(stack, X, y).__dask_graph__()]
    assert names.count("fit_clone") == 1 and names.count("fit_fold_and_predict") == 3
    fitted = stack.fit(X, y)
    assert fitted.estimators_[0] is not fitted.estimators_[1]
    np.testing.assert_array_equal(fitted.estimators_[0].predict(X),
                                  fitted.estimators_[1].predict(X))


def test_unseeded_equal_estimators_are_fitted_apart(iris):
    """With random_state=None two equal estimators are two random fits, as in scikit-learn."""
    X, y = iris
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=3, max_depth=2)
    stack = StackingEnsemble([("a", forest), ("b", clone(forest))], cv=3)
    names = [str(key).rsplit("-", 1)[0] for key in delayed_fit(stack, X, y).__dask_graph__()]
    assert names.count("fit_clone") == 2 and names.count("fit_fold_and_predict") == 6
    fitted = stack.fit(X, y)
    first, second = fitted.estimators_
    assert not all(np.array_equal(a.tree_.value, b.tree_.value)
                   for a, b in zip(first.estimators_, second.estimators_))


@pytest.mark.parametrize("estimator, data, err, match", [
    (RepeatedClassifier(tree(), n_repeats=0), "iris", InvalidParameterError,
     "'n_repeats' parameter of RepeatedClassifier"),
    (StackingEnsemble([("lr", LogisticRegression)]), "iris", TypeError,
     "is the class LogisticRegression, not an instance"),
    (PartitionedEnsemble(GaussianNB()), "iris", ValueError,
     "delayed_fit of PartitionedEnsemble on in-memory data needs an explicit n_partitions"),
    (RepeatedClassifier(tree()), "short y", ValueError, "inconsistent numbers of samples"),
])
def test_bad_input_is_refused_when_the_graph_is_built(iris, estimator, data, err, match):
    X, y = iris
    if data == "short y":
        y = y[:-1]
    with pytest.raises(err, match=match):
        delayed_fit(estimator, X, y)


def test_a_failing_block_check_fails_the_computation(iris):
    X, y = iris  # sorted by class: the first block has no sample of class 2
    lazy = delayed_fit(PartitionedEnsemble(GaussianNB()), da.from_array(X, chunks=(50, -1)),
                       da.from_array(y, chunks=50))
    with pytest.raises(ValueError, match="Block 0 of the data given to PartitionedEnsemble has "
                                         "no sample of class 1"):
        lazy.compute(scheduler="synchronous")


def test_a_dasktrain_estimator_without_members_is_one_task_run_in_process(iris, inprocess_client):
    from dasktrain.linear_model import DistributedLogisticRegression

    X, y = iris
    model = DistributedLogisticRegression(n_partitions=3, use_dask=True, client=inprocess_client)
    lazy = delayed_fit(model, X, y)
    assert len(dict(lazy.__dask_graph__())) == 3  # X, y and the fit
    fitted = lazy.compute(scheduler="synchronous")
    assert fitted.use_dask is False and fitted.client is None
    assert model.client is inprocess_client and not hasattr(model, "coef_")
    expected = DistributedLogisticRegression(n_partitions=3).fit(X, y)
    np.testing.assert_allclose(fitted.coef_, expected.coef_)


def test_a_local_fit_does_not_import_dask():
    """Describing the work for fit hashes with joblib; dask is imported by delayed_fit only."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from sklearn.datasets import load_iris\n"
            "from sklearn.naive_bayes import GaussianNB\n"
            "from dasktrain import RepeatedClassifier, StackingEnsemble\n"
            "X, y = load_iris(return_X_y=True)\n"
            "RepeatedClassifier(GaussianNB(), n_repeats=2, voting='hard').fit(X, y)\n"
            "StackingEnsemble([('nb', GaussianNB())], cv=3).fit(X, y)\n"
            "print('dask' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
