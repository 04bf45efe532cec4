"""The arithmetic both parties and the central reference share, so that they agree to the bit.

Vertical LR is only "the same model as central training" if both sides round the same numbers
the same way. Everything that turns floats into the integers that get encrypted, and integers
back into a gradient step, lives here and nowhere else: the guest, the host and
:mod:`puhui.federated.hetero_lr.central` call these functions on the same arrays, and the
integer sums in the middle are exact (Paillier adds integers modulo a 2048-bit ``n``; the
central reference adds Python integers), so the federated weights equal the central ones.

The residual ``d = 0.25·z + 0.5 − y`` is carried as ``4d`` at scale ``2^s``
(``s = score_frac_bits``): ``4d·2^s = U_g + U_h + 2·2^s − 4y·2^s`` with ``U = round(u·2^s)``
— whole numbers, no 0.25 to represent. Features are ``X̃ = round(x·2^f)``
(``f = feature_frac_bits``). A gradient sum ``Σ_i X̃_ij · 4d_i·2^s`` is then divided by
``2^(f+s+2)`` and by the batch's row count.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from puhui.federated.errors import ProtocolMismatch
from puhui.federated.hetero_lr.params import HeteroLRParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_FEATURE_INT_BITS = 40  # |X̃| < 2^40: exponents stay small, sums stay far below n/2
MAX_SCORE_INT_BITS = 60  # |U| < 2^60: fits int64 with room for the sums of two


def standardisation(x: FloatArray, enabled: bool) -> tuple[FloatArray, FloatArray]:
    """Per-column shift and scale (mean and standard deviation; 0 and 1 if disabled)."""
    if not enabled or x.shape[0] == 0:
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    shift = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column stays constant (0 after the shift)
    return shift, scale


def standardise(x: FloatArray, shift: FloatArray, scale: FloatArray) -> FloatArray:
    return np.ascontiguousarray((x - shift) / scale)


def check_features(x: FloatArray, who: str) -> FloatArray:
    """A 2-D float64 copy, refusing missing or infinite values (they would poison every sum)."""
    array = np.array(x, dtype=np.float64, copy=True)
    if array.ndim != 2:
        raise ValueError(f"the {who} features must be a 2-D array (rows × features)")
    if not np.isfinite(array).all():
        raise ValueError(f"the {who} features contain missing or infinite values; impute first")
    return array


def quantise_features(x: FloatArray, frac_bits: int, with_intercept: bool = False) -> IntArray:
    """``round(x·2^f)`` as int64 (plus a column of ``2^f`` for the intercept if asked)."""
    scaled = np.rint(x * float(1 << frac_bits))
    if scaled.size and float(np.abs(scaled).max()) >= 2.0**MAX_FEATURE_INT_BITS:
        raise ValueError(
            f"a feature value is too large for feature_frac_bits={frac_bits}: "
            f"|x| must stay below 2^{MAX_FEATURE_INT_BITS - frac_bits}; standardise or rescale"
        )
    out = scaled.astype(np.int64)
    if with_intercept:
        out = np.hstack([out, np.full((x.shape[0], 1), 1 << frac_bits, dtype=np.int64)])
    return out


def encode_scores(u: FloatArray, frac_bits: int) -> IntArray:
    """``round(u·2^s)`` as int64: a partial score in fixed point."""
    scaled = np.rint(u * float(1 << frac_bits))
    if scaled.size and not float(np.abs(scaled).max()) < 2.0**MAX_SCORE_INT_BITS:
        raise ValueError(
            "a partial score diverged (|u| too large for fixed point): lower learning_rate"
        )
    return scaled.astype(np.int64)


def guest_residual_part(u_guest: FloatArray, y: IntArray, frac_bits: int) -> IntArray:
    """The guest's share of ``4d·2^s``: ``U_g + 2·2^s − 4y·2^s`` (add ``U_h`` for the whole)."""
    one = 1 << frac_bits
    labels = np.asarray(y, dtype=np.int64)
    return encode_scores(u_guest, frac_bits) + 2 * one - 4 * one * labels


def exact_gradient_sums(x_int: IntArray, residual4: IntArray) -> list[int]:
    """``Σ_i X̃_ij · r_i`` in exact integer arithmetic (what decryption yields in the protocol)."""
    return [int(v) for v in x_int.astype(object).T @ residual4.astype(object)]


def gradient_from_sums(sums: list[int], rows: int, params: HeteroLRParams) -> FloatArray:
    """The mean Taylor-loss gradient ``Xᵀd / m`` from the exact sums of ``X̃ · 4d·2^s``."""
    scale = 2.0 ** -(params.feature_frac_bits + params.score_frac_bits + 2)
    return np.array([float(s) * scale for s in sums], dtype=np.float64) / rows


def descend(
    weights: FloatArray, gradient: FloatArray, params: HeteroLRParams, epoch: int, penalised: int
) -> FloatArray:
    """One step ``w − η·(g + l2·w)``; only the first ``penalised`` weights carry the ridge."""
    ridge = np.zeros_like(weights)
    ridge[:penalised] = params.l2 * weights[:penalised]
    return weights - params.learning_rate_at(epoch) * (gradient + ridge)


def batches(rows: int, params: HeteroLRParams, epoch: int) -> list[IntArray]:
    """Row indexes of each mini-batch of an epoch, from ``(seed, epoch)``, the same on both sides.

    A last batch of fewer than half ``batch_size`` rows joins the one before it, so that no
    batch is so small that its gradient says much about individual rows.
    """
    order = np.random.default_rng([params.seed, epoch]).permutation(rows).astype(np.int64)
    size = params.batch_size
    cuts = list(range(size, rows, size))
    if cuts and rows - cuts[-1] < size // 2:
        cuts.pop()
    return [np.sort(part) for part in np.split(order, cuts)]


def smallest_batch(rows: int, params: HeteroLRParams) -> int:
    """Rows in the smallest mini-batch (the same every epoch: only the shuffle changes)."""
    return min(len(batch) for batch in batches(rows, params, 0))


def moved(before: FloatArray, after: FloatArray) -> float:
    """The largest change of any weight (the convergence measure, per party)."""
    return float(np.max(np.abs(after - before))) if before.size else 0.0


def guest_scores(x_std: FloatArray, weights: FloatArray) -> FloatArray:
    """``u_g = X_g·w_g + b`` with the intercept ``b`` stored last in ``weights``."""
    return np.asarray(x_std @ weights[:-1] + weights[-1], dtype=np.float64)


def host_scores(x_std: FloatArray, weights: FloatArray) -> FloatArray:
    """``u_h = X_h·w_h``."""
    return np.asarray(x_std @ weights, dtype=np.float64)


def check_labels(y: object, rows: int) -> IntArray:
    """Labels as int64 0/1, one per row."""
    labels = np.asarray(y)
    if labels.shape != (rows,):
        raise ValueError(f"y must hold one label per row ({rows}), got shape {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("y must be 0 (good) or 1 (bad) in every row")
    return labels.astype(np.int64)


def check_names(names: object, columns: int, who: str) -> tuple[str, ...]:
    """Feature names: one distinct string per column."""
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"the {who} feature_names must be a list of strings")
    if len(names) != columns:
        raise ValueError(f"the {who} has {columns} feature columns but {len(names)} feature_names")
    if len(set(names)) != len(names):
        raise ValueError(f"the {who} feature_names must be distinct")
    return tuple(names)


def check_sums(sums: list[int], rows: int, opener: str) -> None:
    """Refuse opened gradient sums that no honest run could produce (wrong value decrypted)."""
    limit = 1 << (MAX_FEATURE_INT_BITS + MAX_SCORE_INT_BITS + 3 + rows.bit_length())
    if any(abs(s) >= limit for s in sums):
        raise ProtocolMismatch(
            f"the gradient opened by the {opener} is out of range: it decrypted something else"
        )
