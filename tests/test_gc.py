"""The garbage collector pause around submission bursts always restores the collector."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier

from dasktrain import GeneticSearchCV
from dasktrain.model_selection._genetic import breed, random_candidate
from dasktrain.space import Categorical, Integer
from dasktrain.utils._gc import gc_paused, with_gc_paused


@pytest.fixture
def collector_enabled():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_enabled_again_after_an_exception(collector_enabled):
    with pytest.raises(ZeroDivisionError):
        with gc_paused():
            assert not gc.isenabled()
            1 / 0
    assert gc.isenabled()


def test_a_collector_disabled_by_the_caller_stays_disabled(collector_enabled):
    gc.disable()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not enable what it did not disable
    assert not gc.isenabled()


def test_decorated_function_runs_paused_and_returns_its_value(collector_enabled):
    @with_gc_paused
    def state(value):
        return value, gc.isenabled()

    assert state(3) == (3, False)
    assert gc.isenabled()
    assert state.__name__ == "state"


def test_breeding_and_a_search_leave_the_collector_enabled(collector_enabled):
    space = {"strategy": Categorical(["prior", "uniform"]), "random_state": Integer(0, 100)}
    rng = np.random.default_rng(0)
    parents = [random_candidate(space, rng) for _ in range(8)]
    children = breed(parents, list(range(8)), space, rng, n_children=8,
                     crossover_probability=0.5, mutation_probability=0.5, tournsize=2)
    assert len(children) == 8 and gc.isenabled()
    X, y = make_classification(n_samples=60, random_state=0)
    GeneticSearchCV(DummyClassifier(), space, population_size=4, generations=1, cv=2,
                    random_state=0).fit(X, y)
    assert gc.isenabled()
