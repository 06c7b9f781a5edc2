"""GeneticFeatureSelectionCV: feature masks on the search engine, as a scikit-learn selector."""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from dasktrain import GeneticFeatureSelectionCV
from dasktrain.model_selection._feature_selection import (MaskOperators, _FewestWithinSlack,
                                                          _MaskSurrogate, _n_selected,
                                                          _SelectedColumns)
from dasktrain.model_selection._genetic import candidate_key
from dasktrain.model_selection._nsga import NSGA2
from dasktrain.model_selection._records import Outcome

# features 0 and 1 carry the classes (0.98 cross-validated accuracy together, 0.97 with
# all eight); 2 is weakly informative, 3 to 7 are noise
X, Y = make_classification(n_samples=150, n_features=8, n_informative=3, n_redundant=0,
                           n_repeated=0, n_clusters_per_class=1, shuffle=False,
                           random_state=0)


def _selector(**options):
    params = {"cv": 3, "population_size": 6, "generations": 2, "random_state": 0}
    params.update(options)
    return GeneticFeatureSelectionCV(LogisticRegression(), **params)


def _assert_within_slack_rule(selector, per_split=False):
    """The selected mask is the front's fewest features within one pooled standard
    deviation (or error) of the front's best score (the higher score among equal sizes)."""
    results, front = selector.cv_results_, selector.pareto_front_
    scores, sizes = results["mean_test_score"], results["n_features"]
    best = front[np.argmax(scores[front])]
    spreads = results["std_test_score"][np.isfinite(scores)]
    slack = np.sqrt(np.mean(spreads ** 2))
    if per_split:
        slack /= math.sqrt(selector.n_splits_)
    within = front[scores[front] >= scores[best] - slack]
    chosen = selector.best_index_
    assert chosen in within
    assert sizes[chosen] == sizes[within].min()
    assert scores[chosen] == scores[within][sizes[within] == sizes[chosen]].max()


@pytest.fixture(scope="module")
def reference():
    return _selector().fit(X, Y)


@parametrize_with_checks([GeneticFeatureSelectionCV(LogisticRegression(), cv=2,
                                                    population_size=2, generations=1)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_selection_and_front(reference):
    results = reference.cv_results_
    assert reference.support_.dtype == bool and reference.support_.shape == (8,)
    assert reference.n_features_ == reference.support_.sum() >= 1
    assert reference.transform(X).shape == (len(X), reference.n_features_)
    np.testing.assert_array_equal(reference.transform(X), X[:, reference.support_])
    best = reference.best_index_
    assert results["params"][best]["features"] == tuple(np.flatnonzero(reference.support_))
    assert results["n_features"][best] == reference.n_features_
    assert results["pareto_rank"][best] == 1
    _assert_within_slack_rule(reference)
    # on the front, each mask is the best score for its number of features or fewer
    front = reference.pareto_front_
    for i in front:
        fewer = results["n_features"] <= results["n_features"][i]
        assert results["mean_test_score"][i] >= results["mean_test_score"][fewer].max() - 1e-12
    # estimator_ is the estimator refit on the selected columns of all the data
    expected = clone(reference.estimator).fit(X[:, reference.support_], Y)
    np.testing.assert_allclose(reference.estimator_.coef_, expected.coef_)
    assert list(reference.history_.columns)[:2] == ["generation", "best"]


def test_recovers_informative_features(reference):
    # the best-scoring mask holds both informative features; the default rule may keep
    # fewer when they score within its slack (feature 0 alone: 0.967 against 0.98)
    best = _selector(selection_rule="best_score").fit(X, Y)
    assert {0, 1} <= set(np.flatnonzero(best.support_))
    assert 0 in set(np.flatnonzero(reference.support_))
    assert reference.n_features_ <= best.n_features_ < 8
    every_feature = cross_val_score(LogisticRegression(), X, Y, cv=3).mean()
    assert best.best_score_ >= every_feature


def test_selection_rules():
    # on this seed the front's best score (0.98) has 5 features, and smaller masks are
    # within one standard deviation (and one standard error) of it
    rules = {rule: _selector(random_state=2, selection_rule=rule).fit(X, Y)
             for rule in ("one_standard_deviation", "one_standard_error", "best_score")}
    default = _selector(random_state=2).fit(X, Y)
    np.testing.assert_array_equal(default.support_, rules["one_standard_deviation"].support_)
    params = list(default.cv_results_["params"])
    assert all(list(s.cv_results_["params"]) == params for s in rules.values())
    best = rules["best_score"]
    assert best.best_index_ == best.pareto_front_[0]
    assert best.best_score_ == default.cv_results_["mean_test_score"].max()
    deviation, error = rules["one_standard_deviation"], rules["one_standard_error"]
    assert deviation.n_features_ <= error.n_features_ < best.n_features_
    assert error.best_score_ < best.best_score_
    _assert_within_slack_rule(deviation)
    _assert_within_slack_rule(error, per_split=True)
    for selector in rules.values():
        np.testing.assert_array_equal(selector.support_, np.isin(
            np.arange(8), selector.cv_results_["params"][selector.best_index_]["features"]))
        assert selector.estimator_.n_features_in_ == selector.n_features_


def test_within_slack_rules_on_hand_made_results():
    deviation = _FewestWithinSlack("score", "one_standard_deviation")
    error = _FewestWithinSlack("score", "one_standard_error")
    results = {"params": [{"features": f} for f in [(0, 1, 2), (0,), (0, 1), (1, 2), (3,)]],
               "pareto_rank": np.array([1, 1, 1, 1, 2]),
               "mean_test_score": np.array([0.90, 0.865, 0.885, 0.89, 0.95]),
               "std_test_score": np.array([0.001, 0.04, 0.04, 0.04, 0.04]),
               "split0_test_score": [0] * 5, "split1_test_score": [0] * 5,
               "split2_test_score": [0] * 5, "split3_test_score": [0] * 5}
    # the slack is pooled over every mask (0.0358), not the best mask's own 0.001: the
    # one-feature mask; over 2 splits' root (0.0179), two masks of two features, the
    # higher score wins; the mask off the front (rank 2) is never chosen
    assert deviation(results) == 1
    assert error(results) == 3
    results["std_test_score"][:] = 0.0  # no slack: the best itself
    assert deviation(results) == error(results) == 0
    results["mean_test_score"] = np.array([np.nan, 0.80, 0.88, np.nan, 0.95])
    results["std_test_score"][2] = 0.2  # pooled over the finite scores only: 0.1155
    assert deviation(results) == 1  # a failed best is skipped: 0.88 - 0.1155 admits (0,)
    assert error(results) == 2  # 0.88 - 0.0577 does not
    # a callable scorer that named its own metric
    renamed = {key.replace("_score", "_acc"): value for key, value in results.items()}
    assert error(renamed) == 2


def test_screening_evaluates_the_masks_predicted_best():
    # a score that only features 0-2 raise: with screening, the children evaluated hold
    # more of them than the same search's children without it
    informative = {0, 1, 2}

    def run(screening):
        operators = MaskOperators(20, 1, 20)
        strategy = NSGA2(operators, np.random.default_rng(0), maximise=(True, False),
                         known=(None, _n_selected), population_size=10,
                         crossover_probability=0.5, mutation_probability=0.5,
                         tournament_size=3, elitism=True, screening=screening)
        asked, kept = set(), []
        for generation in range(6):
            candidates = strategy.ask(10)
            keys = {candidate_key(c) for c in candidates}
            assert len(keys) == len(candidates) and not keys & asked  # each one new
            asked |= keys
            for candidate in candidates:
                features = set(candidate["features"])
                score = len(features & informative) - 0.01 * len(features)
                strategy.tell(Outcome(candidate_key(candidate), candidate, score, "ok",
                                      objectives=(score, len(features))))
            if generation:
                kept += [len(set(c["features"]) & informative) / len(c["features"])
                         for c in candidates]
        return np.mean(kept)

    assert run(8.0) > run(1.0) + 0.1


def test_mask_surrogate_encodes_the_bits():
    surrogate = MaskOperators(5, 1, 5).surrogate()
    np.testing.assert_array_equal(surrogate.encode([{"features": (0, 3)}, {"features": (4,)}]),
                                  [[1, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    masks = [{"features": (i,)} for i in range(5)] + [{"features": (0, i)} for i in range(1, 5)]
    surrogate.fit(masks, [1.0 if 0 in m["features"] else 0.0 for m in masks], seed=0)
    mean, _ = surrogate.predict([{"features": (0, 2)}, {"features": (2, 3)}])
    assert mean[0] > mean[1]


def test_mutation_keeps_the_mask_size_on_average():
    # one feature dropped and one added on average, whatever the size: a flat
    # 1 / n_features per bit would grow a 2-of-40 mask by about 0.9 features per mutation
    rng = np.random.default_rng(0)
    operators = MaskOperators(40, 1, 40)
    for size in (2, 20, 38):
        mask = {"features": tuple(range(size))}
        children = [operators.mutate(mask, rng)["features"] for _ in range(2000)]
        change = np.mean([len(child) - size for child in children])
        assert abs(change) < 0.3, (size, change)
        dropped = np.mean([size - len(set(child) & set(mask["features"]))
                           for child in children])
        assert 0.8 < dropped < 1.3, (size, dropped)


def test_masks_stay_within_min_and_max_features():
    selector = _selector(min_features=2, max_features=3).fit(X, Y)
    sizes = selector.cv_results_["n_features"]
    assert sizes.min() >= 2 and sizes.max() <= 3
    assert 2 <= selector.n_features_ <= 3


@pytest.fixture(scope="module")
def small_reference():
    return _selector(population_size=4, generations=1).fit(X, Y)


def test_same_selection_on_every_backend(backend, small_reference):
    reference = small_reference
    selector = _selector(population_size=4, generations=1, **backend).fit(X, Y)
    for key in ("params", "mean_test_score", "pareto_rank", "n_features"):
        assert list(selector.cv_results_[key]) == list(reference.cv_results_[key]), key
    np.testing.assert_array_equal(selector.support_, reference.support_)


def test_pipeline_clone_and_pickle(reference):
    pipeline = make_pipeline(_selector(), LogisticRegression()).fit(X, Y)
    assert pipeline.named_steps["geneticfeatureselectioncv"].n_features_ == \
        reference.n_features_
    assert pipeline.score(X, Y) > 0.9
    restored = pickle.loads(pickle.dumps(reference))
    np.testing.assert_array_equal(restored.transform(X), reference.transform(X))
    cloned = clone(reference)
    assert not hasattr(cloned, "support_")
    assert repr(cloned) == repr(reference)


def test_feature_names_out():
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    selector = _selector(generations=1).fit(frame, Y)
    names = selector.get_feature_names_out()
    assert list(names) == [f"f{i}" for i in np.flatnonzero(selector.support_)]
    out = selector.set_output(transform="pandas").transform(frame)
    assert list(out.columns) == list(names)


def test_tasks_receive_masks_and_select_the_columns_themselves():
    candidate = _SelectedColumns(LogisticRegression(), features=(0, 2)).fit(X, Y)
    assert candidate.estimator_.n_features_in_ == 2
    np.testing.assert_allclose(candidate.decision_function(X),
                               LogisticRegression().fit(X[:, [0, 2]], Y)
                               .decision_function(X[:, [0, 2]]))
    selector = _selector(generations=0)
    selector.fit(X, Y)
    assert all(set(params) == {"features"} for params in selector.cv_results_["params"])


@pytest.mark.parametrize("seed", range(3))
def test_mask_operators_keep_the_bounds(seed):
    rng = np.random.default_rng(seed)
    operators = MaskOperators(10, 3, 5)
    masks = [operators.sample(rng) for _ in range(50)]
    for first, second in itertools.pairwise(masks):
        for child in (operators.crossover(first, second, rng), operators.mutate(first, rng)):
            features = child["features"]
            assert 3 <= len(features) <= 5
            assert list(features) == sorted(set(features))
            assert all(0 <= f < 10 for f in features)
    # without repair, a crossover child takes each bit from one of its parents
    wide = MaskOperators(10, 0, 10)
    a, b = {"features": (0, 1, 2)}, {"features": (7, 8)}
    for _ in range(20):
        child = set(wide.crossover(a, b, rng)["features"])
        assert child <= {0, 1, 2, 7, 8}
        flipped = set(wide.mutate(a, rng)["features"]) ^ {0, 1, 2}
        assert flipped  # bit-flip mutation always flips at least one bit
    assert operators.size == sum(math.comb(10, k) for k in (3, 4, 5))


BAD = [
    ({"min_features": 5, "max_features": 3},
     (r"The 'min_features' parameter of GeneticFeatureSelectionCV must be at most "
      r"'max_features' \(3\)")),
    ({"min_features": 9}, r"'min_features' parameter .* at most the number of features"),
    ({"max_features": 9}, r"'max_features' parameter .* at most the number of features"),
    ({"min_features": 0}, r"'min_features' parameter of GeneticFeatureSelectionCV must be"),
    ({"screening": 0.5}, r"'screening' parameter of GeneticFeatureSelectionCV must be"),
    ({"selection_rule": "fewest"},
     r"'selection_rule' parameter of GeneticFeatureSelectionCV must be .*one_standard_dev"),
    ({"objectives": []},
     r"'objectives' parameter of GeneticFeatureSelectionCV must hold at least one"),
    ({"objectives": ["score", "n_trees"]},
     r"'objectives' parameter of GeneticFeatureSelectionCV.*Got 'n_trees'"),
    ({"scoring": ["accuracy"]}, r"'objectives' parameter.*Got 'score'"),
]


class _CountingLogistic(LogisticRegression):
    fits = 0

    def fit(self, X, y, **kwargs):
        type(self).fits += 1
        return super().fit(X, y, **kwargs)


@pytest.mark.parametrize("params, match", BAD)
def test_bad_parameters_are_rejected_before_any_work(params, match):
    _CountingLogistic.fits = 0
    selector = GeneticFeatureSelectionCV(_CountingLogistic(), cv=2, population_size=2,
                                         generations=0, **params)
    with pytest.raises(ValueError, match=match):
        selector.fit(X, Y)
    assert _CountingLogistic.fits == 0


def test_the_mask_surrogate_is_a_surrogate_before_and_after_its_fit():
    surrogate = _MaskSurrogate(4)
    assert not surrogate.fitted
    masks = [{"features": tuple(int(i) for i in np.flatnonzero(bits))}
             for bits in itertools.product([0, 1], repeat=4) if any(bits)]
    scores = [float(0 in mask["features"]) for mask in masks]  # feature 0 decides
    surrogate.fit(masks, scores, seed=0)
    assert surrogate.fitted
    mean, _ = surrogate.predict([{"features": (0,)}, {"features": (1, 2, 3)}])
    assert mean[0] > mean[1]
