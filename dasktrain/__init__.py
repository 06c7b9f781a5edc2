"""dasktrain: train many scikit-learn models at once, on a laptop or a Dask cluster.

Every estimator runs in this process by default (``use_dask=False``) and runs
the same work on a Dask cluster with ``use_dask=True``, with the same results
for the same ``random_state``.
"""

from ._lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "GeneticSearchCV": ".model_selection",
    "GeneticFeatureSelectionCV": ".model_selection",
    "RepeatedClassifier": ".ensemble",
    "RepeatedRegressor": ".ensemble",
    "StackingEnsemble": ".ensemble",
    "PartitionedEnsemble": ".ensemble",
    "evaluate": ".metrics",
    "delayed_fit": "._delayed",
})
