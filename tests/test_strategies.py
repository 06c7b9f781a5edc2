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


def run_generational(order_seed: int | None, generations: int = 4,
                     screening: float = 1.0) -> list[list[dict]]:
    """Asks of a generational strategy told each generation in a shuffled order."""
    strategy = Generational(SPACE, np.random.default_rng(0), **OPTIONS, screening=screening)
    asked = []
    for _ in range(generations):
        batch = strategy.ask(100)
        asked.append(batch)
        strategy.prepare()
        told = list(batch)
        if order_seed is not None:
            np.random.default_rng(order_seed).shuffle(told)
        completed = [strategy.tell(outcome(candidate)) for candidate in told]
        assert completed == [False] * (len(told) - 1) + [True]
    return asked


def test_generational_asks_the_same_whatever_order_it_is_told_in():
    assert run_generational(None) == run_generational(1) == run_generational(2)


def test_screening_asks_the_same_whatever_the_order_told(monkeypatch):
    """A generation's outcomes are recorded in the order asked, whatever the order they
    are told in: the surrogate learns from the same rows on every backend."""
    monkeypatch.setattr(_surrogate, "MAX_TRAINING", 20)  # its choice of rows depends on order
    runs = [run_generational(order, generations=10, screening=8) for order in (None, 1, 2)]
    assert runs[1] == runs[0] and runs[2] == runs[0]


def run_one_by_one(name: str, prepares: int, steps: int = 40) -> list[dict]:
    """Asks of a strategy asked for 2 at a time and told each batch, with `prepares`
    calls of prepare after each ask."""
    strategy = STRATEGIES[name](SPACE, np.random.default_rng(0), **OPTIONS, screening=8)
    asked = []
    for _ in range(steps):
        batch = strategy.ask(2)
        asked.extend(batch)
        for _ in range(prepares):
            strategy.prepare()
        for candidate in batch:
            strategy.tell(outcome(candidate))
    return asked


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_prepare_only_does_early_what_the_next_ask_would(name):
    """The engine may call prepare any number of times: the asks are the same."""
    runs = [run_one_by_one(name, prepares) for prepares in (0, 1, 4)]
    assert runs[1] == runs[0] and runs[2] == runs[0]


def test_steady_state_fits_the_surrogate_it_planned_while_candidates_run():
    strategy = SteadyState(SPACE, np.random.default_rng(0), **OPTIONS, screening=8)
    for _ in range(40):
        batch = strategy.ask(2)
        if strategy._planned is not None:
            break
        for candidate in batch:
            strategy.tell(outcome(candidate))
    size = strategy._planned[0]
    assert strategy._model_size < size == len(strategy._history)
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


def test_steady_state_replaces_the_worst_as_a_pass_over_the_population_would():
    """Scores with ties, failures (NaN) and -inf, and a restored state: each
    tell replaces the member a brute-force pass picks (lowest score, NaN as -inf, the
    first such member on ties), and only when the newcomer beats it; also after the same
    strategy is set back to an earlier state."""
    rng = np.random.default_rng(1)
    values = [*np.round(np.linspace(0.0, 1.0, 21), 2), -math.inf, math.nan]
    options = dict(OPTIONS, population_size=30)
    strategy = SteadyState(SPACE, np.random.default_rng(0), **options)
    for step in range(300):
        if step == 40:
            saved = strategy.state()
        if step == 100:  # rewound to an earlier population of the same size
            strategy.set_state(saved)
        candidate = SPACE.sample(rng)
        new = Outcome(candidate_key(candidate), candidate, float(rng.choice(values)), "ok")
        expected = list(strategy.population)
        if len(expected) < options["population_size"]:
            expected.append(new)
        else:
            keys = [-math.inf if math.isnan(o.score) else o.score for o in expected]
            worst = keys.index(min(keys))
            if not math.isnan(new.score) and (math.isnan(expected[worst].score)
                                              or new.score > expected[worst].score):
                expected[worst] = new
        strategy.tell(new)
        assert strategy.population == expected


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


def test_on_a_plateau_the_surrogate_ranks_the_candidates_farthest_from_those_seen_first():
    """Every score seen is equal: nothing tells the candidates apart but where they lie."""
    space = SearchSpace([{"x": Continuous(0.0, 1.0)}])
    seen = [{"x": x} for x in np.linspace(0.0, 0.2, 8)]
    surrogate = _surrogate.Surrogate(space).fit(seen, [0.5] * len(seen), seed=0)
    pool = [{"x": 0.1}, {"x": 0.15}, {"x": 0.9}, {"x": 0.5}, {"x": 0.7}]
    assert surrogate.rank(pool) == [0, 1, 2, 3, 4]  # without the candidates seen: as given
    # farthest from those seen (0.9), then from those and 0.9 (0.5: 0.3 from 0.2), then 0.7
    # (0.2 from 0.5 and 0.9); 0.1 is 0.014 from the nearest seen, 0.15 only 0.007
    assert surrogate.rank(pool, evaluated=seen) == [2, 3, 4, 0, 1]


@pytest.mark.parametrize("seed", [0, 7])
def test_the_surrogate_grows_the_trees_an_extra_trees_forest_grows(seed):
    """The surrogate fits its trees itself, without the forest's per-tree clones."""
    from sklearn.ensemble import ExtraTreesRegressor

    rng = np.random.default_rng(seed)
    X, y = rng.random((120, 5)), rng.random(120)
    X[:40, 2] = 0.5  # ties, where a different draw would split elsewhere
    forest = ExtraTreesRegressor(n_estimators=16, min_samples_leaf=2, max_features=0.8,
                                 random_state=seed, n_jobs=1).fit(X, y)
    trees = _surrogate._extra_trees(X, y, 16, seed)
    query = rng.random((200, 5)).astype(np.float32)
    assert len(trees) == 16
    for mine, theirs in zip(trees, forest.estimators_):
        np.testing.assert_array_equal(mine.predict(query), theirs.tree_.predict(query))
        np.testing.assert_array_equal(mine.threshold, theirs.tree_.threshold)


@pytest.mark.parametrize("columns", [1, 3, 9])
@pytest.mark.parametrize("n_reference", [0, 1, 255, 256, 257, 600])
def test_the_nearest_reference_distance_is_the_brute_force_one(columns, n_reference):
    """Squared distances to the nearest reference row, across the blocks it is computed in."""
    rng = np.random.default_rng(n_reference + columns)
    X = rng.integers(0, 5, size=(40, columns)).astype(float)
    reference = rng.integers(0, 5, size=(n_reference, columns)).astype(float)
    expected = [min((float(sum((x - y) ** 2 for x, y in zip(row, r))) for r in reference),
                    default=np.inf) for row in X]
    assert _surrogate._nearest(X, reference).tolist() == expected


@pytest.mark.parametrize("columns", [1, 3, 9])
def test_the_plateau_spread_picks_as_a_plain_greedy_maximin(columns):
    """Each pick the row farthest from the reference and the picks before it."""
    rng = np.random.default_rng(columns)
    # a grid of whole numbers: many equal distances, every sum exact in any order
    X = rng.integers(0, 4, size=(60, columns)).astype(float)
    reference = rng.integers(0, 4, size=(7, columns)).astype(float)
    labels = list(range(100, 160))

    def distance(a, b):
        return float(sum((x - y) ** 2 for x, y in zip(a, b)))

    expected, free = [], list(range(len(X)))
    for _ in range(25):
        def nearest(i):
            return min(distance(X[i], r) for r in [*reference, *(X[j] for j in expected)])
        best = max(free, key=lambda i: (nearest(i), -i))  # the earliest among the farthest
        expected.append(best)
        free.remove(best)
    got = _surrogate._spread(X, reference, labels, 25)
    assert got == [labels[i] for i in expected] + [labels[i] for i in free]
