"""Utilities shared by dasktrain's estimators: parameter checks, seeds, input checks."""

from ._random import random_state_params, seed_sequence, set_random_states, spawn_seeds
from ._validation import (HasMethods, InstanceOf, Interval, InvalidParameterError, Options,
                          Predicate, validate_params)

__all__ = [
    "HasMethods", "InstanceOf", "Interval", "InvalidParameterError", "Options", "Predicate",
    "random_state_params", "seed_sequence", "set_random_states", "spawn_seeds",
    "validate_params",
]
