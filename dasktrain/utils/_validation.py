"""Parameter constraints checked when ``fit`` starts, and input checks for meta-estimators.

Every estimator declares ``_parameter_constraints`` (parameter name -> list of
accepted constraints) and calls :func:`validate_params` first thing in ``fit``,
before any work reaches a cluster. One function makes every message, of the
form ``The 'n_repeats' parameter of RepeatedClassifier must be an int in the
range [1, inf). Got 0 instead.``
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a value or type that is not accepted.

    Subclasses both ValueError and TypeError, like scikit-learn's own error, so
    that either ``except`` clause catches it.
    """


class Constraint:
    """A rule that a parameter value may satisfy."""

    def is_satisfied_by(self, value) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class Interval(Constraint):
    """A number of a given type within bounds.

    Parameters
    ----------
    kind : {numbers.Integral, numbers.Real}
        Integral accepts integers only; Real accepts any real number.
    low, high : number or None
        Bounds; None means unbounded on that side.
    closed : {"both", "left", "right", "neither"}, default="both"
        Which bounds are included.
    """

    def __init__(self, kind, low, high, closed: str = "both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def is_satisfied_by(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if isinstance(value, float) and np.isnan(value):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def describe(self) -> str:
        kind = "an int" if self.kind is numbers.Integral else "a float"
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{kind} in the range {left}{low}, {high}{right}"


class Options(Constraint):
    """One of a fixed set of values (strings, usually)."""

    def __init__(self, options):
        self.options = tuple(options)

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, str) and value in self.options

    def describe(self) -> str:
        return "a str among {" + ", ".join(repr(option) for option in self.options) + "}"


class HasMethods(Constraint):
    """An object with all of the given methods (an estimator, a scorer, ...)."""

    def __init__(self, *methods: str):
        self.methods = methods

    def is_satisfied_by(self, value) -> bool:
        return all(callable(getattr(value, method, None)) for method in self.methods)

    def describe(self) -> str:
        names = " and ".join(f"'{method}'" for method in self.methods)
        return f"an object implementing {names}"


class InstanceOf(Constraint):
    """An instance of one of the given types."""

    def __init__(self, *types: type, description: str | None = None):
        self.types = types
        self.description = description

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        if self.description:
            return self.description
        return "an instance of " + " or ".join(t.__name__ for t in self.types)


class Predicate(Constraint):
    """Any value for which ``test(value)`` is true, described in words."""

    def __init__(self, test: Callable, description: str):
        self.test, self.description = test, description

    def is_satisfied_by(self, value) -> bool:
        try:
            return bool(self.test(value))
        except Exception:  # a test that cannot even look at the value rejects it
            return False

    def describe(self) -> str:
        return self.description


def _as_constraint(rule) -> Constraint:
    if isinstance(rule, Constraint):
        return rule
    if rule is None:
        return Predicate(lambda value: value is None, "None")
    if rule == "boolean":
        return InstanceOf(bool, np.bool_, description="a bool")
    if rule == "callable":
        return Predicate(callable, "a callable")
    if rule == "random_state":
        return Predicate(
            lambda value: value is None
            or (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                and 0 <= value < 2**32)
            or isinstance(value, (np.random.RandomState, np.random.Generator,
                                  np.random.SeedSequence)),
            "an int in the range [0, 2**32 - 1], a numpy RandomState, Generator or "
            "SeedSequence, or None",
        )
    if rule == "client":
        return Predicate(_is_client_like, "a distributed.Client or None")
    if isinstance(rule, type):
        return InstanceOf(rule)
    raise ValueError(f"unknown constraint {rule!r}")


def _is_client_like(value) -> bool:
    if value is None:
        return True
    return type(value).__name__ == "Client" and type(value).__module__.startswith("distributed")


def validate_params(owner: str, params: dict, constraints: dict) -> None:
    """Check every parameter that has constraints; raise one clear error for the first bad one.

    Parameters
    ----------
    owner : str
        Name of the estimator or function, used in the message.
    params : dict
        Parameter values, e.g. ``estimator.get_params(deep=False)``.
    constraints : dict
        Parameter name -> list of accepted rules: :class:`Constraint` objects,
        None, a type, or one of the strings "boolean", "callable",
        "random_state", "client". The string "no_validation" skips a parameter.

    Raises
    ------
    InvalidParameterError
        Naming the parameter, what is accepted, and the value given.

    Examples
    --------
    >>> from numbers import Integral
    >>> validate_params("f", {"n": 0}, {"n": [Interval(Integral, 1, None)]})
    Traceback (most recent call last):
    ...
    dasktrain.utils._validation.InvalidParameterError: The 'n' parameter of f must be an int in the range [1, inf). Got 0 instead.
    """
    for name, rules in constraints.items():
        if name not in params or rules == "no_validation":
            continue
        value = params[name]
        checks = [_as_constraint(rule) for rule in rules]
        if any(check.is_satisfied_by(value) for check in checks):
            continue
        descriptions = [check.describe() for check in checks]
        if len(descriptions) == 1:
            expected = descriptions[0]
        else:
            expected = ", ".join(descriptions[:-1]) + " or " + descriptions[-1]
        raise InvalidParameterError(
            f"The '{name}' parameter of {owner} must be {expected}. Got {value!r} instead."
        )
