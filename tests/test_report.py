"""evaluate and EvaluationReport: values equal scikit-learn's scorers, sign rule, best marks."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (accuracy_score, get_scorer, log_loss, make_scorer,
                             mean_absolute_error, mean_squared_error, r2_score, roc_auc_score)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from dasktrain import RepeatedClassifier, RepeatedRegressor, evaluate
from dasktrain.metrics import EvaluationReport

X_bin, y_bin = load_breast_cancer(return_X_y=True)
X_bin, y_bin = X_bin[:, :8], y_bin
X_train, y_train, X_test, y_test = X_bin[::2], y_bin[::2], X_bin[1::2], y_bin[1::2]
X_reg, y_reg = load_diabetes(return_X_y=True)


@pytest.fixture(scope="module")
def classifiers():
    trees = RepeatedClassifier(DecisionTreeClassifier(max_depth=3, max_features=3), n_repeats=4,
                               random_state=0).fit(X_train, y_train)
    logreg = LogisticRegression(max_iter=2000).fit(X_train, y_train)
    return {"trees": trees, "logreg": logreg}


def test_values_equal_sklearn_scorers_computed_by_hand(classifiers):
    report = evaluate(classifiers, X_test, y_test, metrics=["accuracy", "roc_auc", "neg_log_loss"])
    members = {"trees": classifiers["trees"].estimators_, "logreg": [classifiers["logreg"]]}
    by_hand = {
        "accuracy": lambda m: accuracy_score(y_test, m.predict(X_test)),
        "roc_auc": lambda m: roc_auc_score(y_test, m.predict_proba(X_test)[:, 1]),
        "neg_log_loss": lambda m: -log_loss(y_test, m.predict_proba(X_test)),
    }
    for name, models in members.items():
        for metric, compute in by_hand.items():
            values = np.array([compute(model) for model in models])
            assert report.frame.loc[name, (metric, "mean")] == pytest.approx(values.mean())
            assert report.frame.loc[name, (metric, "std")] == pytest.approx(values.std())
            assert report.frame.loc[name, (metric, "score")] == pytest.approx(
                values.mean() - values.std())
    assert report.frame.loc["logreg", ("accuracy", "std")] == 0
    assert report.frame.loc["trees", ("accuracy", "std")] > 0


def test_frame_layout_and_long_scores(classifiers):
    report = evaluate(classifiers, X_test, y_test, metrics=["accuracy", "roc_auc"])
    assert list(report.frame.index) == ["trees", "logreg"]
    assert report.frame.index.name == "estimator"
    assert list(report.frame.columns) == [(m, s) for m in ["accuracy", "roc_auc"]
                                          for s in ["mean", "std", "score"]]
    assert report.frame.columns.names == ["metric", "stat"]
    assert list(report.scores.columns) == ["estimator", "member", "metric", "value"]
    assert len(report.scores) == (4 + 1) * 2
    trees = report.scores.query("estimator == 'trees' and metric == 'accuracy'")
    assert list(trees["member"]) == [0, 1, 2, 3]
    assert report.members == {"trees": 4, "logreg": 1}


def test_list_of_pairs_keeps_order(classifiers):
    report = evaluate([("logreg", classifiers["logreg"]), ("trees", classifiers["trees"])],
                      X_test, y_test, metrics="accuracy")
    assert list(report.frame.index) == ["logreg", "trees"]


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("binary", ["accuracy", "roc_auc"]),
        ("multiclass", ["accuracy", "roc_auc_ovr"]),
        ("regression", ["r2", "neg_mean_squared_error"]),
    ],
)
def test_default_metrics_follow_the_task(kind, expected):
    if kind == "regression":
        X, y = X_reg, y_reg
        estimators = {"ridge": Ridge().fit(X, y),
                      "trees": RepeatedRegressor(DecisionTreeRegressor(max_depth=2), n_repeats=2,
                                                 random_state=0).fit(X, y)}
    else:
        X, y = (X_bin, y_bin) if kind == "binary" else load_iris(return_X_y=True)
        estimators = {"tree": DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)}
    report = evaluate(estimators, X, y)
    assert list(report.greater_is_better) == expected
    estimator = next(iter(estimators.values()))
    for metric in expected:
        first = estimator.estimators_[0] if hasattr(estimator, "estimators_") else estimator
        value = report.scores.query("member == 0 and metric == @metric")["value"].iloc[0]
        assert value == pytest.approx(get_scorer(metric)(first, X, y))


def test_regression_values_and_losses_by_hand():
    ridge = Ridge().fit(X_reg[::2], y_reg[::2])
    X, y = X_reg[1::2], y_reg[1::2]
    mae = lambda estimator, X, y: mean_absolute_error(y, estimator.predict(X))  # noqa: E731
    report = evaluate({"ridge": ridge}, X, y,
                      metrics={"r2": "r2", "mse": "neg_mean_squared_error", "mae": mae,
                               "mse_scorer": make_scorer(mean_squared_error,
                                                         greater_is_better=False)},
                      greater_is_better={"mae": False})
    prediction = ridge.predict(X)
    assert report.frame.loc["ridge", ("r2", "mean")] == pytest.approx(r2_score(y, prediction))
    assert report.frame.loc["ridge", ("mse", "mean")] == pytest.approx(
        -mean_squared_error(y, prediction))
    assert report.frame.loc["ridge", ("mse_scorer", "mean")] == pytest.approx(
        -mean_squared_error(y, prediction))
    assert report.frame.loc["ridge", ("mae", "mean")] == pytest.approx(
        mean_absolute_error(y, prediction))
    assert report.greater_is_better == {"r2": True, "mse": True, "mae": False, "mse_scorer": True}


# --- the sign rule and the best marks, on hand-made member values -------------------------

def hand_made_report(values: dict, greater_is_better: dict) -> EvaluationReport:
    """values: metric -> estimator -> list of member values."""
    rows = [{"estimator": name, "member": index, "metric": metric, "value": value}
            for metric, per_estimator in values.items()
            for name, member_values in per_estimator.items()
            for index, value in enumerate(member_values)]
    members = {name: len(vals) for name, vals in next(iter(values.values())).items()}
    return EvaluationReport(pd.DataFrame(rows), greater_is_better, members)


def test_sign_rule_for_gains_negated_losses_and_losses():
    report = hand_made_report(
        {
            # a gain: shaky has the larger mean but steady the larger mean - std
            "accuracy": {"shaky": [0.80, 1.00], "steady": [0.88]},
            # sklearn's negated loss is a gain too: the larger mean - std wins
            "neg_log_loss": {"shaky": [-0.10, -0.50], "steady": [-0.35]},
            # a declared loss: score = mean + std, the smallest wins
            "mae": {"shaky": [0.5, 1.5], "steady": [1.2]},
        },
        {"accuracy": True, "neg_log_loss": True, "mae": False},
    )
    frame = report.frame
    assert frame.loc["shaky", ("accuracy", "score")] == pytest.approx(0.9 - 0.1)
    assert frame.loc["shaky", ("neg_log_loss", "score")] == pytest.approx(-0.3 - 0.2)
    assert frame.loc["shaky", ("mae", "score")] == pytest.approx(1.0 + 0.5)
    assert frame.loc["steady", ("mae", "score")] == pytest.approx(1.2)
    assert report.best == {"accuracy": "steady", "neg_log_loss": "steady", "mae": "steady"}


def test_best_marks_in_text_and_html():
    report = hand_made_report(
        {"accuracy": {"a": [0.7, 0.9], "b": [0.75]}, "mae": {"a": [1.0, 1.0], "b": [3.0]}},
        {"accuracy": True, "mae": False},
    )
    assert report.best == {"accuracy": "b", "mae": "a"}
    text = str(report)
    row_a = next(line for line in text.splitlines() if line.startswith("a "))
    row_b = next(line for line in text.splitlines() if line.startswith("b "))
    assert re.findall(r"[\d.]+\*", row_b) == ["0.7500*"]
    assert re.findall(r"[\d.]+\*", row_a) == ["1.0000*"]
    assert "mean + std, lower is better, for mae" in text
    html = report._repr_html_()
    assert html.count("<b>") == 2
    assert "<b>0.7500</b>" in html and "<b>1.0000</b>" in html
    assert "<th>a</th>" in html and 'colspan="3">accuracy</th>' in html
    assert repr(report) == text


def test_text_table_columns_are_aligned():
    report = hand_made_report({"accuracy": {"a_long_name": [0.5, 0.25], "b": [1.0]},
                               "neg_mean_squared_error": {"a_long_name": [-1.0, -3.0], "b": [-2]}},
                              {"accuracy": True, "neg_mean_squared_error": True})
    lines = str(report).splitlines()
    table = lines[1:-1]  # header, rule and rows (without the metric line and legend)
    rule = table[1]
    starts = [match.start() for match in re.finditer(r"-+", rule)]
    for line in table[2:]:
        for start in starts[1:]:
            assert line[start - 2: start] == "  "  # every column starts after a gap
    header = table[0]
    assert header.index("members") == starts[1]
    assert lines[0].index("neg_mean_squared_error") > lines[0].index("accuracy") > starts[2]


def test_ties_are_all_marked_and_best_is_the_first():
    report = hand_made_report({"accuracy": {"a": [0.9], "b": [0.9], "c": [0.5]}},
                              {"accuracy": True})
    assert report.best == {"accuracy": "a"}
    assert str(report).count("0.9000*") == 2
    assert report._repr_html_().count("<b>") == 2


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "estimators, kwargs, err, match",
    [
        ("fitted", {"metrics": "acuracy"}, ValueError,
         r"The 'metrics' parameter of evaluate got an unknown scorer name 'acuracy'\. "
         r"Valid names include 'accuracy'"),
        ("fitted", {"metrics": ["accuracy", "no_such_metric"]}, ValueError,
         r"'metrics' parameter.*'no_such_metric'.*'roc_auc'"),
        ("fitted", {"metrics": 3}, TypeError, "'metrics' parameter of evaluate must be"),
        ("fitted", {"metrics": {"m": 3}}, TypeError, "'metrics' parameter of evaluate got 3"),
        ("fitted", {"metrics": []}, ValueError,
         "'metrics' parameter of evaluate must not be empty"),
        ("fitted", {"metrics": ["accuracy", "accuracy"]}, ValueError, "repeated names"),
        ("fitted", {"metrics": "neg_log_loss", "greater_is_better": {"neg_log_loss": False}},
         ValueError, "greater-is-better already"),
        ("fitted", {"metrics": "accuracy", "greater_is_better": {"mae": False}}, ValueError,
         "'greater_is_better' parameter of evaluate names metrics that are not evaluated"),
        ("unfitted", {}, NotFittedError, "The estimator 'tree' passed to evaluate is not fitted"),
        ("not an estimator", {}, TypeError, "'estimators' parameter of evaluate must be a dict"),
        ({}, {}, ValueError, "'estimators' parameter of evaluate must not be empty"),
        ({"x": object()}, {}, TypeError, "The estimator 'x' passed to evaluate must be a fitted"),
        ("duplicate names", {}, ValueError, "distinct string names"),
        ("mixed", {}, ValueError, "'metrics' parameter of evaluate must be given"),
    ],
)
def test_bad_input(estimators, kwargs, err, match):
    fitted = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X_bin, y_bin)
    cases = {
        "fitted": {"tree": fitted},
        "unfitted": {"tree": DecisionTreeClassifier()},
        "duplicate names": [("tree", fitted), ("tree", fitted)],
        "mixed": {"tree": fitted, "ridge": Ridge().fit(X_bin, y_bin)},
    }
    if isinstance(estimators, str):
        estimators = cases.get(estimators, estimators)
    with pytest.raises(err, match=match):
        evaluate(estimators, X_bin, y_bin, **kwargs)


def accuracy_of(estimator, X, y):
    return accuracy_score(y, estimator.predict(X))


@pytest.mark.parametrize("change, err, match", [
    ({"greater_is_better": "yes"}, TypeError,
     (r"The 'greater_is_better' parameter of evaluate must be a dict of metric name -> bool, "
      r"or None\. Got 'yes' instead")),
    ({"greater_is_better": True}, TypeError, "'greater_is_better' parameter .* Got True"),
    ({"greater_is_better": [("acc", False)]}, TypeError, "'greater_is_better' parameter"),
    ({"metrics": {"acc": accuracy_of}, "greater_is_better": {"acc": "yes"}}, TypeError,
     (r"'greater_is_better' parameter of evaluate must map each metric name to True or "
      r"False\. Got 'yes' for 'acc'")),
    ({"metrics": {"acc": accuracy_of}, "greater_is_better": {"acc": None}}, TypeError,
     "Got None for 'acc'"),
    ({"metrics": {1: "accuracy"}}, ValueError,
     "'metrics' parameter of evaluate must name each metric with a non-empty string"),
    ({"metrics": {"": "accuracy"}}, ValueError, "non-empty string. Got the name ''"),
    ({"X": None}, TypeError,
     r"The 'X' parameter of evaluate must be array-like of shape \(n_samples, n_features\)"),
    ({"X": 3.0}, TypeError, "The 'X' parameter of evaluate must be array-like"),
    ({"y": None}, TypeError,
     r"The 'y' parameter of evaluate must be array-like of shape \(n_samples,\)\. Got None"),
    ({"y": "labels"}, TypeError, "The 'y' parameter of evaluate must be array-like"),
    ({"y": slice(0, 10)}, TypeError, "The 'y' parameter of evaluate must be array-like"),
    ({"y": "short"}, ValueError,
     r"The 'X' and 'y' parameters of evaluate must have the same number of samples\. Got \d+ "),
    ({"X": "empty", "y": "empty"}, ValueError,
     "The 'X' parameter of evaluate must have at least one sample"),
    ({"metrics": {"bad": lambda estimator, X, y: "x"}}, TypeError,
     r"The metric 'bad' of evaluate returned 'x' for the estimator 'tree' \(member 0\)"),
    ({"metrics": {"bad": lambda estimator, X, y: np.array([1.0, 2.0])}}, TypeError,
     "The metric 'bad' of evaluate returned array"),
])
def test_bad_arguments_are_refused_naming_the_parameter(change, err, match):
    fitted = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X_bin, y_bin)
    args = {"X": X_bin, "y": y_bin, "metrics": "accuracy", **change}
    if isinstance(args["y"], str) and args["y"] == "short":
        args["y"] = y_bin[:10]
    if isinstance(args["X"], str) and args["X"] == "empty":
        args["X"], args["y"] = X_bin[:0], y_bin[:0]
    with pytest.raises(err, match=match):
        evaluate({"tree": fitted}, args.pop("X"), args.pop("y"), **args)


def test_callables_in_a_list_are_named_after_their_function(classifiers):
    def balanced_error(estimator, X, y):
        return 1 - accuracy_score(y, estimator.predict(X))

    report = evaluate(classifiers, X_test, y_test, metrics=[balanced_error, "accuracy"],
                      greater_is_better={"balanced_error": False})
    assert list(report.greater_is_better) == ["balanced_error", "accuracy"]
    np.testing.assert_allclose(report.frame[("balanced_error", "mean")],
                               1 - report.frame[("accuracy", "mean")])
    assert report.best["balanced_error"] == report.best["accuracy"]
