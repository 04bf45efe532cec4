"""Model monitoring: are recent applicants still like the training sample, and do the grades
still rank risk as outcomes arrive?

Pure functions over what decisions record — the score's bin and each feature's bin against the
training profile (:mod:`puhui.risk.profile`) — and over observed outcomes by grade. An alert is
raised when the score's PSI or any feature's CSI reaches its threshold (default 0.25, the
industry's "shifted" line), or when bad rates stop rising from grade A down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from puhui.risk.metrics import psi_from_counts, stability_label
from puhui.risk.profile import n_bins


@dataclass(frozen=True)
class Thresholds:
    score_psi: float = 0.25
    feature_csi: float = 0.25
    min_applications: int = 100
    """Below this many recent applications, stability figures are shown but never alert."""


@dataclass(frozen=True)
class GradeOutcome:
    grade: str
    loans: int
    bads: int

    @property
    def bad_rate(self) -> float | None:
        return self.bads / self.loans if self.loans else None


@dataclass
class MonitorReport:
    model: str
    applications: int
    score_psi: float
    feature_csi: dict[str, float]
    grades: list[GradeOutcome]
    alerts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "applications": self.applications,
            "score_psi": self.score_psi,
            "score_stability": stability_label(self.score_psi),
            "feature_csi": self.feature_csi,
            "grades": [
                {"grade": g.grade, "loans": g.loans, "bads": g.bads, "bad_rate": g.bad_rate}
                for g in self.grades
            ],
            "alerts": self.alerts,
        }


def _counts(indices: Sequence[int], bins: int) -> list[int]:
    """Histogram of bin indices with index −1 (missing/other) in slot 0."""
    arr = np.asarray(indices, dtype=np.int64) + 1
    return np.bincount(arr, minlength=bins + 1).tolist() if len(arr) else [0] * (bins + 1)


def monitor(
    model: str,
    profile: Mapping[str, Any],
    score_bins: Sequence[int],
    feature_bins: Mapping[str, Sequence[int]],
    grades: Sequence[GradeOutcome],
    thresholds: Thresholds | None = None,
) -> MonitorReport:
    thresholds = thresholds or Thresholds()
    expected_score = profile["score"]["counts"]
    actual_score = (
        np.bincount(np.asarray(score_bins, dtype=np.int64), minlength=len(expected_score)).tolist()
        if len(score_bins)
        else [0] * len(expected_score)
    )
    score_psi = psi_from_counts(expected_score, actual_score)
    csi: dict[str, float] = {}
    for name, entry in profile["features"].items():
        observed = feature_bins.get(name, [])
        csi[name] = psi_from_counts(entry["counts"], _counts(observed, n_bins(entry)))
    report = MonitorReport(model, len(score_bins), score_psi, csi, list(grades))
    if len(score_bins) >= thresholds.min_applications:
        if score_psi >= thresholds.score_psi:
            report.alerts.append(
                f"score PSI {score_psi:.3f} ≥ {thresholds.score_psi}: the applicant mix has shifted"
            )
        for name, value in csi.items():
            if value >= thresholds.feature_csi:
                report.alerts.append(f"{name}: CSI {value:.3f} ≥ {thresholds.feature_csi}")
    rates = [(g.grade, g.bad_rate) for g in grades if g.bad_rate is not None and g.loans >= 30]
    for (g1, r1), (g2, r2) in pairwise(rates):
        if r1 is not None and r2 is not None and r1 > r2:
            report.alerts.append(
                f"grades no longer rank risk: {g1} bad rate {r1:.1%} > {g2} bad rate {r2:.1%}"
            )
    return report
