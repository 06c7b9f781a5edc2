"""Strategies as ask/tell objects: what they ask for, whatever the order they are told in."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dasktrain.model_selection import _surrogate
from dasktrain.model_selection._genetic import candidate_key
from dasktrain.model_selection._records import Outcome
from dasktrain.model_selection._strategies import STRATEGIES, Generational, SteadyState
from dasktrain.space import Categorical, Continuous, Integer, SearchSpace

SPACE = SearchSpace([{"x": Continuous(0.0, 1.0), "n": Integer(1, 20),
                      "kind": Categorical(["a", "b", "c"])}])
OPTIONS = dict(population_size=6, crossover_probability=0.5, mutation_probability=0.5,
               tournament_size=2, elitism=True)


def score(candidate) -> float:
    return -abs(candidate["x"] - 0.3) - abs(candidate["n"] - 7) / 20


def outcome(candidate) -> Outcome:
    return Outcome(candidate_key(candidate), candidate, score(candidate), "ok")


def run_generational(order_seed: int | None, generations: int = 4, screening: float = 1.0,
                     prepares: int = 1, strategy=None) -> list[list[dict]]:
    """Asks of a generational strategy told in a shuffled order, `prepares` calls of
    prepare (the engine's, while the candidates run) after each ask."""
    if strategy is None:
        strategy = Generational(SPACE, np.random.default_rng(0), **OPTIONS, screening=screening)
    asked = []
    for _ in range(generations):
        batch = strategy.ask(100)
        asked.append(batch)
        for _ in range(prepares):
            strategy.prepare()
        told = list(batch)
        if order_seed is not None:
            np.random.default_rng(order_seed).shuffle(told)
        completed = [strategy.tell(outcome(candidate)) for candidate in told]
        assert completed == [False] * (len(told) - 1) + [True]
    return asked


def test_generational_asks_the_same_whatever_order_it_is_told_in():
    assert run_generational(None) == run_generational(1) == run_generational(2)


def test_screening_asks_the_same_whatever_the_order_told_and_the_prepare_calls(monkeypatch):
    """The surrogate learns from outcomes in the order asked, and prepare only does early
    what the next ask would do: the engine may call it any number of times."""
    monkeypatch.setattr(_surrogate, "MAX_TRAINING", 20)  # its choice of rows depends on order
    runs = [run_generational(order, generations=10, screening=8, prepares=prepares)
            for order, prepares in [(None, 1), (1, 1), (2, 0), (3, 4)]]
    assert all(run == runs[0] for run in runs[1:])


def test_prepare_fits_the_surrogate_the_next_ask_screens_with():
    strategy = Generational(SPACE, np.random.default_rng(0), **OPTIONS, screening=8)
    run_generational(None, generations=6, screening=8, prepares=0, strategy=strategy)
    assert strategy._planned is not None  # the generation just asked planned a fit
    strategy.ask(6)  # its generation is out: asks nothing, fits nothing
    size = strategy._planned[0]
    strategy.prepare()
    assert strategy._planned is None and strategy._model_size == size


def test_every_candidate_asked_for_is_new():
    for name, cls in STRATEGIES.items():
        strategy = cls(SPACE, np.random.default_rng(0), **OPTIONS)
        keys = []
        for _ in range(10):
            batch = strategy.ask(6)
            keys.extend(candidate_key(candidate) for candidate in batch)
            for candidate in batch:
                strategy.tell(outcome(candidate))
        assert len(keys) == len(set(keys)) == 60, name


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_small_space_is_asked_for_once_then_exhausted(name):
    space = SearchSpace([{"n": Integer(1, 4)}, {"kind": Categorical(["a", "b"])}])
    strategy = STRATEGIES[name](space, np.random.default_rng(0), **OPTIONS)
    asked = []
    for _ in range(5):
        batch = strategy.ask(6)
        asked.extend(batch)
        for candidate in batch:
            value = candidate["n"] / 4 if "n" in candidate else math.nan
            strategy.tell(Outcome(candidate_key(candidate), candidate, value, "ok"))
    assert sorted(map(repr, asked)) == sorted(map(repr, [{"n": n} for n in range(1, 5)]
                                                  + [{"kind": "a"}, {"kind": "b"}]))
    assert strategy.exhausted and strategy.ask(6) == []


def test_steady_state_breeds_after_the_first_population_and_replaces_the_worst():
    strategy = SteadyState(SPACE, np.random.default_rng(0), **OPTIONS)
    first = strategy.ask(6)
    assert strategy.ask(1) == []  # nothing told yet: no parents to breed from
    for candidate in first:
        strategy.tell(outcome(candidate))
    worst = min(strategy.population, key=lambda o: o.score)
    (child,) = strategy.ask(1)
    best = dict(child, x=0.3, n=7)
    strategy.tell(outcome(best))
    assert worst not in strategy.population
    assert any(o.params == best for o in strategy.population)


@pytest.mark.parametrize("screening", [1.0, 8.0])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategies_save_and_restore_their_state(name, screening):
    """A strategy restored between generations asks what the saved one asks, also when
    its surrogate lags behind the outcomes (and had a fit planned)."""
    strategy = STRATEGIES[name](SPACE, np.random.default_rng(0), **OPTIONS, screening=screening)
    for _ in range(6):
        batch = strategy.ask(6)
        strategy.prepare()
        for candidate in batch:
            strategy.tell(outcome(candidate))
    state = strategy.state()
    again = STRATEGIES[name](SPACE, np.random.default_rng(99), **OPTIONS, screening=screening)
    again.set_state(state)
    for _ in range(3):
        batch = strategy.ask(6)
        assert again.ask(6) == batch
        for copy in (strategy, again):
            copy.prepare()
            for candidate in batch:
                copy.tell(outcome(candidate))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_latin_hypercube_start_puts_one_candidate_in_each_stratum(name):
    space = SearchSpace([{"x": Continuous(0.0, 1.0), "c": Continuous(1e-3, 1e3, log=True)}])
    strategy = STRATEGIES[name](space, np.random.default_rng(0), **{**OPTIONS, "population_size": 10},
                                init="latin_hypercube")
    first = []
    for _ in range(4):  # a steady-state strategy hands its first population out in parts
        first.extend(strategy.ask(10 - len(first) if strategy.batch else 3))
    for dimension in ("x", "c"):
        strata = sorted(int(space.branches[0][dimension].to_unit(c[dimension]) * 10)
                        for c in first)
        assert strata == list(range(10)), dimension


def test_the_branches_of_a_space_filling_start_take_turns():
    space = SearchSpace([{"a": Continuous(0.0, 1.0)}, {"b": Integer(0, 100)},
                         {"c": Categorical(["x", "y", "z"])}])
    strategy = Generational(space, np.random.default_rng(0), **OPTIONS, init="sobol")
    branches = [space.branch_of(candidate) for candidate in strategy.ask(6)]
    assert sorted(branches) == [0, 0, 1, 1, 2, 2]


def test_screening_evaluates_the_children_the_surrogate_prefers():
    space = SearchSpace([{"x": Continuous(0.0, 1.0)}])
    options = {**OPTIONS, "population_size": 8}
    plain = Generational(space, np.random.default_rng(0), **options)
    screened = Generational(space, np.random.default_rng(0), **options, screening=16)
    for strategy in (plain, screened):
        for candidate in strategy.ask(8):  # the same first generation
            strategy.tell(Outcome(candidate_key(candidate), candidate,
                                  -abs(candidate["x"] - 0.3), "ok"))
    distance = {id(strategy): np.mean([abs(c["x"] - 0.3) for c in strategy.ask(8)])
                for strategy in (plain, screened)}
    assert distance[id(screened)] < distance[id(plain)]
