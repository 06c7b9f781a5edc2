"""The density proposal source of screening: candidates drawn near the best evaluated."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from dasktrain.model_selection import _density
from dasktrain.model_selection._density import BestSoFar, ParzenProposal, density_new, density_ratio
from dasktrain.model_selection._genetic import candidate_key
from dasktrain.model_selection._records import Outcome
from dasktrain.model_selection._strategies import STRATEGIES
from dasktrain.space import Categorical, Continuous, Distribution, Integer, SearchSpace

OPTIONS = dict(population_size=8, crossover_probability=0.5, mutation_probability=0.5,
               tournament_size=3, elitism=True)

#: A conditional space (a list of dicts): branches sharing a name with different
#: dimensions, a categorical with weights, a constant, a log scale, a scipy distribution.
CONDITIONAL = SearchSpace([
    {"model": Categorical(["tree"]), "depth": Integer(1, 15), "frac": Continuous(0.0, 0.5),
     "criterion": Categorical(["gini", "entropy", "log_loss"], weights=[2, 1, 1])},
    {"model": Categorical(["knn"]), "depth": Categorical([None, 3, 5]),
     "k": Integer(1, 50, log=True), "noise": Distribution(stats.norm(0, 1))},
    {},
])


def conditional_score(candidate) -> float:
    if candidate.get("model") == "tree":
        return 1.0 - candidate["frac"] - abs(candidate["depth"] - 4) / 15
    if candidate.get("model") == "knn":
        return 0.5 - abs(np.log(candidate["k"]) - np.log(7)) / 10
    return 0.2


def history_of(space, n, seed=0, score=conditional_score):
    rng = np.random.default_rng(seed)
    candidates = [space.sample(rng) for _ in range(n)]
    return [(c, score(c)) for c in candidates]


def test_density_proposes_only_new_candidates_of_a_conditional_space():
    history = history_of(CONDITIONAL, 40)
    history[3] = (history[3][0], float("nan"))  # a failed fit is never a good candidate
    seen = {candidate_key(c) for c, _ in history}
    avoid = set()
    out = density_new(CONDITIONAL, history, 60, np.random.default_rng(1), seen, avoid)
    assert len(out) == 60
    keys = [candidate_key(c) for c in out]
    assert len(set(keys)) == len(keys) and not set(keys) & seen
    assert set(keys) <= avoid
    assert all(CONDITIONAL.contains(c) for c in out)
    # the branches of the good candidates come first, the others stay possible (the prior)
    branches = [CONDITIONAL.branch_of(c) for c in out if c]
    assert branches.count(0) > branches.count(1)


def test_density_stops_when_the_space_has_nothing_new():
    space = SearchSpace([{"k": Integer(1, 4)}])
    history = [({"k": k}, float(k)) for k in (1, 2, 3)]
    seen = {candidate_key(c) for c, _ in history}
    assert density_new(space, history, 5, np.random.default_rng(0), seen, set()) == [{"k": 4}]
    assert density_new(space, [], 5, np.random.default_rng(0), set(), set()) == []
    failed = [(c, float("nan")) for c, _ in history]
    assert density_new(space, failed, 5, np.random.default_rng(0), seen, set()) == []


def test_density_is_drawn_from_the_generator_given():
    history = history_of(CONDITIONAL, 30)
    draws = [density_new(CONDITIONAL, history, 20, np.random.default_rng(seed), set(), set())
             for seed in (5, 5, 6)]
    assert [candidate_key(c) for c in draws[0]] == [candidate_key(c) for c in draws[1]]
    assert [candidate_key(c) for c in draws[0]] != [candidate_key(c) for c in draws[2]]


def test_density_concentrates_where_the_best_candidates_are():
    """The good candidates have x near 0.8 and kind "b": the proposals do too, far more
    often than random candidates of the space (y, which does not matter, stays spread)."""
    space = SearchSpace([{"x": Continuous(0.0, 1.0), "y": Continuous(1e-3, 1.0, log=True),
                          "kind": Categorical(["a", "b", "c", "d"])}])

    def score(c):
        return -abs(c["x"] - 0.8) - (c["kind"] != "b")

    history = history_of(space, 60, score=score)
    proposal = ParzenProposal(space, [c for c, _ in history], [s for _, s in history])
    assert len(proposal.good) == 9  # 15% of 60
    rng = np.random.default_rng(0)
    drawn = [proposal.sample(rng) for _ in range(400)]
    random = [space.sample(rng) for _ in range(400)]

    def near(cs):
        return np.mean([abs(c["x"] - 0.8) < 0.1 for c in cs])

    def kind_b(cs):
        return np.mean([c["kind"] == "b" for c in cs])

    assert near(random) < 0.25 and near(drawn) > 0.35  # a fifth of the range around 0.8
    assert kind_b(random) < 0.3 and kind_b(drawn) > 0.6  # one of four choices
    assert all(space.contains(c) for c in drawn)


def plateau(candidate) -> float:
    """Chance level (0.1) unless x0 is below 0.15, as most of a tree's space scores when
    min_impurity_decrease leaves no split; there, the smaller x0 and the nearer x2 to 0.3,
    the better."""
    if candidate["x0"] > 0.15:
        return 0.1
    return 1.0 - candidate["x0"] - 0.5 * abs(candidate["x2"] - 0.3)


def best_found(seed: int, generations: int = 5) -> float:
    space = SearchSpace([{f"x{i}": Continuous(0.0, 1.0) for i in range(6)}])
    strategy = STRATEGIES["generational"](space, np.random.default_rng(seed), **OPTIONS,
                                          screening=8)
    best = -np.inf
    for _ in range(generations):
        for candidate in strategy.ask(8):
            best = max(best, plateau(candidate))
            strategy.tell(Outcome(candidate_key(candidate), candidate, plateau(candidate),
                                  "ok"))
    return best


def test_screening_with_densities_leaves_a_plateau_for_better_candidates(monkeypatch):
    """At the same budget (40 evaluations), screening a pool with density candidates
    finds better candidates than screening bred and random ones only, seed by seed."""
    with_density = [best_found(seed) for seed in range(6)]
    monkeypatch.setattr(_density, "DENSITY_SHARE", 0.0)  # bred and random candidates only
    without = [best_found(seed) for seed in range(6)]
    assert np.mean(with_density) > np.mean(without) + 0.02
    assert sum(a > b for a, b in zip(with_density, without)) >= 5


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_screened_asks_are_deterministic_on_a_conditional_space(name):
    """Same seed, same asks (density candidates included); each candidate asked once."""

    def asks(seed):
        strategy = STRATEGIES[name](CONDITIONAL, np.random.default_rng(seed), **OPTIONS,
                                    screening=8)
        asked = []
        for _ in range(5):
            batch = strategy.ask(8)
            asked.extend(batch)
            for candidate in batch:
                strategy.tell(Outcome(candidate_key(candidate), candidate,
                                      conditional_score(candidate), "ok"))
        return asked

    first = asks(0)
    assert [candidate_key(c) for c in first] == [candidate_key(c) for c in asks(0)]
    assert [candidate_key(c) for c in first] != [candidate_key(c) for c in asks(1)]
    assert len({candidate_key(c) for c in first}) == len(first) == 40
    assert all(CONDITIONAL.contains(c) for c in first)


@pytest.mark.parametrize("n", [10, 100, 213, 214, 5000])
def test_the_good_candidates_are_the_best_fraction_up_to_a_cap_earliest_on_ties(n):
    """As a stable sort of the scores would pick them (ties and failures included), and
    never more than MAX_GOOD, so building the densities costs the same in a long search."""
    space = SearchSpace([{"x": Continuous(0.0, 1.0)}])
    rng = np.random.default_rng(n)
    candidates = [{"x": float(x)} for x in rng.random(n)]
    scores = rng.integers(0, 20, n).astype(float)
    scores[rng.random(n) < 0.1] = np.nan
    scores[rng.random(n) < 0.05] = -np.inf  # error_score=-inf: a failed fit, never good
    proposal = ParzenProposal(space, candidates, scores)
    finite = np.flatnonzero(np.isfinite(scores))
    expected = min(len(finite), max(_density.MIN_GOOD,
                                    min(_density.MAX_GOOD, int(np.ceil(_density.GAMMA * n)))))
    best = finite[np.argsort(-scores[finite], kind="stable")][:expected]
    assert [candidate for _, candidate in proposal.good] == [candidates[i] for i in best]
    assert len(proposal.good) <= _density.MAX_GOOD


@pytest.mark.parametrize("n", [1, 31, 32, 33, 500])
def test_best_so_far_keeps_what_a_stable_sort_of_every_score_puts_first(n):
    """The strategy's running record of the best scores, added one by one, gives the good
    candidates a pass over the whole history would, and so the same densities."""
    rng = np.random.default_rng(n)
    scores = rng.integers(0, 6, n).astype(float)
    scores[rng.random(n) < 0.2] = np.nan
    scores[rng.random(n) < 0.05] = -np.inf
    best = _density.BestSoFar()
    for index, score in enumerate(scores):
        best.add(index, float(score))
    finite = np.flatnonzero(np.isfinite(scores))
    expected = finite[np.argsort(-scores[finite], kind="stable")][:_density.MAX_GOOD]
    assert best.ordered() == expected.tolist()
    space = SearchSpace([{"x": Continuous(0.0, 1.0)}])
    history = [({"x": float(x)}, float(s)) for x, s in zip(rng.random(n), scores)]
    plain = density_new(space, history, 10, np.random.default_rng(0), set(), set())
    kept = density_new(space, history, 10, np.random.default_rng(0), set(), set(), best=best)
    assert kept == plain


# ------------------------------------------------------------------ the density ratio


def _truncated_mixture(proposal, branch, name, dim, u):
    """The density of a numeric parameter at unit position `u`, from scipy's truncnorm."""
    _, mus, sigmas, cdf = proposal._kernel(branch, name, dim)
    weights = np.diff(np.concatenate([[0.0], cdf]))
    parts = [stats.truncnorm(-mu / sigma, (1 - mu) / sigma, loc=mu, scale=sigma).pdf(u)
             for mu, sigma in zip(mus, sigmas)]
    return float(np.dot(weights[:-1], parts) + weights[-1])


def test_log_density_is_scipys_truncated_mixture_and_the_smoothed_counts():
    """Brute force over the tree branch of the conditional space: each numeric parameter a
    mixture of scipy truncated normals and the uniform prior, each categorical its
    smoothed counts, the branch its weight."""
    history = history_of(CONDITIONAL, 60)
    proposal = ParzenProposal(CONDITIONAL, [c for c, _ in history], [s for _, s in history])
    candidates = [c for c, _ in history_of(CONDITIONAL, 80, seed=5)
                  if CONDITIONAL.branch_of(c) == 0][:10]
    got = proposal.log_density(candidates, [0] * len(candidates))
    branch = CONDITIONAL.branches[0]
    branch_p = np.diff(np.concatenate([[0.0], proposal._branch_p]))[0]
    for candidate, value in zip(candidates, got):
        expected = np.log(branch_p)
        for name in ("depth", "frac"):
            expected += np.log(_truncated_mixture(proposal, 0, name, branch[name],
                                                  branch[name].to_unit(candidate[name])))
        criterion = branch["criterion"]
        counts = np.diff(np.concatenate([[0.0], proposal._kernel(0, "criterion",
                                                                 criterion)[1]]))
        expected += np.log(counts[criterion.index(candidate["criterion"])])
        assert value == pytest.approx(expected, rel=1e-9)


def test_log_density_of_a_numeric_parameter_integrates_to_one():
    space = SearchSpace([{"x": Continuous(0.0, 1.0)}])
    seen = [{"x": x} for x in np.random.default_rng(0).random(30)]
    proposal = ParzenProposal(space, seen, [-abs(c["x"] - 0.8) for c in seen])
    grid = np.linspace(0.0, 1.0, 20001)
    density = np.exp(proposal.log_density([{"x": x} for x in grid], [0] * len(grid)))
    assert integrate.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)


def test_density_ratio_prefers_where_the_best_are_to_where_the_others_are():
    space = SearchSpace([{"k": Integer(1, 30)}, {"c": Categorical(["a", "b", "c"])}])
    history = [({"k": k}, -abs(k - 20)) for k in range(1, 31)]
    history += [({"c": c}, -40.0) for c in "abc"]
    best = BestSoFar(score for _, score in history)
    ratio = density_ratio(space, history, [{"k": 20}, {"k": 10}, {"k": 2}, {"c": "a"}], best)
    assert ratio[0] > ratio[1] > ratio[2]
    assert ratio[0] > ratio[3]  # the second branch has no good candidate
    # only good candidates (two of two): nothing to hold them against
    assert density_ratio(space, history[:2], [{"k": 20}], BestSoFar([0.0, 1.0])) is None


def test_density_ratio_costs_the_same_however_long_the_history():
    """The other candidates' densities are of the most recent MAX_GOOD of them only."""
    space = SearchSpace([{"x": Continuous(0.0, 1.0)}])
    rng = np.random.default_rng(0)
    history = [({"x": x}, -abs(x - 0.5)) for x in rng.random(500)]
    best = BestSoFar(score for _, score in history)
    pool = [{"x": x} for x in np.linspace(0.0, 1.0, 11)]
    # what counts is the best and the latest others: a different start changes nothing
    earlier = [({"x": x}, -abs(x - 0.5) - 1.0) for x in rng.random(200)]
    longer = earlier + history
    longer_best = BestSoFar(score for _, score in longer)
    np.testing.assert_allclose(density_ratio(space, history, pool, best),
                               density_ratio(space, longer, pool, longer_best))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_screening_ranks_the_pool_filtered_by_the_strategys_density_ratio(name, monkeypatch):
    """steady_state keeps only the half of each screening pool likeliest by the density
    ratio for the surrogate to rank; generational ranks the whole pool."""
    strategy = STRATEGIES[name](CONDITIONAL, np.random.default_rng(0), **OPTIONS, screening=8)
    pools = []
    build = type(strategy)._screening_pool

    def recorded(self, n):
        pool = build(self, n)
        ratio = density_ratio(self.space, self._history, pool, self._best)
        pools.append((pool, ratio, n))
        return pool

    monkeypatch.setattr(type(strategy), "_screening_pool", recorded)
    kept_share = {"steady_state": 0.5, "generational": 1.0}[name]
    assert strategy.density_filter == kept_share
    outside = 0
    for _ in range(6):
        batch = strategy.ask(8 if name == "generational" else 2)
        if pools and pools[-1][1] is not None:
            pool, ratio, n = pools[-1]
            keys = [candidate_key(c) for c in pool]
            order = sorted(range(len(pool)), key=lambda i: (-ratio[i], i))
            top = {keys[i] for i in order[:max(n, int(len(pool) * 0.5))]}
            outside += sum(candidate_key(c) not in top for c in batch)
            if kept_share < 1:
                assert all(candidate_key(c) in top for c in batch)
        for candidate in batch:
            strategy.tell(Outcome(candidate_key(candidate), candidate,
                                  conditional_score(candidate), "ok"))
    assert pools and any(ratio is not None for _, ratio, _ in pools)
    if kept_share == 1:
        assert outside > 0  # generational's surrogate did pick from the lower half
