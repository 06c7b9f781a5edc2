"""Search spaces for :class:`~dasktrain.GeneticSearchCV`: Integer, Continuous, Categorical.

A *dimension* is a small immutable value that knows how to draw a value
(:meth:`~Dimension.sample`), take a bounded random step away from one
(:meth:`~Dimension.mutate`), check membership (:meth:`~Dimension.contains`) and
place a value on [0, 1] for plots (:meth:`~Dimension.to_unit`). Every method
takes its randomness from a :class:`numpy.random.Generator` argument and hands
out plain Python values (``int``, ``float`` or the original choice object),
never numpy scalars, so that the values given to estimators are exactly what a
user would have typed.

:func:`as_space` turns what users already write for scikit-learn's
``RandomizedSearchCV`` (lists of choices and frozen ``scipy.stats``
distributions) into dimensions, and checks the parameter names against the
estimator.

Examples
--------
>>> import numpy as np
>>> from dasktrain.space import Integer, Continuous, Categorical
>>> rng = np.random.default_rng(0)
>>> space = {"n_components": Integer(5, 60), "C": Continuous(1e-2, 1e3, log=True),
...          "kernel": Categorical(["rbf", "poly"])}
>>> values = {name: dim.sample(rng) for name, dim in space.items()}
>>> all(space[name].contains(value) for name, value in values.items())
True
"""

from __future__ import annotations

import difflib
import hashlib
import math
import numbers
import types
from dataclasses import KW_ONLY, dataclass

import numpy as np

__all__ = ["Categorical", "Continuous", "Dimension", "Distribution", "Integer", "SearchSpace",
           "as_search_space", "as_space"]

#: Standard deviation of a mutation step, as a fraction of the (log) range.
MUTATION_SCALE = 0.15


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _plain(value):
    """A numpy scalar as the equivalent Python value; anything else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    return value


#: The name part of :func:`value_key` for values of exactly these types.
_SCALAR_NAMES = {kind: f"{kind.__module__}.{kind.__qualname__}"
                 for kind in (type(None), bool, int, float, complex, str, bytes)}


def value_key(value) -> str:
    """A text that identifies `value` by content, types included.

    ``1``, ``1.0`` and ``True`` give different keys; numpy scalars give the key
    of the equal Python value; scikit-learn estimators are identified by their
    class and (recursively) their parameters; containers by their items.

    Examples
    --------
    >>> value_key(1) == value_key(1.0)
    False
    >>> from sklearn.svm import SVC
    >>> value_key(SVC(C=2.0)) == value_key(SVC(C=2.0))
    True
    """
    kind = type(value)
    name = _SCALAR_NAMES.get(kind)
    if name is not None:  # the common case, a parameter value of a built-in type
        return f"{name}:{value!r}"
    value = _plain(value)
    kind = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{name}:{value!r}"
    if isinstance(value, (list, tuple)):
        return f"{name}:[" + ",".join(value_key(item) for item in value) + "]"
    if isinstance(value, (set, frozenset)):
        return f"{name}:{{" + ",".join(sorted(value_key(item) for item in value)) + "}"
    if isinstance(value, dict):
        items = sorted((value_key(key), value_key(item)) for key, item in value.items())
        return f"{name}:{{" + ",".join(f"{key}=>{item}" for key, item in items) + "}"
    if isinstance(value, np.ndarray):
        return f"{name}:{value.dtype.str}{value.shape}{value.tolist()!r}"
    if isinstance(value, type):
        return f"type:{value.__module__}.{value.__qualname__}"
    get_params = getattr(value, "get_params", None)
    if callable(get_params) and not isinstance(value, type):
        try:
            params = get_params(deep=False)
        except Exception:  # an odd object with get_params: fall back to its repr
            return f"{name}:{value!r}"
        return f"{name}(" + value_key(dict(params)) + ")"
    if isinstance(value, types.FunctionType):
        return f"function:{value.__module__}.{value.__qualname__}:{_function_digest(value)}"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"callable:{getattr(value, '__module__', '')}.{value.__qualname__}"
    return f"{name}:{value!r}"


def _code_text(code: types.CodeType) -> str:
    consts = [_code_text(const) if isinstance(const, types.CodeType) else repr(const)
              for const in code.co_consts]
    return code.co_code.hex() + "|" + ",".join(consts) + "|" + ",".join(code.co_names)


def _function_digest(function: types.FunctionType) -> str:
    """A digest of a function's code, defaults and closure: two lambdas differ by content."""
    parts = [_code_text(function.__code__), value_key(function.__defaults__)]
    for cell in function.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            contents = None
        if isinstance(contents, types.FunctionType):  # by name: closures may refer in a loop
            parts.append(f"function:{contents.__module__}.{contents.__qualname__}")
        else:
            parts.append(value_key(contents))
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def _argument_error(cls: str, argument: str, expected: str, value, error=ValueError):
    return error(f"The '{argument}' argument of {cls} must be {expected}. "
                 f"Got {value!r} instead.")


def _check_number(cls: str, argument: str, value, *, integer: bool):
    """`value` as a finite Python int (`integer`) or float, or an error naming `argument`."""
    kind = numbers.Integral if integer else numbers.Real
    expected = "a finite int" if integer else "a finite real number"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kind):
        raise _argument_error(cls, argument, expected, value, TypeError)
    value = int(value) if integer else float(value)
    if not math.isfinite(value):
        raise _argument_error(cls, argument, expected, value)
    return value


class Dimension:
    """Base class of the dimensions of a search space.

    Subclasses are frozen dataclasses; equality, hashing and ``repr`` come from
    their arguments, so two equal spaces compare equal and pickle round-trips.
    """

    def sample(self, rng: np.random.Generator):  # pragma: no cover - interface
        """A random value of this dimension, drawn from `rng`."""
        raise NotImplementedError

    def mutate(self, value, rng: np.random.Generator):  # pragma: no cover - interface
        """A value near `value` (a different one whenever the dimension has two)."""
        raise NotImplementedError

    def contains(self, value) -> bool:  # pragma: no cover - interface
        """Whether `value` is a value of this dimension."""
        raise NotImplementedError

    def to_unit(self, value) -> float:  # pragma: no cover - interface
        """The position of `value` in the dimension, in [0, 1]."""
        raise NotImplementedError

    def from_unit(self, u: float):  # pragma: no cover - interface
        """The value at position `u` in [0, 1]: the inverse of :meth:`to_unit`.

        A uniform `u` gives a value distributed as :meth:`sample` draws it, so
        space-filling designs on the unit cube (``scipy.stats.qmc``) map to the
        dimension.
        """
        raise NotImplementedError

    @property
    def size(self) -> float:
        """Number of distinct values (``math.inf`` for a continuous range)."""
        return math.inf

    @property
    def constant(self) -> bool:
        """True when the dimension has a single value, so mutation cannot change it."""
        return False

    def _identity(self) -> tuple:  # pragma: no cover - interface
        raise NotImplementedError

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self):
        return hash((type(self).__name__, self._identity()))


def _reflect(x: float, low: float, high: float) -> float:
    """`x` mirrored at the bounds until it lies in [low, high]."""
    width = high - low
    if width <= 0:
        return low
    offset = math.fmod(x - low, 2 * width)
    if offset < 0:
        offset += 2 * width
    if offset > width:
        offset = 2 * width - offset
    return min(max(low + offset, low), high)


@dataclass(frozen=True, eq=False, repr=False)
class Integer(Dimension):
    """Integers between `low` and `high`, both included.

    Parameters
    ----------
    low, high : int
        Inclusive bounds, ``low <= high`` (``low == high`` is a constant).
    log : bool, default=False
        Sample and mutate in log scale (needs ``low > 0``): every order of
        magnitude is equally likely, as for ``n_estimators`` or ``max_iter``.

    See Also
    --------
    Continuous : real numbers in a range.
    scipy.stats.randint : ``randint(a, b)`` is converted to ``Integer(a, b - 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> dim = Integer(1, 100, log=True)
    >>> dim
    Integer(1, 100, log=True)
    >>> value = dim.sample(np.random.default_rng(0))
    >>> type(value) is int and dim.contains(value)
    True
    """

    low: int
    high: int
    _: KW_ONLY
    log: bool = False

    def __post_init__(self):
        low = _check_number("Integer", "low", self.low, integer=True)
        high = _check_number("Integer", "high", self.high, integer=True)
        if low > high:
            raise ValueError(f"The 'high' argument of Integer must be >= low ({low}). "
                             f"Got {high!r} instead.")
        if not isinstance(self.log, (bool, np.bool_)):
            raise _argument_error("Integer", "log", "a bool", self.log, TypeError)
        if self.log and low <= 0:
            raise ValueError(f"The 'low' argument of Integer must be > 0 when log=True. "
                             f"Got {low!r} instead.")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", bool(self.log))

    def __repr__(self):
        return f"Integer({self.low}, {self.high}" + (", log=True)" if self.log else ")")

    def _identity(self):
        return (self.low, self.high, self.log)

    @property
    def constant(self) -> bool:
        return self.low == self.high

    @property
    def size(self) -> float:
        return self.high - self.low + 1

    def from_unit(self, u: float) -> int:
        low, high = self._scale()
        if self.log:
            return self._clip(math.floor(math.exp(low + float(u) * (high - low))))
        return self._clip(math.floor(self.low + float(u) * (self.high - self.low + 1)))

    # In log scale an integer k covers [log k, log(k + 1)), so every value is reachable.
    def _scale(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low), math.log(self.high + 1)
        return float(self.low), float(self.high)

    def sample(self, rng):
        if self.log:
            low, high = self._scale()
            return self._clip(math.floor(math.exp(rng.uniform(low, high))))
        return int(rng.integers(self.low, self.high + 1))

    def _clip(self, value) -> int:
        return int(min(max(int(value), self.low), self.high))

    def mutate(self, value, rng):
        value = self._clip(round(_plain(value)))
        if self.constant:
            return value
        low, high = self._scale()
        step = rng.normal(0.0, MUTATION_SCALE * (high - low))
        if self.log:
            position = math.log(value) + 0.5 * (math.log(value + 1) - math.log(value))
            new = self._clip(math.floor(math.exp(_reflect(position + step, low, high))))
        else:
            new = self._clip(round(_reflect(value + step, low, high)))
        if new == value:  # too small a step to reach another integer: move by one
            direction = 1 if step > 0 else -1
            if not self.low <= value + direction <= self.high:
                direction = -direction
            new = value + direction
        return int(new)

    def contains(self, value) -> bool:
        value = _plain(value)
        return (isinstance(value, int) and not isinstance(value, bool)
                and self.low <= value <= self.high)

    def to_unit(self, value) -> float:
        if self.constant:
            return 0.0
        value = min(max(float(_plain(value)), self.low), self.high)
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high)
                                                             - math.log(self.low))
        return (value - self.low) / (self.high - self.low)


@dataclass(frozen=True, eq=False, repr=False)
class Continuous(Dimension):
    """Real numbers between `low` and `high`.

    Parameters
    ----------
    low, high : float
        Bounds, finite, ``low < high``. Sampled values lie in ``[low, high]``.
    log : bool, default=False
        Sample and mutate in log scale (needs ``low > 0``), as for a
        regularisation strength ``C`` or a learning rate.

    See Also
    --------
    Integer : integers in a range.
    scipy.stats.loguniform : converted to ``Continuous(a, b, log=True)``.

    Examples
    --------
    >>> import numpy as np
    >>> dim = Continuous(1e-3, 10, log=True)
    >>> dim
    Continuous(0.001, 10.0, log=True)
    >>> rng = np.random.default_rng(0)
    >>> value = dim.sample(rng)
    >>> type(value) is float and dim.contains(value) and dim.mutate(value, rng) != value
    True
    """

    low: float
    high: float
    _: KW_ONLY
    log: bool = False

    def __post_init__(self):
        low = _check_number("Continuous", "low", self.low, integer=False)
        high = _check_number("Continuous", "high", self.high, integer=False)
        if not low < high:
            raise ValueError(f"The 'high' argument of Continuous must be > low ({low!r}). "
                             f"Got {high!r} instead.")
        if not isinstance(self.log, (bool, np.bool_)):
            raise _argument_error("Continuous", "log", "a bool", self.log, TypeError)
        if self.log and low <= 0:
            raise ValueError(f"The 'low' argument of Continuous must be > 0 when log=True. "
                             f"Got {low!r} instead.")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", bool(self.log))

    def __repr__(self):
        return f"Continuous({self.low!r}, {self.high!r}" + (", log=True)" if self.log else ")")

    def _identity(self):
        return (self.low, self.high, self.log)

    def _scale(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low), math.log(self.high)
        return self.low, self.high

    def _from_scale(self, x: float) -> float:
        value = math.exp(x) if self.log else x
        return float(min(max(value, self.low), self.high))

    def sample(self, rng):
        return self._from_scale(rng.uniform(*self._scale()))

    def from_unit(self, u: float) -> float:
        low, high = self._scale()
        return self._from_scale(low + float(u) * (high - low))

    def mutate(self, value, rng):
        value = min(max(float(_plain(value)), self.low), self.high)
        low, high = self._scale()
        position = math.log(value) if self.log else value
        for _ in range(100):
            step = rng.normal(0.0, MUTATION_SCALE * (high - low))
            new = self._from_scale(_reflect(position + step, low, high))
            if new != value:
                return new
        return self.sample(rng)  # pragma: no cover - 100 zero steps in a row

    def contains(self, value) -> bool:
        value = _plain(value)
        return (isinstance(value, float) and math.isfinite(value)
                and self.low <= value <= self.high)

    def to_unit(self, value) -> float:
        value = min(max(float(_plain(value)), self.low), self.high)
        low, high = self._scale()
        return ((math.log(value) if self.log else value) - low) / (high - low)


@dataclass(frozen=True, eq=False, repr=False)
class Categorical(Dimension):
    """A choice among given values, optionally weighted.

    Parameters
    ----------
    choices : sequence
        The values, at least one, all distinct. Any Python objects (strings,
        numbers, None, estimators...); the very objects given are handed out.
    weights : sequence of float or None, default=None
        Relative sampling weights, one per choice, non-negative with a
        positive sum. None samples uniformly. Mutation picks among the other
        choices with the same relative weights.

    See Also
    --------
    Integer, Continuous : numeric ranges.

    Examples
    --------
    >>> import numpy as np
    >>> dim = Categorical(["rbf", "poly", "linear"], weights=[2, 1, 1])
    >>> dim
    Categorical(['rbf', 'poly', 'linear'], weights=[2.0, 1.0, 1.0])
    >>> rng = np.random.default_rng(0)
    >>> dim.mutate("rbf", rng) in ("poly", "linear")
    True
    >>> dim.to_unit("linear")
    1.0
    """

    choices: tuple
    _: KW_ONLY
    weights: tuple | None = None

    def __post_init__(self):
        choices = self.choices
        if isinstance(choices, (str, bytes, dict)) or not hasattr(choices, "__iter__"):
            raise _argument_error("Categorical", "choices", "a list or tuple of values",
                                  choices, TypeError)
        choices = tuple(_plain(choice) for choice in choices)
        if not choices:
            raise ValueError("The 'choices' argument of Categorical must be a non-empty list "
                             "or tuple of values. Got an empty one instead.")
        keys = [value_key(choice) for choice in choices]
        if len(set(keys)) != len(keys):
            duplicates = [choices[i] for i, key in enumerate(keys) if keys.index(key) != i]
            raise ValueError("The 'choices' argument of Categorical must hold distinct values. "
                             f"Got {duplicates[0]!r} more than once.")
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "_keys", tuple(keys))
        if self.weights is not None:
            weights = self.weights
            if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
                raise _argument_error("Categorical", "weights", "a list of numbers or None",
                                      weights, TypeError)
            weights = tuple(weights)
            if len(weights) != len(choices):
                raise ValueError(f"The 'weights' argument of Categorical must have one weight "
                                 f"per choice ({len(choices)}). Got {len(weights)} weights "
                                 "instead.")
            weights = tuple(_check_number("Categorical", "weights", w, integer=False)
                            for w in weights)
            if any(w < 0 for w in weights):
                raise ValueError("The 'weights' argument of Categorical must be non-negative. "
                                 f"Got {list(weights)!r} instead.")
            if not sum(weights) > 0:
                raise ValueError("The 'weights' argument of Categorical must have a positive "
                                 f"sum. Got {list(weights)!r} instead.")
            object.__setattr__(self, "weights", weights)

    def __repr__(self):
        weights = "" if self.weights is None else f", weights={list(self.weights)!r}"
        return f"Categorical({list(self.choices)!r}{weights})"

    def _identity(self):
        return (self._keys, self.weights)

    def __len__(self):
        return len(self.choices)

    @property
    def constant(self) -> bool:
        return len(self.choices) == 1

    @property
    def size(self) -> float:
        return len(self.choices)

    def from_unit(self, u: float):
        weights = np.ones(len(self.choices)) if self.weights is None else np.array(self.weights)
        edges = np.cumsum(weights) / weights.sum()
        index = int(np.searchsorted(edges, float(u), side="right"))
        return self.choices[min(index, len(self.choices) - 1)]

    def index(self, value) -> int:
        """The position of `value` among the choices (ValueError when absent)."""
        for i, choice in enumerate(self.choices):
            if choice is value:
                return i
        key = value_key(value)
        try:
            return self._keys.index(key)
        except ValueError:
            raise ValueError(f"{value!r} is not one of the choices of {self!r}") from None

    def _pick(self, indices: list[int], rng) -> int:
        if self.weights is None:
            return indices[int(rng.integers(len(indices)))]
        weights = np.array([self.weights[i] for i in indices])
        if weights.sum() <= 0:  # only zero-weight alternatives left: any of them
            return indices[int(rng.integers(len(indices)))]
        return indices[int(rng.choice(len(indices), p=weights / weights.sum()))]

    def sample(self, rng):
        return self.choices[self._pick(list(range(len(self.choices))), rng)]

    def mutate(self, value, rng):
        if self.constant:
            return self.choices[0]
        try:
            current = self.index(value)
        except ValueError:
            return self.sample(rng)
        others = [i for i in range(len(self.choices)) if i != current]
        return self.choices[self._pick(others, rng)]

    def contains(self, value) -> bool:
        try:
            self.index(value)
        except ValueError:
            return False
        return True

    def to_unit(self, value) -> float:
        if self.constant:
            return 0.0
        return self.index(value) / (len(self.choices) - 1)


@dataclass(frozen=True, eq=False, repr=False)
class Distribution(Dimension):
    """Values drawn from a frozen ``scipy.stats`` distribution (or any object with ``rvs``).

    :func:`as_space` makes one for a distribution that has no exact
    Integer/Continuous equivalent (e.g. ``scipy.stats.norm(0, 1)``).
    Sampling calls ``distribution.rvs(random_state=rng)``; mutation draws a
    value near the current one (a gaussian step of 0.15 standard deviations
    or of the support's width, kept within the support) half of the time and
    a fresh value otherwise.

    Parameters
    ----------
    distribution : frozen scipy.stats distribution
        Anything with ``rvs(random_state=...)``; ``support()`` and ``cdf``
        are used when present.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> dim = Distribution(stats.norm(0, 1))
    >>> value = dim.sample(np.random.default_rng(0))
    >>> type(value) is float and dim.contains(value)
    True
    """

    distribution: object

    def __post_init__(self):
        if not callable(getattr(self.distribution, "rvs", None)):
            raise _argument_error("Distribution", "distribution",
                                  "an object with an 'rvs' method (a frozen scipy.stats "
                                  "distribution)", self.distribution, TypeError)

    @property
    def discrete(self) -> bool:
        dist = getattr(self.distribution, "dist", None)
        return hasattr(dist, "pmf") or hasattr(self.distribution, "pmf")

    def _support(self) -> tuple[float, float]:
        support = getattr(self.distribution, "support", None)
        if callable(support):
            low, high = support()
            return float(low), float(high)
        return -math.inf, math.inf

    def __repr__(self):
        return f"Distribution({self._describe_distribution()})"

    def _describe_distribution(self) -> str:
        dist = getattr(self.distribution, "dist", None)
        if dist is None:
            return repr(self.distribution)
        args = [repr(_plain(arg)) for arg in getattr(self.distribution, "args", ())]
        kwds = [f"{k}={_plain(v)!r}" for k, v in
                sorted(getattr(self.distribution, "kwds", {}).items())]
        return f"scipy.stats.{getattr(dist, 'name', type(dist).__name__)}(" + ", ".join(
            args + kwds) + ")"

    def _identity(self):
        if getattr(self.distribution, "dist", None) is None:
            return (id(self.distribution),)
        return (self._describe_distribution(),)

    @property
    def constant(self) -> bool:
        low, high = self._support()
        return low == high

    def _convert(self, value):
        value = _plain(np.asarray(value).reshape(-1)[0])
        if self.discrete:
            return int(round(value))
        return float(value)

    def sample(self, rng):
        return self._convert(self.distribution.rvs(random_state=rng))

    @property
    def size(self) -> float:
        low, high = self._support()
        if low == high:
            return 1
        if self.discrete and math.isfinite(high - low):
            return int(high - low + 1)
        return math.inf

    def from_unit(self, u: float):
        ppf = getattr(self.distribution, "ppf", None)
        if not callable(ppf):  # pragma: no cover - an rvs-only object has no quantiles
            raise TypeError(f"{self!r} has no quantile function (ppf).")
        low, high = self._support()
        # the open unit interval: ppf(0) and ppf(1) are the (maybe infinite) bounds
        value = float(ppf(min(max(float(u), 1e-12), 1 - 1e-12)))
        return self._convert(min(max(value, low), high))

    def _step_size(self) -> float:
        try:
            std = float(self.distribution.std())
        except Exception:
            std = math.nan
        if math.isfinite(std) and std > 0:
            return MUTATION_SCALE * std
        low, high = self._support()
        if math.isfinite(high - low) and high > low:
            return MUTATION_SCALE * (high - low)
        return 1.0

    def mutate(self, value, rng):
        if self.constant:
            return self.sample(rng)
        low, high = self._support()
        value = _plain(value)
        for _ in range(100):
            if rng.random() < 0.5:
                new = value + rng.normal(0.0, self._step_size())
                new = min(max(new, low), high)
                new = self._convert(new)
            else:
                new = self.sample(rng)
            if new != value and self.contains(new):
                return new
        return self.sample(rng)  # pragma: no cover - a distribution that cannot move

    def contains(self, value) -> bool:
        value = _plain(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.discrete and not isinstance(value, int):
            return False
        low, high = self._support()
        return math.isfinite(value) and low <= value <= high

    def to_unit(self, value) -> float:
        cdf = getattr(self.distribution, "cdf", None)
        if callable(cdf):
            return float(min(max(float(cdf(_plain(value))), 0.0), 1.0))
        return 0.5  # pragma: no cover - an rvs-only object has no position


def _from_scipy(distribution) -> Dimension:
    """The exact Integer/Continuous equivalent of a frozen scipy distribution, else Distribution."""
    dist = getattr(distribution, "dist", None)
    name = getattr(dist, "name", None)
    kwds = getattr(distribution, "kwds", {}) or {}
    support = getattr(distribution, "support", None)
    if name is not None and callable(support):
        low, high = (float(bound) for bound in support())
        if name == "randint" and math.isfinite(low) and math.isfinite(high):
            return Integer(int(low), int(high))
        if name == "uniform" and math.isfinite(low) and math.isfinite(high) and low < high:
            return Continuous(low, high)
        plain_location = kwds.get("loc", 0) == 0 and kwds.get("scale", 1) == 1
        if (name in ("loguniform", "reciprocal") and plain_location
                and len(getattr(distribution, "args", ())) <= 2 and 0 < low < high):
            return Continuous(low, high, log=True)
    return Distribution(distribution)


_EXPECTED = ("a dasktrain.space dimension (Integer, Continuous, Categorical), a list of "
             "choices, or a frozen scipy.stats distribution")


def as_dimension(value, name: str = "value") -> Dimension:
    """One dimension from a dimension, a list/tuple of choices or a scipy distribution."""
    where = f"param_distributions[{name!r}]"
    if isinstance(value, Dimension):
        return value
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise ValueError(f"The 'param_distributions' parameter has an array of choices for "
                         f"{name!r} that is not one-dimensional (shape {value.shape}); "
                         f"{where} needs a one-dimensional list of choices.")
    if isinstance(value, (list, tuple, range)) or isinstance(value, np.ndarray):
        if len(value) == 0:
            raise ValueError(f"The 'param_distributions' parameter has an empty list of choices "
                             f"for {name!r}; {where} needs at least one choice.")
        try:
            return Categorical(list(value))
        except (TypeError, ValueError) as error:
            raise type(error)(f"The 'param_distributions' parameter is invalid at {name!r}: "
                              f"{error}") from None
    if callable(getattr(value, "rvs", None)):
        try:
            return _from_scipy(value)
        except (TypeError, ValueError) as error:
            raise type(error)(f"The 'param_distributions' parameter is invalid at {name!r}: "
                              f"{error}") from None
    raise TypeError(f"The 'param_distributions' parameter must map {name!r} to {_EXPECTED}. "
                    f"Got {_describe(value)} instead.")


def as_space(param_distributions, estimator=None) -> dict[str, Dimension]:
    """Check `param_distributions` and convert every entry to a dimension.

    Parameters
    ----------
    param_distributions : dict
        Parameter name -> a dimension (:class:`Integer`, :class:`Continuous`,
        :class:`Categorical`), a list or tuple of choices (a Categorical), or a
        frozen ``scipy.stats`` distribution: ``randint(a, b)`` becomes
        ``Integer(a, b - 1)``, ``uniform(loc, scale)`` becomes
        ``Continuous(loc, loc + scale)``, ``loguniform(a, b)`` becomes
        ``Continuous(a, b, log=True)``, and any other becomes a
        :class:`Distribution`.
    estimator : estimator or None, default=None
        When given, every name must be one of ``estimator.get_params(deep=True)``.

    Returns
    -------
    space : dict
        Name -> dimension, in the order given.

    Raises
    ------
    TypeError, ValueError
        Naming the 'param_distributions' parameter and the offending key.

    Examples
    --------
    >>> from scipy import stats
    >>> from sklearn.svm import SVC
    >>> as_space({"C": stats.loguniform(1e-2, 1e2), "kernel": ["rbf", "poly"],
    ...           "degree": stats.randint(2, 5)}, SVC())
    {'C': Continuous(0.01, 100.0, log=True), 'kernel': Categorical(['rbf', 'poly']), 'degree': Integer(2, 4)}
    >>> as_space({"c": [1.0]}, SVC())
    Traceback (most recent call last):
    ...
    ValueError: The 'param_distributions' parameter has a key 'c' that is not a parameter of SVC. Did you mean 'C'? ...
    """
    if not isinstance(param_distributions, dict):
        raise TypeError("The 'param_distributions' parameter must be a dict mapping parameter "
                        f"names to {_EXPECTED}. Got {_describe(param_distributions)} instead.")
    if not param_distributions:
        raise ValueError("The 'param_distributions' parameter must name at least one parameter. "
                         "Got an empty dict instead.")
    for name in param_distributions:
        if not isinstance(name, str):
            raise TypeError("The 'param_distributions' parameter must have parameter names "
                            f"(str) as keys. Got the key {_describe(name)} instead.")
    space = {name: as_dimension(value, name) for name, value in param_distributions.items()}
    if estimator is not None:
        for name in space:
            _check_name(name, space, estimator)
    return space


def _nested_owner(name: str, branch: dict) -> str | None:
    """The longest ``step`` of `name` (``step__param``) that `branch` sets to estimators."""
    parts = name.split("__")
    for cut in range(len(parts) - 1, 0, -1):
        owner = "__".join(parts[:cut])
        dimension = branch.get(owner)
        if isinstance(dimension, Categorical) and all(
                callable(getattr(choice, "get_params", None)) for choice in dimension.choices):
            return owner
    return None


def _unknown_name_error(name: str, owner, valid: list[str]) -> ValueError:
    lowered = {v.lower(): v for v in reversed(valid)}
    close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3,
                                                           cutoff=0.6)]
    hint = " Did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""
    shown = ", ".join(repr(v) for v in valid[:30]) + (", ..." if len(valid) > 30 else "")
    return ValueError(f"The 'param_distributions' parameter has a key {name!r} that is not a "
                      f"parameter of {owner}.{hint} Valid parameters are: {shown}.")


def _check_name(name: str, branch: dict, estimator) -> None:
    """Raise ValueError unless `name` is a parameter of `estimator` once `branch` is set.

    A nested ``step__param`` whose ``step`` the branch sets to estimators must
    be a parameter of every one of those estimators (it is set after the step,
    as scikit-learn's ``set_params`` does).
    """
    owner = _nested_owner(name, branch)
    if owner is None:
        valid = sorted(estimator.get_params(deep=True))
        if name not in valid:
            raise _unknown_name_error(name, type(estimator).__name__, valid)
        return
    rest = name[len(owner) + 2:]
    for choice in branch[owner].choices:
        valid = sorted(choice.get_params(deep=True))
        if rest not in valid:
            raise _unknown_name_error(
                name, f"{type(choice).__name__} (a choice of {owner!r})",
                [f"{owner}__{v}" for v in valid])


class SearchSpace:
    """A search space of one or several branches, each a dict name -> :class:`Dimension`.

    A candidate comes from one branch (as scikit-learn's ``ParameterSampler``
    draws from a list of dicts: first a dict, uniformly, then each of its
    parameters), so a list of dicts searches across estimators: each branch
    may set a pipeline step and that step's nested parameters together.

    Parameters
    ----------
    branches : list of dict
        Name -> dimension, at least one branch (an empty one is the estimator as given).

    Attributes
    ----------
    branches : tuple of dict
    names : list of str
        Every parameter name, in order of first appearance.

    Examples
    --------
    >>> import numpy as np
    >>> space = SearchSpace([{"kernel": Categorical(["rbf"]), "C": Continuous(0.1, 10.0)},
    ...                      {"kernel": Categorical(["linear"])}])
    >>> candidate = space.sample(np.random.default_rng(0))
    >>> space.branch_of(candidate) in (0, 1), space.contains(candidate)
    (True, True)
    >>> space.size
    inf
    """

    def __init__(self, branches):
        branches = tuple(dict(branch) for branch in branches)
        if not branches:
            raise ValueError("A SearchSpace needs at least one branch.")
        for branch in branches:
            for name, dimension in branch.items():
                if not isinstance(dimension, Dimension):
                    raise TypeError(f"The branch entry {name!r} must be a Dimension. Got "
                                    f"{_describe(dimension)} instead.")
        self.branches = branches
        self.names = list(dict.fromkeys(name for branch in branches for name in branch))

    def __repr__(self):
        if len(self.branches) == 1:
            return f"SearchSpace({self.branches[0]!r})"
        return f"SearchSpace({list(self.branches)!r})"

    def __eq__(self, other):
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self.branches == other.branches

    def __hash__(self):
        return hash(tuple(tuple(branch.items()) for branch in self.branches))

    def __len__(self):
        return len(self.branches)

    @property
    def size(self) -> float:
        """Number of distinct candidates (``math.inf`` when a branch has a continuous range).

        Branches that share candidates are counted once for each branch.
        """
        total = 0
        for branch in self.branches:
            total += math.prod(dimension.size for dimension in branch.values())
        return total

    def sample(self, rng: np.random.Generator, branch: int | None = None) -> dict:
        """A random candidate: a branch drawn uniformly (unless given), then its parameters."""
        if branch is None:
            branch = int(rng.integers(len(self.branches))) if len(self.branches) > 1 else 0
        return {name: dimension.sample(rng) for name, dimension in self.branches[branch].items()}

    def from_unit(self, point, branch: int = 0) -> dict:
        """The candidate of `branch` at `point` of the unit cube (one coordinate a parameter)."""
        dims = self.branches[branch]
        return {name: dimension.from_unit(u) for (name, dimension), u in zip(dims.items(), point)}

    def branch_of(self, candidate: dict) -> int:
        """The first branch that has exactly the candidate's names and contains its values.

        Raises ValueError when no branch does.
        """
        for index, branch in enumerate(self.branches):
            if branch.keys() == candidate.keys() and all(
                    branch[name].contains(value) for name, value in candidate.items()):
                return index
        raise ValueError(f"{candidate!r} is not a candidate of {self!r}.")

    def contains(self, candidate: dict) -> bool:
        """Whether `candidate` comes from one of the branches."""
        try:
            self.branch_of(candidate)
        except ValueError:
            return False
        return True


def as_search_space(param_distributions, estimator=None) -> SearchSpace:
    """A :class:`SearchSpace` from a dict or a list of dicts, as RandomizedSearchCV takes.

    Each dict is checked and converted by :func:`as_space`; with several, a
    candidate comes from one of them. A dict may set a step of `estimator`
    (a list of estimators) together with that step's nested parameters
    (``"clf__C"``): each name must then be a parameter of every estimator the
    dict gives for the step.

    Raises
    ------
    TypeError, ValueError
        Naming the 'param_distributions' parameter and what is wrong.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.svm import SVC
    >>> pipe = Pipeline([("clf", SVC())])
    >>> space = as_search_space([{"clf": [SVC()], "clf__gamma": Continuous(1e-3, 1.0)},
    ...                          {"clf": [LogisticRegression()], "clf__C": [0.1, 1.0]}], pipe)
    >>> len(space), space.names
    (2, ['clf', 'clf__gamma', 'clf__C'])
    >>> as_search_space([{"clf": [LogisticRegression()], "clf__gamma": [1.0]}], pipe)
    Traceback (most recent call last):
    ...
    ValueError: The 'param_distributions' parameter has a key 'clf__gamma' that is not a parameter of LogisticRegression (a choice of 'clf')...
    """
    if isinstance(param_distributions, dict):
        param_distributions = [param_distributions]
        as_list = False
    elif isinstance(param_distributions, (list, tuple)):
        as_list = True
        if not param_distributions:
            raise ValueError("The 'param_distributions' parameter must be a dict or a non-empty "
                             "list of dicts. Got an empty list instead.")
    else:
        raise TypeError("The 'param_distributions' parameter must be a dict mapping parameter "
                        f"names to {_EXPECTED}, or a list of such dicts. Got "
                        f"{_describe(param_distributions)} instead.")
    branches = []
    for index, entry in enumerate(param_distributions):
        if as_list and not isinstance(entry, dict):
            raise TypeError("The 'param_distributions' parameter as a list must hold dicts. "
                            f"Got {_describe(entry)} at position {index} instead.")
        # an empty dict is the estimator as it is (scikit-learn's searches evaluate it)
        branch = as_space(entry) if entry else {}
        if estimator is not None:
            for name in branch:
                _check_name(name, branch, estimator)
        branches.append(branch)
    return SearchSpace(branches)
