"""``cv_results_`` in scikit-learn's layout, the best candidate, failures reported as it does."""

from __future__ import annotations

import math
import numbers
import warnings
from collections import Counter, defaultdict

import numpy as np
from numpy.ma import MaskedArray
from scipy.stats import rankdata
from sklearn.exceptions import FitFailedWarning

from ._records import CandidateResult, Status

__all__ = ["CandidateFailedWarning", "best_index", "check_failures", "format_results",
           "masked_params", "metric_names"]


class CandidateFailedWarning(FitFailedWarning, UserWarning):
    """Some fits failed or timed out; their splits score `error_score`.

    A :class:`~sklearn.exceptions.FitFailedWarning` (as scikit-learn's searches
    warn, so a filter on it catches this) that is also a :class:`UserWarning`.
    """


def masked_params(candidate_params: list[dict]):
    """``param_<name>`` masked arrays, as scikit-learn's searches make them.

    A candidate that does not have a parameter (another branch of a
    conditional space) has it masked.
    """
    n_candidates = len(candidate_params)
    by_name: dict = defaultdict(dict)
    for index, params in enumerate(candidate_params):
        for name, value in params.items():
            by_name[f"param_{name}"][index] = value
    for key, values in by_name.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                array = np.array(list(values.values()))
        except (ValueError, TypeError):
            dtype = np.dtype(object)
        else:
            dtype = array.dtype if array.dtype.kind not in "UO" and array.ndim == 1 else object
        masked = MaskedArray(np.empty(n_candidates, dtype=dtype), mask=True)
        for index, value in values.items():
            masked[index] = value
        yield key, masked


def metric_names(results: list[CandidateResult], scorers: dict) -> list[str]:
    """The metrics of the results: the scorers' names, or the keys of the dict that a single
    callable scorer returned (read from the first candidate scored well on a split)."""
    for result in results:
        if result.n_failed_fits + result.n_failed_scores < len(result.fit_time):
            return list(result.test)
    return list(scorers)


def check_failures(results: list[CandidateResult], n_splits: int, error_score) -> None:
    """Raise when every fit failed; otherwise warn about the failures, as scikit-learn does.

    Only failed (or timed out) fits count; a split whose fit succeeded and
    whose scoring failed warns with a :class:`UserWarning`, as scikit-learn's
    searches do.
    """
    total = len(results) * n_splits
    n_failed = sum(result.n_failed_fits for result in results)
    errors: Counter = Counter()
    for result in results:
        if result.n_failed_fits:
            errors[result.error] += result.n_failed_fits
    summary = "\n".join(f"{'-' * 80}\n{count} fits failed with the following error:\n"
                        f"{error}" for error, count in errors.most_common(5))
    if total and n_failed == total:
        raise ValueError(
            f"\nAll the {total} fits failed.\nIt is very likely that your model is "
            "misconfigured.\nYou can try to debug the error by setting error_score='raise'."
            f"\n\nBelow are more details about the failures:\n{summary}")
    if n_failed:
        warnings.warn(
            f"\n{n_failed} fits failed out of a total of {total}.\nThe score on these "
            f"train-test partitions for these parameters will be set to {error_score}.\n"
            "If these failures are not expected, you can try to debug them by setting "
            f"error_score='raise'.\n\nBelow are more details about the failures:\n{summary}",
            CandidateFailedWarning, stacklevel=4)
    scoring = [result for result in results if result.n_failed_scores]
    if scoring:
        warnings.warn(
            f"Scoring failed for {len(scoring)} candidates. The score on these train-test "
            f"partitions for these parameters will be set to {error_score}. Details: \n"
            f"{scoring[0].error}", UserWarning, stacklevel=4)


def format_results(results: list[CandidateResult], generations: list[int], n_folds: int,
                   n_repeats: int, metrics: list[str], *, return_train_score: bool,
                   error_score, costs=(), rung: bool = False) -> dict:
    """``cv_results_``: one entry per candidate, scikit-learn's keys, plus ``generation``,
    ``status`` and ``error``; ``mean_<cost>`` and ``std_<cost>`` for each name of `costs`
    measured on the fitted estimators; with `rung` (``pruning="rows"``), ``rung_time`` and
    ``rung_test_<metric>``, the candidates' rung fit + score seconds and scores (NaN when
    the rung failed). Candidates pruned without a score on a fold rank by their rung."""
    n_candidates = len(results)
    n_splits = n_folds * n_repeats
    out: dict = {}

    def scores(result: CandidateResult, part: str, metric: str) -> list:
        values = getattr(result, part)[metric] if metric in getattr(result, part) else None
        if values is None:  # a failed candidate of a callable scorer returning a dict
            return [error_score] * n_splits
        return values

    pruned = np.asarray([result.status == Status.PRUNED for result in results], dtype=bool)

    def rung_scores(metric: str) -> np.ndarray:
        return np.asarray([math.nan if result.rung is None else result.rung.get(metric, math.nan)
                           for result in results], dtype=np.float64)

    def ranking(means):
        if np.isnan(means).all():
            return np.ones_like(means, dtype=np.int32)
        filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
        return rankdata(-filled, method="min").astype(np.int32)

    def store(key, array, splits=False, rank=False, rung_scores=None):
        array = np.asarray(array, dtype=np.float64).reshape(n_candidates, n_splits)
        if splits:
            for split in range(n_splits):
                out[f"split{split}_{key}"] = array[:, split]
        means = array.mean(axis=1)
        stds = array.std(axis=1)
        if pruned.any():  # a pruned candidate: over the splits it was fitted on
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                means[pruned] = np.nanmean(array[pruned], axis=1)
                stds[pruned] = np.nanstd(array[pruned], axis=1)
        out[f"mean_{key}"] = means
        if key.startswith(("train_", "test_")) and not np.all(np.isfinite(means[~pruned])):
            warnings.warn(f"One or more of the {key.split('_')[0]} scores are non-finite: "
                          f"{means}", UserWarning, stacklevel=4)
        out[f"std_{key}"] = stds
        if rank:  # pruned candidates rank after every complete one
            ranks = np.empty(n_candidates, dtype=np.int32)
            ranks[~pruned] = ranking(means[~pruned]) if (~pruned).any() else []
            if pruned.any():
                by = means[pruned]
                if rung_scores is not None:  # pruned on its rung: no fold was fitted
                    by = np.where(np.isnan(by), rung_scores[pruned], by)
                ranks[pruned] = ranking(by) + int((~pruned).sum())
            out[f"rank_{key}"] = ranks
        if splits and n_repeats > 1:
            per_repeat = array.reshape(n_candidates, n_repeats, n_folds).mean(axis=2)
            for repeat in range(n_repeats):
                out[f"mean_{key}_repeat{repeat}"] = per_repeat[:, repeat]
            out[f"std_{key}_across_repeats"] = per_repeat.std(axis=1)

    store("fit_time", [result.fit_time for result in results])
    store("score_time", [result.score_time for result in results])
    for cost in costs:
        store(cost, [result.costs.get(cost, [math.nan] * n_splits) for result in results])
    params = [result.params for result in results]
    for key, masked in masked_params(params):
        out[key] = masked
    out["params"] = params
    if rung:
        out["rung_time"] = np.asarray([result.rung_time for result in results],
                                      dtype=np.float64)
    for metric in metrics:
        store(f"test_{metric}", [scores(result, "test", metric) for result in results],
              splits=True, rank=True, rung_scores=rung_scores(metric) if rung else None)
        if rung:
            out[f"rung_test_{metric}"] = rung_scores(metric)
        if return_train_score:
            store(f"train_{metric}", [scores(result, "train", metric) for result in results],
                  splits=True)
    out["generation"] = np.asarray(generations, dtype=np.int64)
    out["status"] = np.asarray([str(result.status) for result in results], dtype=object)
    out["error"] = np.asarray([result.error for result in results], dtype=object)
    return out


def best_index(results: dict, refit, metric: str) -> int:
    """The index of the best candidate: `refit` when it is a callable, else the best rank."""
    if callable(refit):
        best = refit(results)
        if not isinstance(best, numbers.Integral):
            raise TypeError("best_index_ returned is not an integer")
        if best < 0 or best >= len(results["params"]):
            raise IndexError("best_index_ index out of range")
        return int(best)
    return int(results[f"rank_test_{metric}"].argmin())


def fitness(result: CandidateResult, metric: str) -> float:
    """The mean score of `metric`, NaN for a failed candidate."""
    return result.mean_score(metric) if result.status == Status.OK else math.nan
