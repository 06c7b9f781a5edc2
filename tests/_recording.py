"""A backend wrapper that logs what an estimator asks of its execution backend."""

from __future__ import annotations


class RecordingBackend:
    """Wraps a real backend and appends ``(call, detail)`` to `log` for each call, in order.

    ``("scatter", type name)``, ``("submit", function name)``, ``("map", function
    name)``, ``("gather", number of futures)`` and ``("as_completed", number of
    futures)``; everything else goes to the
    wrapped backend unrecorded.
    """

    def __init__(self, inner, log: list):
        self.inner, self.log = inner, log

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.inner.__exit__(*exc_info)

    def scatter(self, data, **kwargs):
        self.log.append(("scatter", type(data).__name__))
        return self.inner.scatter(data, **kwargs)

    def submit(self, fn, *args, **kwargs):
        self.log.append(("submit", fn.__name__))
        return self.inner.submit(fn, *args, **kwargs)

    def map(self, fn, *iterables, **kwargs):
        self.log.append(("map", fn.__name__))
        return self.inner.map(fn, *iterables, **kwargs)

    def gather(self, futures):
        futures = list(futures)
        self.log.append(("gather", len(futures)))
        return self.inner.gather(futures)

    def as_completed(self, futures=()):
        futures = list(futures)
        self.log.append(("as_completed", len(futures)))
        return self.inner.as_completed(futures)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def calls(log: list, kind: str) -> list:
    """The details of the `kind` calls in `log`, in order."""
    return [detail for call, detail in log if call == kind]
