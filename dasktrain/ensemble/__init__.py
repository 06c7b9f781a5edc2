"""Ensembles whose member fits run in parallel: repeated, stacking, partitioned, averaging."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "RepeatedClassifier": "._repeated",
    "RepeatedRegressor": "._repeated",
    "StackingEnsemble": "._stacking",
    "PartitionedEnsemble": "._partitioned",
    "ParameterAveragingClassifier": "._averaging",
    "ParameterAveragingRegressor": "._averaging",
})
