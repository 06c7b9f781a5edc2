"""Search-space dimensions: validation, conversion from lists and scipy.stats, and properties."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from dasktrain.space import Categorical, Continuous, Distribution, Integer, as_space

PLAIN_TYPES = (int, float, str, type(None), bool)

# --------------------------------------------------------------------------------------------
# Hypothesis strategies (also used by test_genetic.py)

_small_ints = st.integers(-1000, 1000)
_finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def integers(draw):
    log = draw(st.booleans())
    low = draw(st.integers(1, 1000) if log else _small_ints)
    high = draw(st.integers(low, low + draw(st.sampled_from([0, 1, 2, 10, 10_000]))))
    return Integer(low, high, log=log)


@st.composite
def continuous(draw):
    log = draw(st.booleans())
    if log:
        low = draw(st.floats(1e-6, 1e3))
        high = low * draw(st.floats(1.001, 1e6))
    else:
        low = draw(_finite)
        high = low + draw(st.floats(1e-3, 1e6))
    return Continuous(low, high, log=log)


_choice_values = st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False),
                           st.text(max_size=3), st.none(), st.booleans())


@st.composite
def categoricals(draw):
    choices = draw(st.lists(_choice_values, min_size=1, max_size=6,
                            unique_by=lambda v: (type(v), v)))
    weights = draw(st.one_of(st.none(), st.lists(st.floats(0.1, 10), min_size=len(choices),
                                                 max_size=len(choices))))
    return Categorical(choices, weights=weights)


def dimensions():
    """Any Integer, Continuous or Categorical dimension."""
    return st.one_of(integers(), continuous(), categoricals())


def spaces(min_size=1):
    """A dict of 1 to 5 named dimensions."""
    return st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), dimensions(),
                           min_size=min_size, max_size=5)


seeds = st.integers(0, 2**32 - 1)
PROPERTY = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------------------------
# Bad inputs: every message names the argument or parameter and the offending key


@pytest.mark.parametrize("build, err, match", [
    (lambda: Integer(1.5, 3), TypeError, r"'low' argument of Integer must be a finite int"),
    (lambda: Integer(1, "3"), TypeError, r"'high' argument of Integer must be a finite int"),
    (lambda: Integer(True, 3), TypeError, r"'low' argument of Integer .* Got True"),
    (lambda: Integer(5, 4), ValueError, r"'high' argument of Integer must be >= low \(5\)"),
    (lambda: Integer(0, 4, log=True), ValueError, r"'low' .* must be > 0 when log=True"),
    (lambda: Integer(1, 4, log="yes"), TypeError, r"'log' argument of Integer must be a bool"),
    (lambda: Continuous(1.0, 1.0), ValueError, r"'high' argument of Continuous must be > low"),
    (lambda: Continuous(2.0, 1.0), ValueError, r"'high' argument of Continuous must be > low"),
    (lambda: Continuous(0.0, math.inf), ValueError, r"'high' .* finite real number"),
    (lambda: Continuous(math.nan, 1.0), ValueError, r"'low' .* finite real number"),
    (lambda: Continuous(-1.0, 1.0, log=True), ValueError, r"'low' .* > 0 when log=True"),
    (lambda: Continuous(False, 1.0), TypeError, r"'low' argument of Continuous"),
    (lambda: Continuous("0", 1.0), TypeError, r"'low' argument of Continuous"),
    (lambda: Categorical([]), ValueError, r"'choices' argument of Categorical must be a "
                                          r"non-empty"),
    (lambda: Categorical("abc"), TypeError, r"'choices' argument of Categorical must be a list"),
    (lambda: Categorical(3), TypeError, r"'choices' argument of Categorical"),
    (lambda: Categorical(["a", "a"]), ValueError, r"distinct values. Got 'a' more than once"),
    (lambda: Categorical(["a", "b"], weights=[1]), ValueError, r"one weight per choice \(2\)"),
    (lambda: Categorical(["a", "b"], weights=[1, -1]), ValueError, r"'weights' .* non-negative"),
    (lambda: Categorical(["a", "b"], weights=[0, 0]), ValueError, r"'weights' .* positive sum"),
    (lambda: Categorical(["a", "b"], weights=[1, math.nan]), ValueError, r"'weights'"),
    (lambda: Categorical(["a", "b"], weights="ab"), TypeError, r"'weights'"),
    (lambda: Distribution(3), TypeError, r"'distribution' argument of Distribution"),
    (lambda: as_space([("C", [1, 2])]), TypeError, r"'param_distributions' parameter must be a "
                                                   r"dict.* Got \[.*\] \(list\)"),
    (lambda: as_space({}), ValueError, r"'param_distributions' .* at least one parameter"),
    (lambda: as_space({1: [1, 2]}), TypeError, r"'param_distributions' .* Got the key 1 \(int\)"),
    (lambda: as_space({"C": []}), ValueError, r"empty list of choices for 'C'"),
    (lambda: as_space({"C": 1.0}), TypeError, r"'param_distributions' parameter must map 'C' "
                                               r"to .* Got 1.0 \(float\)"),
    (lambda: as_space({"kernel": "rbf"}), TypeError, r"must map 'kernel' to"),
    (lambda: as_space({"C": {"low": 1}}), TypeError, r"must map 'C' to"),
    (lambda: as_space({"kernel": ["rbf", "rbf"]}), ValueError, r"invalid at 'kernel': .*"
                                                               r"distinct"),
    (lambda: as_space({"c": [1.0]}, SVC()), ValueError, r"key 'c' that is not a parameter of "
                                                         r"SVC. Did you mean 'C'\?"),
    (lambda: as_space({"svc__CC": [1.0]}, Pipeline([("svc", SVC())])), ValueError,
     r"'svc__CC' .* parameter of Pipeline. Did you mean 'svc__C'"),
    (lambda: as_space({"zzz": [1.0]}, SVC()), ValueError, r"'zzz' .* of SVC. Valid parameters "
                                                           r"are: 'C', "),
])
def test_bad_space(build, err, match):
    with pytest.raises(err, match=match):
        build()


# --------------------------------------------------------------------------------------------
# Values: immutable, comparable, hashable, picklable


@pytest.mark.parametrize("dimension, text", [
    (Integer(1, 10), "Integer(1, 10)"),
    (Integer(np.int64(1), 100, log=True), "Integer(1, 100, log=True)"),
    (Continuous(0, 1), "Continuous(0.0, 1.0)"),
    (Continuous(1e-3, 1e3, log=True), "Continuous(0.001, 1000.0, log=True)"),
    (Categorical(("rbf", "poly")), "Categorical(['rbf', 'poly'])"),
    (Categorical([1, None], weights=[1, 3]), "Categorical([1, None], weights=[1.0, 3.0])"),
    (Distribution(stats.norm(0, 2)), "Distribution(scipy.stats.norm(0, 2))"),
])
def test_value_semantics(dimension, text):
    assert repr(dimension) == text
    copy = pickle.loads(pickle.dumps(dimension))
    assert copy == dimension and hash(copy) == hash(dimension)
    with pytest.raises(AttributeError):
        dimension.low = 0  # frozen


def test_equality_depends_on_every_argument_and_type():
    assert Integer(1, 10) != Integer(1, 10, log=True)
    assert Integer(1, 10) != Continuous(1, 10)
    assert Categorical([1, 2]) != Categorical([1.0, 2.0])  # types matter: 1 is not 1.0
    assert Categorical([True, 2]) != Categorical([1, 2])
    assert Categorical(["a", "b"]) != Categorical(["a", "b"], weights=[1, 2])
    assert len({Integer(1, 10), Integer(1, 10), Continuous(0, 1)}) == 2
    assert Categorical([[1, 2], {"a": 1}]) == Categorical([[1, 2], {"a": 1}])  # unhashable items
    assert hash(Categorical([[1, 2], {"a": 1}])) == hash(Categorical([[1, 2], {"a": 1}]))


def test_values_handed_out_are_plain_python_and_the_original_objects():
    rng = np.random.default_rng(0)
    ints = Categorical(np.array([1, 2, 3]))
    assert all(type(ints.sample(rng)) is int for _ in range(20))
    estimators = [SVC(), PCA()]
    dim = Categorical(estimators)
    assert any(dim.sample(rng) is estimators[0] for _ in range(20))
    assert dim.mutate(estimators[0], rng) is estimators[1]
    assert type(Integer(np.int32(1), np.int64(5)).sample(rng)) is int
    assert type(Continuous(np.float32(0), 1).mutate(np.float64(0.5), rng)) is float
    assert type(Integer(1, 5).mutate(np.int64(3), rng)) is int


# --------------------------------------------------------------------------------------------
# Sampling distributions (fixed seeds, so these are deterministic)


def test_integer_reaches_both_bounds_uniform_and_log():
    rng = np.random.default_rng(0)
    assert {Integer(1, 3).sample(rng) for _ in range(200)} == {1, 2, 3}
    log_values = [Integer(1, 1000, log=True).sample(rng) for _ in range(2000)]
    assert min(log_values) == 1 and max(log_values) >= 900
    # log scale: about a third of the draws below 10, not 1 %
    assert 0.25 < np.mean(np.array(log_values) < 10) < 0.42
    assert Integer(7, 7).sample(rng) == 7 and Integer(7, 7).mutate(7, rng) == 7


def test_log_continuous_spreads_over_orders_of_magnitude():
    rng = np.random.default_rng(1)
    dim = Continuous(1e-3, 1e3, log=True)
    values = np.array([dim.sample(rng) for _ in range(2000)])
    assert 0.45 < np.mean(values < 1.0) < 0.55
    assert values.min() >= 1e-3 and values.max() <= 1e3
    uniform = np.array([Continuous(1e-3, 1e3).sample(rng) for _ in range(2000)])
    assert np.mean(uniform < 1.0) < 0.01


def test_categorical_weights_are_followed():
    rng = np.random.default_rng(2)
    dim = Categorical(["a", "b", "c"], weights=[0, 1, 3])
    draws = [dim.sample(rng) for _ in range(2000)]
    assert "a" not in draws
    assert 0.70 < draws.count("c") / len(draws) < 0.80
    # mutation keeps the relative weights of the other choices: from "b" always "c" or "a",
    # never "b"; "a" has weight 0 so from "b" it is always "c"
    assert {dim.mutate("b", rng) for _ in range(50)} == {"c"}
    # only zero-weight alternatives left: still a different choice
    assert Categorical(["x", "y"], weights=[1, 0]).mutate("x", rng) == "y"


def test_mutation_steps_are_local():
    rng = np.random.default_rng(3)
    dim = Continuous(0.0, 100.0)
    steps = np.array([dim.mutate(50.0, rng) - 50.0 for _ in range(2000)])
    assert 10 < steps.std() < 20  # sigma = 15 % of the range
    log_dim = Continuous(1e-4, 1e4, log=True)
    ratios = np.log10([log_dim.mutate(1.0, rng) for _ in range(2000)])
    assert 0.8 < ratios.std() < 1.6  # 15 % of 8 decades
    int_dim = Integer(0, 1000)
    int_steps = np.array([int_dim.mutate(500, rng) - 500 for _ in range(2000)])
    assert 100 < int_steps.std() < 200 and np.all(int_steps != 0)


def test_to_unit_positions():
    assert Integer(0, 10).to_unit(5) == 0.5
    assert Continuous(1e-2, 1e2, log=True).to_unit(1.0) == pytest.approx(0.5)
    assert Integer(1, 100, log=True).to_unit(10) == pytest.approx(0.5)
    assert Categorical(["a", "b", "c"]).to_unit("b") == 0.5
    assert Categorical(["only"]).to_unit("only") == 0.0
    assert Distribution(stats.norm(0, 1)).to_unit(0.0) == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# Conversion of what RandomizedSearchCV users write


@pytest.mark.parametrize("given, expected", [
    (stats.randint(2, 5), Integer(2, 4)),
    (stats.randint(low=1, high=10), Integer(1, 9)),
    (stats.uniform(0.5, 2.0), Continuous(0.5, 2.5)),
    (stats.uniform(loc=1, scale=4), Continuous(1.0, 5.0)),
    (stats.loguniform(1e-3, 1e2), Continuous(1e-3, 1e2, log=True)),
    (stats.reciprocal(0.1, 10), Continuous(0.1, 10.0, log=True)),
    (["rbf", "poly"], Categorical(["rbf", "poly"])),
    ((1, 2, 3), Categorical([1, 2, 3])),
    (range(3), Categorical([0, 1, 2])),
    (np.array([0.1, 1.0]), Categorical([0.1, 1.0])),
    (Integer(1, 5), Integer(1, 5)),
])
def test_as_space_converts(given, expected):
    assert as_space({"p": given}) == {"p": expected}


@pytest.mark.parametrize("distribution, kind", [
    (stats.norm(0, 1), float),
    (stats.expon(scale=2.0), float),
    (stats.loguniform(1e-3, 1e2, loc=1.0), float),  # shifted: not a plain log range
    (stats.poisson(4), int),
    (stats.geom(0.3), int),
])
def test_other_distributions_are_wrapped(distribution, kind):
    (dim,) = as_space({"p": distribution}).values()
    assert isinstance(dim, Distribution)
    rng = np.random.default_rng(0)
    values = [dim.sample(rng) for _ in range(50)]
    assert all(type(v) is kind and dim.contains(v) for v in values)
    mutated = [dim.mutate(v, rng) for v in values]
    assert all(type(m) is kind and dim.contains(m) and m != v for v, m in zip(values, mutated))
    assert all(0.0 <= dim.to_unit(v) <= 1.0 for v in values)
    assert [dim.sample(np.random.default_rng(5)) for _ in range(3)] == \
        [dim.sample(np.random.default_rng(5)) for _ in range(3)]


def test_as_space_accepts_nested_parameter_names_and_keeps_order():
    pipe = Pipeline([("scale", StandardScaler()), ("pca", PCA()), ("svc", SVC())])
    space = as_space({"svc__C": stats.loguniform(1e-2, 1e2), "pca__n_components": [2, 3],
                      "scale": [StandardScaler(), "passthrough"]}, pipe)
    assert list(space) == ["svc__C", "pca__n_components", "scale"]
    assert space["svc__C"] == Continuous(1e-2, 1e2, log=True)


# --------------------------------------------------------------------------------------------
# Properties over random spaces


@PROPERTY
@given(dimension=dimensions(), seed=seeds)
def test_sampled_and_mutated_values_lie_in_the_space(dimension, seed):
    rng = np.random.default_rng(seed)
    for _ in range(5):
        value = dimension.sample(rng)
        assert dimension.contains(value)
        assert type(value) in PLAIN_TYPES
        assert 0.0 <= dimension.to_unit(value) <= 1.0
        mutated = dimension.mutate(value, rng)
        assert dimension.contains(mutated)
        assert type(mutated) in PLAIN_TYPES
        if isinstance(dimension, Integer):
            assert type(value) is int and type(mutated) is int
        if isinstance(dimension, Continuous):
            assert type(value) is float and type(mutated) is float


@PROPERTY
@given(dimension=dimensions(), seed=seeds)
def test_mutation_always_moves_when_the_dimension_allows(dimension, seed):
    rng = np.random.default_rng(seed)
    value = dimension.sample(rng)
    mutated = dimension.mutate(value, rng)
    if dimension.constant:
        assert mutated == value
    elif isinstance(dimension, Categorical):
        assert dimension.index(mutated) != dimension.index(value)
    else:
        assert mutated != value


@PROPERTY
@given(dimension=dimensions(), seed=seeds)
def test_same_seed_same_values(dimension, seed):
    def run(rng):
        values = [dimension.sample(rng) for _ in range(3)]
        return values + [dimension.mutate(v, rng) for v in values]

    first = run(np.random.default_rng(seed))
    second = run(np.random.default_rng(seed))
    assert [(type(v), v) for v in first] == [(type(v), v) for v in second]


@PROPERTY
@given(dimension=dimensions())
def test_dimensions_survive_pickling(dimension):
    assert pickle.loads(pickle.dumps(dimension)) == dimension


def test_contains_rejects_foreign_values():
    assert not Integer(1, 5).contains(6)
    assert not Integer(1, 5).contains(2.0)
    assert not Integer(0, 5).contains(True)
    assert not Continuous(0, 1).contains(1.5)
    assert not Continuous(0, 1).contains(math.nan)
    assert not Categorical([1, 2]).contains(1.0)
    assert not Categorical(["a"]).contains("b")
    assert not Distribution(stats.poisson(3)).contains(-1)
    assert not Distribution(stats.poisson(3)).contains(1.5)
    assert Categorical([1, 2]).contains(np.int64(1))
