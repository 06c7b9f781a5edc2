"""Plots rendered to PNG with the Agg backend, from hand-made results; the data drawn is checked."""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from dasktrain.plotting import (plot_fitness_evolution, plot_repeat_scores,  # noqa: E402
                                plot_search_space)
from dasktrain.space import Continuous  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

HISTORY = pd.DataFrame({
    "generation": [0, 1, 2, 3],
    "best": [0.80, 0.85, 0.85, 0.91],
    "mean": [0.60, 0.70, 0.78, 0.83],
    "std": [0.10, 0.08, 0.05, 0.04],
    "evaluations": [8, 8, 6, 7],
    "cache_hits": [0, 0, 2, 1],
    "seconds": [1.0, 0.9, 0.8, 0.9],
    "best_params": [{"C": 1.0}] * 4,
})

RESULTS = {
    "param_C": [0.01, 0.1, 1.0, 10.0, 100.0],
    "param_kernel": ["rbf", "poly", "rbf", "linear", "rbf"],
    "param_degree": [2, 3, 2, 4, 3],
    "mean_test_score": [0.5, 0.7, 0.9, 0.8, 0.6],
    "generation": [0, 0, 1, 1, 2],
}

SCORES = pd.DataFrame({
    "estimator": ["forest"] * 5 + ["logistic"] * 5 + ["forest"] * 5 + ["logistic"] * 5,
    "member": list(range(5)) * 4,
    "metric": ["accuracy"] * 10 + ["f1"] * 10,
    "value": [0.90, 0.92, 0.91, 0.95, 0.89, 0.80, 0.82, 0.79, 0.81, 0.83,
              0.50, 0.52, 0.51, 0.55, 0.49, 0.40, 0.42, 0.39, 0.41, 0.43],
})


class FittedSearch:
    """Stands in for a fitted GeneticSearchCV."""

    def __init__(self, history=HISTORY, cv_results=RESULTS, param_distributions=None):
        self.history_ = history
        self.cv_results_ = cv_results
        self.param_distributions = param_distributions or {}


class Report:
    """Stands in for an evaluate report."""

    scores = SCORES


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def save_png(figure, tmp_path, name):
    path = tmp_path / f"{name}.png"
    figure.savefig(path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    return path


@pytest.mark.parametrize("source", [HISTORY, FittedSearch(), HISTORY.to_dict("list")])
def test_fitness_evolution(source, tmp_path):
    ax = plot_fitness_evolution(source)
    save_png(ax.figure, tmp_path, "fitness")
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["best"].get_xdata(), [0, 1, 2, 3])
    np.testing.assert_array_equal(lines["best"].get_ydata(), HISTORY["best"])
    np.testing.assert_array_equal(lines["mean"].get_ydata(), HISTORY["mean"])
    (band,) = ax.collections  # the mean ± std band spans exactly mean - std .. mean + std
    vertices = np.concatenate([path.vertices for path in band.get_paths()])
    assert vertices[:, 1].min() == pytest.approx((HISTORY["mean"] - HISTORY["std"]).min())
    assert vertices[:, 1].max() == pytest.approx((HISTORY["mean"] + HISTORY["std"]).max())
    assert ax.get_xlabel() == "generation"


def test_fitness_evolution_draws_on_a_given_axes(tmp_path):
    figure, (left, right) = plt.subplots(1, 2)
    assert plot_fitness_evolution(HISTORY, ax=right) is right
    assert not left.get_lines()
    save_png(figure, tmp_path, "two")


def test_search_space_grid(tmp_path):
    search = FittedSearch(param_distributions={"C": Continuous(1e-2, 1e2, log=True),
                                               "kernel": ["rbf", "poly", "linear"],
                                               "degree": stats.randint(2, 5)})
    figure = plot_search_space(search)
    save_png(figure, tmp_path, "space")
    axes = {ax.get_xlabel(): ax for ax in figure.axes if ax.get_xlabel()}
    assert set(axes) == {"C", "kernel", "degree"}
    assert axes["C"].get_xscale() == "log" and axes["degree"].get_xscale() == "linear"
    for name, ax in axes.items():
        (points,) = ax.collections
        offsets = points.get_offsets()
        np.testing.assert_array_equal(offsets[:, 1], RESULTS["mean_test_score"])
        np.testing.assert_array_equal(points.get_array(), RESULTS["generation"])  # colour
        if name != "kernel":
            np.testing.assert_array_equal(offsets[:, 0], RESULTS[f"param_{name}"])
    # categories sit at one position per value, labelled with the value
    np.testing.assert_array_equal(axes["kernel"].collections[0].get_offsets()[:, 0],
                                  [0, 1, 0, 2, 0])
    assert [t.get_text() for t in axes["kernel"].get_xticklabels()] == ["rbf", "poly", "linear"]
    assert any(ax.get_ylabel() == "generation" for ax in figure.axes)  # the colour bar


def test_search_space_selected_params_and_masked_cv_results(tmp_path):
    # scikit-learn's layout: a parameter absent from some candidates is a masked entry
    tol = np.ma.MaskedArray(np.empty(6, dtype=object), mask=[True, True, False, True, False,
                                                                False])
    tol[[2, 4, 5]] = [1e-3, 1e-4, 1e-3]
    results = {"param_C": np.ma.MaskedArray([0.1, 1.0, 1.0, 5.0, 1.0, 1.0], dtype=object),
               "param_tol": tol, "mean_test_score": np.array([0.6, 0.7, 0.8, 0.9, 0.75, 0.8]),
               "generation": np.array([0, 0, 1, 1, 2, 2])}
    figure = plot_search_space(results, params=["tol"])
    save_png(figure, tmp_path, "masked")
    (ax, _colorbar) = figure.axes
    (points,) = ax.collections
    np.testing.assert_array_equal(points.get_offsets(), [[1e-3, 0.8], [1e-4, 0.75],
                                                         [1e-3, 0.8]])
    np.testing.assert_array_equal(points.get_array(), [1, 2, 2])


@pytest.mark.parametrize("metric, expected", [
    (None, {"forest": [0.90, 0.92, 0.91, 0.95, 0.89], "logistic": [0.80, 0.82, 0.79, 0.81,
                                                                   0.83]}),
    ("f1", {"forest": [0.50, 0.52, 0.51, 0.55, 0.49], "logistic": [0.40, 0.42, 0.39, 0.41,
                                                                   0.43]}),
])
@pytest.mark.parametrize("source", [Report(), SCORES])
def test_repeat_scores_box_per_estimator(source, metric, expected, tmp_path):
    ax = plot_repeat_scores(source, metric=metric)
    save_png(ax.figure, tmp_path, "repeat")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["forest", "logistic"]
    assert ax.get_ylabel() == (metric or "accuracy")
    # every member is drawn as a point at its estimator's position
    points = [line for line in ax.get_lines() if line.get_gid() == "members"]
    for position, (line, values) in enumerate(zip(points, expected.values()), start=1):
        np.testing.assert_allclose(line.get_ydata(), values)
        np.testing.assert_allclose(line.get_xdata(), position, atol=0.1)
    # the boxes' medians and means are the members' medians and means
    medians = [line.get_ydata()[0] for line in ax.get_lines() if line.get_gid() == "median"]
    means = [line.get_ydata()[0] for line in ax.get_lines() if line.get_gid() == "mean"]
    np.testing.assert_allclose(medians, [np.median(v) for v in expected.values()])
    np.testing.assert_allclose(means, [np.mean(v) for v in expected.values()])


def test_repeat_scores_from_a_real_evaluate_report(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier
    from sklearn.tree import DecisionTreeClassifier

    from dasktrain import evaluate

    X, y = load_iris(return_X_y=True)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X[::2], y[::2])
    dummy = DummyClassifier().fit(X[::2], y[::2])
    report = evaluate({"tree": tree, "dummy": dummy}, X[1::2], y[1::2],
                      metrics=["accuracy", "balanced_accuracy"])
    ax = plot_repeat_scores(report, metric="balanced_accuracy")
    save_png(ax.figure, tmp_path, "report")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tree", "dummy"]
    medians = [line.get_ydata()[0] for line in ax.get_lines() if line.get_gid() == "median"]
    expected = report.scores.query("metric == 'balanced_accuracy'")["value"].tolist()
    np.testing.assert_allclose(medians, expected)


@pytest.mark.parametrize("call, err, match", [
    (lambda: plot_fitness_evolution(object()), NotFittedError, r"'history_'"),
    (lambda: plot_fitness_evolution(HISTORY.drop(columns="std")), ValueError,
     r"\['std'\] are missing"),
    (lambda: plot_search_space(object()), NotFittedError, r"'cv_results_'"),
    (lambda: plot_search_space(RESULTS, params=["gamma"]), ValueError,
     r"'params' parameter of plot_search_space names \['gamma'\]"),
    (lambda: plot_search_space({"mean_test_score": [0.1], "generation": [0]}), ValueError,
     r"no 'param_<name>' columns"),
    (lambda: plot_search_space(RESULTS, score="mean_test_f1"), ValueError,
     r"\['mean_test_f1'\] are missing"),
    (lambda: plot_repeat_scores(SCORES, metric="auc"), ValueError,
     r"'metric' parameter of plot_repeat_scores must be one of \['accuracy', 'f1'\]"),
    (lambda: plot_repeat_scores([1, 2]), TypeError, r"needs an evaluate report"),
    (lambda: plot_repeat_scores(SCORES.drop(columns="member")), ValueError,
     r"\['member'\] are missing"),
])
def test_bad_plot_inputs(call, err, match):
    with pytest.raises(err, match=match):
        call()


@pytest.mark.parametrize("call", [
    lambda: plot_fitness_evolution(HISTORY),
    lambda: plot_search_space(RESULTS),
    lambda: plot_repeat_scores(SCORES),
])
def test_missing_matplotlib_says_how_to_install(call, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install dasktrain\[plot\]"):
        call()


def test_importing_plotting_does_not_import_matplotlib():
    import subprocess

    code = "import sys, dasktrain.plotting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
