"""How the ensembles combine their members' predictions: soft vote, hard vote, average.

RepeatedClassifier/RepeatedRegressor, PartitionedEnsemble and StackingEnsemble
(``combine="voting"``) all combine members the same way; the rules live here once.
"""

from __future__ import annotations

import numpy as np


def soft_vote(probas, columns=None, n_classes: int | None = None) -> np.ndarray:
    """The mean of the members' class probabilities, one column per class.

    Parameters
    ----------
    probas : list of ndarray of shape (n_samples, n_member_classes)
        Each member's ``predict_proba``.
    columns : list of array-like of int or None, default=None
        For each member, the positions among the `n_classes` classes of its
        own columns; its probabilities are placed there as float64, the other
        columns being 0. None means the members' columns are already those of
        the classes, in order (their dtype is then kept).
    n_classes : int or None, default=None
        Number of classes; needed with `columns`.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)

    Examples
    --------
    >>> import numpy as np
    >>> soft_vote([np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])]).tolist()
    [[0.75, 0.25]]
    >>> soft_vote([np.array([[1.0]]), np.array([[0.5, 0.5]])], [[1], [0, 1]], 2).tolist()
    [[0.25, 0.75]]
    """
    if columns is not None:
        probas = [_place_columns(proba, member_columns, n_classes)
                  for proba, member_columns in zip(probas, columns)]
    return np.mean(probas, axis=0)


def _place_columns(proba, columns, n_classes: int) -> np.ndarray:
    placed = np.zeros((proba.shape[0], n_classes))
    placed[:, columns] = np.asarray(proba, dtype=np.float64)
    return placed


def hard_vote(encoded_predictions, n_classes: int) -> np.ndarray:
    """The most frequent encoded class of each sample; a tie goes to the first class.

    Parameters
    ----------
    encoded_predictions : list of array-like of int of shape (n_samples,)
        Each member's predictions as class indices (0 to ``n_classes - 1``).
    n_classes : int
        Number of classes.

    Returns
    -------
    winners : ndarray of int of shape (n_samples,)
        Class indices; map them back with ``classes_[winners]``.

    Examples
    --------
    >>> hard_vote([[0, 1, 2], [1, 1, 0], [1, 0, 2]], 3).tolist()
    [1, 1, 2]
    >>> hard_vote([[2], [1]], 3).tolist()
    [1]
    """
    n_samples = len(encoded_predictions[0])
    counts = np.zeros((n_samples, n_classes))
    rows = np.arange(n_samples)
    for encoded in encoded_predictions:
        counts[rows, np.asarray(encoded, dtype=int)] += 1
    return np.argmax(counts, axis=1)


def average(predictions) -> np.ndarray:
    """The mean of the members' regression outputs, as float64.

    Examples
    --------
    >>> average([[1, 2], [2, 4]]).tolist()
    [1.5, 3.0]
    """
    return np.mean([np.asarray(prediction, dtype=np.float64) for prediction in predictions],
                   axis=0)
