"""Compare fitted estimators: evaluate and its report."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "evaluate": "._report",
    "EvaluationReport": "._report",
})
