"""Dask inputs, in one place: blocks of rows, their alignment, feature names, blockwise output.

Every estimator that accepts dask arrays or dataframes (the ensembles and the
gradient models) uses these, so that two estimators never disagree on what
"the blocks of X and y line up" or "predict block by block" means. Nothing
here computes a block: the checks read the collections' metadata only, and
:func:`blockwise` builds a lazy graph.
"""

from __future__ import annotations

import copy
import math

import numpy as np
from sklearn.utils.multiclass import type_of_target

__all__ = [
    "apply_method", "blockwise", "check_aligned_blocks", "check_block_rows", "check_dask_inputs",
    "dask_partitions", "describe_partition", "join_blocks", "group_blocks", "is_dask_array",
    "known_divisions", "n_row_blocks", "one_column_per_block", "row_bounds", "row_chunks",
    "set_input_features", "without_client",
]


def is_dask_array(collection) -> bool:
    """True for a dask array, False for a dask dataframe or series."""
    return hasattr(collection, "chunks") and hasattr(collection, "numblocks")


def n_row_blocks(collection) -> int:
    """Number of blocks of rows of a dask array, dataframe or series."""
    return collection.numblocks[0] if is_dask_array(collection) else collection.npartitions


def row_chunks(collection):
    """Rows per block when known (dask arrays with known chunks), else None."""
    chunks = getattr(collection, "chunks", None)
    if chunks is None or any(math.isnan(size) for size in chunks[0]):
        return None
    return tuple(int(size) for size in chunks[0])


def known_divisions(collection):
    """The divisions of a dask dataframe or series when known, else None."""
    if getattr(collection, "known_divisions", False):
        return tuple(collection.divisions)
    return None


def one_column_per_block(collection):
    """A 2-D dask array chunked along rows only (its columns in one chunk); others unchanged."""
    if is_dask_array(collection) and collection.ndim == 2 and collection.numblocks[1] > 1:
        return collection.rechunk({1: -1})
    return collection


def check_aligned_blocks(X, y, owner: str) -> None:
    """Raise ValueError unless the row blocks of the dask `X` and `y` line up.

    Compares what is known without computing anything: the numbers of row
    blocks, the rows per block of dask arrays whose chunk sizes are known, and
    the divisions of dataframes whose divisions are known. Blocks of unknown
    size can only be compared where they are computed.

    Examples
    --------
    >>> import dask.array as da
    >>> check_aligned_blocks(da.zeros((4, 2), chunks=2), da.zeros(4, chunks=2), "f")
    >>> check_aligned_blocks(da.zeros((4, 2), chunks=2), da.zeros(4, chunks=4), "f")
    Traceback (most recent call last):
    ...
    ValueError: The blocks of X and y given to f do not line up: X has 2 blocks of rows and y has 1. Chunk or partition them alike.
    """
    n_X, n_y = n_row_blocks(X), n_row_blocks(y)
    if n_X != n_y:
        raise ValueError(
            f"The blocks of X and y given to {owner} do not line up: X has {n_X} blocks "
            f"of rows and y has {n_y}. Chunk or partition them alike."
        )
    X_chunks, y_chunks = row_chunks(X), row_chunks(y)
    if X_chunks is not None and y_chunks is not None and X_chunks != y_chunks:
        raise ValueError(
            f"The blocks of X and y given to {owner} do not line up: X has blocks of "
            f"{list(X_chunks)} rows and y of {list(y_chunks)} rows. Rechunk y like X, e.g. "
            "y.rechunk({0: X.chunks[0]})."
        )
    X_divisions, y_divisions = known_divisions(X), known_divisions(y)
    if X_divisions is not None and y_divisions is not None and X_divisions != y_divisions:
        raise ValueError(
            f"The partitions of X and y given to {owner} do not line up: their divisions "
            f"differ ({X_divisions} and {y_divisions})."
        )


def check_block_rows(index: int, n_X_rows: int, n_y_rows: int, owner: str) -> None:
    """Raise ValueError when block `index` of X and of y have different numbers of rows.

    For blocks whose sizes are known only once computed (where they live).
    """
    if n_X_rows != n_y_rows:
        raise ValueError(
            f"The blocks of X and y given to {owner} do not line up: block {index} of X has "
            f"{n_X_rows} rows but block {index} of y has {n_y_rows}. Chunk or partition them "
            "alike."
        )


def row_bounds(n_rows: int, n_blocks: int) -> list[tuple[int, int]]:
    """(start, stop) of `n_blocks` consecutive row ranges of nearly equal size.

    Examples
    --------
    >>> row_bounds(10, 3)
    [(0, 3), (3, 7), (7, 10)]
    """
    n_blocks = max(1, min(n_blocks, n_rows))
    edges = np.linspace(0, n_rows, n_blocks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def group_blocks(n_blocks: int, n_partitions: int | None) -> list[list[int]]:
    """Consecutive groups of block indices: one per block, or `n_partitions` groups.

    Examples
    --------
    >>> group_blocks(5, 2)
    [[0, 1], [2, 3, 4]]
    """
    if n_partitions is None or n_partitions >= n_blocks:
        return [[index] for index in range(n_blocks)]
    return [list(range(a, b)) for a, b in row_bounds(n_blocks, n_partitions)]


def set_input_features(estimator, X) -> None:
    """Set ``n_features_in_`` (and ``feature_names_in_``) of `estimator` from the dask `X`.

    ``feature_names_in_`` is set when `X` is a dataframe whose column names
    are all strings, as scikit-learn does, and removed otherwise (a refit on
    an array must not keep the names of an earlier dataframe).
    """
    estimator.n_features_in_ = int(X.shape[1]) if is_dask_array(X) else len(X.columns)
    columns = [] if is_dask_array(X) else list(X.columns)
    if columns and all(isinstance(column, str) for column in columns):
        estimator.feature_names_in_ = np.asarray(columns, dtype=object)
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


def join_blocks(X_blocks, y_blocks, first_index: int, as_float: bool, owner: str):
    """Join consecutive row blocks of X and y into one partition, checking they line up.

    With `as_float`, X becomes a float64 ndarray and y an ndarray; otherwise
    pandas blocks stay pandas (column names matter to pipelines).
    """
    for offset, (X_block, y_block) in enumerate(zip(X_blocks, y_blocks)):
        check_block_rows(first_index + offset, X_block.shape[0], y_block.shape[0], owner)
    if as_float:
        X_blocks = [np.asarray(block, dtype=np.float64) for block in X_blocks]
        y_blocks = [np.asarray(block) for block in y_blocks]
    if len(X_blocks) == 1:
        return X_blocks[0], y_blocks[0]
    if hasattr(X_blocks[0], "iloc"):
        import pandas as pd

        return pd.concat(X_blocks), pd.concat(y_blocks)
    return np.concatenate(X_blocks), np.concatenate(y_blocks)


def describe_partition(partition, classification: bool, check_finite: bool):
    """What the client must know about a partition before training: rows, classes, finiteness."""
    X, y = partition
    y_values = np.asarray(y)
    info = {"n_rows": int(X.shape[0]), "finite_X": True, "finite_y": True}
    if check_finite and X.shape[0]:
        info["finite_X"] = bool(np.isfinite(np.asarray(X, dtype=np.float64)).all())
    if classification:
        info["classes"] = np.unique(y_values) if len(y_values) else y_values
        info["target_type"] = type_of_target(y_values) if len(y_values) else "empty"
    elif len(y_values):
        info["finite_y"] = bool(np.isfinite(y_values.astype(np.float64)).all())
    return info


def _is_numeric_dtype(dtype) -> bool:
    return getattr(dtype, "kind", "O") in "biuf"


def check_dask_inputs(X, y, *, owner: str, multi_output: bool = False):
    """Check dask inputs on the client, from their metadata, before any block is computed.

    Returns `X` and `y` as dask collections whose row blocks correspond (a
    numpy `y` is cut like a dask array `X`; column chunks are merged).
    """
    import dask.array as da
    from dask.base import is_dask_collection

    if not is_dask_collection(X):
        raise ValueError(
            f"X must be a dask collection when y is one, so that their blocks match. Got "
            f"{type(X).__name__} for X; pass X as a dask array or dataframe too."
        )
    if is_dask_array(X):
        if X.ndim != 2:
            raise ValueError(f"Expected a 2D dask array for X, got an array of shape {X.shape}.")
        if not _is_numeric_dtype(X.dtype):
            raise ValueError(f"X must be numeric. Got a dask array of dtype {X.dtype}.")
        X = one_column_per_block(X)
    else:
        if getattr(X, "ndim", 2) != 2:
            raise ValueError("Expected a dask dataframe for X, got a dask series.")
        bad = [str(name) for name, dtype in X.dtypes.items() if not _is_numeric_dtype(dtype)]
        if bad:
            raise ValueError(
                f"X must be numeric. Column(s) {', '.join(map(repr, bad))} of the dask "
                "dataframe X are not numeric; encode them first."
            )
    if not is_dask_collection(y):
        y = np.asarray(y)
        if not is_dask_array(X) or any(math.isnan(c) for c in X.chunks[0]):
            raise ValueError(
                "y must be a dask array or series when X is a dask dataframe or a dask array "
                f"of unknown chunk sizes, so that its blocks match X's. Got {type(y).__name__}."
            )
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: "
                f"[{X.shape[0]}, {y.shape[0]}] (X and y)."
            )
        y = da.from_array(y, chunks=(X.chunks[0],) + tuple((n,) for n in y.shape[1:]))
    if is_dask_array(y):
        if y.ndim == 2 and multi_output:
            y = one_column_per_block(y)
        elif y.ndim != 1:
            raise ValueError(f"y must be 1D; got a dask array of shape {y.shape}.")
    elif getattr(y, "ndim", 1) == 2 and not multi_output:
        raise ValueError("y must be 1D; got a dask dataframe. Pass a dask series.")
    check_aligned_blocks(X, y, owner)
    return X, y


def dask_partitions(backend, X, y, *, n_partitions, classification: bool, check_finite: bool,
                    as_float: bool, owner: str):
    """Partitions of dask `X`, `y` that stay where they are computed, checked on the workers.

    Returns the futures of the non-empty ``(X_part, y_part)`` partitions, their
    row counts, and for classification the sorted classes over all partitions.
    Raises a clear ValueError for NaN or infinite values, unknown label types,
    empty data and misaligned blocks.
    """
    X_blocks, y_blocks = backend.blocks(X), backend.blocks(y)
    parts = [backend.submit(join_blocks, [X_blocks[i] for i in group],
                            [y_blocks[i] for i in group], group[0], as_float, owner)
             for group in group_blocks(len(X_blocks), n_partitions)]
    infos = backend.gather([backend.submit(describe_partition, part, classification,
                                           check_finite) for part in parts])
    n_rows = [info["n_rows"] for info in infos]
    if sum(n_rows) == 0:
        raise ValueError("Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 "
                         "is required (the dask input X is empty).")
    for index, info in enumerate(infos):
        if not info["finite_X"]:
            raise ValueError(f"Input X contains NaN or infinity (in partition {index}).")
        if not info["finite_y"]:
            raise ValueError(f"Input y contains NaN or infinity (in partition {index}).")
    classes = None
    if classification:
        kinds = {info["target_type"] for info in infos} - {"empty"}
        unknown = kinds - {"binary", "multiclass"}
        if unknown:
            raise ValueError(f"Unknown label type: {sorted(unknown)[0]}. Classification needs "
                             "discrete labels in y.")
        classes = np.unique(np.concatenate([info["classes"] for info in infos]))
    keep = [index for index, rows in enumerate(n_rows) if rows]
    return [parts[i] for i in keep], [n_rows[i] for i in keep], classes


def without_client(estimator):
    """A shallow copy of a fitted `estimator` whose ``client`` is None.

    Blockwise prediction and delayed fits put the estimator into a task
    graph, which dask tokenizes and may send to the workers; a Client can be
    neither.
    """
    stripped = copy.copy(estimator)
    if getattr(stripped, "client", None) is not None:
        stripped.client = None
    return stripped


def apply_method(block, estimator, method: str):
    """``estimator.method(block)``: what runs on each block of a dask input."""
    return getattr(estimator, method)(block)


def _apply_to_frame(frame, estimator, method: str, n_columns):
    """``estimator.method(frame)`` as a pandas Series or DataFrame with the frame's index."""
    import pandas as pd

    if len(frame):
        values = getattr(estimator, method)(frame)
    else:  # an empty partition has nothing to predict
        values = np.empty((0,) if n_columns is None else (0, n_columns))
    if np.ndim(values) == 1:
        return pd.Series(values, index=frame.index)
    return pd.DataFrame(values, index=frame.index)


def blockwise(estimator, method: str, X):
    """``estimator.<method>(block)`` on each block of the dask `X`, lazily.

    The output's layout (1-D or its number of columns, and its dtype) is that
    of the method applied to one row: a row of zeros for a dask array, a
    row of dask's non-empty metadata for a dataframe. A dask array gives a
    dask array with the same row blocks (columns split over blocks are first
    put together into whole rows); a dask dataframe gives a dask series, or a
    dataframe for 2-D outputs, with the same index and partitions (an empty
    partition gives an empty one). The estimator in the graph is a copy
    without its ``client``, which can be neither tokenized nor sent to the
    workers.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> model = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])
    >>> lazy = blockwise(model, "predict", da.from_array(np.array([[2.0], [3.0]]), chunks=1))
    >>> lazy.numblocks, lazy.compute().round(6).tolist()
    ((2,), [4.0, 6.0])
    """
    predictor = without_client(estimator)
    if not is_dask_array(X):
        import pandas as pd
        from dask.dataframe.utils import meta_nonempty

        sample = np.asarray(apply_method(meta_nonempty(X._meta).iloc[:1], predictor, method))
        n_columns = None if sample.ndim == 1 else sample.shape[1]
        if n_columns is None:
            meta = pd.Series(np.empty(0, dtype=sample.dtype))
        else:
            meta = pd.DataFrame(np.empty((0, n_columns), dtype=sample.dtype))
        return X.map_partitions(_apply_to_frame, predictor, method, n_columns, meta=meta)
    X = one_column_per_block(X)
    sample = np.asarray(apply_method(np.zeros((1, X.shape[1]), dtype=X.dtype), predictor,
                                     method))
    if sample.ndim == 1:
        return X.map_blocks(apply_method, predictor, method, dtype=sample.dtype, drop_axis=1,
                            chunks=(X.chunks[0],), meta=sample[:0])
    return X.map_blocks(apply_method, predictor, method, dtype=sample.dtype,
                        chunks=(X.chunks[0], (sample.shape[1],)), meta=sample[:0])
