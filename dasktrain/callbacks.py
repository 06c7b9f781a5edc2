"""Callbacks that watch a GeneticSearchCV fit and may stop it.

A callback implements up to three hooks, called by the search on the client:

- ``on_start(search)`` once, before the initial population is evaluated;
- ``on_generation(search, record)`` after each generation (generation 0 is the
  initial population); returning True stops the search after that generation;
- ``on_end(search)`` once, when the search ends for any reason.

`record` is a dict with the keys of one row of ``history_``:

========== ===============================================================
generation int, 0 for the initial population
best       best score of the generation (NaN when every candidate failed)
mean, std  mean and standard deviation of the generation's scores
evaluations number of new candidates evaluated in the generation
cache_hits candidates of the generation already evaluated earlier
seconds    wall time of the generation
best_params parameters of the best candidate of the generation
========== ===============================================================

Subclass :class:`Callback` and override the hooks you need; any object with
these methods also works.

Examples
--------
>>> from dasktrain.callbacks import Callback
>>> class PrintBest(Callback):
...     def on_generation(self, search, record):
...         print(f"generation {record['generation']}: {record['best']:.3f}")
>>> PrintBest().on_generation(None, {"generation": 0, "best": 0.91234})
generation 0: 0.912
"""

from __future__ import annotations

import math
import numbers
import sys
import time

from .utils import Interval, validate_params

__all__ = ["Callback", "EarlyStopping", "ProgressBar", "TimeLimit", "check_callbacks"]

#: The keys of the record handed to ``on_generation``.
RECORD_KEYS = ("generation", "best", "mean", "std", "evaluations", "cache_hits", "pruned",
               "seconds", "best_params")

_HOOKS = ("on_start", "on_generation", "on_end")


class Callback:
    """Base class of callbacks: every hook does nothing and never stops the search.

    See Also
    --------
    EarlyStopping : stop when the best score stops improving.
    TimeLimit : stop after a wall-clock budget.
    ProgressBar : a progress bar over generations.

    Examples
    --------
    >>> Callback().on_generation(None, {"generation": 0, "best": 0.5}) is None
    True
    """

    def on_start(self, search) -> None:
        """Called once when the search starts, before any evaluation."""

    def on_generation(self, search, record: dict) -> bool | None:
        """Called after each generation with its `record`; return True to stop."""
        return None

    def on_end(self, search) -> None:
        """Called once when the search ends (finished, stopped or failed)."""

    def __repr__(self):
        params = ", ".join(f"{name}={value!r}" for name, value in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict:
        return {}


def check_callbacks(callbacks) -> list:
    """`callbacks` as a list: None gives ``[]``, one callback gives ``[callback]``.

    Raises
    ------
    TypeError
        Naming the 'callbacks' parameter when an item has none of the hooks
        or a hook that is not callable.

    Examples
    --------
    >>> check_callbacks(None), check_callbacks(EarlyStopping())
    ([], [EarlyStopping(patience=5, min_delta=0.0)])
    """
    if callbacks is None:
        return []
    if any(hasattr(callbacks, hook) for hook in _HOOKS):
        callbacks = [callbacks]
    if isinstance(callbacks, (str, bytes, dict)) or not hasattr(callbacks, "__iter__"):
        raise TypeError("The 'callbacks' parameter must be a Callback, a list of callbacks or "
                        f"None. Got {callbacks!r} instead.")
    callbacks = list(callbacks)
    for callback in callbacks:
        hooks = [getattr(callback, hook, None) for hook in _HOOKS]
        if all(hook is None for hook in hooks) or any(
                hook is not None and not callable(hook) for hook in hooks):
            raise TypeError(
                "The 'callbacks' parameter must hold objects with on_start, on_generation "
                f"and/or on_end methods (see dasktrain.callbacks.Callback). Got {callback!r}."
            )
    return callbacks


class EarlyStopping(Callback):
    """Stop when the best score has not improved by `min_delta` for `patience` generations.

    The best score so far is the reference: a generation improves when its
    best score exceeds the reference by more than `min_delta` (then it becomes
    the reference). A generation whose candidates all failed (NaN best) does
    not improve.

    Parameters
    ----------
    patience : int, default=5
        Generations without improvement before stopping, at least 1.
    min_delta : float, default=0.0
        The smallest gain that counts as an improvement, at least 0.

    Attributes
    ----------
    best_ : float or None
        The reference score (None before the first generation).
    wait_ : int
        Generations since the last improvement.

    See Also
    --------
    TimeLimit : stop after a wall-clock budget.

    Examples
    --------
    >>> stop = EarlyStopping(patience=2, min_delta=0.01)
    >>> stop.on_start(None)
    >>> [stop.on_generation(None, {"best": b}) for b in (0.80, 0.85, 0.855, 0.859)]
    [False, False, False, True]
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0):
        validate_params("EarlyStopping", {"patience": patience, "min_delta": min_delta}, {
            "patience": [Interval(numbers.Integral, 1, None, closed="left")],
            "min_delta": [Interval(numbers.Real, 0, None, closed="left")],
        })
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best_ = None
        self.wait_ = 0

    def _params(self):
        return {"patience": self.patience, "min_delta": self.min_delta}

    def on_start(self, search) -> None:
        self.best_ = None
        self.wait_ = 0

    def on_generation(self, search, record: dict) -> bool:
        best = float(record["best"])
        if not math.isnan(best) and (self.best_ is None or best > self.best_ + self.min_delta):
            self.best_ = best
            self.wait_ = 0
        else:
            self.wait_ += 1
        return self.wait_ >= self.patience


class TimeLimit(Callback):
    """Stop the search once it has run for `seconds` (checked after each generation).

    The clock starts at ``on_start``. GeneticSearchCV's own `max_time` also
    cancels running work; this callback only stops between generations.

    Parameters
    ----------
    seconds : float
        The budget in seconds, > 0.

    Attributes
    ----------
    start_ : float or None
        ``time.monotonic()`` when the search started.

    See Also
    --------
    EarlyStopping : stop when the best score stops improving.

    Examples
    --------
    >>> limit = TimeLimit(3600)
    >>> limit.on_start(None)
    >>> limit.on_generation(None, {"generation": 0}), limit.remaining() > 3500
    (False, True)
    """

    def __init__(self, seconds: float):
        validate_params("TimeLimit", {"seconds": seconds}, {
            "seconds": [Interval(numbers.Real, 0, None, closed="neither")],
        })
        self.seconds = seconds
        self.start_ = None

    def _params(self):
        return {"seconds": self.seconds}

    def on_start(self, search) -> None:
        self.start_ = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since ``on_start`` (0 before it)."""
        return 0.0 if self.start_ is None else time.monotonic() - self.start_

    def remaining(self) -> float:
        """Seconds left in the budget (never negative)."""
        return max(0.0, self.seconds - self.elapsed())

    def on_generation(self, search, record: dict) -> bool:
        if self.start_ is None:  # used without on_start: count from the first generation
            self.start_ = time.monotonic()
        return self.elapsed() >= self.seconds


class ProgressBar(Callback):
    """A tqdm progress bar over the generations, written to stderr.

    Parameters
    ----------
    total : int or None, default=None
        The number of steps; None means ``search.generations + 1`` (the initial
        population and every generation).
    desc : str, default="generations"
        The label of the bar.
    file : file-like or None, default=None
        Where to write; None means ``sys.stderr`` at ``on_start``.

    Attributes
    ----------
    bar_ : tqdm.tqdm or None
        The bar, open between ``on_start`` and ``on_end``.

    See Also
    --------
    EarlyStopping : a bar can finish early when another callback stops the search.

    Examples
    --------
    >>> import io
    >>> class Search:
    ...     generations = 2
    >>> out = io.StringIO()
    >>> bar = ProgressBar(file=out)
    >>> bar.on_start(Search())
    >>> bar.on_generation(Search(), {"generation": 0, "best": 0.9})
    >>> bar.on_end(Search())
    >>> "1/3" in out.getvalue() and "best=0.9" in out.getvalue()
    True
    """

    def __init__(self, total: int | None = None, *, desc: str = "generations", file=None):
        validate_params("ProgressBar", {"total": total, "desc": desc}, {
            "total": [Interval(numbers.Integral, 1, None, closed="left"), None],
            "desc": [str],
        })
        self.total = total
        self.desc = desc
        self.file = file
        self.bar_ = None

    def _params(self):
        return {"total": self.total}

    def on_start(self, search) -> None:
        try:
            from tqdm import tqdm
        except ImportError as error:  # pragma: no cover - tqdm is a dependency
            raise ImportError("ProgressBar needs tqdm: pip install tqdm") from error
        total = self.total
        if total is None:
            generations = getattr(search, "generations", None)
            total = None if generations is None else int(generations) + 1
        self.close()
        self.bar_ = tqdm(total=total, desc=self.desc, unit="gen",
                         file=self.file if self.file is not None else sys.stderr)

    def on_generation(self, search, record: dict) -> None:
        if self.bar_ is None:
            self.on_start(search)
        # Position by generation number, so a search resumed from a checkpoint shows
        # the generations it has already done.
        done = int(record.get("generation", self.bar_.n)) + 1
        best = record.get("best")
        if best is not None:
            self.bar_.set_postfix(best=f"{float(best):.4g}", refresh=False)
        self.bar_.update(max(done - self.bar_.n, 0))
        return None

    def on_end(self, search) -> None:
        self.close()

    def close(self) -> None:
        """Close the bar, if open."""
        if self.bar_ is not None:
            self.bar_.close()
            self.bar_ = None

    def __getstate__(self):
        # An open bar holds a stream: a checkpointed or copied callback starts without one.
        state = dict(self.__dict__)
        state["bar_"] = None
        if state["file"] in (sys.stderr, sys.stdout):
            state["file"] = None
        return state
