"""The ``dasktrain`` command: one sub-command per function ``add_<name>_command``.

A sub-command registers itself on the sub-parsers with its own options and a
``run`` function that takes the parsed arguments and returns an exit code;
:data:`SUBCOMMANDS` lists the registering functions, in the order ``--help``
shows them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings


class CommandError(Exception):
    """A problem with the command's inputs: printed as one line, exit status 2."""


def _int_at_least(minimum: int):
    """An argparse type: an int of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an int of at least {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an int of at least {minimum}, got {value}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"  # argparse names the type in its errors
    return parse


#: argparse types: an int of at least 1, of at least 0.
positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got "
                                         f"{text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text}")
    return value


#: The schemes of a Dask scheduler address that ``--scheduler`` takes (tcp when none is given;
#: inproc addresses serve only a caller of :func:`main` in the scheduler's own process).
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
#: Seconds to wait for the scheduler of ``--scheduler`` to answer.
CONNECT_TIMEOUT = 10


def scheduler_address(text: str) -> str:
    """An argparse type for ``--scheduler``: a Dask address ``[SCHEME://]HOST:PORT``.

    Returns the address unchanged; the scheme is one of :data:`SCHEDULER_SCHEMES`.

    Examples
    --------
    >>> scheduler_address("tcp://10.0.0.5:8786"), scheduler_address("[::1]:8786")
    ('tcp://10.0.0.5:8786', '[::1]:8786')
    """
    _parse_scheduler_address(text)
    return text


def _parse_scheduler_address(text: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a scheduler address; argparse.ArgumentTypeError if it is none."""
    expected = ("expected a Dask scheduler address SCHEME://HOST:PORT such as "
                f"tcp://10.0.0.5:8786 (SCHEME one of {', '.join(SCHEDULER_SCHEMES[:-1])}), "
                f"got {text!r}")
    scheme, sep, location = text.strip().rpartition("://")
    scheme = scheme.lower() if sep else "tcp"
    if scheme not in SCHEDULER_SCHEMES:
        raise argparse.ArgumentTypeError(expected)
    if scheme == "inproc":
        return scheme, location, 0
    try:
        parts = urllib.parse.urlsplit(f"{scheme}://{location}")
        port = parts.port
    except ValueError:  # a port that is not a number or not in 0-65535
        raise argparse.ArgumentTypeError(expected) from None
    if (not parts.hostname or not port or parts.path or parts.query or parts.fragment
            or parts.username is not None):
        raise argparse.ArgumentTypeError(expected)
    return scheme, parts.hostname, port


def _check_scheduler_listens(address: str) -> None:
    """CommandError naming --scheduler unless something accepts connections at `address`.

    A closed port is refused at once, where a Client would retry until its
    time-out; an open port that is no Dask scheduler is left to the Client.
    """
    scheme, host, port = _parse_scheduler_address(address)
    if scheme in ("ucx", "inproc"):  # not TCP endpoints
        return
    endpoint = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except TimeoutError:
        raise CommandError(f"--scheduler {address!r}: no answer from {endpoint} within "
                           f"{CONNECT_TIMEOUT} s; is a Dask scheduler running there?") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise CommandError(f"--scheduler {address!r}: cannot connect to {endpoint} "
                           f"({reason}); is a Dask scheduler running there?") from None


# --- dasktrain demo -----------------------------------------------------------------------

DEMO_DESCRIPTION = """\
Train a RepeatedClassifier (a scaled MLP, one clone per seed) on a Dask cluster
and a LogisticRegression baseline on scikit-learn's breast_cancer data, then
print the comparison table of evaluate() and the timings. Without --scheduler,
the repeats run on a temporary LocalCluster on 127.0.0.1 that is closed when
training ends."""


def add_demo_command(subparsers) -> argparse.ArgumentParser:
    """Register ``dasktrain demo``."""
    parser = subparsers.add_parser(
        "demo", help="train repeated MLPs on a Dask cluster and compare them with a baseline",
        description=DEMO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scheduler", metavar="ADDRESS", type=scheduler_address,
                        help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                             "(default: a temporary local cluster)")
    parser.add_argument("--n-workers", type=positive_int, default=2, metavar="N",
                        help="worker processes of the temporary local cluster (default: 2; "
                             "ignored with --scheduler)")
    parser.add_argument("--n-repeats", type=positive_int, default=None, metavar="N",
                        help="number of seeded MLPs (default: 8, or 4 with --quick)")
    parser.add_argument("--random-state", type=int, default=0, metavar="SEED",
                        help="seed of the split and of the repeats (default: 0)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller network and fewer repeats: a smoke test in seconds")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback when the work fails")
    parser.set_defaults(run=lambda args: _run_command(run_demo, args))
    return parser


def _connect_to_scheduler(address: str):
    """A Client to `address`, made by the execution layer (not the default client).

    CommandError naming --scheduler when nothing listens there or no scheduler answers
    within :data:`CONNECT_TIMEOUT` seconds.
    """
    from ._execution import connect

    _check_scheduler_listens(address)
    try:
        return connect(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as error:
        raise CommandError(f"--scheduler {address!r}: cannot connect to the scheduler: "
                           f"{error}") from None


@contextlib.contextmanager
def _embedded_cluster(n_workers: int):
    """A Client to a temporary local cluster whose workers ignore Ctrl-C, closed on exit.

    Ctrl-C in a terminal interrupts every process of the command's process group: the
    command stops its workers itself, so they must not die of it, each with a traceback.
    The workers are started while this process ignores SIGINT, so that they ignore it
    from their first instruction (a Ctrl-C while the cluster starts is ignored), then
    :data:`_WORKER_SIGINT_PRELOAD` quiets them on Ctrl-C.
    """
    from ._execution import local_cluster_client

    with contextlib.ExitStack() as stack:
        with _workers_quiet_on_sigint(), _children_ignore_sigint():
            client = stack.enter_context(local_cluster_client(n_workers))
        yield client


@contextlib.contextmanager
def _children_ignore_sigint():
    """Within: SIGINT is ignored, so that the processes started here ignore it too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


#: Python run in each worker process of the embedded cluster when it starts (a Dask preload):
#: on Ctrl-C, a worker quiets its logs and carries on until the command stops it, rather
#: than dying with a traceback or warning about tasks cut short.
_WORKER_SIGINT_PRELOAD = """\
import logging, signal, threading

def _quiet_on_interrupt(signum, frame):
    # CRITICAL: a heartbeat to a scheduler already stopped is logged as an ERROR
    logging.getLogger("distributed").setLevel(logging.CRITICAL)

if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, _quiet_on_interrupt)
"""


@contextlib.contextmanager
def _workers_quiet_on_sigint():
    """Within: worker processes started here run :data:`_WORKER_SIGINT_PRELOAD` (a Dask
    setting scoped to this block; their nannies keep it for any worker they restart)."""
    import dask.config

    # distributed's configuration defaults first: a dask.config.set of a key whose top level
    # is missing removes that whole level on exit, and every distributed default with it.
    from ._execution import _dask  # noqa: F401

    preload = list(dask.config.get("distributed.worker.preload", default=None) or [])
    with dask.config.set({"distributed.worker.preload": [*preload, _WORKER_SIGINT_PRELOAD]}):
        yield


def _serves_dashboard(client) -> bool:
    """Whether the scheduler behind `client` serves the dashboard (bokeh installed, not off)."""
    return "dashboard" in client.scheduler_info().get("services", {})


def run_demo(args) -> int:
    """Run ``dasktrain demo``; returns the exit code."""
    started = time.perf_counter()
    # This process is a program, not a library: keep the cluster's INFO logs (its own and its
    # workers', which inherit the environment) off the screen unless the user asked for them.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .ensemble import RepeatedClassifier
    from .metrics import evaluate

    n_repeats = args.n_repeats or (4 if args.quick else 8)
    hidden = (16,) if args.quick else (32,)
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.random_state)
    print(f"dasktrain demo: breast_cancer, {len(X_train)} training and {len(X_test)} test "
          f"samples, {X.shape[1]} features")

    from .ensemble import StackingEnsemble
    from .model_selection import GeneticSearchCV
    from .space import Continuous

    if args.scheduler:
        cluster = contextlib.closing(_connect_to_scheduler(args.scheduler))
        where = f"the cluster at {args.scheduler}"
    else:
        cluster = _embedded_cluster(args.n_workers)
        where = f"a temporary local cluster of {args.n_workers} workers"
    timings = {}
    with cluster as client:
        link = client.dashboard_link if _serves_dashboard(client) else None
        print(f"Working on {where}" + (f" (dashboard: {link})" if link else ""), flush=True)
        on_cluster = {"use_dask": True, "client": client}

        print(f"Training {n_repeats} MLPs {hidden} with different seeds ...", flush=True)
        mlp = make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=hidden, learning_rate_init=0.01, max_iter=300))
        tick = time.perf_counter()
        repeated = RepeatedClassifier(mlp, n_repeats=n_repeats, random_state=args.random_state,
                                      verbose=1, **on_cluster).fit(X_train, y_train)
        timings[f"{n_repeats} MLPs"] = time.perf_counter() - tick

        print("Stacking the repeated MLPs (out-of-fold, every fold fit a task) ...", flush=True)
        tick = time.perf_counter()
        stacked = StackingEnsemble.from_repeated(repeated, cv=3, **on_cluster).fit(
            X_train, y_train)
        timings["stacking"] = time.perf_counter() - tick

        population, generations = (6, 2) if args.quick else (10, 4)
        print(f"Genetic search of the baseline's C: {population} x {generations + 1} "
              "generations ...", flush=True)
        tick = time.perf_counter()
        search = GeneticSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            {"logisticregression__C": Continuous(1e-3, 1e2, log=True)}, cv=3,
            population_size=population, generations=generations,
            random_state=args.random_state, **on_cluster).fit(X_train, y_train)
        timings["genetic search"] = time.perf_counter() - tick
    print(f"  best C = {search.best_params_['logisticregression__C']:.4g}, "
          f"CV accuracy {search.best_score_:.4f}")

    tick = time.perf_counter()
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    baseline.fit(X_train, y_train)
    timings["logreg baseline"] = time.perf_counter() - tick

    tick = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        report = evaluate({f"mlp_x{n_repeats}": repeated, "mlp_stacked": stacked,
                           "logreg": baseline, "logreg_searched": search.best_estimator_},
                          X_test, y_test, metrics=["accuracy", "roc_auc", "neg_log_loss"])
    timings["evaluate"] = time.perf_counter() - tick

    print()
    print(report)
    print()
    print("Timings:")
    for name, seconds in timings.items():
        print(f"  {name + ':':<20}{seconds:7.2f} s")
    print(f"  {'total:':<20}{time.perf_counter() - started:7.2f} s")
    return 0


# --- dasktrain search / dasktrain repeat: shared pieces --------------------------------------

SPACE_FORMAT = """\
The space file (--space) is JSON, or YAML when PyYAML is installed. It maps each
parameter of the estimator to a list of choices or to an object:
  {"C": {"type": "continuous", "low": 1e-3, "high": 10, "log": true},
   "max_depth": {"type": "integer", "low": 2, "high": 12},
   "kernel": ["rbf", "poly"],
   "shrinking": {"type": "categorical", "choices": [true, false]}}
"integer" and "continuous" take low, high and optionally log (default false);
"categorical" takes choices and optionally weights."""

_DIMENSION_KEYS = {
    "integer": ({"low", "high"}, {"log"}),
    "continuous": ({"low", "high"}, {"log"}),
    "categorical": ({"choices"}, {"weights"}),
}


def parse_param(text: str) -> tuple[str, object]:
    """An argparse type for ``--param NAME=VALUE``: VALUE is JSON when it parses, else text.

    Examples
    --------
    >>> parse_param("C=10"), parse_param("kernel=rbf"), parse_param("class_weight=null")
    (('C', 10), ('kernel', 'rbf'), ('class_weight', None))
    """
    import json

    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), json.loads(value)
    except ValueError:
        return name.strip(), value


def read_table(path: str):
    """The pandas DataFrame of a CSV or Parquet file; CommandError when it cannot be read."""
    import pandas as pd

    if not os.path.exists(path):
        raise CommandError(f"the input file {path!r} does not exist")
    if os.path.isdir(path):
        raise CommandError(f"the input {path!r} is a directory, not a CSV or Parquet file")
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".gz", ".bz2", ".zip", ".xz"):
            return pd.read_csv(path)
    except ImportError as error:
        raise CommandError(f"reading {path!r} needs a Parquet engine: pip install pyarrow "
                           f"({error})") from None
    except (ValueError, OSError) as error:  # pandas' parser errors are ValueErrors
        raise CommandError(f"cannot read {path!r}: {error}") from None
    raise CommandError(f"the input file {path!r} must end in .csv or .parquet")


def split_target(frame, target: str, path: str):
    """(X, y): every column but `target`, and `target`."""
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise CommandError(f"the target column {target!r} is not in {path!r}; its columns are: "
                           f"{columns}")
    X = frame.drop(columns=[target])
    if X.shape[1] == 0:
        raise CommandError(f"{path!r} has no column besides the target {target!r}")
    if len(frame) == 0:
        raise CommandError(f"{path!r} has no rows")
    missing = int(frame[target].isna().sum())
    if missing:
        raise CommandError(f"the target column {target!r} of {path!r} has {missing} missing "
                           f"value(s) of {len(frame)}; drop or fill those rows first")
    return X, frame[target].to_numpy()


def make_estimator(path: str, params: list[tuple[str, object]]):
    """An instance of the estimator class at import path `path`, with `params` set."""
    import importlib

    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise CommandError(f"--estimator must be an import path such as sklearn.svm.SVC, "
                           f"got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CommandError(f"cannot import {module_name!r} for --estimator {path!r}: "
                           f"{error}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not callable(getattr(cls, "fit", None)):
        raise CommandError(f"--estimator {path!r} is not an estimator class (a class with "
                           f"fit) in {module_name!r}")
    try:
        return cls(**dict(params))
    except TypeError as error:
        raise CommandError(f"cannot make {path} with --param {dict(params)!r}: {error}") from None


def _dimension(name: str, spec):
    from .space import Categorical, Continuous, Integer

    if isinstance(spec, list):
        return Categorical(spec)
    if not isinstance(spec, dict):
        raise ValueError("expected a list of choices or an object with a 'type'; got "
                         f"{spec!r}")
    kind = spec.get("type")
    if kind not in _DIMENSION_KEYS:
        raise ValueError(f"'type' must be one of {sorted(_DIMENSION_KEYS)}; got {kind!r}")
    required, optional = _DIMENSION_KEYS[kind]
    keys = set(spec) - {"type"}
    if required - keys:
        raise ValueError(f"a {kind} needs {', '.join(sorted(required - keys))}")
    if keys - required - optional:
        unknown = ", ".join(sorted(keys - required - optional))
        raise ValueError(f"unknown key(s) for a {kind}: {unknown}")
    if kind == "categorical":
        return Categorical(spec["choices"], weights=spec.get("weights"))
    dimension = Integer if kind == "integer" else Continuous
    return dimension(spec["low"], spec["high"], log=spec.get("log", False))


def load_space(path: str, estimator=None) -> dict:
    """The search space of a JSON or YAML space file (see :data:`SPACE_FORMAT`).

    Parameters
    ----------
    path : str
        The file; ``.yaml`` and ``.yml`` files are read as YAML, any other as JSON.
    estimator : estimator or None, default=None
        When given, every parameter name must be one of its parameters.

    Returns
    -------
    space : dict
        Parameter name -> :class:`~dasktrain.space.Integer`,
        :class:`~dasktrain.space.Continuous` or :class:`~dasktrain.space.Categorical`.

    Examples
    --------
    >>> import json, os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "space.json")
    ...     with open(path, "w") as file:
    ...         json.dump({"C": {"type": "continuous", "low": 0.1, "high": 10, "log": True},
    ...                    "kernel": ["rbf", "poly"]}, file)
    ...     space = load_space(path)
    >>> space
    {'C': Continuous(0.1, 10.0, log=True), 'kernel': Categorical(['rbf', 'poly'])}
    """
    import json

    if not os.path.exists(path):
        raise CommandError(f"the space file {path!r} does not exist")
    with open(path, encoding="utf-8") as file:
        text = file.read()
    if os.path.splitext(path)[1].lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise CommandError(f"reading the YAML space file {path!r} needs PyYAML: "
                               "pip install pyyaml, or write the space as JSON") from None
        try:
            content = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise CommandError(f"bad space file {path!r}: not valid YAML: "
                               f"{' '.join(str(error).split())}") from None
    else:
        try:
            content = json.loads(text)
        except ValueError as error:
            raise CommandError(f"bad space file {path!r}: not valid JSON: {error}") from None
    if not isinstance(content, dict) or not content:
        raise CommandError(f"bad space file {path!r}: expected an object mapping parameter "
                           f"names to choices or ranges, got {content!r}")
    space = {}
    for name, spec in content.items():
        try:
            space[str(name)] = _dimension(name, spec)
        except (TypeError, ValueError) as error:
            raise CommandError(f"bad space file {path!r}: parameter {name!r}: {error}") from None
    if estimator is not None:
        from .space import as_space

        try:
            as_space(space, estimator)
        except (TypeError, ValueError) as error:
            raise CommandError(f"bad space file {path!r}: {error}") from None
    return space


def _json_value(value):
    """`value` as something json can write (numpy scalars as numbers, objects as repr)."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)


def _write_json(path: str, content: dict) -> None:
    import json

    with open(path, "w", encoding="utf-8") as file:
        json.dump(content, file, indent=2, default=_json_value, allow_nan=True)
        file.write("\n")


def _add_data_arguments(parser) -> None:
    """The options that `search` and `repeat` share: data, estimator, cluster, output."""
    parser.add_argument("input", metavar="DATA",
                        help="a .csv or .parquet file with one row per sample")
    parser.add_argument("--target", required=True, metavar="COLUMN",
                        help="the column to predict; every other column is a feature")
    parser.add_argument("--estimator", required=True, metavar="IMPORT.PATH",
                        help="the estimator class, e.g. sklearn.svm.SVC or "
                             "sklearn.ensemble.RandomForestRegressor")
    parser.add_argument("--param", action="append", type=parse_param, default=[],
                        metavar="NAME=VALUE",
                        help="a constructor parameter of the estimator; VALUE is read as JSON "
                             "when it can be (10, 0.5, true, null, [1, 2]), else as text; "
                             "repeat for several")
    parser.add_argument("--scheduler", metavar="ADDRESS", type=scheduler_address,
                        help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                             "(default: an embedded local cluster, closed at the end)")
    parser.add_argument("--n-workers", type=positive_int, default=2, metavar="N",
                        help="worker processes of the embedded local cluster (default: 2; "
                             "ignored with --scheduler)")
    parser.add_argument("--random-state", type=int, default=0, metavar="SEED",
                        help="seed of every random choice; the same seed gives the same "
                             "result (default: 0)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="directory for the results, created if needed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback when the work fails")


def _prepare(args, *, needs_space: bool):
    """Read and check every input before any cluster starts: (X, y, estimator, space).

    The output directory is checked last: it is created (when missing) and written to.
    """
    estimator = make_estimator(args.estimator, args.param)
    space = load_space(args.space, estimator) if needs_space else None
    for name in _scoring_names(args):
        _check_scorer_name(name)
    if args.scheduler:
        _check_scheduler_listens(args.scheduler)
    X, y = split_target(read_table(args.input), args.target, args.input)
    _check_scoring_fits(_scoring_names(args), estimator, X, y)
    args.created_directories = _make_output_directory(args.output)
    return X, y, estimator, space


def _scoring_names(args) -> list[str]:
    scoring = getattr(args, "scoring", None)
    if scoring is None:
        return []
    return [scoring] if isinstance(scoring, str) else list(scoring)


def _check_scorer_name(name: str) -> None:
    """CommandError naming --scoring unless `name` is one of scikit-learn's scorer names."""
    import difflib

    from sklearn.metrics import get_scorer_names

    names = sorted(get_scorer_names())
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise CommandError(f"--scoring {name!r} is not a scikit-learn scorer name; {hint}"
                       "the names are those of sklearn.metrics.get_scorer_names(), e.g. "
                       "accuracy, roc_auc, f1_macro, neg_log_loss, r2, neg_mean_squared_error")


def _check_scoring_fits(names: list[str], estimator, X, y) -> None:
    """CommandError naming --scoring when a scorer cannot score `estimator` on target `y`.

    Each scorer scores a stand-in before any work: a scikit-learn dummy (a
    classifier predicting the class priors, a regressor the mean) fitted on `y`,
    with the prediction methods of `estimator` only. A scorer that fails on it
    (a binary metric on a multiclass target, a classification metric on a
    continuous one, predict_proba that the estimator lacks...) would fail the same
    way after the whole run.
    """
    if not names:
        return
    from sklearn.base import is_classifier, is_regressor
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.metrics import get_scorer
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import type_of_target

    def has(method):
        return lambda stand_in: method in stand_in.methods

    class StandIn(DummyClassifier):
        def __init__(self, *, methods=()):
            super().__init__(strategy="prior")
            self.methods = methods

        @available_if(has("predict_proba"))
        def predict_proba(self, X):
            return super().predict_proba(X)

        @available_if(has("predict_log_proba"))
        def predict_log_proba(self, X):
            return super().predict_log_proba(X)

        @available_if(has("decision_function"))
        def decision_function(self, X):
            proba = super().predict_proba(X)
            return proba[:, 1] if proba.shape[1] == 2 else proba

    StandIn.__name__ = StandIn.__qualname__ = type(estimator).__name__  # in messages
    if is_classifier(estimator):
        methods = tuple(method for method in
                        ("predict_proba", "predict_log_proba", "decision_function")
                        if hasattr(estimator, method))
        stand_in = StandIn(methods=methods)
    elif is_regressor(estimator):
        stand_in = DummyRegressor()
    else:
        return
    try:
        stand_in.fit(X, y)
    except (TypeError, ValueError):
        return  # a target scikit-learn's dummies do not take: leave it to the estimator
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                get_scorer(name)(stand_in, X, y)
        except (AttributeError, TypeError, ValueError) as error:
            message = " ".join(str(error).split())
            hint = ""
            if not isinstance(error, AttributeError) and type_of_target(y) == "multiclass":
                hint = (" (for a multiclass target: accuracy, balanced_accuracy, f1_macro, "
                        "roc_auc_ovr, neg_log_loss...)")
            raise CommandError(f"--scoring {name!r} cannot score {type(estimator).__name__} "
                               f"on this target: {message}{hint}") from None


def _make_output_directory(path: str) -> list[str]:
    """Create the --output directory (and missing parents) and check that it is writable.

    Returns the directories created, innermost first, for :func:`_remove_created` to take
    back when the run fails.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise CommandError(f"--output {path!r} exists and is not a directory")
    missing = []
    folder = os.path.abspath(path)
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        _remove_created(missing)
        raise CommandError(f"--output {path!r} is not a directory that can be written: "
                           f"{error.strerror or error}") from None
    return missing


def _remove_created(directories: list[str]) -> None:
    """Remove the directories this run created, innermost first, while they are empty."""
    for directory in directories:
        try:
            os.rmdir(directory)
        except OSError:
            return


def _run_on_cluster(args, fit):
    """Call ``fit(client, n_jobs)`` on the --scheduler cluster or an embedded local one."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    if not args.scheduler:
        with _embedded_cluster(args.n_workers) as client:
            return fit(client, None)
    client = _connect_to_scheduler(args.scheduler)
    try:
        if not args.quiet and _serves_dashboard(client):
            print(f"Dask dashboard: {client.dashboard_link}", flush=True)
        return fit(client, None)
    finally:
        client.close()


def _run_command(run, args) -> int:
    """Run `run(args)`: a CommandError is one line on stderr and exit status 2, a failure
    of the work itself (an estimator that cannot fit this data...) one line and status 1,
    Ctrl-C one line and status 130 (128 + SIGINT, as a shell reports it)."""
    try:
        with _interrupt_quietly():
            return run(args)
    except BaseException as error:
        _remove_created(getattr(args, "created_directories", []))
        if isinstance(error, CommandError):
            print(f"dasktrain {args.command}: error: {error}", file=sys.stderr)
            return 2
        if isinstance(error, KeyboardInterrupt):
            # on a line of its own, after a progress bar cut short (a bar ends in no newline)
            start = "" if getattr(args, "quiet", False) else "\n"
            print(f"{start}dasktrain {args.command}: interrupted", file=sys.stderr)
            return 130
        if not isinstance(error, Exception) or args.traceback:
            raise
        message = " ".join(str(error).split())
        print(f"dasktrain {args.command}: failed: {type(error).__name__}: {message} "
              "(--traceback shows where)", file=sys.stderr)
        return 1


@contextlib.contextmanager
def _interrupt_quietly():
    """Within: Ctrl-C raises KeyboardInterrupt as usual, and quiets the cluster's warnings
    while it stops (a worker still busy when it is stopped is expected then)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield  # a caller that handles SIGINT itself keeps its handler
        return

    def interrupt(signum, frame):
        import logging

        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# --- dasktrain search ---------------------------------------------------------------------

SEARCH_DESCRIPTION = """\
Search the hyper-parameters of an estimator with GeneticSearchCV on a CSV or
Parquet file, on a Dask cluster (--scheduler) or on an embedded local cluster.

Writes to --output:
  cv_results.csv   one row per distinct candidate evaluated (with its generation)
  summary.json     best parameters and score, the settings, the history per generation
  model.joblib     the best estimator refitted on all the data (joblib.load it)

""" + SPACE_FORMAT + """

Example:
  dasktrain search data.csv --target label --estimator sklearn.svm.SVC \\
      --space space.json --generations 5 --population-size 12 --output results/"""


def add_search_command(subparsers) -> argparse.ArgumentParser:
    """Register ``dasktrain search``."""
    parser = subparsers.add_parser(
        "search", help="genetic hyper-parameter search on a CSV or Parquet file",
        description=SEARCH_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_arguments(parser)
    parser.add_argument("--space", required=True, metavar="FILE",
                        help="the search space, a JSON or YAML file (format above)")
    parser.add_argument("--generations", type=non_negative_int, default=10, metavar="N",
                        help="generations after the initial population; 0 evaluates the "
                             "initial population only (default: 10)")
    parser.add_argument("--population-size", type=positive_int, default=20, metavar="N",
                        help="candidates per generation (default: 20)")
    parser.add_argument("--cv", type=positive_int, default=5, metavar="K",
                        help="cross-validation folds (default: 5)")
    parser.add_argument("--scoring", metavar="NAME", default=None,
                        help="a scikit-learn scorer name, e.g. accuracy, roc_auc, r2 "
                             "(default: the estimator's score method)")
    parser.add_argument("--strategy", choices=["generational", "steady_state"],
                        default="generational",
                        help="breed a whole generation at a time, or a child as each "
                             "evaluation ends (default: generational)")
    parser.add_argument("--max-time", type=positive_seconds, default=None, metavar="SECONDS",
                        help="stop the search after this many seconds (default: no limit)")
    parser.set_defaults(run=lambda args: _run_command(run_search, args))
    return parser


def run_search(args) -> int:
    """Run ``dasktrain search``; returns the exit code."""
    import joblib
    import pandas as pd

    from .model_selection import GeneticSearchCV

    started = time.perf_counter()
    X, y, estimator, space = _prepare(args, needs_space=True)
    print(f"dasktrain search: {type(estimator).__name__} on {args.input} ({X.shape[0]} rows, "
          f"{X.shape[1]} features), {len(space)} parameters, "
          f"{args.population_size} x {args.generations + 1} generations, {args.cv}-fold CV",
          flush=True)

    def fit(client, n_jobs):
        search = GeneticSearchCV(
            estimator, space, scoring=args.scoring, cv=args.cv,
            population_size=args.population_size, generations=args.generations,
            strategy=args.strategy, max_time=args.max_time, random_state=args.random_state,
            use_dask=True, client=client, n_jobs=n_jobs, verbose=0 if args.quiet else 1)
        return search.fit(X, y)

    search = _run_on_cluster(args, fit)
    results = pd.DataFrame({key: value for key, value in search.cv_results_.items()
                            if key != "params"})
    results.insert(0, "params", [json_text(params) for params in search.cv_results_["params"]])
    results.to_csv(os.path.join(args.output, "cv_results.csv"), index=False)
    joblib.dump(search.best_estimator_, os.path.join(args.output, "model.joblib"))
    summary = {
        "command": "search",
        "input": os.path.abspath(args.input),
        "target": args.target,
        "estimator": args.estimator,
        "estimator_params": dict(args.param),
        "space": {name: repr(dimension) for name, dimension in space.items()},
        "best_params": search.best_params_,
        "best_score": search.best_score_,
        "scoring": args.scoring,
        "cv": args.cv,
        "generations": args.generations,
        "population_size": args.population_size,
        "strategy": args.strategy,
        "random_state": args.random_state,
        "n_candidates": len(search.cv_results_["params"]),
        "history": search.history_.to_dict(orient="records"),
        "scheduler": args.scheduler or f"embedded local cluster ({args.n_workers} workers)",
        "seconds": time.perf_counter() - started,
    }
    _write_json(os.path.join(args.output, "summary.json"), summary)
    print(f"best score {search.best_score_:.4f} with {json_text(search.best_params_)}")
    print(f"wrote cv_results.csv, summary.json and model.joblib to {args.output}")
    return 0


def json_text(value) -> str:
    """`value` as one line of JSON (numpy scalars as numbers, other objects as their repr)."""
    import json

    return json.dumps(value, default=_json_value)


# --- dasktrain repeat ---------------------------------------------------------------------

REPEAT_DESCRIPTION = """\
Fit an estimator several times with different seeds (RepeatedClassifier or
RepeatedRegressor) on a CSV or Parquet file, on a Dask cluster (--scheduler) or
on an embedded local cluster, and score every repeat on held-out rows.

Writes to --output:
  repeat_scores.csv  one row per repeat: its seed and its scores on the held-out rows
  summary.json       mean, std and score = mean - std of each metric, and the settings
  model.joblib       the fitted ensemble, which averages its members (joblib.load it)

Example:
  dasktrain repeat data.parquet --target price \\
      --estimator sklearn.neural_network.MLPRegressor --param max_iter=500 \\
      --n-repeats 8 --scoring r2 --output results/"""


def add_repeat_command(subparsers) -> argparse.ArgumentParser:
    """Register ``dasktrain repeat``."""
    parser = subparsers.add_parser(
        "repeat", help="repeated training with different seeds on a CSV or Parquet file",
        description=REPEAT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_arguments(parser)
    parser.add_argument("--n-repeats", type=positive_int, default=5, metavar="N",
                        help="number of seeded clones (default: 5)")
    parser.add_argument("--test-size", type=float, default=0.25, metavar="FRACTION",
                        help="fraction of the rows held out to score the repeats, "
                             "between 0 and 1 (default: 0.25)")
    parser.add_argument("--scoring", metavar="NAME", action="append", default=None,
                        help="a scikit-learn scorer name; repeat for several (default: "
                             "accuracy and roc_auc for a classifier, r2 and "
                             "neg_mean_squared_error for a regressor)")
    parser.set_defaults(run=lambda args: _run_command(run_repeat, args))
    return parser


def run_repeat(args) -> int:
    """Run ``dasktrain repeat``; returns the exit code."""
    import joblib
    from sklearn.base import is_classifier
    from sklearn.model_selection import train_test_split

    from .ensemble import RepeatedClassifier, RepeatedRegressor
    from .metrics import evaluate

    started = time.perf_counter()
    if not 0 < args.test_size < 1:
        raise CommandError(f"--test-size must be between 0 and 1, got {args.test_size}")
    X, y, estimator, _ = _prepare(args, needs_space=False)
    classifier = is_classifier(estimator)
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, random_state=args.random_state,
            stratify=y if classifier else None)
    except ValueError as error:
        raise CommandError(f"cannot hold out {args.test_size} of the rows of "
                           f"{args.input!r}: {error}") from None
    kind = RepeatedClassifier if classifier else RepeatedRegressor
    print(f"dasktrain repeat: {args.n_repeats} x {type(estimator).__name__} on {args.input} "
          f"({len(X_train)} training and {len(X_test)} held-out rows)", flush=True)

    def fit(client, n_jobs):
        model = kind(estimator, n_repeats=args.n_repeats, random_state=args.random_state,
                     use_dask=True, client=client, n_jobs=n_jobs,
                     verbose=0 if args.quiet else 1)
        return model.fit(X_train, y_train)

    model = _run_on_cluster(args, fit)
    name = args.estimator.rpartition(".")[2]
    try:
        report = evaluate({name: model}, X_test, y_test, metrics=args.scoring)
    except (TypeError, ValueError) as error:
        raise CommandError(f"cannot score with --scoring {args.scoring}: {error}") from None
    scores = report.scores.pivot(index="member", columns="metric", values="value")
    scores = scores[list(report.greater_is_better)].rename_axis(columns=None)
    scores.insert(0, "seed", [model.seeds_[member] for member in scores.index])
    scores.rename_axis("repeat").to_csv(os.path.join(args.output, "repeat_scores.csv"))
    # The Client of --scheduler is closed: the saved ensemble runs without one.
    joblib.dump(model.set_params(client=None), os.path.join(args.output, "model.joblib"))
    summary = {
        "command": "repeat",
        "input": os.path.abspath(args.input),
        "target": args.target,
        "estimator": args.estimator,
        "estimator_params": dict(args.param),
        "ensemble": kind.__name__,
        "n_repeats": args.n_repeats,
        "seeds": list(model.seeds_),
        "test_size": args.test_size,
        "random_state": args.random_state,
        "metrics": {metric: {stat: float(report.frame.loc[name, (metric, stat)])
                             for stat in ("mean", "std", "score")}
                    for metric in report.greater_is_better},
        "scheduler": args.scheduler or f"embedded local cluster ({args.n_workers} workers)",
        "seconds": time.perf_counter() - started,
    }
    _write_json(os.path.join(args.output, "summary.json"), summary)
    print()
    print(report)
    print(f"wrote repeat_scores.csv, summary.json and model.joblib to {args.output}")
    return 0


#: The functions that register the sub-commands, in the order ``--help`` lists them.
SUBCOMMANDS = [add_demo_command, add_search_command, add_repeat_command]


def build_parser() -> argparse.ArgumentParser:
    """The ``dasktrain`` argument parser with every sub-command registered.

    Examples
    --------
    >>> args = build_parser().parse_args(["demo", "--quick"])
    >>> args.command, args.quick, args.n_workers, args.scheduler
    ('demo', True, 2, None)
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="dasktrain",
        description="Train many scikit-learn models at once, on this machine or a Dask cluster.")
    parser.add_argument("--version", action="version", version=f"dasktrain {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for add_command in SUBCOMMANDS:
        add_command(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``dasktrain`` command (and of ``python -m dasktrain``).

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments; None reads ``sys.argv[1:]``.

    Returns
    -------
    code : int
        The exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.run(args) or 0)
