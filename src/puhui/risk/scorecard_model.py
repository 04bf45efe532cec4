"""A fitted scorecard as data: bins, points, and the scaling that turns points into PD.

This is what is exported as portable JSON, stored in the registry and served. Scoring one
application is a dictionary walk — one bisect or dict lookup per variable, no pandas, no
NumPy — because it sits on the decision's hot path. Batch scoring of a DataFrame is vectorised
over the same tables, so both paths give the same score to the last decimal.

Points are rounded to 0.01 when fitted and the score is their sum, so the readable points
table *is* the model: a reviewer adding up the printed points gets the printed score.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from puhui.risk.binning import VariableBinning
from puhui.risk.explain import Contribution, ScoreResult, feature_text
from puhui.risk.scaling import PointsScaling

FloatArray = npt.NDArray[np.float64]
FORMAT = "puhui.scorecard/1"


@dataclass
class ScorecardVariable:
    binning: VariableBinning
    coef: float
    points: list[float]
    unseen_points: float

    @property
    def name(self) -> str:
        return self.binning.name

    @property
    def best_points(self) -> float:
        return max(self.points)

    def points_of_index(self, idx: int) -> float:
        return self.unseen_points if idx < 0 else self.points[idx]

    def label_of_index(self, idx: int) -> str:
        return "unseen" if idx < 0 else self.binning.bins[idx].label


@dataclass
class ScorecardModel:
    scaling: PointsScaling
    intercept_points: float
    variables: list[ScorecardVariable]
    texts: dict[str, tuple[str, str]] = field(default_factory=dict)
    name: str = "scorecard"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [v.name for v in self.variables]

    @property
    def max_score(self) -> float:
        return round(self.intercept_points + sum(v.best_points for v in self.variables), 2)

    # ----------------------------------------------------------------- scoring
    def score_one(self, features: Mapping[str, Any]) -> ScoreResult:
        """Score one application given as a mapping of feature name → value (any key order;
        a key that is absent counts as missing). Returns PD, score and the reasons."""
        score = self.intercept_points
        contributions = []
        bins: dict[str, int] = {}
        for v in self.variables:
            idx = v.binning.index_one(features.get(v.name))
            pts = v.points_of_index(idx)
            score += pts
            bins[v.name] = idx
            lost = round(v.best_points - pts, 2)
            zh, en = feature_text(v.name, self.texts)
            label = v.label_of_index(idx)
            contributions.append(
                Contribution(
                    v.name,
                    label,
                    -lost,
                    f"{zh}（{label}）比最佳档少{lost:g}分",
                    f"{en} ({label}): {lost:g} points below its best bin",
                )
            )
        score = round(score, 2)
        return ScoreResult(
            pd=self.scaling.pd_of_score(score),
            score=score,
            base=self.max_score,
            contributions=tuple(contributions),
            model=self.name,
            bins=bins,
        )

    def bin_indices(self, frame: pd.DataFrame) -> dict[str, npt.NDArray[np.int64]]:
        out = {}
        for v in self.variables:
            col = frame[v.name] if v.name in frame else pd.Series([None] * len(frame))
            out[v.name] = v.binning.index(col.to_numpy())
        return out

    def scores(self, frame: pd.DataFrame) -> FloatArray:
        total = np.full(len(frame), self.intercept_points)
        for v, idx in zip(self.variables, self.bin_indices(frame).values(), strict=True):
            table = np.array([*v.points, v.unseen_points])
            total += table[idx]
        out: FloatArray = np.round(total, 2)
        return out

    def predict_pd(self, frame: pd.DataFrame) -> FloatArray:
        return self.scaling.pd_of_scores(self.scores(frame))

    # ----------------------------------------------------------------- reading
    def points_table(self) -> list[dict[str, Any]]:
        """One row per variable and bin: what a credit committee signs off."""
        rows: list[dict[str, Any]] = [
            {
                "variable": "(base points)",
                "bin": "",
                "count": None,
                "bad_rate": None,
                "woe": None,
                "points": round(self.intercept_points, 2),
            }
        ]
        for v in self.variables:
            for b, pts in zip(v.binning.bins, v.points, strict=True):
                rows.append(
                    {
                        "variable": v.name,
                        "bin": b.label,
                        "count": b.count,
                        "bad_rate": round(b.event_rate, 4),
                        "woe": round(b.woe, 4),
                        "points": pts,
                    }
                )
            rows.append(
                {
                    "variable": v.name,
                    "bin": "(unseen)",
                    "count": 0,
                    "bad_rate": None,
                    "woe": round(v.binning.unseen_woe, 4),
                    "points": v.unseen_points,
                }
            )
        return rows

    # ----------------------------------------------------------------- export
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "scaling": self.scaling.to_dict(),
            "intercept_points": self.intercept_points,
            "variables": [
                {
                    "binning": v.binning.to_dict(),
                    "coef": v.coef,
                    "points": v.points,
                    "unseen_points": v.unseen_points,
                }
                for v in self.variables
            ],
            "texts": {k: list(t) for k, t in self.texts.items()},
            "metadata": self.metadata,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScorecardModel:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a scorecard export (format {d.get('format')!r}, want {FORMAT})")
        return cls(
            scaling=PointsScaling(**d["scaling"]),
            intercept_points=float(d["intercept_points"]),
            variables=[
                ScorecardVariable(
                    VariableBinning.from_dict(v["binning"]),
                    float(v["coef"]),
                    [float(p) for p in v["points"]],
                    float(v["unseen_points"]),
                )
                for v in d["variables"]
            ],
            texts={k: (t[0], t[1]) for k, t in d.get("texts", {}).items()},
            name=d.get("name", "scorecard"),
            metadata=dict(d.get("metadata", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> ScorecardModel:
        return cls.from_dict(json.loads(text))
