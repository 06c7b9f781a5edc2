"""``dasktrain search`` and ``dasktrain repeat``: real runs in subprocesses on tiny files.

The runs use the session's ``dask scheduler``/``dask worker`` processes through
``--scheduler``, and one run starts the embedded local cluster. Input errors are
checked in this process: they are reported before any cluster starts.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from dasktrain import GeneticSearchCV, RepeatedClassifier
from dasktrain.cli import build_parser, load_space, main
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
])
def test_input_errors_are_one_line_and_exit_2(files, tmp_path, capsys, command, change, match):
    (tmp_path / "data.json").write_text("{}")
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
    with pytest.raises(ValueError):  # --traceback lets the exception through
        main(argv + ["--traceback"])
