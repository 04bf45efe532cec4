"""Points scaling: the score a scorecard prints, from the log-odds a model computes.

score = offset + factor × ln(odds of good), with factor = PDO / ln 2 and
offset = base score − factor × ln(base odds). With the defaults, odds of 50:1 (good:bad) score
600 and every 20 points double the odds. The mapping is monotone and exact both ways, so a
score can always be turned back into the model's probability of default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PointsScaling:
    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    def __post_init__(self) -> None:
        if self.pdo <= 0 or self.base_odds <= 0:
            raise ValueError("pdo and base_odds must be positive")

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def score_of_logit(self, logit_bad: float) -> float:
        """Score of a log-odds of *bad* (what a logistic model or a GBM's raw output is)."""
        return self.offset - self.factor * logit_bad

    def logit_of_score(self, score: float) -> float:
        return (self.offset - score) / self.factor

    def pd_of_score(self, score: float) -> float:
        return 1.0 / (1.0 + math.exp(-self.logit_of_score(score)))

    def pd_of_scores(self, scores: FloatArray) -> FloatArray:
        z = (self.offset - scores) / self.factor
        out: FloatArray = 1.0 / (1.0 + np.exp(-z))
        return out

    def to_dict(self) -> dict[str, float]:
        return {"base_score": self.base_score, "base_odds": self.base_odds, "pdo": self.pdo}
