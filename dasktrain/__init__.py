"""dasktrain: train many scikit-learn models at once, on a laptop or a Dask cluster."""

__version__ = "0.1.0"

__all__: list[str] = []
