"""The search engine: runs a strategy's candidates on an evaluator, within an honest budget.

The engine owns what every strategy shares: how many candidates are in
flight, the budget of evaluations, the search's deadline (``max_time``),
``history_``, the callbacks and the checkpoints. A strategy
(:mod:`dasktrain.model_selection._strategies`) only chooses candidates; the
evaluator (:mod:`dasktrain.model_selection._evaluator`) only runs them.

One loop serves every strategy: ask for as many candidates as there is room
for, submit them, wait for results, tell the strategy each outcome, and
record a row of ``history_`` whenever the strategy completes a generation. A
strategy that works in batches (``strategy.batch``) is asked for a whole
generation at once and told it in the order it asked, so its results do not
depend on where or in which order the tasks finish.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._checkpoint import write_checkpoint
from ._evaluator import _DeadlineReached
from ._records import Outcome, Status

__all__ = ["HISTORY_COLUMNS", "RUNG_KEEP", "SearchEngine"]

#: With ``pruning="rows"``, the share of a rung's reference that goes on to its folds.
RUNG_KEEP = 1 / 2

#: Columns of ``history_``, in order.
HISTORY_COLUMNS = ["generation", "best", "mean", "std", "evaluations", "cache_hits", "pruned",
                   "seconds"]


@dataclass
class _Progress:
    """What the engine has done so far (saved in checkpoints)."""

    asked: list = field(default_factory=list)  # candidate keys in the order asked
    generation_of: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    n_told: int = 0


class SearchEngine:
    """Run `strategy` on `evaluator` for ``population_size * (generations + 1)`` evaluations.

    Parameters
    ----------
    strategy : Strategy
    evaluator : Evaluator
    metric : str
        The metric the strategy optimises (higher is better).
    n_generations : int
        Generations after the first; the budget is ``population_size`` new
        candidates per generation.
    n_slots : int or callable
        Task slots of the backend (or a function giving them now, as workers
        come and go), to size the candidates in flight.
    deadline : float or None
        ``time.monotonic()`` value at which the search ends (``max_time``).
    callbacks : list
        Objects with ``on_generation(search, record)``; a True return stops.
    search : estimator
        What callbacks receive.
    checkpoint : path or None
        Written after each generation (see :mod:`._checkpoint`).
    fingerprint : dict
        Saved with each checkpoint, to refuse resuming a different search.
    resumed : dict or None
        A checkpoint's state to continue from.
    pruning : {"folds", "rows"} or None
        "folds": candidates are evaluated fold by fold, and one whose mean
        score on its folds so far is below that of every complete member of
        the population on the same folds is not fitted on the rest (see
        :meth:`should_prune`). "rows": the evaluator fits each candidate on a
        rung first (it must have been given ``rung_rows``), and only those
        whose rung score is among the best of the population's and their own
        are fitted on the folds (see :meth:`rung_decisions`).
    objectives : list of Objective or None
        With several objectives, each outcome told to the strategy carries
        the value of each (:attr:`Outcome.objectives`).
    """

    def __init__(self, strategy, evaluator, *, metric: str, n_generations: int, n_slots: int,
                 deadline=None, callbacks=(), search=None, checkpoint=None, fingerprint=None,
                 resumed=None, extra_state=None, pruning=None, objectives=None):
        self.strategy = strategy
        self.evaluator = evaluator
        self.metric = metric
        self.budget = strategy.population_size * (n_generations + 1)
        self.n_rows = n_generations + 1
        self._slots = n_slots if callable(n_slots) else (lambda: n_slots)
        # tasks run one by one as submitted: the candidates are told in the order asked,
        # so a search (steady_state too) is the same from run to run
        self._in_order = evaluator.backend.runs_in_order
        self._ask_index: dict[str, int] = {}  # key -> its place in progress.asked
        self.deadline = deadline
        self.callbacks = list(callbacks)
        self.search = search
        self.checkpoint = checkpoint
        self.fingerprint = fingerprint
        self.extra_state = dict(extra_state or {})
        self.objectives = list(objectives or ())
        self.progress = _Progress()
        self.stopped = False
        self._unreported: list[str] = []  # told since the last row of history_
        self._row_started = time.monotonic()
        self._row_told = 0
        self._row_duplicates = 0
        self._row_pruned = 0
        evaluator.pruner = self.should_prune if pruning == "folds" else None
        if (pruning == "rows") != evaluator.has_rung:
            raise ValueError("pruning='rows' needs an evaluator with a rung, and only it does.")
        evaluator.rung_rule = self.rung_decisions if pruning == "rows" else None
        if resumed is not None:
            self._restore(resumed)

    # ------------------------------------------------------------------ state

    def _restore(self, state: dict) -> None:
        self.evaluator.results.update(state["results"])
        self.strategy.set_state(state["strategy"])
        self.progress = _Progress(**state["progress"])
        self.progress.asked = [key for key in self.progress.asked
                               if key in self.evaluator.results]
        for key in self.progress.asked:
            self._ask_index.setdefault(key, len(self._ask_index))
        self._row_duplicates = self.strategy.n_duplicates

    def _save(self) -> None:
        if self.checkpoint is None or self.evaluator.out_of_time:
            return  # a generation cut short is not resumable
        progress = self.progress
        write_checkpoint(self.checkpoint, {
            **self.extra_state,
            "fingerprint": self.fingerprint,
            "strategy": self.strategy.state(),
            "progress": {"asked": list(progress.asked),
                         "generation_of": dict(progress.generation_of),
                         "history": [dict(row) for row in progress.history],
                         "n_told": progress.n_told},
            "results": {key: self.evaluator.results[key] for key in progress.asked
                        if key in self.evaluator.results},
        })

    @property
    def order(self) -> list[str]:
        """Keys of the candidates evaluated and told, in the order they were asked for."""
        told = self.progress.generation_of
        return [key for key in self.progress.asked if key in told]

    # ------------------------------------------------------------------ the loop

    def _room(self) -> int:
        """How many more candidates to ask for now."""
        progress, evaluator = self.progress, self.evaluator
        left = self.budget - len(progress.asked)
        if left <= 0:
            return 0
        if self.strategy.batch:
            return left
        return max(0, min(left, self._in_flight_limit() - evaluator.in_flight))

    def _in_flight_limit(self) -> int:
        """Candidates kept in flight: two per slot, more when they are cheap.

        Enough that each slot has two batched tasks' worth of work queued while
        the client collects results and asks for more, but no more than a
        population's worth, so that children come from a recent population.
        """
        evaluator = self.evaluator
        slots = max(1, int(self._slots()))
        least = max(2, 2 * slots)
        if not evaluator.split_seconds or self._in_order:
            return least  # run in order, nothing may depend on the times measured
        per_candidate = evaluator.split_seconds * evaluator.n_splits
        wanted = math.ceil(2 * max(evaluator.task_seconds, 0.01) * slots / per_candidate)
        return max(least, min(wanted, self.strategy.population_size))

    def run(self) -> None:
        """Search until the budget, the generations, the deadline or a callback ends it."""
        evaluator, progress = self.evaluator, self.progress
        self._row_started = time.monotonic()
        while (not self.stopped and not evaluator.out_of_time
               and len(progress.history) < self.n_rows):
            room = self._room()
            asked = self.strategy.ask(room) if room else []
            if asked:
                keys, _ = evaluator.submit(
                    asked, context=[outcome.key for outcome in self.strategy.population],
                    deadline=self.deadline)
                progress.asked.extend(dict.fromkeys(keys))
                for key in keys:
                    self._ask_index.setdefault(key, len(self._ask_index))
            if not evaluator.in_flight:
                if asked and not evaluator.out_of_time:
                    continue  # all of them were known already
                break
            self.strategy.prepare()  # client-side work while the workers run the candidates
            try:
                finished = evaluator.wait(self.deadline)
            except _DeadlineReached:
                break
            if self._in_order:
                finished.sort(key=lambda key: self._ask_index.get(key, -1))
            self._tell(finished)
        if evaluator.in_flight:
            self._tell(evaluator.drain(), closing=True)
            evaluator.cancel()
        if self.strategy.flush() or self._row_told:
            self._row(final=True)

    def _tell(self, keys: list[str], closing: bool = False) -> None:
        for key in keys:
            result = self.evaluator.results[key]
            outcome = Outcome(key=key, params=result.params, score=result.mean_score(self.metric),
                              status=result.status, fit_time=float(np.mean(result.fit_time)),
                              scores={name: result.mean_score(name) for name in result.test},
                              objectives=tuple(objective.value(result)
                                               for objective in self.objectives))
            self.progress.generation_of[key] = self.strategy.generation
            self.progress.n_told += 1
            self._unreported.append(key)
            self._row_told += 1
            self._row_pruned += result.status == Status.PRUNED
            if self.strategy.tell(outcome) and not closing and not self.stopped:
                self._row()

    # ------------------------------------------------------------------ pruning

    def should_prune(self, params: dict, records: list) -> bool:
        """Whether a candidate with these split records so far is clearly behind.

        It is when every split fitted so far scored, the population has at
        least half its size of complete candidates, and the candidate's mean
        score on its fitted splits is below the mean of every one of them on
        the same splits. During a generation of a batch strategy the
        population does not change, so the decision depends on scores only,
        never on the order in which tasks finish.
        """
        fitted = [index for index, record in enumerate(records) if record is not None]
        if not fitted or any(not records[index].ok for index in fitted):
            return False
        results = self.evaluator.results
        reference = [results[outcome.key] for outcome in self.strategy.population
                     if outcome.status == Status.OK and outcome.key in results]
        if len(reference) < max(2, self.strategy.population_size // 2):
            return False
        metric = self.metric if self.metric in records[fitted[0]].test else next(
            iter(records[fitted[0]].test))
        mine = float(np.mean([records[index].test[metric] for index in fitted]))
        theirs = [float(np.mean([result.test[metric][index] for index in fitted]))
                  for result in reference if metric in result.test]
        return bool(theirs) and mine < min(theirs)

    def _rung_score(self, scores: dict | None) -> float:
        """The rung score of the metric optimised (NaN without one)."""
        if not scores:
            return math.nan
        return float(scores.get(self.metric, next(iter(scores.values()))))

    def rung_decisions(self, ready: dict, outstanding: int) -> dict:
        """Which candidates whose rung is back are pruned (``pruning="rows"``): key -> bool.

        A candidate goes on to its folds when its rung score is at least the
        k-th best of a reference, k being half (:data:`RUNG_KEEP`, rounded
        up) of the reference's size: the rung scores of the population's
        complete members and of the candidates judged with it. Those of a
        batch strategy are judged together once every rung of the generation
        is back, as successive halving keeps the best of a rung (the first
        generation, without a population, keeps the best half of its own);
        the population does not change during a generation, so the decisions
        are the same on every backend. Otherwise (steady_state)
        each candidate is judged when its rung is back, against the population
        as it then is. A candidate whose rung failed goes on: its folds say
        whether it fails.
        """
        if self.strategy.batch and outstanding:
            return {}  # the generation's other rungs are not back yet
        results = self.evaluator.results
        members = [self._rung_score(results[outcome.key].rung)
                   for outcome in self.strategy.population
                   if outcome.status == Status.OK and outcome.key in results]
        members = [score for score in members if math.isfinite(score)]
        mine = {key: self._rung_score(scores) for key, scores in ready.items()}
        groups = [list(mine)] if self.strategy.batch else [[key] for key in mine]
        decisions = {}
        for group in groups:
            pool = np.asarray(members + [mine[key] for key in group
                                         if math.isfinite(mine[key])], dtype=float)
            if not pool.size:
                decisions.update(dict.fromkeys(group, False))
                continue
            keep = math.ceil(pool.size * RUNG_KEEP)
            threshold = np.partition(pool, pool.size - keep)[pool.size - keep]  # k-th best
            for key in group:
                decisions[key] = bool(math.isfinite(mine[key]) and mine[key] < threshold)
        return decisions

    # ------------------------------------------------------------------ history and callbacks

    def _row(self, final: bool = False) -> None:
        """Record a row of ``history_`` for the generation just completed, save, notify.

        The `final` row, of a generation cut short, is only recorded."""
        scores = np.array([outcome.score for outcome in self.strategy.population], dtype=float)
        finite = scores[np.isfinite(scores)]
        best = None
        if finite.size:
            best = self.strategy.population[int(np.argmax(np.where(np.isfinite(scores), scores,
                                                                   -np.inf)))]
        now = time.monotonic()
        row = {
            "generation": len(self.progress.history),
            "best": float(finite.max()) if finite.size else math.nan,
            "mean": float(finite.mean()) if finite.size else math.nan,
            "std": float(finite.std()) if finite.size else math.nan,
            "evaluations": self._row_told,
            "cache_hits": self.strategy.n_duplicates - self._row_duplicates,
            "pruned": self._row_pruned,
            "seconds": now - self._row_started,
        }
        self.progress.history.append(row)
        self._row_started, self._row_told, self._row_pruned = now, 0, 0
        self._row_duplicates = self.strategy.n_duplicates
        # the candidates told since the last row, in the order asked (as in `order`)
        new = sorted(self._unreported, key=self._ask_index.__getitem__)
        self._unreported = []
        record = dict(row, best_params=None if best is None else dict(best.params))
        record["candidates"] = [self._candidate_row(key) for key in new]
        if final:
            return
        self._save()
        for callback in self.callbacks:
            hook = getattr(callback, "on_generation", None)
            if callable(hook) and hook(self.search, record):
                self.stopped = True

    def _candidate_row(self, key: str) -> dict:
        result = self.evaluator.results[key]
        row = {"params": dict(result.params), "generation": self.progress.generation_of[key],
               "status": str(result.status)}
        for metric, scores in result.test.items():
            row[f"mean_test_{metric}"] = float(np.mean(scores))
            row[f"std_test_{metric}"] = float(np.std(scores))
        return row
