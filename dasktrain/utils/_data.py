"""Input checks shared by the meta-estimators, run before any work is sent."""

from __future__ import annotations

import numpy as np
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data


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
    task : {"classification", "regression"}
        Classification targets are checked to be labels; regression targets are
        converted to float.

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
        multi_output=task == "regression",
    )
    if getattr(y_checked, "ndim", 1) == 2 and y_checked.shape[1] == 1:
        y_checked = column_or_1d(y_checked, warn=True)
    if task == "classification":
        y_checked = column_or_1d(y_checked, warn=True)
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
