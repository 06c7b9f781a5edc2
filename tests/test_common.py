"""What every public estimator promises, checked in one place.

scikit-learn's ``parametrize_with_checks`` runs in each estimator's own test
file (with instances suited to it); this file checks the contract DESIGN.md
states for all of them at once.
"""

from __future__ import annotations

import inspect
import pickle

import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor

import dasktrain
import dasktrain.metrics
from dasktrain import ensemble, linear_model, model_selection

ESTIMATORS = {
    "GeneticSearchCV": lambda: model_selection.GeneticSearchCV(
        LogisticRegression(), {"C": [0.1, 1.0]}),
    "GeneticFeatureSelectionCV": lambda: model_selection.GeneticFeatureSelectionCV(
        LogisticRegression()),
    "RepeatedClassifier": lambda: ensemble.RepeatedClassifier(LogisticRegression()),
    "RepeatedRegressor": lambda: ensemble.RepeatedRegressor(SGDRegressor()),
    "StackingEnsemble": lambda: ensemble.StackingEnsemble([("lr", LogisticRegression())]),
    "PartitionedEnsemble": lambda: ensemble.PartitionedEnsemble(LogisticRegression()),
    "ParameterAveragingClassifier": lambda: ensemble.ParameterAveragingClassifier(
        SGDClassifier()),
    "ParameterAveragingRegressor": lambda: ensemble.ParameterAveragingRegressor(
        SGDRegressor()),
    "DistributedLogisticRegression": lambda: linear_model.DistributedLogisticRegression(),
    "DistributedLinearRegression": lambda: linear_model.DistributedLinearRegression(),
}
RANDOMISED = {"GeneticSearchCV", "GeneticFeatureSelectionCV", "RepeatedClassifier", "RepeatedRegressor", "StackingEnsemble",
              "PartitionedEnsemble", "ParameterAveragingClassifier",
              "ParameterAveragingRegressor"}


def test_every_public_name_imports():
    for module in (dasktrain, ensemble, linear_model, model_selection, dasktrain.metrics):
        for name in module.__all__:
            assert getattr(module, name) is not None, name


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_shared_parameters(name):
    parameters = inspect.signature(type(ESTIMATORS[name]())).parameters
    assert parameters["use_dask"].default is False
    assert parameters["client"].default is None
    assert parameters["n_jobs"].default is None
    if name in RANDOMISED:
        assert parameters["random_state"].default is None


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_clone_shares_the_client_and_pickle_drops_it(name, inprocess_client):
    estimator = ESTIMATORS[name]().set_params(use_dask=True, client=inprocess_client)
    cloned = clone(estimator)
    assert cloned is not estimator
    assert cloned.client is inprocess_client
    restored = pickle.loads(pickle.dumps(estimator))
    assert restored.client is None
    assert restored.use_dask is True
    assert estimator.client is inprocess_client
