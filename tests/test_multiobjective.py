"""Several objectives at once: Pareto ranks, crowding, NSGA-II strategies, GeneticSearchCV.

The non-dominated sorting and the crowding distance are DEAP's; they are checked
here against brute-force definitions written from the NSGA-II paper (Deb et
al., 2002), on hand-made and random sets of points with ties, mixed senses
and failed candidates.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from dasktrain import GeneticSearchCV
from dasktrain.model_selection._genetic import candidate_key
from dasktrain.model_selection._nsga import (
    NSGA2,
    NSGA2SteadyState,
    SpaceOperators,
    _gains,
    _hypervolume,
    _screen_order,
    crowding_distances,
    nsga2_order,
    pareto_ranks,
)
from dasktrain.model_selection._records import Outcome
from dasktrain.space import Integer, SearchSpace

X, Y = load_iris(return_X_y=True)
SPACE = {"max_depth": Integer(1, 8), "min_samples_leaf": Integer(1, 20)}


def depth_limit(model) -> float:
    """A cost read from the fitted estimator: the depth limit it was fitted with."""
    return float(model.max_depth)


# --------------------------------------------------------------------------- brute force

def _dominates(a, b, maximise) -> bool:
    better = [(x > y) if up else (x < y) for x, y, up in zip(a, b, maximise)]
    worse = [(x < y) if up else (x > y) for x, y, up in zip(a, b, maximise)]
    return any(better) and not any(worse)


def brute_ranks(values, maximise) -> list[int]:
    """Peel non-dominated sets one after the other; rows with NaN rank last."""
    valid = [i for i, row in enumerate(values) if all(math.isfinite(v) for v in row)]
    ranks, left, rank = [0] * len(values), set(valid), 0
    while left:
        rank += 1
        front = {i for i in left
                 if not any(_dominates(values[j], values[i], maximise) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
    return [r or rank + 1 for r in ranks]


def brute_crowding(values, maximise) -> list[float]:
    """Deb's crowding distance within each front, normalised by the front's span and
    divided by the number of objectives (as DEAP's)."""
    ranks = brute_ranks(values, maximise)
    n_obj = len(maximise)
    out = [0.0] * len(values)
    for rank in set(ranks):
        members = [i for i in range(len(values)) if ranks[i] == rank
                   and all(math.isfinite(v) for v in values[i])]
        for m in range(n_obj):
            ordered = sorted(members, key=lambda i: values[i][m] * (1 if maximise[m] else -1))
            if not ordered:
                continue
            out[ordered[0]] = out[ordered[-1]] = math.inf
            lo = values[ordered[0]][m] * (1 if maximise[m] else -1)
            hi = values[ordered[-1]][m] * (1 if maximise[m] else -1)
            if hi == lo:
                continue
            for prev, cur, nxt in zip(ordered, ordered[1:], ordered[2:]):
                gap = abs(values[nxt][m] - values[prev][m])
                out[cur] += gap / (n_obj * (hi - lo))
    return out


HAND_MADE = [
    # (values, maximise, expected ranks)
    ([[0.9, 5.0], [0.8, 1.0], [0.7, 6.0], [0.85, 3.0]], [True, False], [1, 1, 2, 1]),
    ([[1.0, 1.0], [1.0, 1.0], [0.5, 0.5]], [True, True], [1, 1, 2]),  # ties share a rank
    ([[3.0, 3.0, 3.0], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [0.0, 0.0, 0.0]],
     [False, False, False], [3, 2, 2, 1]),
    ([[0.9, 2.0], [math.nan, 1.0], [0.8, 1.0], [0.7, 3.0]], [True, False], [1, 3, 1, 2]),
]


@pytest.mark.parametrize("values, maximise, expected", HAND_MADE)
def test_hand_made_fronts(values, maximise, expected):
    assert pareto_ranks(values, maximise).tolist() == expected
    assert brute_ranks(values, maximise) == expected
    np.testing.assert_allclose(crowding_distances(values, maximise),
                               brute_crowding(values, maximise))


@pytest.mark.parametrize("seed", range(6))
def test_ranks_crowding_and_selection_agree_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_obj = 2 + seed % 2
    # few distinct levels, so that ties and duplicate points occur
    values = rng.integers(0, 6, size=(25, n_obj)).astype(float)
    values[rng.random(25) < 0.1, 0] = math.nan
    maximise = [bool(b) for b in rng.integers(0, 2, size=n_obj)]
    assert pareto_ranks(values, maximise).tolist() == brute_ranks(values.tolist(), maximise)
    # crowding and selection on distinct values (which of two equal points is the
    # extreme of a front is arbitrary)
    values = np.round(rng.random((25, n_obj)) * 10, 3)
    values[rng.random(25) < 0.1, 0] = math.nan
    ranks = brute_ranks(values.tolist(), maximise)
    assert pareto_ranks(values, maximise).tolist() == ranks
    crowding = brute_crowding(values.tolist(), maximise)
    np.testing.assert_allclose(crowding_distances(values, maximise), crowding)
    k = 12
    chosen = nsga2_order(values, maximise, k)
    assert len(chosen) == len(set(chosen)) == k
    # whole fronts first: nobody left out ranks better than somebody chosen, and within
    # the last front taken, nobody left out is less crowded than somebody chosen
    last = max(ranks[i] for i in chosen)
    left_out = [i for i in range(len(values)) if i not in chosen]
    assert all(ranks[i] >= last for i in left_out)
    assert all(ranks[i] <= last for i in chosen)
    taken = [crowding[i] for i in chosen if ranks[i] == last]
    dropped = [crowding[i] for i in left_out if ranks[i] == last]
    if taken and dropped:
        assert min(taken) >= max(dropped)


# --------------------------------------------------------------------------- the strategies

def _outcome(candidate, objectives):
    return Outcome(candidate_key(candidate), candidate, objectives[0], "ok",
                   objectives=tuple(objectives))


def _toy_objectives(candidate):
    """Two conflicting objectives of one integer: maximise n, minimise (n - 10) ** 2."""
    n = candidate["n"]
    return (float(n), float((n - 10) ** 2))


@pytest.mark.parametrize("kind", [NSGA2, NSGA2SteadyState])
def test_strategy_keeps_the_nsga2_survivors(kind):
    operators = SpaceOperators(SearchSpace([{"n": Integer(0, 60)}]))
    strategy = kind(operators, np.random.default_rng(0), maximise=(True, False),
                    population_size=6, crossover_probability=0.5, mutation_probability=0.5,
                    tournament_size=2, elitism=True)
    told = []
    for _ in range(5):
        asked = strategy.ask(6)
        assert asked and len({candidate_key(c) for c in asked}) == len(asked)
        for candidate in asked:
            told.append(_outcome(candidate, _toy_objectives(candidate)))
            strategy.tell(told[-1])
    everything = np.array([o.objectives for o in told])
    ranks_all = pareto_ranks(everything, (True, False))
    population_keys = {o.key for o in strategy.population}
    best_keys = {o.key for o, r in zip(told, ranks_all) if r == 1}
    # elitist: the population holds only points of the overall front while it has enough
    if len(best_keys) >= strategy.population_size:
        assert population_keys <= best_keys
    assert len(strategy.population) == strategy.population_size
    # the same outcomes in the same order give the same candidates
    again = kind(operators, np.random.default_rng(0), maximise=(True, False),
                 population_size=6, crossover_probability=0.5, mutation_probability=0.5,
                 tournament_size=2, elitism=True)
    replay = []
    for _ in range(5):
        for candidate in again.ask(6):
            replay.append(candidate_key(candidate))
            again.tell(_outcome(candidate, _toy_objectives(candidate)))
    assert replay == [o.key for o in told]


def test_mutation_redraws_a_parameter_at_times():
    from dasktrain.space import Categorical, Continuous

    # the search's own mutation moves n near its value (steps of 0.15 of the range): from
    # n = 1 it almost never passes 500; a redraw does half the time
    operators = SpaceOperators(SearchSpace([{"n": Integer(1, 1000)}]))
    rng = np.random.default_rng(0)
    children = np.array([operators.mutate({"n": 1}, rng)["n"] for _ in range(2000)])
    far = np.mean(children > 500)
    expected = operators.redraw_probability * 0.5
    assert operators.redraw_probability == 0.25
    assert expected - 0.04 < far < expected + 0.04
    # a redraw stays in the candidate's branch, one parameter at a time
    space = SearchSpace([{"model": Categorical(["a"]), "x": Continuous(0.0, 1.0)},
                         {"model": Categorical(["b"]), "y": Integer(5, 9),
                          "z": Integer(0, 3)}])
    operators = SpaceOperators(space)
    parent = {"model": "b", "y": 5, "z": 0}
    for _ in range(200):
        child = operators.mutate(parent, rng)
        if space.branch_of(child) == 1:
            assert set(child) == set(parent)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    assert [operators.mutate(parent, rng_a) for _ in range(20)] == \
        [operators.mutate(parent, rng_b) for _ in range(20)]


def test_generational_population_is_the_selection_of_parents_and_children():
    operators = SpaceOperators(SearchSpace([{"n": Integer(0, 60)}]))
    strategy = NSGA2(operators, np.random.default_rng(3), maximise=(True, False),
                     population_size=5, crossover_probability=0.5, mutation_probability=0.5,
                     tournament_size=2, elitism=True)
    for candidate in strategy.ask(5):
        strategy.tell(_outcome(candidate, _toy_objectives(candidate)))
    parents = list(strategy.population)
    children = [_outcome(c, _toy_objectives(c)) for c in strategy.ask(5)]
    for child in children:
        strategy.tell(child)
    pool = parents + children
    expected = nsga2_order(np.array([o.objectives for o in pool]), (True, False), 5)
    assert [o.key for o in strategy.population] == [pool[i].key for i in expected]


# --------------------------------------------------------------------------- screening

@pytest.mark.parametrize("n_objectives", [2, 3])
def test_hypervolume_gains_agree_with_moocore(n_objectives):
    rng = np.random.default_rng(n_objectives)
    reference = np.full(n_objectives, 1.1)
    for _ in range(30):
        front = rng.random((int(rng.integers(0, 8)), n_objectives))
        candidates = rng.random((25, n_objectives))
        base = _hypervolume(front, reference)
        expected = [_hypervolume(np.vstack([front, row]), reference) - base
                    for row in candidates]
        np.testing.assert_allclose(_gains(front, candidates, reference), expected, atol=1e-12)


def test_screen_order_takes_what_extends_the_front_first():
    seen = np.array([[0.9, -5.0], [0.5, -1.0]])  # oriented: higher is better
    predicted = np.array([[0.4, -6.0],    # dominated by both seen points
                          [0.95, -5.0],   # a little past the accurate end
                          [0.7, -2.0],    # fills the front's gap: the most volume
                          [0.7, -2.1]])   # the same gap, a little less
    order = _screen_order(seen, predicted, 4)
    assert order[:2] == [2, 1]
    assert order[-1] == 0  # dominated, and by the most points
    assert sorted(order) == [0, 1, 2, 3]


def _screened(kind, rng_seed=0, **options):
    space = SearchSpace([{"n": Integer(0, 60), "m": Integer(0, 60)}])
    return kind(SpaceOperators(space), np.random.default_rng(rng_seed), maximise=(True, False),
                population_size=6, crossover_probability=0.5, mutation_probability=0.5,
                tournament_size=2, elitism=True, **options)


def _two_costs(candidate):
    return (float(candidate["n"] + candidate["m"]), float((candidate["n"] - 10) ** 2))


@pytest.mark.parametrize("kind", [NSGA2, NSGA2SteadyState])
def test_screened_nsga2_asks_new_candidates_the_same_way_twice(kind):
    runs = []
    for _ in range(2):
        strategy = _screened(kind, screening=8.0, init="latin_hypercube")
        asked = []
        for _ in range(5):
            for candidate in strategy.ask(6):
                asked.append(candidate_key(candidate))
                strategy.tell(_outcome(candidate, _two_costs(candidate)))
        assert len(set(asked)) == len(asked) == 30
        runs.append(asked)
    assert runs[0] == runs[1]
    # screening changes what is asked after the first generation (which it does not see)
    plain = _screened(kind)
    unscreened = []
    for _ in range(5):
        for candidate in plain.ask(6):
            unscreened.append(candidate_key(candidate))
            plain.tell(_outcome(candidate, _two_costs(candidate)))
    assert unscreened[12:] != runs[0][12:]


def test_screened_nsga2_resumes_from_its_state():
    strategy = _screened(NSGA2, screening=8.0)
    for _ in range(3):
        for candidate in strategy.ask(6):
            strategy.tell(_outcome(candidate, _two_costs(candidate)))
    state = pickle.loads(pickle.dumps(strategy.state()))
    resumed = _screened(NSGA2, rng_seed=99, screening=8.0)
    resumed.set_state(state)
    for _ in range(2):
        first, second = strategy.ask(6), resumed.ask(6)
        assert first == second
        for candidate in first:
            strategy.tell(_outcome(candidate, _two_costs(candidate)))
            resumed.tell(_outcome(candidate, _two_costs(candidate)))


def test_space_filling_first_generation():
    # a Latin hypercube puts one of 6 first candidates in each sixth of every range
    strategy = _screened(NSGA2, init="latin_hypercube")
    first = strategy.ask(6)
    for name in ("n", "m"):
        strata = sorted(min(int(c[name] / 61 * 6), 5) for c in first)
        assert strata == list(range(6)), (name, strata)


# --------------------------------------------------------------------------- GeneticSearchCV

def _search(**options):
    params = {"population_size": 6, "generations": 2, "cv": 3, "random_state": 0,
              "objectives": ["score", depth_limit]}
    params.update(options)
    return GeneticSearchCV(DecisionTreeClassifier(random_state=0), SPACE, **params)


@pytest.fixture(scope="module")
def reference():
    return _search().fit(X, Y)


def test_front_columns_and_refit(reference):
    results = reference.cv_results_
    n = len(results["params"])
    # the callable cost was measured on each fitted split of its own candidate
    np.testing.assert_array_equal(results["mean_depth_limit"],
                                  [p["max_depth"] for p in results["params"]])
    assert results["std_depth_limit"].tolist() == [0.0] * n
    values = np.column_stack([results["mean_test_score"], results["mean_depth_limit"]])
    assert results["pareto_rank"].tolist() == brute_ranks(values.tolist(), [True, False])
    front = reference.pareto_front_
    assert sorted(front.tolist()) == np.flatnonzero(results["pareto_rank"] == 1).tolist()
    scores = results["mean_test_score"][front]
    assert list(scores) == sorted(scores, reverse=True)  # best first on the first objective
    assert reference.best_index_ == front[0]
    assert reference.best_score_ == results["mean_test_score"].max()
    assert reference.best_estimator_.get_depth() <= reference.best_params_["max_depth"]
    assert "pareto_rank" not in _search(objectives=None, generations=0).fit(X, Y).cv_results_


def test_model_size_is_the_pickled_fitted_model():
    train, test = np.arange(0, 150, 2), np.arange(1, 150, 2)
    search = _search(objectives=["model_size", "score"], generations=0, population_size=4,
                     cv=[(train, test), (train, test)]).fit(X, Y)
    results = search.cv_results_
    # the smallest model first: the front's best on the first objective
    assert search.best_index_ == search.pareto_front_[0]
    assert results["mean_model_size"][search.best_index_] == results["mean_model_size"].min()
    for params, size in zip(results["params"], results["mean_model_size"]):
        model = DecisionTreeClassifier(random_state=0).set_params(**params)
        model.fit(X[train], Y[train])
        assert size == len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def test_refit_callable_over_the_front(reference):
    def most_accurate_shallow(results):
        on_front = np.flatnonzero((results["pareto_rank"] == 1)
                                  & (results["mean_depth_limit"] <= 3))
        return int(on_front[np.argmax(results["mean_test_score"][on_front])])

    search = _search(refit=most_accurate_shallow).fit(X, Y)
    index = most_accurate_shallow(reference.cv_results_)
    assert search.best_index_ == index
    assert search.best_params_ == reference.cv_results_["params"][index]
    assert search.best_params_["max_depth"] <= 3
    assert search.best_estimator_.max_depth == search.best_params_["max_depth"]


@pytest.fixture(scope="module")
def small_reference():
    return _search(population_size=4, generations=1).fit(X, Y)


def test_same_front_on_every_backend(backend, small_reference):
    reference = small_reference
    search = _search(population_size=4, generations=1, **backend).fit(X, Y)
    for key in ("params", "mean_test_score", "mean_depth_limit", "pareto_rank", "generation"):
        assert list(search.cv_results_[key]) == list(reference.cv_results_[key]), key
    assert search.pareto_front_.tolist() == reference.pareto_front_.tolist()


def test_the_search_passes_init_and_screening_to_nsga2():
    # a Latin hypercube start: 8 first candidates take each of max_depth's 8 values
    # once (8 random draws would, 1 time in 400)
    search = _search(population_size=8, generations=0, init="latin_hypercube").fit(X, Y)
    assert sorted(search.cv_results_["param_max_depth"]) == list(range(1, 9))
    # screening=1 breeds only the children it evaluates: other candidates than with 8
    unscreened = _search(screening=1).fit(X, Y)
    screened = _search().fit(X, Y)
    assert [p for p in unscreened.cv_results_["params"]] != [
        p for p in screened.cv_results_["params"]]


def test_steady_state_runs_nsga2():
    search = _search(strategy="steady_state", objectives=["score", "fit_time"]).fit(X, Y)
    results = search.cv_results_
    assert len(results["params"]) == 18
    values = np.column_stack([results["mean_test_score"], results["mean_fit_time"]])
    assert results["pareto_rank"].tolist() == brute_ranks(values.tolist(), [True, False])


def test_several_metrics_and_a_cost():
    search = _search(scoring=["accuracy", "f1_macro"], generations=1,
                     objectives=["f1_macro", "score_time", "accuracy"]).fit(X, Y)
    results = search.cv_results_
    assert search.best_index_ == search.pareto_front_[0]
    assert results["mean_test_f1_macro"][search.best_index_] == \
        results["mean_test_f1_macro"].max()
    assert search.best_score_ == results["mean_test_f1_macro"][search.best_index_]


class _CountingTree(DecisionTreeClassifier):
    """A tree that counts its fits (in this process: the local backend)."""

    fits = 0

    def fit(self, X, y, **kwargs):
        type(self).fits += 1
        return super().fit(X, y, **kwargs)


def _named_score(model):
    return 0.0


_named_score.__name__ = "accuracy"

BAD_OBJECTIVES = [
    ("score", "must be None or a list or tuple"),
    ([], "must hold at least one objective"),
    ((), "must hold at least one objective"),
    (["accuracy"], r"metric names of 'scoring' \(\['score'\]\).*Got 'accuracy'"),
    (["score", "fit_time", "fit_time"], r"each objective once.*\['fit_time'\]"),
    (["score", 3], "Got 3 instead"),
    (["score", "n_features"], "Got 'n_features' instead"),
]


@pytest.mark.parametrize("objectives, match", BAD_OBJECTIVES)
def test_bad_objectives_are_rejected_before_any_work(objectives, match):
    _CountingTree.fits = 0
    search = GeneticSearchCV(_CountingTree(), SPACE, population_size=2, generations=0, cv=2,
                             objectives=objectives)
    with pytest.raises(ValueError, match=r"The 'objectives' parameter of GeneticSearchCV"):
        search.fit(X, Y)
    with pytest.raises(ValueError, match=match):
        search.fit(X, Y)
    assert _CountingTree.fits == 0


def test_a_callable_cost_named_as_a_metric_is_rejected():
    search = _search(scoring=["accuracy", "f1_macro"], objectives=["f1_macro", _named_score])
    with pytest.raises(ValueError, match="'objectives' parameter.*'accuracy'"):
        search.fit(X, Y)


def test_a_checkpointed_search_resumes_to_the_same_front(tmp_path, reference):
    path = tmp_path / "search.ckpt"
    _search(generations=1, checkpoint=path).fit(X, Y)
    resumed = _search(checkpoint=path).fit(X, Y)  # two generations: one more than saved
    for key in ("params", "mean_test_score", "mean_depth_limit", "pareto_rank"):
        assert list(resumed.cv_results_[key]) == list(reference.cv_results_[key]), key
    assert resumed.pareto_front_.tolist() == reference.pareto_front_.tolist()
