"""Linear models trained data-parallel: each block computes its loss and gradient where it lives."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DistributedLogisticRegression": "._gradient",
    "DistributedLinearRegression": "._gradient",
})
