"""Searches whose fits run in parallel: GeneticSearchCV, GeneticFeatureSelectionCV."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "GeneticSearchCV": "._search",
    "GeneticFeatureSelectionCV": "._feature_selection",
})
