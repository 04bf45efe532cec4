"""Checking what a caller hands the toolkit, with errors that name the column and the rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


class DataError(ValueError):
    """Bad training or scoring data; the message names the column and what is wrong."""


def as_frame(x: Any, feature_names: Sequence[str] | None = None) -> pd.DataFrame:
    if isinstance(x, pd.DataFrame):
        return x
    if isinstance(x, np.ndarray) and x.ndim == 2:
        names = feature_names or [f"x{i}" for i in range(x.shape[1])]
        return pd.DataFrame(x, columns=list(names))
    raise DataError("X must be a pandas DataFrame (or a 2-D NumPy array)")


def as_target(y: Any, n: int) -> npt.NDArray[np.int64]:
    """A 0/1 target with both classes, one value per row."""
    arr = np.asarray(y)
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(f"target: expected {n} values, one per row, got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise DataError("target: has missing values")
    values = set(np.unique(arr).tolist())
    if not values <= {0, 1}:
        shown = sorted(map(str, values))[:5]
        raise DataError(f"target: must be 0/1 (1 = bad), found values {shown}")
    out = arr.astype(np.int64)
    if len(np.unique(out)) < 2:
        raise DataError("target: has one class only; a model needs both goods and bads")
    return out


def is_missing(value: Any) -> bool:
    """None, NaN, ``pd.NA``/``NaT`` or the empty string: what every model treats as missing."""
    if value is None or (isinstance(value, str) and value == ""):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or other non-scalar is a value, not missing
        return False


def is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)
