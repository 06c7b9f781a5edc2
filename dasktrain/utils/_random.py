"""Seeds for many fits, drawn from one :class:`numpy.random.SeedSequence`."""

from __future__ import annotations

import numbers

import numpy as np

#: Seeds are kept below 2**31 so that every scikit-learn estimator accepts them.
_SEED_MASK = 0x7FFFFFFF


def seed_sequence(random_state) -> np.random.SeedSequence:
    """A SeedSequence from anything scikit-learn accepts as `random_state`.

    An int or None seeds the sequence directly; a RandomState or Generator is
    drawn from once (and so advances, as scikit-learn does with them).

    Examples
    --------
    >>> seed_sequence(0).entropy
    0
    """
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.SeedSequence(None if random_state is None else int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(0, 2**31 - 1)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**31 - 1)))
    raise TypeError(
        "random_state must be None, an int, a numpy RandomState, Generator or SeedSequence. "
        f"Got {random_state!r} instead."
    )


def spawn_seeds(random_state, n: int) -> list[int]:
    """`n` independent integer seeds derived from `random_state`.

    Examples
    --------
    >>> spawn_seeds(0, 3) == spawn_seeds(0, 3)
    True
    >>> len(set(spawn_seeds(0, 100)))
    100
    """
    children = seed_sequence(random_state).spawn(n)
    return [int(child.generate_state(1, dtype=np.uint32)[0]) & _SEED_MASK for child in children]


def random_state_params(estimator) -> list[str]:
    """Names of every `random_state` parameter of `estimator`, nested ones included, sorted."""
    return sorted(
        name for name in estimator.get_params(deep=True)
        if name == "random_state" or name.endswith("__random_state")
    )


def set_random_states(estimator, seed: int):
    """Set every (nested) `random_state` parameter of `estimator` from `seed`, in place.

    Each parameter gets its own seed derived from `seed`, so two steps of a
    pipeline never share a stream. Returns the estimator.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.neural_network import MLPClassifier
    >>> pipe = set_random_states(make_pipeline(PCA(), MLPClassifier()), 7)
    >>> pipe.get_params()["pca__random_state"] != pipe.get_params()["mlpclassifier__random_state"]
    True
    """
    names = random_state_params(estimator)
    if names:
        estimator.set_params(**dict(zip(names, spawn_seeds(seed, len(names)))))
    return estimator
