"""Quantile bin edges per feature: the one function the guest, the host and the central run share.

Losslessness needs every party to bin a feature exactly as the central run on the joined data
does. Binning here looks at one column at a time, so the guest binning its columns, the host
binning its columns and the central run binning the joined table produce the same edges and
the same bin codes; nothing about a feature's bins ever has to cross between the parties.

Edges. For a column with at most ``n_bins`` distinct values every value gets a bin of its own
(edges = the distinct values but the smallest). Otherwise the edges are the data values at the
quantiles ``k / n_bins``, ``k = 1 … n_bins − 1`` (``numpy.quantile``, ``inverted_cdf``: always a
value that occurs), de-duplicated, so heavily tied columns get fewer bins. Unweighted quantiles
computed once before training, as XGBoost's ``hist`` method does.

Codes. A value ``x`` gets bin ``#(edges <= x)``, so bin ``j`` holds ``edges[j−1] <= x < edges[j]``
and "bin ≤ j" is exactly the rule ``x < edges[j]`` a tree stores as its threshold (a split after
the last edge sends every value left: its threshold is ``None``).

Missing values (NaN) are handled explicitly: they get the code ``n_bins`` — a bin of their own
after all value bins — and every split learns a default direction for them from the training
gradients (XGBoost's sparsity-aware rule: both directions are tried, see :mod:`.split`); a
column with no missing values in a node offers only "missing goes right", the direction new
missing values then take. Infinite values are refused: thresholds must stay finite JSON numbers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
CodeArray = npt.NDArray[np.int32]


def as_features(X: npt.ArrayLike, name: str = "X") -> FloatArray:
    """A 2-D float64 copy of ``X``, refusing infinite values (NaN is allowed: missing)."""
    array = np.array(X, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D table of rows × features (got {array.ndim}-D)")
    if np.isinf(array).any():
        raise ValueError(f"{name} contains infinite values; use NaN for missing values")
    return array


def feature_edges(values: FloatArray, n_bins: int) -> FloatArray:
    """Bin edges of one column (strictly increasing, at most ``n_bins − 1`` of them)."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return np.empty(0, dtype=np.float64)
    distinct = np.unique(present)
    if distinct.size <= n_bins:
        return distinct[1:].astype(np.float64)
    quantiles = np.arange(1, n_bins, dtype=np.float64) / n_bins
    cuts: FloatArray = np.unique(np.quantile(present, quantiles, method="inverted_cdf"))
    kept: FloatArray = cuts[cuts > distinct[0]].astype(np.float64)
    return kept


def fit_edges(X: FloatArray, n_bins: int) -> list[FloatArray]:
    """Edges for every column of ``X``."""
    return [feature_edges(X[:, j], n_bins) for j in range(X.shape[1])]


def apply_bins(X: FloatArray, edges: list[FloatArray], n_bins: int) -> CodeArray:
    """Bin codes (rows × features): ``0 … len(edges)`` for values, ``n_bins`` for missing."""
    if X.shape[1] != len(edges):
        raise ValueError(f"X has {X.shape[1]} features but {len(edges)} sets of edges were given")
    codes = np.empty(X.shape, dtype=np.int32)
    for j, column_edges in enumerate(edges):
        column = X[:, j]
        codes[:, j] = np.searchsorted(column_edges, column, side="right")
        codes[np.isnan(column), j] = n_bins
    return codes


def threshold(edges: FloatArray, bin_index: int) -> float | None:
    """The raw-value threshold of "bin ≤ bin_index goes left"; None: every value goes left."""
    return float(edges[bin_index]) if bin_index < len(edges) else None


def goes_left(
    values: FloatArray, threshold_value: float | None, missing_left: bool
) -> npt.NDArray[np.bool_]:
    """Which rows a split sends left, from raw values (prediction on new data)."""
    missing = np.isnan(values)
    if threshold_value is None:
        left = ~missing
    else:
        with np.errstate(invalid="ignore"):
            left = values < threshold_value
    return left | (missing & missing_left)
