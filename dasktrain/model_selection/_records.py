"""The records a search passes around: what a split task returns, what a candidate scored.

They are small dataclasses with names, so that the tasks, the evaluator, the
strategies and ``cv_results_`` agree on one layout instead of positions in
tuples.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CandidateResult", "Outcome", "PrefixFailure", "SplitRecord", "Status"]


class Status(enum.StrEnum):
    """How the evaluation of a split (and so of a candidate) ended."""

    OK = "ok"
    #: The fit or the scoring raised; the reason is kept.
    ERROR = "error"
    #: The split ran past ``eval_timeout``.
    TIMEOUT = "timeout"
    #: The whole search ran out of time (``max_time``): never recorded.
    BUDGET = "budget"
    #: Not fitted on its remaining folds: its first folds were clearly behind (``pruning``).
    PRUNED = "pruned"


@dataclass(slots=True)
class SplitRecord:
    """What one fit-and-score task returns for one (candidate, split): scores and times only.

    Attributes
    ----------
    status : Status
    error : str
        The reason of a failure, "" when ok.
    test, train : dict
        Metric name -> score (`error_score` on failure); `train` is None unless
        train scores were asked for.
    fit_time, score_time : float
        Seconds.
    fit_failed : bool
        True when the fit failed (False for a failure while scoring, which
        scikit-learn's searches do not count as a failed fit).
    stuck_in : tuple or None
        ``(worker identity, pid)`` of a process left running a timed-out fit.
    costs : dict
        Cost name -> value measured on the fitted estimator (``model_size``,
        a callable cost); empty when no cost was asked for or the split failed.
    """

    status: Status
    error: str
    test: dict
    train: dict | None
    fit_time: float = 0.0
    score_time: float = 0.0
    fit_failed: bool = False
    stuck_in: tuple | None = None
    costs: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


@dataclass
class PrefixFailure:
    """A pipeline-prefix task that failed or timed out; the splits built on it report it."""

    status: Status
    error: str
    fit_time: float = 0.0
    stuck_in: tuple | None = None


@dataclass
class CandidateResult:
    """One candidate's cross-validation: its split records combined, in split order.

    Attributes
    ----------
    params : dict
    status : Status
        The first failure's status, else OK.
    error : str
        The first failure's reason, "" when ok.
    test, train : dict
        Metric name -> list of split scores (`train` None unless asked for).
    fit_time, score_time : list of float
    n_failed_fits : int
        Splits whose fit failed (not counting failures while scoring).
    n_failed_scores : int
        Splits whose fit succeeded and whose scoring failed.
    costs : dict
        Cost name -> list of split values (NaN for a split that failed).
    rung : dict or None
        With ``pruning="rows"``, metric -> the score of its rung (the fit on a
        subsample of the first fold's training rows, scored on that fold's
        test rows; NaN when the rung failed); None otherwise.
    rung_time : float
        Fit + score seconds of the rung (NaN without one).

    A pruned candidate's splits that were not fitted have status PRUNED and
    NaN scores; so has the candidate, unless one of its fitted splits failed.
    """

    params: dict
    status: Status
    error: str
    test: dict
    train: dict | None
    fit_time: list
    score_time: list
    n_failed_fits: int = 0
    n_failed_scores: int = 0
    costs: dict = field(default_factory=dict)
    rung: dict | None = None
    rung_time: float = math.nan

    @classmethod
    def from_splits(cls, params: dict, records: list[SplitRecord],
                    rung: SplitRecord | None = None) -> CandidateResult:
        """The result of these split records, in split order (and of its `rung`)."""
        failed = [record for record in records if not record.ok]
        # the metrics scored well; a failure record fills them with its error score
        metrics = list(dict.fromkeys(name for record in records if record.ok
                                     for name in record.test))
        if not metrics:
            metrics = list(dict.fromkeys(name for record in records for name in record.test))

        def part(record, values):
            fill = next(iter(values.values()), math.nan) if not record.ok else math.nan
            return [values.get(name, fill) for name in metrics]

        test = {name: [] for name in metrics}
        train = None if records[0].train is None else {name: [] for name in metrics}
        for record in records:
            for name, value in zip(metrics, part(record, record.test)):
                test[name].append(value)
            if train is not None:
                for name, value in zip(metrics, part(record, record.train or {})):
                    train[name].append(value)
        return cls(
            params=params,
            status=failed[0].status if failed else Status.OK,
            error=failed[0].error if failed and failed[0].status != Status.PRUNED else "",
            test=test,
            train=train,
            fit_time=[record.fit_time for record in records],
            score_time=[record.score_time for record in records],
            n_failed_fits=sum(record.fit_failed for record in failed),
            n_failed_scores=sum(record.status == Status.ERROR and not record.fit_failed
                                for record in failed),
            costs={name: [record.costs.get(name, math.nan) for record in records]
                   for name in dict.fromkeys(name for record in records
                                             for name in record.costs)},
            rung=None if rung is None else {
                name: rung.test.get(name, math.nan) if rung.ok else math.nan
                for name in metrics},
            rung_time=math.nan if rung is None else rung.fit_time + rung.score_time,
        )

    def mean_score(self, metric: str) -> float:
        """The mean split score of `metric`; NaN when a split failed or the metric is absent."""
        scores = np.asarray(self.test.get(metric, [math.nan]), dtype=float)
        return float(np.mean(scores)) if np.all(np.isfinite(scores)) else math.nan

    def mean_cost(self, name: str) -> float:
        """The mean split value of the cost `name`; NaN when a split failed or it is absent."""
        values = np.asarray(self.costs.get(name, [math.nan]), dtype=float)
        return float(np.mean(values)) if np.all(np.isfinite(values)) else math.nan


@dataclass(frozen=True)
class Outcome:
    """What a strategy is told about one evaluated candidate: parameters and scores only.

    Attributes
    ----------
    key : str
        The candidate's content key.
    params : dict
    score : float
        The mean score of the metric the search optimises (higher is better);
        NaN when the candidate failed.
    status : Status
    fit_time : float
        Mean fit seconds over its splits.
    scores : dict
        Every metric's mean score.
    objectives : tuple of float
        With several objectives (``objectives``), the candidate's value of
        each, in order and as measured (metrics to maximise, costs to
        minimise; NaN when it failed); empty otherwise.
    """

    key: str
    params: dict
    score: float
    status: Status
    fit_time: float = 0.0
    scores: dict = field(default_factory=dict)
    objectives: tuple = ()
