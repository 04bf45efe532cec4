"""Logistic loss: the starting score, the gradients of each round and the probabilities.

One implementation for the guest and the central run, so both compute the very same floats
from the very same raw scores (bit-identical trees depend on it).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_MIN_HESSIAN = 1e-16  # as XGBoost: keeps h > 0 where p rounds to 0 or 1


def as_labels(y: npt.ArrayLike, n_rows: int) -> npt.NDArray[np.int64]:
    """Labels as 0/1 int64 of the right length, refusing anything else."""
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n_rows:
        raise ValueError(f"y must be a vector of {n_rows} labels (got shape {labels.shape})")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("y must hold only 0 and 1 (1 = bad)")
    out = labels.astype(np.int64)
    if out.min() == out.max():
        raise ValueError("y must contain both classes to train a classifier")
    return out


def base_score(y: npt.NDArray[np.int64]) -> float:
    """Log-odds of the training bad rate: the raw score every row starts from."""
    rate = float(np.mean(y))
    return math.log(rate / (1.0 - rate))


def sigmoid(raw: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-raw))


def gradients(raw: FloatArray, y: npt.NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
    """First and second derivatives of the log loss with respect to the raw score."""
    p = sigmoid(raw)
    return p - y, np.maximum(p * (1.0 - p), _MIN_HESSIAN)
