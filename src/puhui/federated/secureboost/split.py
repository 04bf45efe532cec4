"""Candidate splits, their gains and the choice among them — shared by guest, host and central.

A node's candidates come from its per-feature bin histograms (``n_bins`` value bins + one
missing bin). For feature ``f`` and value bin ``j`` the split "bin ≤ j goes left" is offered
only when bin ``j`` holds rows of the node (otherwise it would repeat the split at ``j − 1``),
once with missing values going right and, if the node has missing values in ``f``, once with
them going left; a candidate that would leave a side empty is not offered. The **canonical
order** — guest features before host features, then feature, bin, and "missing right" before
"missing left" — breaks ties between equal gains, here and in the central run alike; the host
applies it to its own tied candidates, whose order the guest never sees.

The gain is XGBoost's loss reduction ``GL²/(HL+λ) + GR²/(HR+λ) − G²/(H+λ)``; a split is
taken when its gain exceeds ``min_split_gain`` and both children have a hessian sum of at least
``min_child_weight``. Sums are fixed-point integers (see :mod:`.encoding`); they become floats
only here, in one function, so every party computes bit-identical gains from equal integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from puhui.federated.secureboost.params import SecureBoostParams

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Histograms:
    """Per node: row counts and fixed-point g and h sums, shape (features, n_bins + 1)."""

    counts: IntArray
    g: IntArray
    h: IntArray


def node_histograms(
    codes: npt.NDArray[np.int32], g_int: IntArray, h_int: IntArray, n_bins: int
) -> Histograms:
    """Histograms of a node's rows (``codes``: rows × features bin codes of those rows)."""
    n_features = codes.shape[1]
    width = n_bins + 1
    flat = (codes.astype(np.int64) + np.arange(n_features, dtype=np.int64) * width).ravel()
    size = n_features * width
    counts = np.bincount(flat, minlength=size)
    # float64 sums of integers are exact below 2^53 (Layout checks the bound).
    g = np.bincount(flat, weights=np.repeat(g_int, n_features).astype(np.float64), minlength=size)
    h = np.bincount(flat, weights=np.repeat(h_int, n_features).astype(np.float64), minlength=size)
    shape = (n_features, width)
    return Histograms(
        counts.astype(np.int64).reshape(shape),
        g.astype(np.int64).reshape(shape),
        h.astype(np.int64).reshape(shape),
    )


@dataclass(frozen=True)
class Candidates:
    """Candidate splits in canonical order: feature, value bin, missing direction."""

    feature: IntArray
    bin: IntArray
    missing_left: BoolArray

    def __len__(self) -> int:
        return len(self.feature)


def candidate_specs(counts: IntArray) -> Candidates:
    """Which splits a node offers, from its per-feature bin counts (features, n_bins + 1)."""
    n_bins = counts.shape[1] - 1
    values = counts[:, :n_bins]
    missing = counts[:, n_bins][:, None]
    left_values = np.cumsum(values, axis=1)
    right_values = left_values[:, -1:] - left_values
    occupied = values > 0
    missing_right_ok = occupied & (right_values + missing > 0)
    missing_left_ok = occupied & (missing > 0) & (right_values > 0)
    valid = np.stack([missing_right_ok, missing_left_ok], axis=2)  # (features, bins, 2)
    feature, bin_index, direction = np.nonzero(valid)  # C order: the canonical order
    return Candidates(feature.astype(np.int64), bin_index.astype(np.int64), direction.astype(bool))


def candidate_sums(hist: Histograms, cands: Candidates) -> tuple[IntArray, IntArray]:
    """The left-child sums ``(GL, HL)`` of each candidate, from plaintext histograms."""
    n_bins = hist.counts.shape[1] - 1
    cum_g = np.cumsum(hist.g[:, :n_bins], axis=1)
    cum_h = np.cumsum(hist.h[:, :n_bins], axis=1)
    extra = cands.missing_left.astype(np.int64)
    gl = cum_g[cands.feature, cands.bin] + extra * hist.g[cands.feature, n_bins]
    hl = cum_h[cands.feature, cands.bin] + extra * hist.h[cands.feature, n_bins]
    return gl, hl


def gains(
    gl: IntArray, hl: IntArray, g_total: int, h_total: int, scale: float, params: SecureBoostParams
) -> FloatArray:
    """Loss reduction of each candidate; ``-inf`` where a child is too light."""
    lam = params.reg_lambda
    g_left = gl.astype(np.float64) * scale
    h_left = hl.astype(np.float64) * scale
    g_right = (g_total - gl).astype(np.float64) * scale
    h_right = (h_total - hl).astype(np.float64) * scale
    g_node = np.float64(g_total) * scale
    h_node = np.float64(h_total) * scale
    ok = (h_left >= params.min_child_weight) & (h_right >= params.min_child_weight)
    ok &= (h_left + lam > 0) & (h_right + lam > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (
            g_left * g_left / (h_left + lam)
            + g_right * g_right / (h_right + lam)
            - g_node * g_node / (h_node + lam)
        )
    return np.where(ok, value, -np.inf)


def best(gain: FloatArray, params: SecureBoostParams) -> tuple[int, float]:
    """Index of the first candidate with the largest gain, or -1 if none beats the threshold."""
    if gain.size == 0:
        return -1, -np.inf
    index = int(np.argmax(gain))
    value = float(gain[index])
    if not value > params.min_split_gain:
        return -1, value
    return index, value


def leaf_weight(g_total: int, h_total: int, scale: float, params: SecureBoostParams) -> float:
    """The leaf's contribution to the raw score: ``−η · G / (H + λ)``."""
    g = float(np.float64(g_total) * scale)
    h = float(np.float64(h_total) * scale)
    return -params.learning_rate * g / (h + params.reg_lambda)


def left_of_codes(
    codes: npt.NDArray[np.int32], bin_index: int, missing_left: bool, n_bins: int
) -> BoolArray:
    """Which rows "bin ≤ bin_index" sends left, from bin codes (training rows)."""
    missing = codes == n_bins
    return np.where(missing, missing_left, codes <= bin_index)
