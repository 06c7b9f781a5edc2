"""In-memory data shared by the meta-estimators: rows, sample counts, and input checks.

The checks run before any work is sent; :func:`take_rows` and
:func:`n_samples` are the one way dasktrain takes rows from, and counts the
rows of, any container (numpy, scipy sparse, pandas, lists).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data


def take_rows(data, indices):
    """The rows `indices` (an index array or a slice) of `data`.

    Works for numpy arrays, scipy sparse matrices, pandas DataFrames and
    Series (by position), and lists; None stays None (an absent optional
    argument such as ``sample_weight``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> take_rows(np.arange(5), [4, 0]).tolist()
    [4, 0]
    >>> take_rows(pd.Series([10, 20, 30], index=[7, 8, 9]), slice(1, 3)).tolist()
    [20, 30]
    >>> take_rows(["a", "b", "c"], [2, 1])
    ['c', 'b']
    >>> take_rows(None, [0]) is None
    True
    """
    if data is None:
        return None
    if hasattr(data, "iloc"):
        return data.iloc[indices]
    if hasattr(data, "shape"):
        return data[indices]
    if isinstance(indices, slice):
        return data[indices]
    return [data[i] for i in indices]


def n_samples(X) -> int:
    """The number of rows of `X` (anything with a ``shape``, or a sequence).

    Examples
    --------
    >>> import numpy as np
    >>> n_samples(np.zeros((3, 2))), n_samples([[1], [2]])
    (3, 2)
    """
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None else len(X)


def check_n_partitions(owner: str, n_partitions, n_samples: int) -> None:
    """Raise ValueError when `n_partitions` parts of `n_samples` rows would leave one empty.

    Examples
    --------
    >>> check_n_partitions("f", 3, 2)
    Traceback (most recent call last):
    ...
    ValueError: f cannot make n_partitions=3 partitions of n_samples=2 samples: every partition needs at least one sample. Use fewer partitions.
    """
    if n_partitions is not None and n_partitions > n_samples:
        raise ValueError(
            f"{owner} cannot make n_partitions={n_partitions} partitions of "
            f"n_samples={n_samples} samples: every partition needs at least one sample. "
            "Use fewer partitions."
        )


def check_sample_weight(sample_weight, n_rows: int, owner: str):
    """`sample_weight` as a float64 array of `n_rows` finite values (None stays None).

    Examples
    --------
    >>> check_sample_weight([1, 2], 2, "f").tolist()
    [1.0, 2.0]
    >>> check_sample_weight([1, 2], 3, "f")
    Traceback (most recent call last):
    ...
    ValueError: The 'sample_weight' given to f.fit must have one value per sample (3). Got 2 values instead.
    """
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim != 1 or weights.shape[0] != n_rows:
        got = weights.shape[0] if weights.ndim == 1 else f"an array of shape {weights.shape}"
        raise ValueError(
            f"The 'sample_weight' given to {owner}.fit must have one value per sample "
            f"({n_rows}). Got {got} values instead."
        )
    if not np.isfinite(weights).all():
        raise ValueError(f"The 'sample_weight' given to {owner}.fit contains NaN or infinity.")
    return weights


def allows_nan(estimator) -> bool:
    """Whether `estimator` accepts missing values, from its scikit-learn tags."""
    try:
        return bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # an estimator without tags is assumed not to
        return False


def check_fit_data(meta, inner, X, y, *, task: str, reset: bool = True):
    """Validate `X` and `y` for a meta-estimator `meta` that fits clones of `inner`.

    Sets ``n_features_in_`` (and ``feature_names_in_``) on `meta`, checks
    lengths, emptiness and, unless `inner` accepts them, NaN and infinite
    values. A pandas DataFrame is passed on unchanged (column names matter to
    pipelines); other inputs are returned as validated arrays.

    Parameters
    ----------
    task : {"classification", "multilabel", "regression"}
        Classification targets are checked to be labels (one per sample, or a
        multilabel indicator matrix); regression targets are converted to float.

    Returns
    -------
    X, y
    """
    if y is None:
        raise ValueError(
            f"{type(meta).__name__} requires y to be passed, but the target y is None."
        )
    allow_nan = allows_nan(inner)
    X_checked, y_checked = validate_data(
        meta,
        X,
        y,
        reset=reset,
        accept_sparse=["csr", "csc"],
        dtype=None,
        ensure_all_finite="allow-nan" if allow_nan else True,
        y_numeric=task == "regression",
        multi_output=task in ("regression", "multilabel"),
    )
    if getattr(y_checked, "ndim", 1) == 2 and y_checked.shape[1] == 1:
        y_checked = column_or_1d(y_checked, warn=True)
    if task == "classification":
        y_checked = column_or_1d(y_checked, warn=True)
    if task in ("classification", "multilabel"):
        check_classification_targets(y_checked)
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        return X, y_checked
    return X_checked, y_checked


def check_predict_data(meta, inner, X):
    """Validate `X` at predict time against what `meta` saw in fit."""
    X_checked = validate_data(
        meta,
        X,
        reset=False,
        accept_sparse=["csr", "csc"],
        dtype=None,
        ensure_all_finite="allow-nan" if allows_nan(inner) else True,
    )
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        return X
    return X_checked


def as_float_array(values) -> np.ndarray:
    """`values` as a float64 numpy array (for averaging member predictions)."""
    return np.asarray(values, dtype=np.float64)
