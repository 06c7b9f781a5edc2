"""Which leading steps of a pipeline several candidates share, to fit them once per fold.

The planner is pure bookkeeping on the client: it sees candidates (parameter
dicts) and returns which prefix lengths to fit as tasks of their own and the
content key of each. It holds no futures; the evaluator keeps the tasks and
their reference counts.

A prefix of length ``n`` is identified by the parameters of its first ``n``
steps (values compared by content, :func:`~dasktrain.space.value_key`), so
candidates from different branches of a conditional space share the steps
they have in common. When candidates are evaluated under several seeds, a
prefix with a step that draws random numbers is fitted once per seed.
"""

from __future__ import annotations

import hashlib

from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ..space import value_key
from ..utils import random_state_params

__all__ = ["PrefixPlanner", "PrefixStep"]


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]


class PrefixStep:
    """One prefix task of a split: ``steps[start:length]`` of the pipeline under `key`."""

    __slots__ = ("key", "start", "length")

    def __init__(self, key: str, start: int, length: int):
        self.key, self.start, self.length = key, start, length

    def __repr__(self):
        return f"PrefixStep({self.key!r}, {self.start}, {self.length})"


class PrefixPlanner:
    """Plan shared pipeline prefixes for candidates of one estimator.

    Parameters
    ----------
    estimator : estimator
        The base estimator; only a :class:`~sklearn.pipeline.Pipeline` of two or
        more steps has prefixes to share.
    n_repeats : int
        Number of seeds each candidate is evaluated under.
    enabled : bool, default=True

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.linear_model import RidgeClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> planner = PrefixPlanner(make_pipeline(PCA(), RidgeClassifier()), n_repeats=1)
    >>> plans = planner.plan({"a": {"pca__n_components": 2, "ridgeclassifier__alpha": 1.0},
    ...                       "b": {"pca__n_components": 2, "ridgeclassifier__alpha": 9.0}})
    >>> [[length for length, _ in plan] for plan in plans]
    [[1], [1]]
    """

    def __init__(self, estimator, n_repeats: int, *, enabled: bool = True):
        self._estimator = estimator
        self._n_repeats = n_repeats
        self.steps = None
        if enabled and isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
            self.steps = [name for name, _ in estimator.steps]
        self._contents: dict[str, list | None] = {}

    @property
    def active(self) -> bool:
        return self.steps is not None

    def contents(self, params: dict) -> list | None:
        """``(content key, per repeat)`` of each prefix length 1..n_steps-1, or None."""
        if self.steps is None:
            return None
        owner = {name: index for index, name in enumerate(self.steps)}
        by_step: list[list] = [[] for _ in self.steps]
        for name, value in params.items():
            step = owner.get(name.split("__")[0])
            if step is None:  # a parameter of the pipeline itself: nothing to share
                return None
            by_step[step].append((name, value_key(value)))
        random_steps = self._random_steps(params) if self._n_repeats > 1 else None
        contents, items = [], []
        for length in range(1, len(self.steps)):
            items.extend(sorted(by_step[length - 1]))
            per_repeat = random_steps is not None and any(random_steps[:length])
            contents.append((_hash(repr((length, items))), per_repeat))
        return contents

    def contents_of(self, key: str, params: dict) -> list | None:
        """:meth:`contents`, cached by candidate key."""
        if key not in self._contents:
            self._contents[key] = self.contents(params)
        return self._contents[key]

    def _random_steps(self, params: dict) -> list[bool]:
        model = clone(self._estimator).set_params(**params)
        return [hasattr(step, "get_params") and bool(random_state_params(step))
                for _, step in model.steps]

    def plan(self, candidates: dict, context: dict | None = None,
             live: set | frozenset = frozenset()) -> list[list]:
        """For each candidate, the prefix lengths worth fitting as tasks of their own.

        Parameters
        ----------
        candidates : dict
            Key -> parameters of the candidates being submitted.
        context : dict or None
            Key -> parameters of other candidates likely to be submitted soon
            (the population): sharing with them counts too.
        live : set
            Content keys of prefixes already fitted or in flight.

        Returns
        -------
        plans : list of list of (length, (content key, per repeat))
            One list per candidate, in order: the deepest length shared by each
            group of sharers (a length is only worth its task when at least two
            candidates, or a live prefix, use it and the next length is shared
            by fewer).
        """
        if self.steps is None or not candidates:
            return [[] for _ in candidates]
        contents = [self.contents_of(key, params) for key, params in candidates.items()]
        others = [self.contents_of(key, params) for key, params in (context or {}).items()
                  if key not in candidates]
        counts: dict = {}
        for content in contents + others:
            for item in content or ():
                counts[item[0]] = counts.get(item[0], 0) + 1
        plans = []
        for content in contents:
            if content is None:
                plans.append([])
                continue
            shared = [counts[item[0]] + (item[0] in live) for item in content]
            lengths = []
            for index, count in enumerate(shared):
                deeper = shared[index + 1] if index + 1 < len(shared) else 0
                if count >= 2 and deeper < count:
                    lengths.append((index + 1, content[index]))
            plans.append(lengths)
        return plans

    @staticmethod
    def chain(plan: list, fold: int, repeat: int) -> list[PrefixStep]:
        """The prefix tasks one split builds on, shortest first, keyed by content and fold."""
        chain, start = [], 0
        for length, (content, per_repeat) in plan:
            key = f"{content}/{fold}/{repeat if per_repeat else 'all'}"
            chain.append(PrefixStep(key, start, length))
            start = length
        return chain
