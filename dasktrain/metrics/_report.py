"""Compare fitted estimators on test data: mean, std and a pessimistic score per metric."""

from __future__ import annotations

import difflib
import html
import numbers
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.metrics import get_scorer, get_scorer_names
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

__all__ = ["EvaluationReport", "evaluate"]

_STATS = ("mean", "std", "score")


class EvaluationReport:
    """The result of :func:`evaluate`: one row per estimator, three columns per metric.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long table with columns ``estimator``, ``member``, ``metric`` and
        ``value``: one row per scored member and metric.
    greater_is_better : dict of str to bool
        For each metric (in display order), whether larger values are better.
    members : dict of str to int
        Number of members of each estimator (in display order).

    Attributes
    ----------
    frame : pandas.DataFrame
        Index ``estimator`` (the names, in the order given); columns a
        :class:`pandas.MultiIndex` of ``(metric, stat)`` with stat among
        ``"mean"``, ``"std"`` and ``"score"``, e.g.
        ``report.frame["accuracy", "score"]`` or
        ``report.frame.xs("score", axis=1, level="stat")``.
    scores : pandas.DataFrame
        The long table of every member's value (for box plots).
    best : dict of str to str
        Metric -> name of the estimator with the best score (the first one in
        the given order when several tie).
    greater_is_better : dict of str to bool
        Metric -> whether larger values are better.
    members : dict of str to int
        Estimator name -> number of members scored.

    See Also
    --------
    evaluate : Builds the report.
    """

    def __init__(self, scores: pd.DataFrame, greater_is_better: dict, members: dict):
        self.scores = scores
        self.greater_is_better = dict(greater_is_better)
        self.members = dict(members)
        names, metrics = list(self.members), list(self.greater_is_better)
        grouped = scores.groupby(["estimator", "metric"], sort=False)["value"]
        means = grouped.mean().unstack("metric").reindex(index=names, columns=metrics)
        stds = grouped.std(ddof=0).unstack("metric").reindex(index=names, columns=metrics)
        columns = {}
        self.best = {}
        for metric in metrics:
            sign = 1.0 if self.greater_is_better[metric] else -1.0
            score = means[metric] - sign * stds[metric]
            columns[(metric, "mean")] = means[metric]
            columns[(metric, "std")] = stds[metric]
            columns[(metric, "score")] = score
            self.best[metric] = (score * sign).idxmax() if score.notna().any() else None
        frame = pd.DataFrame(columns, index=pd.Index(names, name="estimator"))
        frame.columns = pd.MultiIndex.from_tuples(list(columns), names=["metric", "stat"])
        self.frame = frame

    def is_best(self, name: str, metric: str) -> bool:
        """True when `name` has the best `metric` score (ties are all best)."""
        best = self.best[metric]
        if best is None:
            return False
        return bool(self.frame.loc[name, (metric, "score")] == self.frame.loc[best,
                                                                             (metric, "score")])

    def _cells(self):
        """Header rows and body rows of strings for the text and HTML tables."""
        metrics = list(self.greater_is_better)
        body = []
        for name in self.frame.index:
            row = [str(name), str(self.members[name])]
            for metric in metrics:
                for stat in _STATS:
                    value = self.frame.loc[name, (metric, stat)]
                    row.append(_format(value))
            body.append(row)
        return metrics, body

    def _legend(self) -> str:
        losses = [metric for metric, greater in self.greater_is_better.items() if not greater]
        text = "* best score of each metric; score = mean - std"
        if losses:
            text += " (mean + std, lower is better, for " + ", ".join(losses) + ")"
        return text

    def __str__(self) -> str:
        metrics, body = self._cells()
        for row_index, name in enumerate(self.frame.index):
            for metric_index, metric in enumerate(metrics):
                column = 2 + 3 * metric_index + 2
                mark = "*" if self.is_best(name, metric) else " "
                body[row_index][column] += mark
        header = ["estimator", "members"] + [stat for _ in metrics for stat in _STATS]
        widths = [max(len(header[i]), *(len(row[i]) for row in body)) for i in range(len(header))]
        for metric_index, metric in enumerate(metrics):  # a metric name wider than its columns
            span = slice(2 + 3 * metric_index, 5 + 3 * metric_index)
            spare = len(metric) - (sum(widths[span]) + 4)
            if spare > 0:
                widths[span.stop - 1] += spare
        gap = "  "

        def line(cells, right_from=1):
            parts = [cell.ljust(widths[i]) if i < right_from else cell.rjust(widths[i])
                     for i, cell in enumerate(cells)]
            return gap.join(parts).rstrip()

        top = [" " * widths[0], " " * widths[1]]
        for metric_index, metric in enumerate(metrics):
            span_width = sum(widths[2 + 3 * metric_index: 5 + 3 * metric_index]) + 2 * len(gap)
            top.append(metric.center(span_width))
        lines = [gap.join(top).rstrip(), line(header), line(["-" * w for w in widths])]
        lines += [line(row) for row in body]
        lines.append(self._legend())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        metrics, body = self._cells()
        parts = ['<table class="dasktrain-evaluation">', "<thead>",
                 '<tr><th rowspan="2">estimator</th><th rowspan="2">members</th>']
        parts += [f'<th colspan="3">{html.escape(metric)}</th>' for metric in metrics]
        parts.append("</tr><tr>")
        parts += [f"<th>{stat}</th>" for _ in metrics for stat in _STATS]
        parts.append("</tr></thead><tbody>")
        for name, row in zip(self.frame.index, body):
            cells = [f"<th>{html.escape(row[0])}</th>", f"<td>{row[1]}</td>"]
            for metric_index, metric in enumerate(metrics):
                mean, std, score = row[2 + 3 * metric_index: 5 + 3 * metric_index]
                if self.is_best(name, metric):
                    score = f"<b>{score}</b>"
                cells += [f"<td>{mean}</td>", f"<td>{std}</td>", f"<td>{score}</td>"]
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f"</tbody></table><p>{html.escape(self._legend())}</p>")
        return "".join(parts)


def _format(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "nan"
    return f"{value:.4f}"


def _named_estimators(estimators) -> list[tuple[str, object]]:
    if isinstance(estimators, Mapping):
        pairs = list(estimators.items())
    elif isinstance(estimators, (list, tuple)) and all(
            isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in estimators):
        pairs = [tuple(pair) for pair in estimators]
    else:
        raise TypeError(
            "The 'estimators' parameter of evaluate must be a dict of name -> fitted estimator "
            f"or a list of (name, estimator) pairs. Got {estimators!r} instead."
        )
    if not pairs:
        raise ValueError("The 'estimators' parameter of evaluate must not be empty.")
    names = [name for name, _ in pairs]
    if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise ValueError(
            "The 'estimators' parameter of evaluate must have distinct string names. "
            f"Got {names!r} instead."
        )
    for name, estimator in pairs:
        try:
            check_is_fitted(estimator)
        except NotFittedError:
            raise NotFittedError(
                f"The estimator {name!r} passed to evaluate is not fitted yet; call its fit "
                "method first."
            ) from None
        except TypeError:
            raise TypeError(
                f"The estimator {name!r} passed to evaluate must be a fitted scikit-learn "
                f"estimator. Got {estimator!r} instead."
            ) from None
    return pairs


def members_of(estimator) -> list:
    """The models that :func:`evaluate` scores for `estimator`: a Repeated*'s members, or itself."""
    from ..ensemble._repeated import _BaseRepeated

    if isinstance(estimator, _BaseRepeated):
        return list(estimator.estimators_)
    return [estimator]


def _default_metrics(pairs, y) -> list[str]:
    estimators = [estimator for _, estimator in pairs]
    if all(is_classifier(estimator) for estimator in estimators):
        multiclass = type_of_target(y) == "multiclass"
        return ["accuracy", "roc_auc_ovr" if multiclass else "roc_auc"]
    if all(is_regressor(estimator) for estimator in estimators):
        return ["r2", "neg_mean_squared_error"]
    raise ValueError(
        "The 'metrics' parameter of evaluate must be given when the estimators are not all "
        "classifiers or all regressors; e.g. metrics=['accuracy']."
    )


def _scorer_from_name(name: str) -> Callable:
    try:
        return get_scorer(name)
    except ValueError:
        valid = sorted(get_scorer_names())
        close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
        examples = close or ["accuracy", "roc_auc", "roc_auc_ovr", "neg_log_loss", "r2",
                             "neg_mean_squared_error"]
        raise ValueError(
            f"The 'metrics' parameter of evaluate got an unknown scorer name {name!r}. "
            f"Valid names include {', '.join(map(repr, examples))} "
            "(all of sklearn.metrics.get_scorer_names()), or pass a callable "
            "scorer(estimator, X, y)."
        ) from None


def _metric_name(metric, index: int) -> str:
    if isinstance(metric, str):
        return metric
    name = getattr(metric, "__name__", None)
    return name if name and name != "<lambda>" else f"metric_{index}"


def _resolve_metrics(metrics, pairs, y, greater_is_better) -> list[tuple[str, Callable, bool]]:
    if metrics is None:
        metrics = _default_metrics(pairs, y)
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    if isinstance(metrics, Mapping):
        named = list(metrics.items())
    elif isinstance(metrics, (list, tuple)):
        named = [(_metric_name(metric, index), metric) for index, metric in enumerate(metrics)]
    else:
        raise TypeError(
            "The 'metrics' parameter of evaluate must be a scorer name, a callable "
            "scorer(estimator, X, y), a list of them, a dict of name -> either, or None. "
            f"Got {metrics!r} instead."
        )
    if not named:
        raise ValueError("The 'metrics' parameter of evaluate must not be empty.")
    for name, _ in named:
        if not isinstance(name, str) or not name:
            raise ValueError(
                "The 'metrics' parameter of evaluate must name each metric with a non-empty "
                f"string. Got the name {name!r} instead."
            )
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(
            f"The 'metrics' parameter of evaluate has repeated names {names!r}; pass a dict "
            "of distinct name -> metric."
        )
    declared = _check_greater_is_better(greater_is_better)
    unknown = sorted(set(declared) - set(names))
    if unknown:
        raise ValueError(
            f"The 'greater_is_better' parameter of evaluate names metrics that are not "
            f"evaluated: {unknown}. Metrics: {names}."
        )
    resolved = []
    for name, metric in named:
        if isinstance(metric, str):
            if name in declared and not declared[name]:
                raise ValueError(
                    f"The 'greater_is_better' parameter of evaluate declares {name!r} a loss, "
                    f"but the scikit-learn scorer {metric!r} is greater-is-better already "
                    "(losses are negated, as in 'neg_log_loss')."
                )
            resolved.append((name, _scorer_from_name(metric), True))
        elif callable(metric):
            resolved.append((name, metric, bool(declared.get(name, True))))
        else:
            raise TypeError(
                f"The 'metrics' parameter of evaluate got {metric!r} for {name!r}; each metric "
                "must be a scorer name or a callable scorer(estimator, X, y)."
            )
    return resolved


def _check_greater_is_better(greater_is_better) -> dict:
    """The `greater_is_better` argument of :func:`evaluate` as a dict; errors name it."""
    if greater_is_better is None:
        return {}
    if not isinstance(greater_is_better, Mapping):
        raise TypeError(
            "The 'greater_is_better' parameter of evaluate must be a dict of metric name -> "
            f"bool, or None. Got {greater_is_better!r} instead."
        )
    for name, greater in greater_is_better.items():
        if not isinstance(greater, (bool, np.bool_)):
            raise TypeError(
                "The 'greater_is_better' parameter of evaluate must map each metric name to "
                f"True or False. Got {greater!r} for {name!r} instead."
            )
    return {name: bool(greater) for name, greater in greater_is_better.items()}


def _n_samples(data, name: str) -> int | None:
    """The number of samples of the `name` argument of :func:`evaluate` (None if unknown)."""
    shape = getattr(data, "shape", None)
    try:
        if shape is not None:
            if len(shape) == 0:
                raise TypeError
            n_samples = shape[0]
        else:
            if data is None or isinstance(data, (str, bytes)):
                raise TypeError
            n_samples = len(data)
    except TypeError:
        expected = ("array-like of shape (n_samples, n_features)" if name == "X"
                    else "array-like of shape (n_samples,)")
        raise TypeError(
            f"The '{name}' parameter of evaluate must be {expected}. Got {data!r} instead."
        ) from None
    if not isinstance(n_samples, numbers.Integral):  # a dask array of unknown chunk sizes
        return None
    if n_samples == 0:
        raise ValueError(f"The '{name}' parameter of evaluate must have at least one sample. "
                         "Got 0 samples instead.")
    return int(n_samples)


def _check_data(X, y) -> None:
    n_X, n_y = _n_samples(X, "X"), _n_samples(y, "y")
    if n_X is not None and n_y is not None and n_X != n_y:
        raise ValueError(
            "The 'X' and 'y' parameters of evaluate must have the same number of samples. "
            f"Got {n_X} and {n_y} instead."
        )


def _value(scorer_value, metric: str, name: str, member: int) -> float:
    """A metric's value as a float; TypeError naming the metric when it is not a number."""
    try:
        return float(scorer_value)
    except (TypeError, ValueError):
        raise TypeError(
            f"The metric {metric!r} of evaluate returned {scorer_value!r} for the estimator "
            f"{name!r} (member {member}); a metric must return a number."
        ) from None


def evaluate(estimators, X, y, metrics=None, *, greater_is_better=None) -> EvaluationReport:
    """Score named fitted estimators on `X`, `y`, with mean, std and score for each metric.

    A :class:`~dasktrain.RepeatedClassifier` or
    :class:`~dasktrain.RepeatedRegressor` counts as its members: each member is
    scored, and the mean and standard deviation are taken over them. Any other
    estimator is scored once (its std is 0).

    Parameters
    ----------
    estimators : dict of str to estimator, or list of (str, estimator)
        The fitted estimators, by name; the report keeps this order.
    X : array-like of shape (n_samples, n_features)
        Test data.
    y : array-like of shape (n_samples,)
        True targets.
    metrics : str, callable, list or dict, default=None
        A scikit-learn scorer name (``"accuracy"``, ``"roc_auc"``,
        ``"roc_auc_ovr"``, ``"neg_log_loss"``, ``"r2"``,
        ``"neg_mean_squared_error"``, ... any of
        :func:`sklearn.metrics.get_scorer_names`), a callable
        ``scorer(estimator, X, y)`` returning a float (such as
        :func:`sklearn.metrics.make_scorer` gives), a list of these, or a dict
        of name -> either. A callable in a list is named after its
        ``__name__`` (else ``metric_<position>``). None means accuracy and
        roc_auc (roc_auc_ovr for multiclass targets) when every estimator is
        a classifier, and r2 and neg_mean_squared_error when every estimator
        is a regressor.
    greater_is_better : dict of str to bool, default=None
        For plain callables that return a loss (lower is better), map their
        metric name to False. Scorer names and :func:`~sklearn.metrics.make_scorer`
        objects are greater-is-better by scikit-learn's convention and need
        nothing here.

    Returns
    -------
    report : EvaluationReport
        ``report.frame`` is the table as a DataFrame, ``print(report)`` shows
        it as text and a notebook shows it as HTML; the best score of each
        metric is marked with ``*`` (bold in HTML).

    Notes
    -----
    For each metric, ``mean`` and ``std`` (population standard deviation,
    ``ddof=0``) are taken over the values of the members. ``score`` is the
    mean moved one std towards "worse": ``mean - std`` when greater is better,
    ``mean + std`` when lower is better. So a model that is good only on
    average ranks below an equally good, steadier one. The best estimator of a
    metric has the largest score, or the smallest for a lower-is-better metric.

    scikit-learn's scorers are all greater-is-better: its loss scorers return
    the negated loss (``"neg_log_loss"``, ``"neg_mean_squared_error"``), so
    for them ``score = mean - std`` is the pessimistic value too (e.g. -0.30
    and 0.02 give -0.32) and the largest (closest to zero) wins. Only a plain
    callable that returns a loss as a positive number must be declared with
    ``greater_is_better={name: False}``; a loss wrapped with
    ``make_scorer(loss, greater_is_better=False)`` is already negated.

    Raises
    ------
    ValueError
        Naming 'metrics' for an unknown scorer name (with valid names), 'X'
        and 'y' when their numbers of samples differ or are 0.
    TypeError
        Naming the parameter ('estimators', 'X', 'y', 'metrics' or
        'greater_is_better') given something of the wrong kind, or the metric
        that returned something other than a number.
    sklearn.exceptions.NotFittedError
        Naming the estimator that is not fitted.

    See Also
    --------
    dasktrain.RepeatedClassifier.repeat_scores : One row per repeat.
    sklearn.metrics.get_scorer_names : The scorer names accepted.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from dasktrain import RepeatedClassifier, evaluate
    >>> X, y = load_iris(return_X_y=True)
    >>> trees = RepeatedClassifier(DecisionTreeClassifier(max_depth=2, max_features=2),
    ...                            n_repeats=4, random_state=0).fit(X[::2], y[::2])
    >>> logreg = LogisticRegression(max_iter=500).fit(X[::2], y[::2])
    >>> report = evaluate({"trees": trees, "logreg": logreg}, X[1::2], y[1::2],
    ...                   metrics=["accuracy"])
    >>> print(report)
                                accuracy
    estimator  members    mean     std    score
    ---------  -------  ------  ------  -------
    trees            4  0.9000  0.0577  0.8423
    logreg           1  0.9600  0.0000  0.9600*
    * best score of each metric; score = mean - std
    >>> report.best
    {'accuracy': 'logreg'}
    """
    pairs = _named_estimators(estimators)
    _check_data(X, y)
    resolved = _resolve_metrics(metrics, pairs, y, greater_is_better)
    rows = []
    members = {}
    for name, estimator in pairs:
        models = members_of(estimator)
        members[name] = len(models)
        for index, model in enumerate(models):
            for metric, scorer, _ in resolved:
                value = _value(scorer(model, X, y), metric, name, index)
                rows.append({"estimator": name, "member": index, "metric": metric,
                             "value": value})
    scores = pd.DataFrame(rows, columns=["estimator", "member", "metric", "value"])
    return EvaluationReport(scores, {metric: greater for metric, _, greater in resolved}, members)
