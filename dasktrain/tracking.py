"""Track searches in MLflow: a parent run per search, a nested run per candidate.

:class:`MLflowCallback` is a :class:`~dasktrain.callbacks.Callback` for
:class:`~dasktrain.GeneticSearchCV`. Everything is logged from the client (the
process that called ``fit``), through the callback's own
:class:`mlflow.MlflowClient`: MLflow's global state (active run, tracking URI,
active experiment) is never changed, and the workers need no MLflow at all.

MLflow is an optional dependency (``pip install "dasktrain[mlflow]"``); it is
imported when a search starts, not when this module is.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
import time

from .callbacks import Callback
from .utils import InstanceOf, Predicate, validate_params

__all__ = ["MLflowCallback"]

#: MLflow's limit on the length of a parameter value (MLflow >= 2).
MAX_PARAM_LENGTH = 6000
#: Search parameters that are not settings worth logging as parameters of the parent run.
_UNLOGGED_SEARCH_PARAMS = ("estimator", "param_distributions", "callbacks", "client")


def _import_mlflow():
    try:
        import mlflow
        import mlflow.sklearn  # noqa: F401  (the model flavour used at the end)
    except ImportError as error:
        raise ImportError(
            "MLflowCallback needs MLflow, which is not installed. Install it with "
            "pip install 'dasktrain[mlflow]' (or pip install mlflow)."
        ) from error
    return mlflow


#: Seconds to wait for an HTTP tracking server to answer before a search starts.
REACHABLE_TIMEOUT = 5.0


def _check_tracking_server(uri: str, timeout: float = REACHABLE_TIMEOUT) -> None:
    """Raise ConnectionError naming `uri` unless an HTTP(S) tracking server answers there.

    One request to the server's ``/health`` page, with `timeout` and no retries;
    any HTTP answer (even an error status, say from a proxy asking for a login)
    counts as reachable: only a server that cannot be reached is refused. Other
    stores (a local folder, ``sqlite:``, ``databricks``) are not checked. MLflow's
    own retry and time-out settings are neither read nor changed.

    Examples
    --------
    >>> _check_tracking_server("sqlite:///mlflow.db")  # not an HTTP store: nothing to check
    """
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https"):
        return
    health = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.urlopen(health, timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # a server answered
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, (ssl.SSLError, ssl.CertificateError)):
            return  # a server answered; MLflow has its own TLS settings
        if isinstance(reason, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        raise ConnectionError(
            f"MLflowCallback cannot reach the MLflow tracking server at {uri!r} ({reason}). "
            "Start the server, or pass a reachable 'tracking_uri' (or set "
            "MLFLOW_TRACKING_URI); a local store such as 'sqlite:///mlflow.db' needs no "
            "server."
        ) from None


def _param_text(value) -> str:
    """`value` as MLflow parameter text, shortened to MLflow's limit."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > MAX_PARAM_LENGTH:
        text = text[:MAX_PARAM_LENGTH - 3] + "..."
    return text


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _rows(cv_results: dict) -> list[dict]:
    """The candidates of a ``cv_results_`` dict, one dict per row (row order kept)."""
    n_rows = len(cv_results["params"])
    return [{key: values[index] for key, values in cv_results.items()}
            for index in range(n_rows)]


def _candidate_key(params: dict) -> str:
    from .space import value_key

    return value_key(dict(params))


def _check_log_model(value) -> bool:
    return isinstance(value, bool) or (
        isinstance(value, dict) and all(isinstance(key, str) for key in value))


class MLflowCallback(Callback):
    """Log a GeneticSearchCV fit to MLflow: each candidate a nested run, then the best model.

    At ``on_start`` a parent run is created for the search, with the search's
    settings (``population_size``, ``cv``, ``scoring``...) and the estimator
    and search space as parameters. At each ``on_generation`` the generation's
    best, mean and standard deviation of the scores, its number of evaluations
    and cache hits and its duration are logged as metrics of the parent run
    (step = generation), and every candidate evaluated in that generation as a
    nested run: its parameters, its score on each split
    (``split0_test_score``...), its mean and standard deviation
    (``mean_test_score``, ``std_test_score``), fit and score times, and its
    generation. At ``on_end`` any candidate not logged yet is logged from
    ``cv_results_``, then the best score and parameters and, with `log_model`,
    the refitted ``best_estimator_`` as an MLflow scikit-learn model (artifact
    ``model`` of the parent run, loadable with
    ``mlflow.sklearn.load_model(f"runs:/{callback.run_id_}/model")``).

    Candidates are taken from ``record["candidates"]`` (a list of dicts, each
    holding what the candidate's row of ``cv_results_`` holds: ``params``,
    ``split<i>_test_<metric>``, ``mean_test_<metric>``...) when the search
    provides it, so that they are logged as results arrive; otherwise they are
    all logged at the end, from ``cv_results_``.

    Parameters
    ----------
    experiment_name : str or None, default=None
        The MLflow experiment, created if it does not exist. None means the
        experiment named by the ``MLFLOW_EXPERIMENT_NAME`` environment variable
        if set, else MLflow's "Default" experiment.
    tracking_uri : str, path-like or None, default=None
        The tracking store (for example ``"sqlite:///mlflow.db"`` or
        ``"http://host:5000"``). None means MLflow's own configuration
        (``MLFLOW_TRACKING_URI`` or :func:`mlflow.set_tracking_uri`).
    log_model : bool or dict, default=True
        Whether to log the refitted best estimator at the end. A dict logs it
        and is passed as keyword arguments to :func:`mlflow.sklearn.save_model`
        (for example ``{"serialization_format": "cloudpickle",
        "pip_requirements": ["scikit-learn"]}``; MLflow's defaults save in the
        skops format and infer the requirements, which takes a few seconds).
    run_name : str or None, default=None
        The name of the parent run; None names it after the search and its
        estimator, e.g. ``"GeneticSearchCV(SVC)"``.

    Attributes
    ----------
    run_id_ : str or None
        The parent run of the last search (None before ``on_start``).
    experiment_id_ : str or None
        The experiment of that run.
    candidate_run_ids_ : list of str
        The nested runs, one per distinct candidate, in the order logged.
    model_uri_ : str or None
        ``"runs:/<run_id_>/model"`` once the best estimator is logged.

    See Also
    --------
    dasktrain.callbacks.Callback : the callback protocol.
    dasktrain.GeneticSearchCV : the search it tracks.

    Notes
    -----
    The parent run is marked FINISHED at ``on_end``. A callback instance tracks
    one search at a time; reusing it starts a new parent run.

    Examples
    --------
    >>> from dasktrain.tracking import MLflowCallback
    >>> callback = MLflowCallback(experiment_name="digits", log_model=False)
    >>> callback
    MLflowCallback(experiment_name='digits', tracking_uri=None, log_model=False)

    Passed to a search, ``GeneticSearchCV(..., callbacks=[callback])``, it
    logs the search while it runs; ``callback.run_id_`` is the parent run.
    """

    def __init__(self, experiment_name=None, tracking_uri=None, log_model=True, run_name=None):
        validate_params("MLflowCallback", {
            "experiment_name": experiment_name, "tracking_uri": tracking_uri,
            "log_model": log_model, "run_name": run_name,
        }, {
            "experiment_name": [str, None],
            "tracking_uri": [str, InstanceOf(os.PathLike), None],
            "log_model": [Predicate(_check_log_model, "a bool or a dict of keyword arguments")],
            "run_name": [str, None],
        })
        self.experiment_name = experiment_name
        self.tracking_uri = tracking_uri
        self.log_model = log_model
        self.run_name = run_name
        self.run_id_ = None
        self.experiment_id_ = None
        self.candidate_run_ids_ = []
        self.model_uri_ = None
        self._client = None
        self._runs = {}
        self._started = None  # False while on_start runs, or when it failed; True after

    def _params(self) -> dict:
        return {"experiment_name": self.experiment_name, "tracking_uri": self.tracking_uri,
                "log_model": self.log_model}

    def __getstate__(self):
        # An MlflowClient holds connections: a pickled callback (a checkpoint) starts without.
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    # ------------------------------------------------------------------ hooks

    def on_start(self, search) -> None:
        """Create the parent run and log the search's settings as its parameters."""
        mlflow = _import_mlflow()
        uri = self.tracking_uri
        if isinstance(uri, os.PathLike):
            uri = os.path.abspath(os.fspath(uri))
        self._client = None
        self.run_id_ = None
        self._started = False
        # before MLflow's own client, which retries an unreachable server for minutes
        _check_tracking_server(uri if uri is not None else mlflow.get_tracking_uri())
        self._client = mlflow.MlflowClient(tracking_uri=uri)
        self.experiment_id_ = self._experiment_id()
        estimator = getattr(search, "estimator", None)
        run_name = self.run_name or (
            f"{type(search).__name__}({type(estimator).__name__})" if estimator is not None
            else type(search).__name__)
        from . import __version__

        run = self._client.create_run(self.experiment_id_, run_name=run_name,
                                      tags={"dasktrain.version": __version__,
                                            "dasktrain.search": type(search).__name__})
        self.run_id_ = run.info.run_id
        self.candidate_run_ids_ = []
        self.model_uri_ = None
        self._runs = {}
        self._log_params(self.run_id_, self._search_params(search))
        self._started = True

    def on_generation(self, search, record: dict) -> None:
        """Log the generation's summary and its candidates as nested runs; never stops."""
        if self.run_id_ is None:
            self.on_start(search)
        from mlflow.entities import Metric

        step = int(record.get("generation", 0))
        now = int(time.time() * 1000)
        metrics = [Metric(f"generation_{name}", float(record[name]), now, step)
                   for name in ("best", "mean", "std", "evaluations", "cache_hits", "seconds")
                   if _is_number(record.get(name))]
        if metrics:
            self._client.log_batch(self.run_id_, metrics=metrics)
        for candidate in record.get("candidates") or ():
            self._log_candidate(dict(candidate), default_generation=step)
        return None

    def on_end(self, search) -> None:
        """Log the candidates not logged yet, the best result and model; finish the run.

        Does nothing when ``on_start`` failed for this search (its error is the one
        that matters).
        """
        if self.run_id_ is None:
            if getattr(self, "_started", None) is False:
                return
            self.on_start(search)
        cv_results = getattr(search, "cv_results_", None)
        if cv_results is not None and "params" in cv_results:
            for row in _rows(cv_results):
                self._log_candidate(row, default_generation=None)
        from mlflow.entities import Metric

        best_score = getattr(search, "best_score_", None)
        if _is_number(best_score):
            self._client.log_batch(self.run_id_, metrics=[
                Metric("best_score", float(best_score), int(time.time() * 1000), 0)])
        best_params = getattr(search, "best_params_", None)
        if isinstance(best_params, dict):
            self._log_params(self.run_id_, {f"best.{name}": value
                                            for name, value in best_params.items()})
        best_estimator = getattr(search, "best_estimator_", None)
        if self.log_model is not False and best_estimator is not None:
            self._log_sklearn_model(best_estimator)
        self._client.set_terminated(self.run_id_, status="FINISHED")

    # ------------------------------------------------------------------ helpers

    def _experiment_id(self) -> str:
        name = self.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
        experiment = self._client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        return self._client.create_experiment(name)

    @staticmethod
    def _search_params(search) -> dict:
        params = {}
        if hasattr(search, "get_params"):
            params = {name: value for name, value in search.get_params(deep=False).items()
                      if name not in _UNLOGGED_SEARCH_PARAMS}
        estimator = getattr(search, "estimator", None)
        if estimator is not None:
            params["estimator"] = estimator
        space = getattr(search, "param_distributions", None)
        if isinstance(space, dict):
            params.update({f"space.{name}": value for name, value in space.items()})
        return params

    def _log_params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(str(name), _param_text(value)) for name, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self._client.log_batch(run_id, params=items[start:start + 100])

    @staticmethod
    def _metrics_of(row: dict, step: int) -> list:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        return [Metric(name, float(value), now, step) for name, value in row.items()
                if name not in ("params", "generation") and not name.startswith("param_")
                and _is_number(value)]

    def _log_metrics(self, run_id: str, metrics: list, tags=()) -> None:
        for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 a batch
            self._client.log_batch(run_id, metrics=metrics[start:start + 1000],
                                   tags=tags if start == 0 else ())
        if not metrics and tags:
            self._client.log_batch(run_id, tags=tags)

    def _log_candidate(self, row: dict, default_generation) -> None:
        """One nested run per distinct candidate (a row of cv_results_).

        A candidate seen again (in ``cv_results_`` at the end) gets only the
        metrics its run lacks, such as the per-split scores and ranks.
        """
        from mlflow.entities import RunTag

        params = dict(row.get("params") or {})
        key = _candidate_key(params)
        generation = row.get("generation", default_generation)
        step = 0 if generation is None else int(generation)
        metrics = self._metrics_of(row, step)
        if key in self._runs:
            run_id, logged = self._runs[key]
            new = [metric for metric in metrics if metric.key not in logged]
            self._log_metrics(run_id, new)
            logged.update(metric.key for metric in new)
            return
        status = str(row.get("status") or "ok")
        tags = {"mlflow.parentRunId": self.run_id_, "dasktrain.status": status}
        if generation is not None:
            tags["dasktrain.generation"] = str(int(generation))
        name = f"candidate {len(self.candidate_run_ids_)}"
        run_id = self._client.create_run(self.experiment_id_, run_name=name,
                                         tags=tags).info.run_id
        logged_params = dict(params)
        if generation is not None:
            logged_params["generation"] = int(generation)
        self._log_params(run_id, logged_params)
        error = [RunTag("dasktrain.error", str(row["error"])[:5000])] if row.get("error") else []
        self._log_metrics(run_id, metrics, error)
        failed = status != "ok" or any(metric.key.startswith("mean_test_")
                                       and math.isnan(metric.value) for metric in metrics)
        self._client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")
        self._runs[key] = (run_id, {metric.key for metric in metrics})
        self.candidate_run_ids_.append(run_id)

    def _log_sklearn_model(self, estimator) -> None:
        import mlflow.sklearn

        options = self.log_model if isinstance(self.log_model, dict) else {}
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model")
            mlflow.sklearn.save_model(estimator, path, **options)
            self._client.log_artifacts(self.run_id_, path, artifact_path="model")
        self.model_uri_ = f"runs:/{self.run_id_}/model"
