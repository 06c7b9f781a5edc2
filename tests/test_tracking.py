"""MLflowCallback against a real local MLflow store (SQLite database + artifact folder in tmp)."""

from __future__ import annotations

import http.server
import os
import pickle
import re
import socket
import sys
import threading
import time

import mlflow
import mlflow.sklearn
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from dasktrain import GeneticSearchCV
from dasktrain.callbacks import Callback
from dasktrain.space import Integer
from dasktrain.tracking import MLflowCallback, _check_tracking_server

X, y = load_iris(return_X_y=True)
# Save quickly in tests: no skops type scan, no requirement inference (a few seconds each).
FAST_MODEL = {"serialization_format": "cloudpickle", "pip_requirements": ["scikit-learn"]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite tracking store for the module (creating its tables takes seconds)."""
    folder = tmp_path_factory.mktemp("mlflow")
    return {"uri": f"sqlite:///{folder / 'mlflow.db'}", "artifacts": folder / "artifacts"}


@pytest.fixture
def client(store, tmp_path, monkeypatch):
    # Experiments created by the callback put their artifacts under the working directory.
    monkeypatch.chdir(tmp_path)
    return mlflow.MlflowClient(store["uri"])


def children_of(client, parent):
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return {run.info.run_id: run for run in runs}


class CountLoggedRuns(Callback):
    """Notes, after each generation, how many candidate runs the MLflow callback has made."""

    def __init__(self, mlflow_callback):
        self.mlflow_callback, self.counts = mlflow_callback, []

    def on_generation(self, search, record):
        self.counts.append(len(self.mlflow_callback.candidate_run_ids_))


def small_search(callback, probe=None, **backend):
    return GeneticSearchCV(DecisionTreeClassifier(),
                           {"max_depth": Integer(1, 8), "criterion": ["gini", "entropy"]},
                           population_size=4, generations=1, cv=3, random_state=0,
                           callbacks=[callback] + ([probe] if probe else []), **backend)


@pytest.mark.parametrize("params, err, match", [
    ({"experiment_name": 3}, TypeError, "'experiment_name' parameter of MLflowCallback"),
    ({"tracking_uri": 5}, TypeError, "'tracking_uri' parameter of MLflowCallback"),
    ({"log_model": "yes"}, ValueError, "'log_model' parameter .* a bool or a dict"),
    ({"log_model": {1: 2}}, ValueError, "'log_model' parameter"),
    ({"run_name": ["a"]}, TypeError, "'run_name' parameter of MLflowCallback"),
])
def test_bad_parameters(params, err, match):
    with pytest.raises(err, match=match):
        MLflowCallback(**params)


def test_is_a_callback_and_pickles_without_its_client(store, client):
    callback = MLflowCallback(tracking_uri=store["uri"], experiment_name="pickle")
    assert isinstance(callback, Callback)
    callback.on_start(small_search(callback))
    copy = pickle.loads(pickle.dumps(callback))
    assert copy.run_id_ == callback.run_id_ and copy._client is None
    callback.on_end(object())  # a search without results: the run is simply finished
    assert client.get_run(callback.run_id_).info.status == "FINISHED"


def test_missing_mlflow_gives_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"pip install 'dasktrain\[mlflow\]'"):
        MLflowCallback().on_start(object())


def test_search_is_logged_as_parent_and_nested_runs(store, client, backend):
    callback = MLflowCallback(experiment_name="search", tracking_uri=store["uri"],
                              log_model=FAST_MODEL)
    probe = CountLoggedRuns(callback)
    search = small_search(callback, probe, **backend).fit(X, y)

    # Each generation's candidates were logged when that generation ended, not at the end.
    generations = search.cv_results_["generation"]
    assert probe.counts == [int((generations <= g).sum()) for g in search.history_["generation"]]

    parent = client.get_run(callback.run_id_)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "GeneticSearchCV(DecisionTreeClassifier)"
    assert parent.data.params["population_size"] == "4"
    assert parent.data.params["space.max_depth"] == repr(Integer(1, 8))
    assert parent.data.params["best.max_depth"] == repr(search.best_params_["max_depth"])
    assert parent.data.metrics["best_score"] == pytest.approx(search.best_score_)
    best = client.get_metric_history(callback.run_id_, "generation_best")
    assert [m.step for m in best] == list(search.history_["generation"])
    np.testing.assert_allclose([m.value for m in best], search.history_["best"])

    # One nested run per distinct candidate, with its params, generation and fold scores.
    children = children_of(client, parent)
    results = search.cv_results_
    assert sorted(children) == sorted(callback.candidate_run_ids_)
    assert len(children) == len(results["params"])
    by_params = {(run.data.params["max_depth"], run.data.params["criterion"]): run
                 for run in children.values()}
    for index, params in enumerate(results["params"]):
        run = by_params[(repr(params["max_depth"]), params["criterion"])]
        assert run.data.params["generation"] == str(results["generation"][index])
        for split in range(3):
            key = f"split{split}_test_score"
            assert run.data.metrics[key] == pytest.approx(results[key][index])
        assert run.data.metrics["mean_test_score"] == pytest.approx(
            results["mean_test_score"][index])
        assert run.info.status == "FINISHED"

    # The refitted best model is in the parent run and predicts like best_estimator_.
    assert callback.model_uri_ == f"runs:/{callback.run_id_}/model"
    loaded = mlflow.sklearn.load_model(
        client.download_artifacts(callback.run_id_, "model", dst_path="downloaded"))
    np.testing.assert_array_equal(loaded.predict(X), search.best_estimator_.predict(X))


class StreamingSearch:
    """A search that hands each generation's candidates to the callback as they finish."""

    estimator = DecisionTreeClassifier()
    param_distributions = {"max_depth": [1, 2, 3]}

    def get_params(self, deep=False):
        return {"estimator": self.estimator, "param_distributions": self.param_distributions,
                "generations": 1}


def candidate(depth, scores, generation, status="ok", error="", splits=True):
    row = {"params": {"max_depth": depth}, "generation": generation, "status": status,
           "error": error, "mean_test_score": float(np.mean(scores)),
           "std_test_score": float(np.std(scores))}
    if splits:
        row.update({f"split{i}_test_score": score for i, score in enumerate(scores)})
    return row


def test_candidates_of_a_record_are_logged_when_the_generation_ends(store, client):
    callback = MLflowCallback(experiment_name="stream", tracking_uri=store["uri"],
                              log_model=False, run_name="streamed")
    search = StreamingSearch()
    callback.on_start(search)
    callback.on_generation(search, {
        "generation": 0, "best": 0.9, "mean": 0.85, "std": 0.05, "evaluations": 2,
        "cache_hits": 0, "seconds": 0.1, "best_params": {"max_depth": 2},
        "candidates": [candidate(1, [0.8, 0.8], 0),
                       candidate(2, [0.9, 0.9], 0, splits=False)]})
    parent = client.get_run(callback.run_id_)
    assert parent.info.status == "RUNNING" and parent.info.run_name == "streamed"
    assert len(children_of(client, parent)) == 2  # logged before the search ends

    failed = candidate(3, [np.nan, np.nan], 1, status="error", error="ValueError: boom")
    callback.on_generation(search, {"generation": 1, "best": 0.9, "candidates": [
        candidate(2, [0.9, 0.9], 0), failed]})  # an already logged candidate is skipped
    search.cv_results_ = {key: [row[key] for row in (candidate(1, [0.8, 0.8], 0),
                                                     candidate(2, [0.9, 0.9], 0), failed)]
                          for key in failed}
    search.best_score_, search.best_params_ = 0.9, {"max_depth": 2}
    callback.on_end(search)

    children = children_of(client, client.get_run(callback.run_id_)).values()
    assert len(children) == 3  # on_end found no new candidate in cv_results_...
    depth_2 = next(run for run in children if run.data.params["max_depth"] == "2")
    assert depth_2.data.metrics["split1_test_score"] == 0.9  # ...but the splits it lacked
    statuses = {run.data.params["max_depth"]: run.info.status for run in children}
    assert statuses == {"1": "FINISHED", "2": "FINISHED", "3": "FAILED"}
    errors = [run.data.tags.get("dasktrain.error") for run in children]
    assert "ValueError: boom" in errors
    assert callback.model_uri_ is None  # nothing to log: no best_estimator_, and log_model=False
    steps = client.get_metric_history(callback.run_id_, "generation_best")
    assert [m.step for m in steps] == [0, 1]


def test_default_experiment_comes_from_the_environment(store, client, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    callback = MLflowCallback(tracking_uri=store["uri"], log_model=False)
    callback.on_start(StreamingSearch())
    callback.on_end(StreamingSearch())
    experiment = client.get_experiment(callback.experiment_id_)
    assert experiment.name == "from-env"


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections: bound (so no one takes it), not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("through", ["tracking_uri", "MLFLOW_TRACKING_URI"])
def test_an_unreachable_server_fails_within_seconds_before_the_search_starts(
        closed_port, monkeypatch, through):
    uri = f"http://127.0.0.1:{closed_port}"
    mlflow_settings = {name: value for name, value in os.environ.items()
                       if name.startswith("MLFLOW_HTTP")}
    if through == "tracking_uri":
        callback = MLflowCallback(tracking_uri=uri, log_model=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        callback = MLflowCallback(log_model=False)
    probe = CountLoggedRuns(callback)
    search = small_search(callback, probe)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=re.escape(
            f"MLflowCallback cannot reach the MLflow tracking server at {uri!r}")):
        search.fit(X, y)
    assert time.monotonic() - started < 10  # MLflow's own retries took 366 s
    assert probe.counts == [] and not hasattr(search, "cv_results_")  # nothing evaluated
    assert callback.run_id_ is None
    # MLflow's global configuration is as it was
    assert {name: value for name, value in os.environ.items()
            if name.startswith("MLFLOW_HTTP")} == mlflow_settings


class AnswerEverything(http.server.BaseHTTPRequestHandler):
    """An HTTP server that is not MLflow: every page is 404 (a proxy's login page, say)."""

    def do_GET(self):
        self.send_error(404)

    def log_message(self, *args):
        pass


def test_any_http_answer_counts_as_a_reachable_server():
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), AnswerEverything) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            _check_tracking_server(f"http://127.0.0.1:{server.server_address[1]}/prefix/")
        finally:
            server.shutdown()
            thread.join()


@pytest.mark.parametrize("uri", ["sqlite:///nowhere/mlflow.db", "file:///nowhere", "databricks",
                                 "/a/local/folder"])
def test_stores_that_are_not_http_are_not_probed(uri):
    _check_tracking_server(uri)
