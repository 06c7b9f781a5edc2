"""Pausing Python's cyclic garbage collector during short bursts of bookkeeping."""

from __future__ import annotations

import contextlib
import functools
import gc


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector for the duration of a ``with`` block.

    For short, bounded bursts that allocate many long-lived objects and make
    no garbage cycles, such as submitting thousands of tasks at once. Each
    full collection walks every object of the process (scikit-learn, pandas
    and Dask make that hundreds of thousands), and a burst that allocates
    more than a quarter of them triggers one after another: submitting 10,000
    candidates ran seven of them, two thirds of its time. Paused, the objects
    made are examined once, by the next collection after the block. Reference
    counting frees memory as usual meanwhile. Nothing happens when the
    collector is already disabled (by the caller, or by an enclosing block);
    it is enabled again on exit otherwise, also when the block raises.

    Examples
    --------
    >>> import gc
    >>> from dasktrain.utils._gc import gc_paused
    >>> with gc_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def with_gc_paused(function):
    """Decorate `function` so that it runs inside :func:`gc_paused`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with gc_paused():
            return function(*args, **kwargs)

    return wrapper
