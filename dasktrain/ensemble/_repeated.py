"""Repeated training: the same estimator fitted with several seeds, in parallel, and averaged."""

from __future__ import annotations

import sys
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import check_scoring
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._base import (ParallelEstimatorMixin, blockwise_if_dask, check_task_of,
                     estimator_instance, fill_doc)
from .._delayed import FitGraph, check_sample_weight_support, fit_clone
from ..utils import Interval, Options, spawn_seeds
from ..utils._data import check_fit_data, check_predict_data, check_sample_weight
from ._combine import average, hard_vote, soft_vote


def _progress_bar(total: int, description: str):
    """A tqdm bar on stderr (tqdm is a dependency of dasktrain)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="fit", file=sys.stderr, leave=True)


class _BaseRepeated(ParallelEstimatorMixin, BaseEstimator):
    """Fit `n_repeats` seeded clones of one estimator in parallel; subclasses combine them."""

    _parameter_constraints: dict = {
        "estimator": [estimator_instance("fit")],
        "n_repeats": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": [Interval(Integral, 0, None, closed="left")],
    }
    _task: str = "regression"
    #: The estimator to use for the other kind of task (named in error messages).
    _alternative: str = "RepeatedClassifier"

    def __init__(self, estimator, *, n_repeats=5, random_state=None, use_dask=False,
                 client=None, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.n_repeats = n_repeats
        self.random_state = random_state
        self.use_dask = use_dask
        self.client = client
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _check_estimator(self) -> None:
        """Checks of the estimator that depend on other parameters (before any work)."""
        check_task_of(type(self).__name__, self.estimator, self._task, self._alternative)

    def _prepare_targets(self, y):
        return y

    def fit(self, X, y, sample_weight=None):
        """Fit `n_repeats` clones of `estimator`, each with its own seed, in parallel.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Training data; a pandas DataFrame is passed to the members as is.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Passed to every member's fit (the estimator must accept it).

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        return self._fit_by_graph(X, y, sample_weight=sample_weight)

    def _fit_graph(self, X, y, *, n_workers, sample_weight=None):
        """Check everything, then describe one task per repeat; X and y are sent once."""
        self._validate_params()
        self._check_estimator()
        owner = type(self).__name__
        if sample_weight is not None:
            check_sample_weight_support([("estimator", self.estimator)], owner)
        X, y = check_fit_data(self, self.estimator, X, y, task=self._task)
        sample_weight = check_sample_weight(sample_weight, y.shape[0], owner)
        self._prepare_targets(y)
        self.seeds_ = spawn_seeds(self.random_state, self.n_repeats)
        graph = FitGraph()
        X_data, y_data = graph.data("X", X), graph.data("y", y)
        weights = graph.data("sample_weight", sample_weight)
        outputs = [graph.task(fit_clone, self.estimator, X_data, y_data, seed,
                              sample_weight=weights) for seed in self.seeds_]
        return graph, outputs

    def _assemble(self, results):
        self.estimators_ = list(results)
        return self

    def _progress(self, backend):
        """With `verbose`, a progress bar on stderr that counts the finished repeats."""
        import contextlib

        if not self.verbose:
            return contextlib.nullcontext(None)
        if backend.dashboard_link:
            print(f"{type(self).__name__}: Dask dashboard at {backend.dashboard_link}",
                  file=sys.stderr)
        bar = _progress_bar(self.n_repeats, f"{type(self).__name__} ({backend.name})")

        @contextlib.contextmanager
        def counting():
            try:
                yield lambda: bar.update(1)
            finally:
                bar.close()

        return counting()

    def _predictions(self, method: str, X) -> list:
        check_is_fitted(self)
        X = check_predict_data(self, self.estimator, X)
        return [getattr(member, method)(X) for member in self.estimators_]

    def repeat_scores(self, X, y, scoring=None) -> pd.DataFrame:
        """Score every member on `X`, `y`: one row per repeat.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Test data.
        y : array-like of shape (n_samples,)
            True targets.
        scoring : str, callable, list, tuple or dict, default=None
            A scikit-learn scorer name, a callable ``scorer(estimator, X, y)``,
            or several of them (list, tuple or dict of name -> scorer). None
            uses each member's own ``score`` method.

        Returns
        -------
        scores : pandas.DataFrame
            Columns ``repeat``, ``seed`` and ``score`` for a single scorer, or
            one column per metric name when `scoring` names several.
        """
        check_is_fitted(self)
        X = check_predict_data(self, self.estimator, X)
        multi = isinstance(scoring, (list, tuple, set, dict))
        rows = []
        for repeat, (seed, member) in enumerate(zip(self.seeds_, self.estimators_)):
            scorer = check_scoring(member, scoring=scoring)
            result = scorer(member, X, y)
            values = dict(result) if multi else {"score": result}
            rows.append({"repeat": repeat, "seed": seed, **values})
        return pd.DataFrame(rows)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self.estimator)
        except Exception:  # not an estimator yet: fit will say so
            return tags
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.categorical = inner.input_tags.categorical
        tags.input_tags.string = inner.input_tags.string
        tags.non_deterministic = tags.non_deterministic or inner.non_deterministic
        return tags


def _soft_voting(ensemble) -> bool:
    """predict_proba exists with soft voting (and with a fitted or given estimator)."""
    if ensemble.voting != "soft":
        raise AttributeError(
            "predict_proba is not available when voting='hard'; use voting='soft'."
        )
    return True


@fill_doc
class RepeatedClassifier(ClassifierMixin, _BaseRepeated):
    """A classifier trained `n_repeats` times with different seeds, in parallel.

    Each repeat is a clone of `estimator` whose every ``random_state`` parameter,
    nested ones included (pipeline steps, ensembles), is set from one seed
    drawn from a :class:`numpy.random.SeedSequence`. The repeats are fitted as
    one task each, on this process or on a Dask cluster, with the data sent
    once; they are combined by averaging their probabilities (soft voting) or
    by majority vote (hard voting).

    Parameters
    ----------
    estimator : estimator object
        The classifier to repeat. It is cloned; it must implement ``fit`` (and
        ``predict_proba`` when ``voting="soft"``).
    n_repeats : int, default=5
        Number of repeats (members), at least 1.
    voting : {"soft", "hard"}, default="soft"
        "soft" predicts the class with the largest mean probability of the
        members; "hard" predicts the most frequent member prediction (ties go
        to the smallest label) and has no ``predict_proba``.
    %(random_state)s
    %(use_dask)s
    %(client)s
    %(n_jobs)s
    verbose : int, default=0
        With 1 or more, a progress bar on stderr counts the finished repeats.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members, in repeat order.
    seeds_ : list of int
        The seed of each member, in repeat order; the same `random_state`
        gives the same seeds on every backend.
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted as by :class:`~sklearn.preprocessing.LabelEncoder`.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in fit, when `X` had string column names.

    See Also
    --------
    RepeatedRegressor : The same for regression.
    dasktrain.evaluate : Compare the members of repeated estimators with others.
    sklearn.ensemble.VotingClassifier : Combines different classifiers, fitted serially.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from dasktrain import RepeatedClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RepeatedClassifier(LogisticRegression(max_iter=500), n_repeats=3,
    ...                          random_state=0).fit(X, y)
    >>> len(clf.estimators_), clf.predict(X[:2])
    (3, array([0, 0]))
    >>> clf.repeat_scores(X, y, scoring="accuracy").columns.tolist()
    ['repeat', 'seed', 'score']
    """

    _parameter_constraints: dict = {
        **_BaseRepeated._parameter_constraints,
        "voting": [Options(["soft", "hard"])],
    }
    _task = "classification"
    _alternative = "RepeatedRegressor"

    def __init__(self, estimator, *, n_repeats=5, voting="soft", random_state=None,
                 use_dask=False, client=None, n_jobs=None, verbose=0):
        super().__init__(estimator, n_repeats=n_repeats, random_state=random_state,
                         use_dask=use_dask, client=client, n_jobs=n_jobs, verbose=verbose)
        self.voting = voting

    def _check_estimator(self) -> None:
        super()._check_estimator()
        if self.voting == "soft" and not hasattr(self.estimator, "predict_proba"):
            raise ValueError(
                "The 'voting' parameter of RepeatedClassifier is 'soft', which averages the "
                f"members' predict_proba, but {type(self.estimator).__name__} has no "
                "predict_proba. Use voting='hard', or an estimator with predict_proba."
            )

    def _prepare_targets(self, y):
        self._label_encoder = LabelEncoder().fit(y)
        self.classes_ = self._label_encoder.classes_
        return y

    def _member_columns(self, member) -> np.ndarray:
        """Positions in ``classes_`` of a member's own ``classes_``."""
        return self._label_encoder.transform(member.classes_)

    @blockwise_if_dask
    def predict(self, X):
        """Predict class labels: mean probability (soft) or majority vote (hard).

        Parameters
        ----------
        X : array-like or dask collection of shape (n_samples, n_features)
            Samples; a dask array or dataframe is predicted block by block,
            lazily, giving a dask array or a dask series/dataframe.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        check_is_fitted(self)
        if self.voting == "soft":
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        votes = [self._label_encoder.transform(np.asarray(pred).ravel())
                 for pred in self._predictions("predict", X)]
        return self.classes_[hard_vote(votes, len(self.classes_))]

    @available_if(_soft_voting)
    @blockwise_if_dask
    def predict_proba(self, X):
        """Mean of the members' class probabilities (``voting="soft"`` only).

        Parameters
        ----------
        X : array-like or dask collection of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        member_probas = self._predictions("predict_proba", X)  # checks it is fitted first
        columns = [self._member_columns(member) for member in self.estimators_]
        return soft_vote(member_probas, columns, len(self.classes_))

    @available_if(_soft_voting)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


@fill_doc
class RepeatedRegressor(RegressorMixin, _BaseRepeated):
    """A regressor trained `n_repeats` times with different seeds, in parallel, and averaged.

    Each repeat is a clone of `estimator` whose every ``random_state`` parameter,
    nested ones included, is set from one seed drawn from a
    :class:`numpy.random.SeedSequence`. The repeats are fitted as one task each,
    on this process or on a Dask cluster, with the data sent once; ``predict``
    is the mean of their predictions.

    Parameters
    ----------
    estimator : estimator object
        The regressor to repeat; it is cloned and must implement ``fit``.
    n_repeats : int, default=5
        Number of repeats (members), at least 1.
    %(random_state)s
    %(use_dask)s
    %(client)s
    %(n_jobs)s
    verbose : int, default=0
        With 1 or more, a progress bar on stderr counts the finished repeats.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members, in repeat order.
    seeds_ : list of int
        The seed of each member, in repeat order.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in fit, when `X` had string column names.

    See Also
    --------
    RepeatedClassifier : The same for classification.
    sklearn.ensemble.VotingRegressor : Averages different regressors, fitted serially.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> from dasktrain import RepeatedRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = RepeatedRegressor(DecisionTreeRegressor(max_depth=3), n_repeats=4,
    ...                         random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape, len(set(reg.seeds_))
    ((3,), 4)
    """

    _task = "regression"

    @blockwise_if_dask
    def predict(self, X):
        """Mean of the members' predictions.

        Parameters
        ----------
        X : array-like or dask collection of shape (n_samples, n_features)
            Samples; a dask array or dataframe is predicted block by block,
            lazily, giving a dask array or a dask series/dataframe.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted values.
        """
        return average(self._predictions("predict", X))
