"""Plots of searches and evaluations (matplotlib, an optional extra).

- :func:`plot_fitness_evolution`: best and mean ± std score per generation of
  a GeneticSearchCV (its ``history_``).
- :func:`plot_search_space`: each parameter against the mean test score of
  every candidate evaluated, coloured by generation (its ``cv_results_``).
- :func:`plot_pareto_front`: two objectives of every candidate of a search
  with several objectives, its Pareto front drawn over them.
- :func:`plot_repeat_scores`: the distribution of scores of each estimator of
  an :func:`~dasktrain.evaluate` report (a box per estimator).

matplotlib is imported when a function is called, not when this module is;
install it with ``pip install dasktrain[plot]``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["plot_fitness_evolution", "plot_pareto_front", "plot_repeat_scores",
           "plot_search_space"]


def _pyplot(function: str):
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            f"{function} needs matplotlib, an optional dependency of dasktrain. Install it "
            "with: pip install dasktrain[plot]"
        ) from error
    return plt


def _frame(data, what: str, function: str):
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame({key: list(value) if isinstance(value, np.ma.MaskedArray)
                             else value for key, value in data.items()})
    raise TypeError(f"{function} needs {what}. Got {type(data).__name__} instead.")


def _require_columns(frame, columns, function: str, what: str):
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{function} needs the columns {list(columns)} in {what}; "
                         f"{missing} are missing. Got columns {list(frame.columns)}.")


def _fitted_attribute(obj, attribute: str, function: str):
    if not hasattr(obj, attribute):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(f"{function} needs a fitted search with a '{attribute}' attribute. "
                             f"{type(obj).__name__} has none; call fit first.")
    return getattr(obj, attribute)


def plot_fitness_evolution(search_or_history, ax=None):
    """Plot the best score and the mean ± std score of each generation.

    Parameters
    ----------
    search_or_history : GeneticSearchCV or pandas.DataFrame
        A fitted search (its ``history_`` is used) or such a DataFrame, with
        the columns ``generation``, ``best``, ``mean`` and ``std``.
    ax : matplotlib Axes or None, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    ax : matplotlib Axes

    See Also
    --------
    plot_search_space : every candidate's parameters against its score.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> history = pd.DataFrame({"generation": [0, 1, 2], "best": [0.80, 0.86, 0.90],
    ...                         "mean": [0.60, 0.75, 0.82], "std": [0.10, 0.08, 0.05]})
    >>> ax = plot_fitness_evolution(history)
    >>> [line.get_label() for line in ax.get_lines()]
    ['best', 'mean']
    """
    function = "plot_fitness_evolution"
    plt = _pyplot(function)
    import pandas as pd

    history = search_or_history
    if not isinstance(history, (pd.DataFrame, dict)):
        history = _fitted_attribute(history, "history_", function)
    history = _frame(history, "a fitted search or its history_ DataFrame", function)
    _require_columns(history, ["generation", "best", "mean", "std"], function, "the history")
    generation = history["generation"].to_numpy(dtype=float)
    best = history["best"].to_numpy(dtype=float)
    mean = history["mean"].to_numpy(dtype=float)
    std = history["std"].to_numpy(dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.plot(generation, best, marker="o", label="best", color="C0")
    ax.plot(generation, mean, marker=".", label="mean", color="C1")
    ax.fill_between(generation, mean - std, mean + std, alpha=0.25, color="C1",
                    label="mean ± std")
    ax.set_xlabel("generation")
    ax.set_ylabel("score")
    ax.set_title("Fitness over generations")
    if len(generation):
        ax.set_xticks(np.unique(generation))
    ax.legend(loc="lower right")
    ax.grid(True, alpha=0.3)
    return ax


def _is_number(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value)))


def _log_scale(search, name: str) -> bool:
    """Whether the search space declares `name` on a log scale."""
    distributions = getattr(search, "param_distributions", None)
    if not isinstance(distributions, dict) or name not in distributions:
        return False
    try:
        from .space import as_space

        dimension = as_space({name: distributions[name]})[name]
    except (TypeError, ValueError):
        return False
    return bool(getattr(dimension, "log", False))


def plot_search_space(search, params=None, *, score="mean_test_score"):
    """Scatter each parameter against the score of every candidate, coloured by generation.

    Parameters
    ----------
    search : GeneticSearchCV, dict or pandas.DataFrame
        A fitted search (its ``cv_results_`` is used), or such results, with
        ``param_<name>`` columns, the `score` column and ``generation``.
    params : list of str or None, default=None
        The parameter names to plot (without the ``param_`` prefix); None plots
        every ``param_`` column.
    score : str, default="mean_test_score"
        The column on the y axis (e.g. ``"mean_test_accuracy"`` for a search
        with several metrics).

    Returns
    -------
    figure : matplotlib Figure
        A grid with one Axes per parameter (``figure.axes``; the colour bar is
        the last Axes). Numeric parameters use their values (a log axis when
        the search space is on a log scale); others are placed at one
        position per distinct value, labelled with the value.

    See Also
    --------
    plot_fitness_evolution : best and mean scores per generation.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> results = {"param_C": [0.1, 1.0, 10.0], "param_kernel": ["rbf", "poly", "rbf"],
    ...            "mean_test_score": [0.7, 0.9, 0.8], "generation": [0, 0, 1]}
    >>> figure = plot_search_space(results)
    >>> [ax.get_xlabel() for ax in figure.axes[:2]]
    ['C', 'kernel']
    """
    function = "plot_search_space"
    plt = _pyplot(function)
    import pandas as pd

    results = search
    if not isinstance(results, (pd.DataFrame, dict)):
        results = _fitted_attribute(search, "cv_results_", function)
    results = _frame(results, "a fitted search or its cv_results_", function)
    _require_columns(results, [score, "generation"], function, "cv_results_")
    available = [column[len("param_"):] for column in results.columns
                 if column.startswith("param_")]
    if params is None:
        params = available
    else:
        if isinstance(params, str):
            params = [params]
        unknown = [name for name in params if name not in available]
        if unknown:
            raise ValueError(f"The 'params' parameter of {function} names {unknown}, which are "
                             f"not in cv_results_. Available: {available}.")
    if not params:
        raise ValueError(f"{function} found no 'param_<name>' columns to plot.")

    n_columns = min(3, len(params))
    n_rows = math.ceil(len(params) / n_columns)
    figure, axes = plt.subplots(n_rows, n_columns, figsize=(4 * n_columns, 3.2 * n_rows),
                                squeeze=False, constrained_layout=True)
    generations = results["generation"].to_numpy(dtype=float)
    scores = results[score].to_numpy(dtype=float)
    low, high = (np.nanmin(generations), np.nanmax(generations)) if len(generations) else (0, 1)
    mappable = None
    for ax, name in zip(axes.ravel(), params):
        values = list(results[f"param_{name}"])
        present = [i for i, value in enumerate(values) if value is not None and not (
            isinstance(value, float) and math.isnan(value)) and value is not np.ma.masked]
        values = [values[i] for i in present]
        if all(_is_number(value) for value in values):
            x = np.array([float(value) for value in values])
            if _log_scale(search, name) and np.all(x > 0):
                ax.set_xscale("log")
        else:  # categories: one position each, in order of first appearance
            labels = list(dict.fromkeys(_label(value) for value in values))
            x = np.array([labels.index(_label(value)) for value in values], dtype=float)
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=30 if len(labels) > 3 else 0)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        mappable = ax.scatter(x, scores[present], c=generations[present], cmap="viridis",
                              vmin=low, vmax=high, s=25, edgecolors="none")
        ax.set_xlabel(name)
        ax.set_ylabel(score)
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel()[len(params):]:
        ax.remove()
    if mappable is not None:
        figure.colorbar(mappable, ax=list(axes.ravel()[:len(params)]), label="generation")
    return figure


def _label(value) -> str:
    if hasattr(value, "get_params"):
        return type(value).__name__
    return str(value)


def plot_repeat_scores(report, metric=None, ax=None):
    """Box plot of the scores of each estimator's members (or repeats) for one metric.

    Parameters
    ----------
    report : evaluate report or pandas.DataFrame
        The result of :func:`~dasktrain.evaluate` (its ``.scores`` is used) or
        such a long DataFrame with the columns ``estimator``, ``member``,
        ``metric`` and ``value``.
    metric : str or None, default=None
        The metric to show; None means the first one of the report.
    ax : matplotlib Axes or None, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    ax : matplotlib Axes
        One box per estimator, in the report's order, with the mean marked.

    See Also
    --------
    plot_fitness_evolution : scores over the generations of a search.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"estimator": ["a", "a", "b", "b"], "member": [0, 1, 0, 1],
    ...                        "metric": "accuracy", "value": [0.8, 0.9, 0.7, 0.75]})
    >>> ax = plot_repeat_scores(scores)
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['a', 'b']
    """
    function = "plot_repeat_scores"
    plt = _pyplot(function)
    import pandas as pd

    scores = report
    if not isinstance(scores, pd.DataFrame):
        if not hasattr(report, "scores"):
            raise TypeError(f"{function} needs an evaluate report (with a .scores DataFrame) or "
                            f"such a DataFrame. Got {type(report).__name__} instead.")
        scores = report.scores
    scores = _frame(scores, "an evaluate report's scores", function)
    _require_columns(scores, ["estimator", "member", "metric", "value"], function,
                     "the report's scores")
    metrics = list(dict.fromkeys(scores["metric"]))
    if not metrics:
        raise ValueError(f"{function} got a report without scores.")
    if metric is None:
        metric = metrics[0]
    elif metric not in metrics:
        raise ValueError(f"The 'metric' parameter of {function} must be one of {metrics}. "
                         f"Got {metric!r} instead.")
    chosen = scores[scores["metric"] == metric]
    names = list(dict.fromkeys(chosen["estimator"]))
    data = [chosen.loc[chosen["estimator"] == name, "value"].to_numpy(dtype=float)
            for name in names]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4, 1.2 * len(names) + 2), 4))
    ax.boxplot(data, tick_labels=[str(name) for name in names], showmeans=True,
               medianprops={"gid": "median"}, meanprops={"gid": "mean"})
    for position, values in enumerate(data, start=1):  # every member as a point
        offsets = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else np.zeros(1)
        ax.plot(position + offsets, values, linestyle="none", marker=".", color="C0",
                alpha=0.6, gid="members")
    ax.set_ylabel(str(metric))
    ax.set_title(f"{metric} per estimator")
    ax.grid(True, axis="y", alpha=0.3)
    return ax


def _objective_names(search) -> list[str]:
    names = []
    for index, item in enumerate(getattr(search, "objectives", None) or ()):
        if isinstance(item, str):
            names.append(item)
        else:
            name = getattr(item, "__name__", "")
            names.append(name if name.isidentifier() else f"cost{index}")
    return names


def _column(results: dict, name: str, function: str) -> str:
    """The ``cv_results_`` key of an objective name or of a key given as is."""
    for key in (name, f"mean_test_{name}", f"mean_{name}"):
        if key in results:
            return key
    raise ValueError(f"{function} found no column for {name!r} in cv_results_ (tried "
                     f"{name!r}, 'mean_test_{name}' and 'mean_{name}').")


def plot_pareto_front(search, x=None, y=None, *, ax=None):
    """Plot two objectives of every candidate, with the search's Pareto front over them.

    Parameters
    ----------
    search : GeneticSearchCV or GeneticFeatureSelectionCV
        A search fitted with several objectives (``pareto_front_`` and
        ``cv_results_["pareto_rank"]``).
    x, y : str or None, default=None
        Objective names ("score", "model_size", a callable cost's name,
        "n_features") or ``cv_results_`` keys; None takes the first and the
        second of the search's `objectives`.
    ax : matplotlib Axes or None, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    ax : matplotlib Axes
        Every candidate is a point coloured by its Pareto rank; the front is
        drawn as a line through its points, in the order of `x`.

    See Also
    --------
    plot_search_space : every candidate's parameters against its score.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from dasktrain import GeneticSearchCV
    >>> from dasktrain.space import Integer
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GeneticSearchCV(DecisionTreeClassifier(random_state=0),
    ...                          {"max_depth": Integer(1, 8)}, population_size=4,
    ...                          generations=1, cv=3, random_state=0,
    ...                          objectives=["score", "model_size"]).fit(X, y)
    >>> ax = plot_pareto_front(search)
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('mean_test_score', 'mean_model_size')
    """
    function = "plot_pareto_front"
    plt = _pyplot(function)
    results = _fitted_attribute(search, "cv_results_", function)
    front = np.asarray(_fitted_attribute(search, "pareto_front_", function), dtype=int)
    names = _objective_names(search)
    if x is None or y is None:
        if len(names) < 2:
            raise ValueError(f"{function} needs x and y when the search has fewer than two "
                             f"objectives. Got objectives {names!r}.")
        x = names[0] if x is None else x
        y = names[1] if y is None else y
    x_key, y_key = _column(results, x, function), _column(results, y, function)
    xs = np.asarray(results[x_key], dtype=float)
    ys = np.asarray(results[y_key], dtype=float)
    ranks = np.asarray(results["pareto_rank"], dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    points = ax.scatter(xs, ys, c=ranks, cmap="viridis_r", s=18, alpha=0.7,
                        label="candidates")
    order = front[np.argsort(xs[front], kind="stable")]
    ax.plot(xs[order], ys[order], marker="o", color="C3", label="Pareto front")
    ax.set_xlabel(x_key)
    ax.set_ylabel(y_key)
    ax.set_title("Pareto front")
    ax.figure.colorbar(points, ax=ax, label="pareto_rank")
    ax.legend(loc="best")
    ax.grid(True, alpha=0.3)
    return ax
