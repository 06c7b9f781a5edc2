"""GA operators: validity of every candidate produced, selection rules, reproducibility."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.svm import SVC
from test_space import PLAIN_TYPES, seeds, spaces

from dasktrain.model_selection._genetic import (breed, candidate_key, crossover, mutate,
                                                random_candidate, select_survivors, tournament)
from dasktrain.space import Categorical, Continuous, Integer, SearchSpace

PROPERTY = settings(max_examples=50, deadline=None)
NAN = math.nan


def assert_valid(candidate, space):
    assert set(candidate) == set(space)
    for name, dimension in space.items():
        assert dimension.contains(candidate[name]), (name, candidate[name], dimension)
        assert type(candidate[name]) in PLAIN_TYPES


def scores_strategy(n):
    return st.lists(st.one_of(st.floats(-10, 10), st.just(NAN)), min_size=n, max_size=n)


# --------------------------------------------------------------------------------------------
# Properties


@PROPERTY
@given(space=spaces(), seed=seeds)
def test_random_candidates_and_mutants_are_valid(space, seed):
    rng = np.random.default_rng(seed)
    candidate = random_candidate(space, rng)
    assert_valid(candidate, space)
    assert list(candidate) == list(space)
    for _ in range(3):
        child = mutate(candidate, space, rng)
        assert_valid(child, space)
        if any(not dimension.constant for dimension in space.values()):
            assert candidate_key(child) != candidate_key(candidate)
        else:
            assert child == candidate
        candidate = child


@PROPERTY
@given(space=spaces(), seed=seeds, indpb=st.floats(0, 1))
def test_crossover_swaps_genes_between_valid_parents(space, seed, indpb):
    rng = np.random.default_rng(seed)
    a, b = random_candidate(space, rng), random_candidate(space, rng)
    a_copy, b_copy = dict(a), dict(b)
    first, second = crossover(a, b, rng, indpb=indpb)
    assert a == a_copy and b == b_copy  # parents untouched
    assert_valid(first, space)
    assert_valid(second, space)
    for name in space:  # each gene of a goes to one child, the same gene of b to the other
        pair = {candidate_key({"v": first[name]}), candidate_key({"v": second[name]})}
        assert pair == {candidate_key({"v": a[name]}), candidate_key({"v": b[name]})}


@PROPERTY
@given(space=spaces(), seed=seeds, cxpb=st.floats(0, 1), n_children=st.integers(0, 8),
       data=st.data())
def test_breed_yields_valid_children(space, seed, cxpb, n_children, data):
    mutpb = data.draw(st.floats(0, 1 - cxpb))
    rng = np.random.default_rng(seed)
    parents = [random_candidate(space, rng) for _ in range(data.draw(st.integers(1, 6)))]
    scores = data.draw(scores_strategy(len(parents)))
    children = breed(parents, scores, space, rng, n_children=n_children,
                     crossover_probability=cxpb, mutation_probability=mutpb, tournsize=2)
    assert len(children) == n_children
    for child in children:
        assert_valid(child, space)


@PROPERTY
@given(scores=st.lists(st.one_of(st.floats(-10, 10), st.just(NAN)), min_size=1, max_size=30),
       seed=seeds, mu_fraction=st.floats(0, 1), elitism=st.sampled_from([True, 1, 2, 3]))
def test_selection_keeps_the_best_with_elitism(scores, seed, mu_fraction, elitism):
    mu = max(1, round(mu_fraction * len(scores)))
    candidates = [{"x": i} for i in range(len(scores))]
    survivors = select_survivors(candidates, scores, mu, elitism=elitism, tournsize=3,
                                 rng=np.random.default_rng(seed))
    assert len(survivors) == min(mu, len(scores)) == len(set(survivors))
    assert all(0 <= i < len(scores) for i in survivors)
    n_elite = min(1 if elitism is True else elitism, mu)
    ranked = sorted((s for s in scores if not math.isnan(s)), reverse=True)
    kept = [scores[i] for i in survivors]
    for best in ranked[:n_elite]:  # the n_elite best scores all survive
        assert best in kept
        kept.remove(best)


@PROPERTY
@given(seed=seeds, n=st.integers(1, 20), k=st.integers(0, 10), tournsize=st.integers(1, 5))
def test_tournament_returns_valid_indices_and_is_reproducible(seed, n, k, tournsize):
    scores = np.random.default_rng(seed).normal(size=n).tolist()
    first = tournament(scores, k, tournsize, np.random.default_rng(seed))
    assert first == tournament(scores, k, tournsize, np.random.default_rng(seed))
    assert len(first) == k and all(type(i) is int and 0 <= i < n for i in first)



@PROPERTY
@given(seed=seeds, n=st.integers(1, 40), tournsize=st.integers(1, 5),
       scores=st.lists(st.one_of(st.floats(-1, 1), st.just(NAN), st.just(-math.inf)),
                       min_size=40, max_size=40))
def test_a_breeders_tournaments_drawn_together_are_tournaments_drawn_one_by_one(
        seed, n, tournsize, scores):
    """The breeder draws a crossover's two tournaments in one call: the same entrants,
    winners and generator state as :func:`tournament` drawing them one after the other."""
    from dasktrain.model_selection._genetic import breeder

    scores = scores[:n]
    make = breeder([{"x": i} for i in range(n)], scores, {"x": Integer(0, 100)},
                   np.random.default_rng(seed), crossover_probability=0.5,
                   mutation_probability=0.5, tournsize=tournsize)
    alone = np.random.default_rng(seed)
    for k in (2, 1, 2, 3):
        expected = [tournament(scores, 1, tournsize, alone)[0] for _ in range(k)]
        assert make._winners(k) == expected
        assert make.rng.random() == alone.random()  # the streams stay in step

# --------------------------------------------------------------------------------------------
# Selection rules


def test_tournament_winner_is_the_best_entrant_and_nan_loses():
    rng = np.random.default_rng(0)
    winners = Counter(tournament([NAN, 0.0, 1.0], 6000, 3, rng))
    # index 2 wins whenever it is drawn (1 - (2/3)**3 = 0.70); NaN only when all three are NaN
    assert 0.67 < winners[2] / 6000 < 0.74
    assert 0.025 < winners[0] / 6000 < 0.05
    # NaN loses even to -inf
    winners = Counter(tournament([NAN, -math.inf], 4000, 2, rng))
    assert 0.22 < winners[0] / 4000 < 0.28
    assert tournament([0.5], 3, 4, rng) == [0, 0, 0]
    # a tournament of one is a uniform random pick
    assert set(tournament([1.0, 2.0, 3.0], 300, 1, rng)) == {0, 1, 2}


def test_survivors_prefer_distinct_candidates():
    candidates = [{"x": 1}] * 5 + [{"x": 2}, {"x": 3}, {"x": 4}]
    scores = [0.9] * 5 + [0.1, 0.2, 0.3]
    for seed in range(20):
        survivors = select_survivors(candidates, scores, 4, tournsize=3,
                                     rng=np.random.default_rng(seed))
        assert sorted(candidate_key(candidates[i]) for i in survivors) == sorted(
            candidate_key({"x": v}) for v in (1, 2, 3, 4))
        assert scores[survivors[0]] == 0.9
    # not enough distinct candidates: duplicates fill the places
    survivors = select_survivors(candidates, scores, 6, tournsize=3,
                                 rng=np.random.default_rng(0))
    assert len(set(survivors)) == 6


def test_survivors_without_elitism_can_lose_the_best():
    candidates = [{"x": i} for i in range(10)]
    scores = [float(i) for i in range(10)]
    lost = 0
    for seed in range(50):
        survivors = select_survivors(candidates, scores, 2, elitism=False, tournsize=1,
                                     rng=np.random.default_rng(seed))
        lost += 9 not in survivors
        with_elite = select_survivors(candidates, scores, 2, elitism=True, tournsize=1,
                                      rng=np.random.default_rng(seed))
        assert with_elite[0] == 9
    assert lost > 20  # random picks (tournsize 1) usually miss it


def test_all_candidates_survive_when_there_are_few_best_first():
    survivors = select_survivors([{"x": 1}, {"x": 2}, {"x": 3}], [0.2, NAN, 0.5], 5,
                                 tournsize=2, rng=np.random.default_rng(0))
    assert survivors == [2, 0, 1]


@pytest.mark.parametrize("cxpb, mutpb, check", [
    (0.0, 0.0, "copy"),
    (1.0, 0.0, "crossover"),
    (0.0, 1.0, "mutation"),
])
def test_breed_operators(cxpb, mutpb, check):
    space = {"a": Integer(0, 100), "b": Categorical(["x", "y", "z"]), "c": Continuous(0, 1)}
    rng = np.random.default_rng(0)
    parents = [random_candidate(space, rng) for _ in range(6)]
    parent_keys = {candidate_key(p) for p in parents}
    children = breed(parents, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], space, rng, n_children=30,
                     crossover_probability=cxpb, mutation_probability=mutpb, tournsize=2)
    keys = [candidate_key(c) for c in children]
    if check == "copy":
        assert set(keys) <= parent_keys
    elif check == "crossover":  # every gene comes from a parent, some children are new mixes
        for child in children:
            for name in space:
                assert any(child[name] == p[name] for p in parents)
        assert set(keys) - parent_keys
    else:  # a mutation always changes its parent
        assert not set(keys) & parent_keys


def test_breed_prefers_better_parents():
    parents = [{"x": i} for i in range(10)]
    scores = [float(i) for i in range(10)]
    children = breed(parents, scores, {"x": Integer(0, 9)}, np.random.default_rng(0),
                     n_children=500, crossover_probability=0.0, mutation_probability=0.0,
                     tournsize=3)
    counts = Counter(child["x"] for child in children)
    assert counts[9] > counts[5] > counts[0]


def test_mutate_changes_one_gene_at_least_and_keeps_extra_keys():
    space = {"a": Integer(0, 1), "b": Categorical(["only"]), "c": Categorical(["x", "y"])}
    rng = np.random.default_rng(0)
    for _ in range(50):
        child = mutate({"a": 0, "b": "only", "c": "x", "other": 42}, space, rng, indpb=0.0)
        assert child["other"] == 42 and child["b"] == "only"
        assert (child["a"], child["c"]) != (0, "x")
    every = mutate({"a": 0, "b": "only", "c": "x"}, space, rng, indpb=1.0)
    assert every == {"a": 1, "b": "only", "c": "y"}


def test_a_small_ga_never_loses_its_best_and_is_reproducible():
    space = {"x": Integer(-50, 50), "y": Continuous(-5.0, 5.0),
             "k": Categorical(["a", "b", "c"])}

    def fitness(c):
        return -((c["x"] - 7) ** 2) - (c["y"] - 1.5) ** 2 - (c["k"] != "b")

    def run(seed):
        rng = np.random.default_rng(seed)
        population = [random_candidate(space, rng) for _ in range(8)]
        scores = [fitness(c) for c in population]
        best = []
        for _ in range(15):
            children = breed(population, scores, space, rng, n_children=8,
                             crossover_probability=0.5, mutation_probability=0.4, tournsize=3)
            pool, pool_scores = population + children, scores + [fitness(c) for c in children]
            # tournaments of one are random picks: only elitism keeps the best
            keep = select_survivors(pool, pool_scores, 8, tournsize=1, rng=rng)
            population, scores = [pool[i] for i in keep], [pool_scores[i] for i in keep]
            best.append(max(scores))
        return population, scores, best

    population, scores, best = run(0)
    assert all(later >= earlier for earlier, later in zip(best, best[1:]))
    assert best[-1] > best[0]
    assert run(0) == (population, scores, best)
    assert run(1)[0] != population


# --------------------------------------------------------------------------------------------
# Candidate keys


def test_candidate_key_is_a_content_hash():
    assert candidate_key({"a": 1, "b": [1, 2]}) == candidate_key({"b": [1, 2], "a": 1})
    keys = {candidate_key({"a": value}) for value in (1, 1.0, True, "1", None, np.float64(2.0))}
    assert len(keys) == 6
    assert candidate_key({"a": np.int64(1)}) == candidate_key({"a": 1})
    assert candidate_key({"a": SVC(C=2.0)}) == candidate_key({"a": SVC(C=2.0)})
    assert candidate_key({"a": SVC(C=2.0)}) != candidate_key({"a": SVC(C=3.0)})
    assert candidate_key({"a": {"x": 1, "y": 2}}) == candidate_key({"a": {"y": 2, "x": 1}})
    assert candidate_key({"a": 1}) != candidate_key({"b": 1})
    assert candidate_key({"a": -0.0}) != candidate_key({"a": 0.0})
    assert len(candidate_key({"a": 1})) == 64
    # functions by content: equal lambdas match, different bodies or closures do not
    assert candidate_key({"f": lambda x: x + 1}) == candidate_key({"f": lambda x: x + 1})
    assert candidate_key({"f": lambda x: x + 1}) != candidate_key({"f": lambda x: x + 2})

    def add(c):
        return lambda x: x + c

    assert candidate_key({"f": add(1)}) != candidate_key({"f": add(2)})
    assert candidate_key({"f": add(1)}) == candidate_key({"f": add(1)})
    # stable across processes: a fixed value for a fixed candidate
    assert candidate_key({"C": 1.0, "kernel": "rbf"}) == candidate_key(
        {"kernel": "rbf", "C": 1.0})


# --------------------------------------------------------------------------------------------
# Bad inputs


RNG = np.random.default_rng(0)
SPACE = {"a": Integer(0, 3)}


@pytest.mark.parametrize("call, err, match", [
    (lambda: breed([{"a": 1}], [0.1], SPACE, RNG, n_children=2, crossover_probability=0.7,
                   mutation_probability=0.5, tournsize=2),
     ValueError, r"'crossover_probability' and 'mutation_probability' .* sum to at most 1. "
                 r"Got 0.7 \+ 0.5"),
    (lambda: breed([{"a": 1}], [0.1], SPACE, RNG, n_children=2, crossover_probability=-0.1,
                   mutation_probability=0.5, tournsize=2),
     ValueError, r"'crossover_probability' parameter must be a float in the range \[0, 1\]"),
    (lambda: breed([{"a": 1}], [0.1], SPACE, RNG, n_children=2, crossover_probability=0.1,
                   mutation_probability="0.5", tournsize=2),
     ValueError, r"'mutation_probability' parameter"),
    (lambda: breed([{"a": 1}], [0.1, 0.2], SPACE, RNG, n_children=2, crossover_probability=0.1,
                   mutation_probability=0.5, tournsize=2),
     ValueError, r"one score per parent. Got 1 parents and 2 scores"),
    (lambda: breed([], [], SPACE, RNG, n_children=1, crossover_probability=0.1,
                   mutation_probability=0.5, tournsize=2),
     ValueError, r"at least one parent"),
    (lambda: breed([{"a": 1}], [0.1], SPACE, RNG, n_children=-1, crossover_probability=0.1,
                   mutation_probability=0.5, tournsize=2),
     ValueError, r"'n_children' parameter must be an int in the range \[0, inf\)"),
    (lambda: tournament([0.1], 1, 0, RNG), ValueError, r"'tournsize' .* \[1, inf\). Got 0"),
    (lambda: tournament([0.1], -1, 1, RNG), ValueError, r"'k' parameter"),
    (lambda: tournament([], 1, 2, RNG), ValueError, r"at least one score"),
    (lambda: tournament([0.1], 1, 2, 0), TypeError, r"rng must be a numpy.random.Generator"),
    (lambda: mutate({"a": 1}, SPACE, RNG, indpb=1.5), ValueError, r"'indpb' parameter"),
    (lambda: mutate({"a": 1}, SPACE, np.random.RandomState(0)), TypeError, r"Generator"),
    (lambda: crossover({"a": 1}, {"b": 1}, RNG), ValueError, r"same parameters"),
    (lambda: select_survivors([{"a": 1}], [0.1, 0.2], 1, tournsize=2, rng=RNG), ValueError,
     r"one score per candidate"),
    (lambda: select_survivors([{"a": 1}], [0.1], 1, elitism=-1, tournsize=2, rng=RNG),
     ValueError, r"'elitism' parameter"),
    (lambda: select_survivors([{"a": 1}], [0.1], 1.5, tournsize=2, rng=RNG), ValueError,
     r"'mu' parameter"),
])
def test_bad_operator_arguments(call, err, match):
    with pytest.raises(err, match=match):
        call()


# --------------------------------------------------------------------------- branches

BRANCHES = SearchSpace([
    {"kind": Categorical(["a"]), "x": Continuous(0.0, 1.0), "shared": Integer(0, 9)},
    {"kind": Categorical(["b"]), "y": Integer(10, 20), "shared": Integer(0, 9)},
])


def test_mutation_may_switch_branch_and_draws_the_new_branch_afresh():
    rng = np.random.default_rng(0)
    parent = {"kind": "a", "x": 0.5, "shared": 3}
    children = [mutate(parent, BRANCHES, rng) for _ in range(300)]
    assert all(BRANCHES.contains(child) for child in children)
    switched = [child for child in children if child["kind"] == "b"]
    assert 0 < len(switched) < len(children)  # about 1 / (len(branch) + 1)
    assert all(set(child) == {"kind", "y", "shared"} for child in switched)
    assert len({child["shared"] for child in switched}) > 1  # drawn afresh


def test_crossover_of_two_branches_mixes_only_what_both_share():
    rng = np.random.default_rng(0)
    a, b = {"kind": "a", "x": 0.5, "shared": 3}, {"kind": "b", "y": 15, "shared": 7}
    for _ in range(50):
        first, second = crossover(a, b, rng, space=BRANCHES)
        assert set(first) == set(a) and set(second) == set(b)
        assert first["kind"] == "a" and first["x"] == 0.5 and second["y"] == 15
        assert {first["shared"], second["shared"]} == {3, 7}


def test_breeding_across_branches_gives_candidates_of_the_space():
    rng = np.random.default_rng(1)
    parents = [random_candidate(BRANCHES, rng) for _ in range(6)]
    children = breed(parents, [0.1, 0.5, 0.2, 0.9, 0.3, 0.4], BRANCHES, rng, n_children=40,
                     crossover_probability=0.5, mutation_probability=0.5, tournsize=2)
    assert all(BRANCHES.contains(child) for child in children)
    assert {child["kind"] for child in children} == {"a", "b"}
