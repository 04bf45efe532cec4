"""Discrimination, calibration and stability metrics a risk committee reads.

Conventions: ``y`` is 1 for bad; ``pd`` is a probability of default (higher = riskier); a
*score* is higher for better risk. Every function takes plain arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

FloatArray = npt.NDArray[np.float64]
EPS = 1e-6


def auc(y: Sequence[int] | npt.ArrayLike, pd: npt.ArrayLike) -> float:
    return float(roc_auc_score(np.asarray(y), np.asarray(pd, dtype=np.float64)))


def gini(y: npt.ArrayLike, pd: npt.ArrayLike) -> float:
    """Accuracy ratio: 2 × AUC − 1."""
    return 2 * auc(y, pd) - 1


def ks(y: npt.ArrayLike, pd: npt.ArrayLike) -> float:
    """Kolmogorov-Smirnov: the largest gap between the bads' and goods' cumulative shares."""
    fpr, tpr, _ = roc_curve(np.asarray(y), np.asarray(pd, dtype=np.float64))
    return float(np.max(tpr - fpr))


def brier(y: npt.ArrayLike, pd: npt.ArrayLike) -> float:
    return float(brier_score_loss(np.asarray(y), np.asarray(pd, dtype=np.float64)))


@dataclass(frozen=True)
class BandRow:
    """One row of a calibration or lift table (band 1 = riskiest for lift tables)."""

    band: int
    lower: float
    upper: float
    count: int
    bads: int
    bad_rate: float
    mean_pd: float
    cum_bad_share: float
    cum_good_share: float
    ks: float
    lift: float


def band_table(y: npt.ArrayLike, pd: npt.ArrayLike, bands: int = 10) -> list[BandRow]:
    """Equal-count bands by predicted PD, riskiest first: the decile lift / KS table, and with
    ``mean_pd`` beside ``bad_rate`` the calibration table."""
    yv = np.asarray(y, dtype=np.float64)
    pv = np.asarray(pd, dtype=np.float64)
    order = np.argsort(-pv, kind="stable")
    chunks = np.array_split(order, bands)
    tot_b, tot_g = yv.sum(), len(yv) - yv.sum()
    base = tot_b / len(yv) if len(yv) else 0.0
    rows, cb, cg = [], 0.0, 0.0
    for i, idx in enumerate(chunks, start=1):
        if len(idx) == 0:
            continue
        b = float(yv[idx].sum())
        cb += b
        cg += len(idx) - b
        rate = b / len(idx)
        rows.append(
            BandRow(
                band=i,
                lower=float(pv[idx].min()),
                upper=float(pv[idx].max()),
                count=len(idx),
                bads=int(b),
                bad_rate=rate,
                mean_pd=float(pv[idx].mean()),
                cum_bad_share=cb / tot_b if tot_b else 0.0,
                cum_good_share=cg / tot_g if tot_g else 0.0,
                ks=abs(cb / tot_b - cg / tot_g) if tot_b and tot_g else 0.0,
                lift=rate / base if base else 0.0,
            )
        )
    return rows


def psi_from_counts(expected: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Population stability index between two histograms over the same bins.

    Σ (a − e) × ln(a / e) over shares; empty shares are floored at 1e-6 so a bin that
    appears or disappears counts heavily rather than infinitely."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.sum() == 0 or a.sum() == 0:
        return 0.0
    es = np.maximum(e / e.sum(), EPS)
    as_ = np.maximum(a / a.sum(), EPS)
    return float(np.sum((as_ - es) * np.log(as_ / es)))


def psi(expected: npt.ArrayLike, actual: npt.ArrayLike, bins: int = 10) -> float:
    """PSI of a continuous quantity (a score) with bins at the expected sample's deciles."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    ec = np.bincount(np.searchsorted(edges, e, side="right"), minlength=len(edges) + 1)
    ac = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1)
    return psi_from_counts(ec, ac)


def csi(expected_bins: npt.ArrayLike, actual_bins: npt.ArrayLike, n_bins: int) -> float:
    """Characteristic stability index: PSI of one variable over its scorecard bins, from the
    bin indices of each row (index −1, unseen values, counts as a bin of its own)."""
    e = np.asarray(expected_bins, dtype=np.int64) + 1
    a = np.asarray(actual_bins, dtype=np.int64) + 1
    return psi_from_counts(
        np.bincount(e, minlength=n_bins + 1), np.bincount(a, minlength=n_bins + 1)
    )


def stability_label(value: float) -> str:
    """The industry's reading of PSI/CSI: < 0.10 stable, 0.10-0.25 watch, ≥ 0.25 shifted."""
    if value < 0.10:
        return "stable"
    if value < 0.25:
        return "watch"
    return "shifted"


def summary(y: npt.ArrayLike, pd: npt.ArrayLike) -> dict[str, float]:
    return {"auc": auc(y, pd), "ks": ks(y, pd), "gini": gini(y, pd), "brier": brier(y, pd)}
