"""How the evaluator stages a pruned search's folds (issue 14): what each pruning decision
sees, what is submitted when, and what is cancelled. The search-level pruning tests
(rule, cv_results_ layout, parity, checkpoints) are in test_search.py."""

from __future__ import annotations

import numpy as np
import pytest
from test_evaluate import FOLDS, FlakyClassifier, count_lines, make_evaluator

from dasktrain._execution import execution_backend
from dasktrain.model_selection._records import Status


@pytest.fixture
def execution(backend):
    with execution_backend(**backend) as running:
        yield running


class Pruner:
    """Prunes the candidates whose ``alpha`` is below 1 at their first decision; notes, for
    each call, the candidate's alpha and the splits it was shown."""

    def __init__(self):
        self.seen = []

    def __call__(self, params, records):
        self.seen.append((params["alpha"], tuple(i for i, r in enumerate(records)
                                                 if r is not None)))
        return params["alpha"] < 1


CANDIDATES = [{"alpha": alpha} for alpha in (0.1, 0.5, 2.0, 3.0)]


@pytest.mark.parametrize("repeat_seeds, shown", [
    ((None,), [(0,), (0, 1)]),  # 3 folds: decisions after fold 0 and after folds 0, 1
    ((1, 2), [(0, 3), (0, 1, 3, 4)]),  # split = repeat * 3 + fold: a fold's repeats together
])
def test_each_decision_sees_the_stages_so_far_only_on_every_backend(execution, repeat_seeds,
                                                                    shown):
    pruner = Pruner()
    evaluator = make_evaluator(execution, FlakyClassifier(), repeat_seeds=repeat_seeds,
                               splits_per_task=1)
    evaluator.pruner = pruner
    keys, _ = evaluator.evaluate(CANDIDATES)
    n_splits = len(FOLDS) * len(repeat_seeds)
    for key, candidate in zip(keys, CANDIDATES):
        calls = [splits for alpha, splits in pruner.seen if alpha == candidate["alpha"]]
        result = evaluator.results[key]
        scores = np.asarray(result.test["score"])
        if candidate["alpha"] < 1:  # pruned at its first decision, whatever ran ahead
            assert calls == shown[:1]
            assert result.status == Status.PRUNED
            assert np.isfinite(scores[list(shown[0])]).all()
            assert np.isnan(np.delete(scores, shown[0])).all()
        else:
            assert calls == shown
            assert result.status == Status.OK and np.isfinite(scores).all()
            assert len(scores) == n_splits
    assert evaluator.n_pruned == 2
    evaluator.close()


@pytest.mark.parametrize("n_jobs, splits_sent", [
    (1, len(CANDIDATES)),  # one slot: the first stage only, the next once it passes
    (2, len(CANDIDATES) * len(FOLDS)),  # several: every stage at once, stage by stage
])
def test_stages_sent_at_once_with_several_slots_and_one_by_one_with_one(n_jobs, splits_sent):
    with execution_backend(n_jobs=n_jobs, isolate=True) as backend:
        evaluator = make_evaluator(backend, FlakyClassifier(delay=0.05), splits_per_task=1)
        evaluator.pruner = Pruner()
        evaluator.submit(CANDIDATES)
        assert evaluator.n_tasks == splits_sent
        while evaluator.in_flight:
            evaluator.wait()
        assert evaluator.n_pruned == 2
        evaluator.close()


def test_cheap_candidates_go_in_the_same_batched_tasks_as_without_pruning():
    """Once splits are known to be cheap, a pruned search sends a candidate's folds together
    (no round trip per fold), as many tasks as an unpruned one."""
    tasks = {}
    for pruned in (False, True):
        with execution_backend(n_jobs=2) as backend:
            evaluator = make_evaluator(backend, FlakyClassifier(), task_seconds=10.0)
            evaluator.pruner = (lambda params, records: False) if pruned else None
            evaluator.evaluate([{"alpha": float(alpha)} for alpha in range(8)])  # measured
            before = evaluator.n_tasks
            evaluator.evaluate([{"alpha": float(alpha)} for alpha in range(8, 16)])
            tasks[pruned] = evaluator.n_tasks - before
            evaluator.close()
    assert tasks[True] == tasks[False] < 8


@pytest.mark.parametrize("backend_options", [
    {"n_jobs": 2},
    {"use_dask": True, "client": "inprocess_client"},
], ids=["local-n2", "dask-inprocess"])
def test_tasks_of_pruned_candidates_are_cancelled(backend_options, request, tmp_path):
    options = dict(backend_options)
    if options.get("client") == "inprocess_client":
        options["client"] = request.getfixturevalue("inprocess_client")
    log = tmp_path / "fits.log"
    with execution_backend(**options) as backend:
        evaluator = make_evaluator(backend, FlakyClassifier(delay=0.3, log=str(log)),
                                   splits_per_task=1)
        evaluator.pruner = lambda params, records: True  # every candidate, after fold 0
        keys, _ = evaluator.evaluate([{"alpha": float(alpha)} for alpha in range(4)])
        assert all(evaluator.results[key].status == Status.PRUNED for key in keys)
        later = 4 * (len(FOLDS) - 1)  # the splits of folds 1 and 2, all sent ahead
        # each was cancelled with its task, or came back and was ignored
        assert evaluator.n_cancelled + evaluator.n_discarded == later
        # the earlier stage runs first, so most of the later one never started (a pool or
        # a worker may have taken a task or two of it before the decision arrived)
        assert count_lines(log) <= 4 + later // 2
        evaluator.close()
