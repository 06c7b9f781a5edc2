"""``dasktrain search`` and ``dasktrain repeat``: real runs in subprocesses on tiny files.

The runs use the session's ``dask scheduler``/``dask worker`` processes through
``--scheduler``, and one run starts the embedded local cluster. Input errors are
checked in this process: they are reported before any cluster starts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from dasktrain import GeneticSearchCV, RepeatedClassifier
from dasktrain.cli import CONNECT_TIMEOUT, build_parser, load_space, main
from dasktrain.space import Categorical, Continuous, Integer

SPACE = {"max_depth": {"type": "integer", "low": 1, "high": 6},
         "criterion": ["gini", "entropy"]}
SEARCH_ARGS = ["--target", "species", "--estimator", "sklearn.tree.DecisionTreeClassifier",
               "--generations", "1", "--population-size", "4", "--cv", "3"]


@pytest.fixture
def files(tmp_path):
    iris = load_iris(as_frame=True)
    frame = iris.data.assign(species=iris.target_names[iris.target])
    frame = frame.iloc[::2].reset_index(drop=True)  # 75 rows
    paths = {"csv": tmp_path / "iris.csv", "parquet": tmp_path / "iris.parquet",
             "space": tmp_path / "space.json", "yaml": tmp_path / "space.yaml"}
    frame.to_csv(paths["csv"], index=False)
    frame.to_parquet(paths["parquet"])
    paths["space"].write_text(json.dumps(SPACE))
    paths["yaml"].write_text("max_depth: {type: integer, low: 1, high: 6}\n"
                             "criterion: [gini, entropy]\n")
    files = {name: str(path) for name, path in paths.items()}
    files["X"], files["y"] = frame.drop(columns="species"), frame["species"].to_numpy()
    return files


def run_cli(*args, timeout=240):
    result = subprocess.run([sys.executable, "-m", "dasktrain", *map(str, args)],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def check_search_output(output, files, space) -> dict:
    """The three files of a search run, and the same search run here gives the same results."""
    summary = json.loads((output / "summary.json").read_text())
    results = pd.read_csv(output / "cv_results.csv")
    expected = GeneticSearchCV(DecisionTreeClassifier(), space, population_size=4,
                               generations=1, cv=3, random_state=0).fit(files["X"], files["y"])
    assert [json.loads(params) for params in results["params"]] == \
        expected.cv_results_["params"]
    np.testing.assert_allclose(results["mean_test_score"], expected.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(results["generation"], expected.cv_results_["generation"])
    assert summary["best_params"] == expected.best_params_
    assert summary["best_score"] == pytest.approx(expected.best_score_)
    assert summary["n_candidates"] == len(results)
    assert [row["generation"] for row in summary["history"]] == [0, 1]
    model = joblib.load(output / "model.joblib")
    assert model.get_params()["max_depth"] == expected.best_params_["max_depth"]
    np.testing.assert_array_equal(model.predict(files["X"]),
                                  expected.best_estimator_.predict(files["X"]))
    return summary


def test_search_csv_on_the_embedded_local_cluster(files, tmp_path):
    output = tmp_path / "out"
    result = run_cli("search", files["csv"], *SEARCH_ARGS, "--space", files["space"],
                     "--output", output, "--quiet")
    assert "best score" in result.stdout
    summary = check_search_output(output, files, load_space(files["space"]))
    assert summary["scheduler"].startswith("embedded local cluster")


def test_search_parquet_with_a_yaml_space_on_a_scheduler(files, tmp_path, process_cluster):
    output = tmp_path / "out"
    result = run_cli("search", files["parquet"], *SEARCH_ARGS, "--space", files["yaml"],
                     "--scheduler", process_cluster.address, "--output", output)
    port = process_cluster.client().scheduler_info()["services"]["dashboard"]
    assert f"Dask dashboard: http://127.0.0.1:{port}/status" in result.stdout
    summary = check_search_output(output, files, load_space(files["yaml"]))
    assert summary["scheduler"] == process_cluster.address


def test_repeat_on_a_scheduler(files, tmp_path, process_cluster):
    output = tmp_path / "out"
    run_cli("repeat", files["csv"], "--target", "species", "--estimator",
            "sklearn.tree.DecisionTreeClassifier", "--param", "max_depth=2", "--param",
            "max_features=0.5", "--n-repeats", "3", "--scoring", "accuracy",
            "--scheduler", process_cluster.address, "--output", output, "--quiet")
    scores = pd.read_csv(output / "repeat_scores.csv")
    summary = json.loads((output / "summary.json").read_text())
    model = joblib.load(output / "model.joblib")
    expected = RepeatedClassifier(DecisionTreeClassifier(max_depth=2, max_features=0.5),
                                  n_repeats=3, random_state=0)
    assert list(scores.columns) == ["repeat", "seed", "accuracy"]
    assert summary["seeds"] == list(scores["seed"]) == list(model.seeds_)
    assert summary["estimator_params"] == {"max_depth": 2, "max_features": 0.5}
    assert summary["metrics"]["accuracy"]["mean"] == pytest.approx(scores["accuracy"].mean())
    assert summary["metrics"]["accuracy"]["score"] == pytest.approx(
        scores["accuracy"].mean() - scores["accuracy"].std(ddof=0))
    assert isinstance(model, RepeatedClassifier) and len(model.estimators_) == 3
    # The seeds depend on --random-state only, as for the estimator itself.
    expected.fit(files["X"], files["y"])
    assert list(model.seeds_) == list(expected.seeds_)


def test_the_dashboard_link_is_printed_only_when_the_scheduler_serves_one(
        files, tmp_path, inprocess_client, capsys):
    address = inprocess_client.scheduler_info()["address"]
    assert main(["repeat", files["csv"], "--target", "species", "--estimator",
                 "sklearn.tree.DecisionTreeClassifier", "--n-repeats", "2", "--scheduler",
                 address, "--output", str(tmp_path / "out")]) == 0
    port = inprocess_client.scheduler_info()["services"]["dashboard"]
    assert re.search(rf"Dask dashboard: http://\S+:{port}/status", capsys.readouterr().out)
    assert main(["repeat", files["csv"], "--target", "species", "--estimator",
                 "sklearn.tree.DecisionTreeClassifier", "--n-repeats", "2", "--scheduler",
                 address, "--quiet", "--output", str(tmp_path / "out")]) == 0
    assert "Dask dashboard" not in capsys.readouterr().out  # --quiet prints no link


def test_help_is_complete():
    parser = build_parser()
    top = parser.format_help()
    assert "search" in top and "repeat" in top and "demo" in top
    commands = parser._subparsers._group_actions[0].choices
    search, repeat = commands["search"].format_help(), commands["repeat"].format_help()
    for option in ("--target", "--estimator", "--param", "--scheduler", "--output",
                   "--random-state", "--n-workers"):
        assert option in search and option in repeat
    for option in ("--space", "--generations", "--population-size", "--cv", "--scoring",
                   "cv_results.csv", "summary.json", "model.joblib", '"type": "continuous"'):
        assert option in search
    for option in ("--n-repeats", "--test-size", "repeat_scores.csv"):
        assert option in repeat


def test_the_space_of_the_docs_loads(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({
        "C": {"type": "continuous", "low": 1e-3, "high": 10, "log": True},
        "degree": {"type": "integer", "low": 2, "high": 5, "log": False},
        "kernel": ["rbf", "poly"],
        "shrinking": {"type": "categorical", "choices": [True, False], "weights": [3, 1]}}))
    assert load_space(str(path)) == {
        "C": Continuous(1e-3, 10, log=True), "degree": Integer(2, 5),
        "kernel": Categorical(["rbf", "poly"]),
        "shrinking": Categorical([True, False], weights=[3, 1])}


BAD_SPACES = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected an object mapping parameter names"),
    ("{}", "expected an object mapping parameter names"),
    ('{"max_depth": {"type": "float", "low": 1, "high": 2}}', "'type' must be one of"),
    ('{"max_depth": {"type": "integer", "low": 1}}', "'max_depth': a integer needs high"),
    ('{"max_depth": {"type": "integer", "low": 1, "high": 3, "step": 1}}',
     "unknown key.*step"),
    ('{"max_depth": {"type": "integer", "low": 5, "high": 1}}', "must be >= low"),
    ('{"max_depth": 3}', "expected a list of choices or an object"),
    ('{"max_dept": [1, 2]}', "not a parameter of DecisionTreeClassifier"),
]


@pytest.mark.parametrize("content, match", BAD_SPACES)
def test_bad_space_files_are_clear_errors(files, tmp_path, capsys, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    code = main(["search", files["csv"], *SEARCH_ARGS, "--space", str(path),
                 "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("dasktrain search: error: bad space file") and "\n" == error[-1]
    assert re.search(match, error), error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command, change, match", [
    ("search", {"input": "missing.csv"}, "the input file '.*missing.csv' does not exist"),
    ("search", {"input": "data.json"}, "must end in .csv or .parquet"),
    ("repeat", {"--target": "colour"}, "the target column 'colour' is not in .*; its columns "
                                       "are: sepal length"),
    ("search", {"--space": "nowhere.json"}, "the space file '.*nowhere.json' does not exist"),
    ("search", {"--estimator": "SVC"}, "must be an import path"),
    ("repeat", {"--estimator": "sklearn.nope.SVC"}, "cannot import 'sklearn.nope'"),
    ("repeat", {"--estimator": "sklearn.svm.make_svc"}, "is not an estimator class"),
    ("repeat", {"--param": "depth=2"}, "cannot make sklearn.tree.DecisionTreeClassifier"),
    ("repeat", {"--test-size": "1.5"}, "--test-size must be between 0 and 1"),
    ("search", {"input": "no_rows.csv"}, "'.*no_rows.csv' has no rows"),
    ("search", {"input": "missing_target.csv"},
     "the target column 'species' of '.*missing_target.csv' has 2 missing value"),
    ("repeat", {"input": "missing_target.csv"}, "has 2 missing value.*drop or fill"),
])
def test_input_errors_are_one_line_and_exit_2(files, tmp_path, capsys, command, change, match):
    (tmp_path / "data.json").write_text("{}")
    frame = pd.read_csv(files["csv"])
    frame.iloc[:0].to_csv(tmp_path / "no_rows.csv", index=False)
    frame.assign(species=frame["species"].mask(frame.index < 2)).to_csv(
        tmp_path / "missing_target.csv", index=False)
    args = {"input": files["csv"], "--target": "species",
            "--estimator": "sklearn.tree.DecisionTreeClassifier", "--output": str(tmp_path / "o")}
    if command == "search":
        args["--space"] = files["space"]
    for key, value in change.items():
        args[key] = str(tmp_path / value) if key in ("input", "--space") else value
    argv = [command, args.pop("input")] + [item for pair in args.items() for item in pair]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"dasktrain {command}: error: ")
    assert re.search(match, error), error


def test_yaml_space_without_pyyaml_says_how_to_fix_it(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(Exception, match="needs PyYAML: pip install pyyaml, or write the space "
                                        "as JSON"):
        load_space(files["yaml"])


def test_bad_param_syntax_is_an_argparse_error(files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["repeat", files["csv"], "--target", "species", "--estimator",
              "sklearn.tree.DecisionTreeClassifier", "--output", "o", "--param", "max_depth"])
    assert exit_info.value.code == 2
    assert "expected NAME=VALUE, got 'max_depth'" in capsys.readouterr().err


def test_a_failing_fit_is_reported_without_a_traceback(files, tmp_path, process_cluster,
                                                        capsys):
    frame = pd.read_csv(files["csv"]).assign(colour="red")  # a text feature a tree cannot use
    frame.to_csv(tmp_path / "text.csv", index=False)
    argv = ["repeat", str(tmp_path / "text.csv"), "--target", "species", "--estimator",
            "sklearn.tree.DecisionTreeClassifier", "--n-repeats", "2", "--scheduler",
            process_cluster.address, "--quiet", "--output", str(tmp_path / "out")]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert error.startswith("dasktrain repeat: failed: ValueError") and error.count("\n") == 1
    assert not (tmp_path / "out").exists()  # the output directory it made is taken back
    with pytest.raises(ValueError):  # --traceback lets the exception through
        main(argv + ["--traceback"])


def scheduler_activity(dask_scheduler):
    return dask_scheduler.transition_counter, len(dask_scheduler.tasks)


def a_file(tmp_path):
    (tmp_path / "file").write_text("")
    return str(tmp_path / "file")


# (command, the option changed, its value given tmp_path, match)
REFUSED_BEFORE_ANY_WORK = [
    ("repeat", "--scoring", lambda tmp: "xyz", r"--scoring 'xyz' is not a scikit-learn scorer"),
    ("repeat", "--scoring", lambda tmp: "acuracy", r"did you mean 'accuracy'"),
    ("search", "--scoring", lambda tmp: "xyz", r"--scoring 'xyz' is not a scikit-learn scorer"),
    ("repeat", "--scoring", lambda tmp: "f1", (r"--scoring 'f1' cannot score "
                                                 r"DecisionTreeClassifier on this target: "
                                                 r"Target is multiclass.*f1_macro")),
    ("search", "--scoring", lambda tmp: "roc_auc", r"'roc_auc' cannot score .*multi_class"),
    ("repeat", "--scoring", lambda tmp: "roc_auc_ovr:svc",
     (r"'roc_auc_ovr' cannot score SVC on this target: SVC has none of the following "
      r"attributes: predict_proba")),
    ("repeat", "--output", a_file, r"--output '.*file' exists and is not a directory"),
    ("search", "--output", lambda tmp: os.path.join(a_file(tmp), "out"),
     r"--output '.*file/out' is not a directory that can be written: Not a directory"),
    ("repeat", "--output", lambda tmp: "/proc/dasktrain-out/results",
     r"--output '/proc/dasktrain-out/results' is not a directory that can be written"),
]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
@pytest.mark.parametrize("command, option, value, match", REFUSED_BEFORE_ANY_WORK,
                         ids=[f"{case[0]} {case[1]} {i}"
                              for i, case in enumerate(REFUSED_BEFORE_ANY_WORK)])
def test_bad_scoring_and_output_are_refused_before_any_work(
        files, tmp_path, capsys, process_cluster, command, option, value, match):
    args = {"--target": "species", "--estimator": "sklearn.tree.DecisionTreeClassifier",
            "--scheduler": process_cluster.address, "--output": str(tmp_path / "out")}
    if command == "search":
        args.update({"--space": files["space"], "--generations": "1",
                     "--population-size": "2", "--cv": "2"})
    args[option] = value(tmp_path)
    if args[option].endswith(":svc"):  # an SVC without probability=True has no predict_proba
        args[option], args["--estimator"] = args[option][:-4], "sklearn.svm.SVC"
    client = process_cluster.client()
    before = client.run_on_scheduler(scheduler_activity)
    started = time.monotonic()
    code = main([command, files["csv"], "--quiet",
                 *[item for pair in args.items() for item in pair]])
    error = capsys.readouterr().err
    assert code == 2, error
    assert error.count("\n") == 1 and error.startswith(f"dasktrain {command}: error: ")
    assert re.search(match, error), error
    assert client.run_on_scheduler(scheduler_activity) == before  # no task was sent
    assert time.monotonic() - started < 10  # imports and a read, not a run
    assert not (tmp_path / "out").exists()


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections: bound (so no one takes it), not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def run_timed(*args, timeout=60):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "dasktrain", *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, check=False)
    return result, time.monotonic() - started


BAD_SCHEDULERS = [
    ("notaurl", r"argument --scheduler: expected a Dask scheduler address SCHEME://HOST:PORT"),
    ("tcp://127.0.0.1:99999", r"argument --scheduler: expected a Dask scheduler address"),
    ("http://127.0.0.1:8786", r"argument --scheduler: expected a Dask scheduler address"),
    ("tcp://127.0.0.1:{port}", (r"--scheduler 'tcp://127.0.0.1:\d+': cannot connect to "
                                r"127.0.0.1:\d+ \(Connection refused\); is a Dask scheduler")),
    ("127.0.0.1:{port}", r"--scheduler '127.0.0.1:\d+': cannot connect"),
]


def scheduler_argv(command, address, files, tmp_path):
    if command == "demo":
        return ["demo", "--quick", "--scheduler", address]
    return ["repeat", files["csv"], "--target", "species", "--estimator",
            "sklearn.tree.DecisionTreeClassifier", "--scheduler", address,
            "--output", str(tmp_path / "out")]


@pytest.mark.parametrize("address, match", BAD_SCHEDULERS)
@pytest.mark.parametrize("command", ["repeat", "demo"])
def test_a_bad_or_silent_scheduler_is_refused_naming_the_option(
        files, tmp_path, closed_port, capsys, command, address, match):
    started = time.monotonic()
    try:
        code = main(scheduler_argv(command, address.format(port=closed_port), files, tmp_path))
    except SystemExit as exit_info:  # argparse's own errors
        code = exit_info.code
    error = capsys.readouterr().err
    assert code == 2
    assert re.search(match, error), error
    assert error.splitlines()[-1].startswith(f"dasktrain {command}: error: ")
    assert time.monotonic() - started < 10  # imports and a read, not a run
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command, address", [("repeat", "notaurl"),
                                              ("demo", "tcp://127.0.0.1:{port}")])
def test_the_command_exits_at_once_without_a_traceback(files, tmp_path, closed_port, command,
                                                       address):
    argv = scheduler_argv(command, address.format(port=closed_port), files, tmp_path)
    result, seconds = run_timed(*argv)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr  # no Client.__del__ time-out either
    assert result.stderr.strip().splitlines()[-1].startswith(f"dasktrain {command}: error: ")
    assert seconds < CONNECT_TIMEOUT + 5  # the imports take a few seconds on a busy machine


def _default_sigint():
    """In the child, before it runs: SIGINT at its default action, whatever the parent's."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_is_one_line_and_exit_130_with_no_worker_traceback(files, tmp_path):
    """Ctrl-C as a terminal sends it: SIGINT to every process of the command's group."""
    args = ["repeat", files["csv"], "--target", "species", "--estimator",
            "sklearn.ensemble.RandomForestClassifier", "--param", "n_estimators=300",
            "--n-repeats", "40", "--output", tmp_path / "out"]  # a fit takes a second or more
    # a terminal's command starts with SIGINT at its default; a test runner started in the
    # background (nohup, `&` without job control) ignores it, and its children would too
    process = subprocess.Popen([sys.executable, "-m", "dasktrain", *map(str, args)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True, preexec_fn=_default_sigint)
    err = bytearray()  # stderr is read by this thread alone: nothing else may read the pipe

    def read_stderr():
        while chunk := process.stderr.read1(4096):
            err.extend(chunk)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not re.search(rb" [1-9]\d*/40 ", bytes(err)):  # the workers have finished a fit
            assert process.poll() is None and time.monotonic() < deadline, bytes(err).decode()
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    reader.join(10)
    stderr = bytes(err).decode()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    lines = [line for line in re.split(r"[\r\n]+", stderr)
             if line.strip() and not line.startswith("RepeatedClassifier")]  # its progress bar
    assert lines == ["dasktrain repeat: interrupted"], stderr
    assert not (tmp_path / "out").exists()
    deadline = time.monotonic() + 20
    while True:  # the workers and their nannies are gone with it
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of the command are left running"
        time.sleep(0.2)


def test_a_regressor_is_refused_a_classification_metric(files, tmp_path, capsys):
    frame = pd.read_csv(files["csv"]).drop(columns="species")
    frame.to_csv(tmp_path / "regression.csv", index=False)
    assert main(["repeat", str(tmp_path / "regression.csv"), "--target", "petal width (cm)",
                 "--estimator", "sklearn.tree.DecisionTreeRegressor", "--scoring", "r2",
                 "--scoring", "accuracy", "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "--scoring 'accuracy' cannot score DecisionTreeRegressor on this target: " \
           "continuous is not supported" in error
    assert "'r2'" not in error


def test_zero_generations_is_the_initial_population_only():
    args = build_parser().parse_args(["search", "data.csv", "--target", "y", "--estimator",
                                      "a.B", "--space", "s.json", "--output", "o",
                                      "--generations", "0"])
    assert args.generations == 0
