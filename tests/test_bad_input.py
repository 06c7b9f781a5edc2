"""Bad input, across every estimator and space: a clear error naming what is wrong, raised
before any task reaches the cluster.

Each row builds something from bad input and fits it on a real multi-process cluster (the
session's ``dask scheduler`` + ``dask worker`` processes); the scheduler's transition counter
and task table prove that nothing was sent.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import uniform
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

from dasktrain import (GeneticSearchCV, PartitionedEnsemble, RepeatedClassifier,
                       RepeatedRegressor, StackingEnsemble)
from dasktrain.ensemble import ParameterAveragingClassifier, ParameterAveragingRegressor
from dasktrain.linear_model import DistributedLinearRegression, DistributedLogisticRegression
from dasktrain.space import Categorical, Continuous, Integer

pytestmark = pytest.mark.cluster

X, Y = make_classification(n_samples=40, n_features=4, random_state=0)
X_NAN = X.copy()
X_NAN[3, 1] = np.nan
X_INF = X.copy()
X_INF[0, 0] = np.inf
Y_REG = X @ np.arange(1.0, 5.0)
SPACE = {"C": Continuous(0.01, 10.0, log=True)}


def search(**params):
    space = params.pop("space", SPACE)
    return GeneticSearchCV(LogisticRegression(), space,
                           **{"population_size": 2, "generations": 0, "cv": 2, **params})


def stacking(**params):
    estimators = params.pop("estimators", [("lr", LogisticRegression()),
                                           ("tree", DecisionTreeClassifier())])
    return StackingEnsemble(estimators, cv=2, **params)


# (what it is, make the estimator (given the cluster's client), fit arguments, error, match)
CASES = [
    # --- GeneticSearchCV: parameters
    ("search population_size=0", lambda c: search(population_size=0), (X, Y),
     ValueError, "'population_size'"),
    ("search generations=-1", lambda c: search(generations=-1), (X, Y),
     ValueError, "'generations'"),
    ("search strategy unknown", lambda c: search(strategy="islands"), (X, Y),
     ValueError, "'strategy'"),
    ("search probabilities over 1",
     lambda c: search(crossover_probability=0.8, mutation_probability=0.5), (X, Y),
     ValueError, "'crossover_probability'"),
    ("search eval_timeout negative", lambda c: search(eval_timeout=-1), (X, Y),
     ValueError, "'eval_timeout'"),
    ("search max_time as text", lambda c: search(max_time="1h"), (X, Y),
     TypeError, "'max_time'"),
    ("search tournament_size=0", lambda c: search(tournament_size=0), (X, Y),
     ValueError, "'tournament_size'"),
    ("search scoring name that does not exist", lambda c: search(scoring="acuracy"), (X, Y),
     ValueError, "'scoring'"),
    ("search cv larger than the data", lambda c: search(cv=41), (X, Y),
     ValueError, "n_splits|'cv'"),
    ("search cv=1", lambda c: search(cv=1), (X, Y), ValueError, "'cv'"),
    ("search estimator without fit", lambda c: GeneticSearchCV(object(), SPACE), (X, Y),
     TypeError, "'estimator'"),
    ("search n_jobs=0", lambda c: search(n_jobs=0), (X, Y), ValueError, "'n_jobs'"),
    # --- GeneticSearchCV: the space
    ("space name not a parameter", lambda c: search(space={"gamma": [1, 2]}), (X, Y),
     ValueError, "'param_distributions'.*gamma"),
    ("space an empty list", lambda c: search(space=[]), (X, Y), ValueError,
     "'param_distributions'"),
    ("space not a dict", lambda c: search(space=[("C", [1, 2])]), (X, Y),
     TypeError, "'param_distributions'"),
    ("space with an empty list", lambda c: search(space={"C": []}), (X, Y),
     ValueError, "'param_distributions'"),
    ("space value of an unsupported type", lambda c: search(space={"C": 3.0}), (X, Y),
     TypeError, "'param_distributions'"),
    ("space Integer with low > high", lambda c: search(space={"max_iter": Integer(50, 10)}),
     (X, Y), ValueError, "'high'"),
    ("space log Continuous from 0", lambda c: search(space={"C": Continuous(0, 1, log=True)}),
     (X, Y), ValueError, "'low'"),
    ("space Integer with float bounds", lambda c: search(space={"max_iter": Integer(1.5, 9)}),
     (X, Y), TypeError, "'low'"),
    ("space Categorical without choices", lambda c: search(space={"C": Categorical([])}),
     (X, Y), ValueError, "'choices'"),
    ("space Categorical weights of the wrong length",
     lambda c: search(space={"C": Categorical([1, 2], weights=[1])}), (X, Y),
     ValueError, "'weights'"),
    ("space scipy distribution for a missing name",
     lambda c: search(space={"alpha": uniform(0, 1)}), (X, Y),
     ValueError, "'param_distributions'.*alpha"),
    # --- data
    ("search X with NaN", lambda c: search(), (X_NAN, Y), ValueError, "NaN"),
    ("search lengths differ", lambda c: search(), (X, Y[:-3]), ValueError,
     "inconsistent numbers of samples"),
    ("repeated X with inf", lambda c: RepeatedClassifier(LogisticRegression()), (X_INF, Y),
     ValueError, "infinity"),
    ("repeated empty X", lambda c: RepeatedClassifier(LogisticRegression()),
     (np.empty((0, 4)), np.empty(0)), ValueError, "0 sample"),
    ("repeated lengths differ", lambda c: RepeatedClassifier(LogisticRegression()),
     (X, Y[:10]), ValueError, "inconsistent numbers of samples"),
    ("repeated continuous target for a classifier",
     lambda c: RepeatedClassifier(LogisticRegression()), (X, Y_REG), ValueError,
     "Unknown label type|continuous"),
    ("stacking X with NaN", lambda c: stacking(), (X_NAN, Y), ValueError, "NaN"),
    ("partitioned lengths differ", lambda c: PartitionedEnsemble(LogisticRegression(),
                                                                 n_partitions=2),
     (X, Y[:5]), ValueError, "inconsistent numbers of samples"),
    # --- other estimators: parameters
    ("repeated n_repeats=0", lambda c: RepeatedClassifier(LogisticRegression(), n_repeats=0),
     (X, Y), ValueError, "'n_repeats'"),
    ("repeated voting unknown",
     lambda c: RepeatedClassifier(LogisticRegression(), voting="majority"), (X, Y),
     ValueError, "'voting'"),
    ("repeated regressor given a classifier... estimator without fit",
     lambda c: RepeatedRegressor("ridge"), (X, Y_REG), TypeError, "'estimator'"),
    ("stacking estimators not a list", lambda c: stacking(estimators="lr"), (X, Y),
     (TypeError, ValueError), "'estimators'"),
    ("stacking duplicate names",
     lambda c: stacking(estimators=[("a", LogisticRegression()), ("a", Ridge())]), (X, Y),
     ValueError, "estimators of StackingEnsemble are not unique"),
    ("stacking stack_method unknown", lambda c: stacking(stack_method="vote"), (X, Y),
     ValueError, "'stack_method'"),
    ("partitioned n_partitions=0",
     lambda c: PartitionedEnsemble(LogisticRegression(), n_partitions=0), (X, Y),
     ValueError, "'n_partitions'"),
    ("averaging rounds=0",
     lambda c: ParameterAveragingClassifier(SGDClassifier(), n_partitions=2, rounds=0),
     (X, Y), ValueError, "'rounds'"),
    ("averaging estimator without partial_fit",
     lambda c: ParameterAveragingRegressor(Ridge(), n_partitions=2), (X, Y_REG),
     (TypeError, ValueError), "'estimator'"),
    ("gradient C negative", lambda c: DistributedLogisticRegression(C=-1.0), (X, Y),
     ValueError, "'C'"),
    ("gradient solver unknown", lambda c: DistributedLinearRegression(solver="sgd"),
     (X, Y_REG), ValueError, "'solver'"),
    ("gradient max_iter=0", lambda c: DistributedLogisticRegression(max_iter=0), (X, Y),
     ValueError, "'max_iter'"),
    # --- where to run
    ("use_dask not a bool", lambda c: RepeatedClassifier(LogisticRegression(), use_dask="yes"),
     (X, Y), (TypeError, ValueError), "'use_dask'"),
    ("client is an address string",
     lambda c: RepeatedClassifier(LogisticRegression(), use_dask=True,
                                  client="tcp://127.0.0.1:8786"), (X, Y),
     TypeError, "'client'"),
    ("client with use_dask=False",
     lambda c: search(client=c), (X, Y), ValueError, "'client'"),
]


def scheduler_activity(dask_scheduler):
    return dask_scheduler.transition_counter, len(dask_scheduler.tasks)


@pytest.mark.parametrize("what, make, fit_args, err, match", CASES,
                         ids=[case[0] for case in CASES])
def test_bad_input_is_refused_before_any_task_is_sent(what, make, fit_args, err, match,
                                                      process_client):
    before = process_client.run_on_scheduler(scheduler_activity)
    with pytest.raises(err, match=match):
        model = make(process_client)
        if "use_dask" in model.get_params() and "client" in model.get_params():
            if model.get_params()["client"] is None and model.get_params()["use_dask"] is False:
                model.set_params(use_dask=True, client=process_client)
        model.fit(*fit_args)
    assert process_client.run_on_scheduler(scheduler_activity) == before, what


def test_a_closed_client_is_refused_naming_it():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        client = Client(cluster, set_as_default=False)
        client.close()
    for model in [search(use_dask=True, client=client),
                  RepeatedClassifier(LogisticRegression(), use_dask=True, client=client),
                  stacking(use_dask=True, client=client),
                  DistributedLogisticRegression(use_dask=True, client=client)]:
        with pytest.raises(ValueError, match="'client' parameter .* running"):
            model.fit(X, Y)


def test_the_table_is_long_enough():
    assert len(CASES) + 1 >= 30
