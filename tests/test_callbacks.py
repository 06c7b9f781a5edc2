"""Callbacks: hooks called directly with fake records and a stand-in for the search."""

from __future__ import annotations

import copy
import math
import pickle
import time

import pytest

from dasktrain.callbacks import (RECORD_KEYS, Callback, EarlyStopping, ProgressBar, TimeLimit,
                                 check_callbacks)


class FakeSearch:
    """Stands in for a GeneticSearchCV: the callbacks read `generations` only."""

    def __init__(self, generations=4):
        self.generations = generations


def record(generation, best, **extra):
    values = {"generation": generation, "best": best, "mean": best - 0.1, "std": 0.05,
              "evaluations": 8, "cache_hits": 0, "pruned": 0, "seconds": 0.1,
              "best_params": {"C": 1.0}}
    values.update(extra)
    assert set(values) == set(RECORD_KEYS)
    return values


def run(callback, bests, search=None):
    """Drive `callback` like a search would: the stop decision of each generation."""
    search = search or FakeSearch(len(bests) - 1)
    callback.on_start(search)
    decisions = []
    for generation, best in enumerate(bests):
        decisions.append(bool(callback.on_generation(search, record(generation, best))))
        if decisions[-1]:
            break
    callback.on_end(search)
    return decisions


@pytest.mark.parametrize("params, err, match", [
    ({"patience": 0}, ValueError, r"The 'patience' parameter of EarlyStopping must be an int in "
                                  r"the range \[1, inf\). Got 0 instead."),
    ({"patience": 2.5}, TypeError, r"'patience' parameter of EarlyStopping"),
    ({"patience": True}, TypeError, r"'patience' parameter of EarlyStopping"),
    ({"min_delta": -0.1}, ValueError, r"'min_delta' parameter of EarlyStopping must be a float "
                                      r"in the range \[0, inf\)"),
    ({"min_delta": "0"}, TypeError, r"'min_delta' parameter of EarlyStopping"),
])
def test_early_stopping_bad_params(params, err, match):
    with pytest.raises(err, match=match):
        EarlyStopping(**params)


@pytest.mark.parametrize("build, err, match", [
    (lambda: TimeLimit(0), ValueError, r"'seconds' parameter of TimeLimit must be a float in "
                                       r"the range \(0, inf\)"),
    (lambda: TimeLimit(-5), ValueError, r"'seconds' parameter of TimeLimit"),
    (lambda: TimeLimit(None), TypeError, r"'seconds' parameter of TimeLimit"),
    (lambda: ProgressBar(total=0), ValueError, r"'total' parameter of ProgressBar"),
    (lambda: ProgressBar(total="10"), TypeError, r"'total' parameter of ProgressBar"),
    (lambda: check_callbacks("progress"), TypeError, r"'callbacks' parameter must be a Callback"),
    (lambda: check_callbacks(5), TypeError, r"'callbacks' parameter must be a Callback"),
    (lambda: check_callbacks([EarlyStopping(), object()]), TypeError,
     r"'callbacks' parameter must hold objects with on_start"),
])
def test_bad_callback_arguments(build, err, match):
    with pytest.raises(err, match=match):
        build()


@pytest.mark.parametrize("patience, min_delta, bests, decisions", [
    # improves every generation: never stops
    (2, 0.0, [0.1, 0.2, 0.3, 0.4, 0.5], [False] * 5),
    # flat after generation 1: stops after `patience` flat generations
    (2, 0.0, [0.1, 0.5, 0.5, 0.5, 0.9], [False, False, False, True]),
    (3, 0.0, [0.1, 0.5, 0.5, 0.5, 0.5, 0.9], [False, False, False, False, True]),
    # gains smaller than min_delta do not count ...
    (2, 0.05, [0.50, 0.52, 0.54, 0.9], [False, False, True]),
    # ... but they add up against the reference (0.50 -> 0.56 beats 0.05)
    (2, 0.05, [0.50, 0.53, 0.56, 0.57, 0.58], [False, False, False, False, True]),
    # a drop is no improvement; NaN (every candidate failed) neither
    (1, 0.0, [0.5, 0.4], [False, True]),
    (2, 0.0, [math.nan, 0.3, math.nan, math.nan], [False, False, False, True]),
    # a later improvement resets the count
    (2, 0.0, [0.1, 0.1, 0.2, 0.2, 0.2], [False, False, False, False, True]),
])
def test_early_stopping(patience, min_delta, bests, decisions):
    stop = EarlyStopping(patience=patience, min_delta=min_delta)
    assert run(stop, bests) == decisions


def test_early_stopping_starts_afresh_on_each_search():
    stop = EarlyStopping(patience=1)
    assert run(stop, [0.9, 0.8]) == [False, True]
    assert stop.best_ == 0.9 and stop.wait_ == 1
    assert run(stop, [0.1, 0.2]) == [False, False]  # the previous search's 0.9 is forgotten
    assert stop.best_ == 0.2


def test_time_limit_counts_from_on_start():
    limit = TimeLimit(0.2)
    search = FakeSearch()
    time.sleep(0.3)  # time before on_start does not count
    limit.on_start(search)
    assert limit.on_generation(search, record(0, 0.5)) is False
    assert 0.0 < limit.remaining() <= 0.2
    time.sleep(0.25)
    assert limit.on_generation(search, record(1, 0.6)) is True
    assert limit.remaining() == 0.0 and limit.elapsed() >= 0.2
    limit.on_start(search)  # a new search gets the whole budget again
    assert limit.on_generation(search, record(0, 0.5)) is False


def test_progress_bar_counts_generations_on_stderr(capsys):
    bar = ProgressBar()
    assert run(bar, [0.5, 0.6, 0.7], FakeSearch(generations=2)) == [False, False, False]
    err = capsys.readouterr().err
    assert "generations" in err and "3/3" in err and "best=0.7" in err
    assert bar.bar_ is None  # closed at on_end


def test_progress_bar_explicit_total_and_resume_position(capsys):
    bar = ProgressBar(total=10, desc="search")
    search = FakeSearch(generations=99)
    bar.on_start(search)
    bar.on_generation(search, record(4, 0.5))  # resumed from a checkpoint at generation 4
    assert bar.bar_.n == 5 and bar.bar_.total == 10
    bar.on_generation(search, record(5, 0.6))
    assert bar.bar_.n == 6
    bar.on_end(search)
    err = capsys.readouterr().err
    assert "search" in err and "6/10" in err


def test_progress_bar_stopped_early_still_closes(capsys):
    callbacks = check_callbacks([ProgressBar(), EarlyStopping(patience=1)])
    search = FakeSearch(generations=10)
    for callback in callbacks:
        callback.on_start(search)
    stopped_at = None
    for generation, best in enumerate([0.5, 0.4, 0.9]):
        if any([bool(c.on_generation(search, record(generation, best))) for c in callbacks]):
            stopped_at = generation
            break
    for callback in callbacks:
        callback.on_end(search)
    assert stopped_at == 1
    assert "2/11" in capsys.readouterr().err
    assert callbacks[0].bar_ is None


def test_tqdm_is_imported_lazily():
    import subprocess
    import sys

    code = ("import sys, dasktrain.callbacks as c; c.ProgressBar(); c.EarlyStopping(); "
            "print('tqdm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_callbacks_copy_and_pickle_without_their_bar():
    bar = ProgressBar(total=3)
    bar.on_start(FakeSearch())
    for callback in (bar, EarlyStopping(patience=3, min_delta=0.1), TimeLimit(5)):
        for twin in (copy.deepcopy(callback), pickle.loads(pickle.dumps(callback))):
            assert repr(twin) == repr(callback)
            assert getattr(twin, "bar_", None) is None
    bar.on_end(FakeSearch())


def test_check_callbacks_and_base_class():
    stop, limit = EarlyStopping(), TimeLimit(1)
    assert check_callbacks(None) == []
    assert check_callbacks(stop) == [stop]
    assert check_callbacks((stop, limit)) == [stop, limit]

    class OnlyEnd:  # duck typing: any object with a hook
        def on_end(self, search):
            pass

    only_end = OnlyEnd()
    assert check_callbacks([only_end]) == [only_end]
    base = Callback()
    assert run(base, [0.1, 0.2]) == [False, False]
    assert repr(base) == "Callback()"
    assert repr(stop) == "EarlyStopping(patience=5, min_delta=0.0)"
    assert repr(limit) == "TimeLimit(seconds=1)"
