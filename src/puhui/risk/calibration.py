"""Calibrating a model's scores to the probability of default of a (newer) population.

A model ranks applicants by its score; what the decision strategy needs is a PD that matches
the bad rate the portfolio will actually show. When the portfolio's bad rate moves, or a GBM's
raw probabilities are off, the ranking is kept and the score → PD map is refitted on a recent
labelled sample:

* ``platt`` — PD = σ(a + b · score), two parameters by maximum likelihood (smooth; the usual
  choice for a scorecard, whose score is already linear in log-odds);
* ``isotonic`` — the monotone step function that fits the sample best (pool-adjacent-violators
  via scikit-learn), interpolated linearly; needs more data, assumes no shape.

Either is stored with the model (``metadata["calibration"]``) and used by every score after.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression

from puhui.risk.frame import DataError, as_target
from puhui.risk.logit import fit_logit_grouped

METHODS = ("platt", "isotonic")


@dataclass(frozen=True)
class Calibration:
    method: str
    a: float = 0.0
    b: float = 0.0
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()
    rows: int = 0
    bad_rate: float = 0.0

    def pd(self, score: float) -> float:
        if self.method == "platt":
            z = self.a + self.b * score
            return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
        return float(np.interp(score, self.xs, self.ys))

    def pds(self, scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-(self.a + self.b * s)))
            return out
        return np.interp(s, self.xs, self.ys).astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "a": self.a,
            "b": self.b,
            "xs": list(self.xs),
            "ys": list(self.ys),
            "rows": self.rows,
            "bad_rate": self.bad_rate,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:  # extra keys (source) are kept aside
        return cls(
            str(d["method"]),
            float(d.get("a", 0.0)),
            float(d.get("b", 0.0)),
            tuple(float(x) for x in d.get("xs", ())),
            tuple(float(y) for y in d.get("ys", ())),
            int(d.get("rows", 0)),
            float(d.get("bad_rate", 0.0)),
        )


def fit_calibration(scores: npt.ArrayLike, y: npt.ArrayLike, method: str = "platt") -> Calibration:
    """Fit the score → PD map on a labelled sample (y = 1 bad)."""
    if method not in METHODS:
        raise DataError(f"method: must be one of {METHODS}, not {method!r}")
    s = np.asarray(scores, dtype=np.float64)
    target = as_target(y, len(s))
    if method == "platt":
        fit = fit_logit_grouped(s.reshape(-1, 1), target.astype(np.float64))
        return Calibration(
            "platt", fit.intercept, float(fit.coef[0]), rows=len(s), bad_rate=float(target.mean())
        )
    iso = IsotonicRegression(increasing=False, out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(s, target)
    return Calibration(
        "isotonic",
        xs=tuple(float(x) for x in iso.X_thresholds_),
        ys=tuple(float(v) for v in iso.y_thresholds_),
        rows=len(s),
        bad_rate=float(target.mean()),
    )
