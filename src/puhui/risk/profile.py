"""The training sample's shape, kept with a model so drift can be measured later without
keeping any of the training rows.

Each feature gets bins (deciles of a numeric feature, levels of a categorical one) and the
training counts per bin; the score gets deciles too. At decision time only the *bin index* of
each feature is recorded — never the value — which is enough for PSI/CSI and keeps personal
data out of the monitoring trail.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from puhui.risk.frame import is_missing, is_numeric

OTHER = "__other__"


def _numeric_edges(values: npt.NDArray[np.float64]) -> list[float]:
    clean = values[~np.isnan(values)]
    if len(clean) == 0:
        return []
    return [float(e) for e in np.unique(np.quantile(clean, np.linspace(0, 1, 11)[1:-1]))]


def build_profile(frame: pd.DataFrame, scores: npt.NDArray[np.float64]) -> dict[str, Any]:
    """Bins and training counts per feature and for the score."""
    features: dict[str, Any] = {}
    for col in frame.columns:
        series = frame[col]
        if is_numeric(series):
            edges = _numeric_edges(series.to_numpy(dtype=np.float64))
            entry: dict[str, Any] = {"kind": "numeric", "edges": edges}
        else:
            levels = series.dropna().astype(str).value_counts()
            keep = sorted(levels[levels >= max(1, 0.01 * len(series))].index.tolist())
            entry = {"kind": "categorical", "levels": keep}
        idx = [profile_bin(entry, v) for v in series.tolist()]
        entry["counts"] = np.bincount(np.asarray(idx) + 1, minlength=n_bins(entry) + 1).tolist()
        features[str(col)] = entry
    score_edges = _numeric_edges(np.asarray(scores, dtype=np.float64))
    score_idx = np.searchsorted(np.asarray(score_edges), scores, side="right")
    return {
        "features": features,
        "score": {
            "edges": score_edges,
            "counts": np.bincount(score_idx, minlength=len(score_edges) + 1).tolist(),
        },
    }


def n_bins(entry: Mapping[str, Any]) -> int:
    """Bins of a feature, not counting the leading missing/other slot (index −1)."""
    if entry["kind"] == "numeric":
        return len(entry["edges"]) + 1
    return len(entry["levels"])


def profile_bin(entry: Mapping[str, Any], value: Any) -> int:
    """Bin of one value; −1 means missing (numeric) or missing/other level (categorical)."""
    if is_missing(value):
        return -1
    if entry["kind"] == "numeric":
        try:
            return bisect.bisect_right(entry["edges"], float(value))
        except (TypeError, ValueError):
            return -1
    levels: list[str] = entry["levels"]
    i = bisect.bisect_left(levels, str(value))
    return i if i < len(levels) and levels[i] == str(value) else -1


def profile_bins(profile: Mapping[str, Any], features: Mapping[str, Any]) -> dict[str, int]:
    return {name: profile_bin(e, features.get(name)) for name, e in profile["features"].items()}


def score_bin(profile: Mapping[str, Any], score: float) -> int:
    return bisect.bisect_right(profile["score"]["edges"], score)
