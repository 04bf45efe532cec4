"""Scores with their explanation: a base plus one signed contribution per variable.

Every model in the toolkit answers the same shape, so a decision, a reason letter (PIPL Art. 24)
or a reviewer's screen does not care which model scored: ``base + Σ contributions == score``.
For a scorecard the base is the best possible score and each contribution is minus the points
lost against that variable's best bin; for the GBM the base is the score of the average
applicant and each contribution is the feature's SHAP value in points.

Variable names become readable Chinese and English text through :data:`FEATURE_TEXTS`
(the platform's own features) or texts a model was given at fit time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FEATURE_TEXTS: dict[str, tuple[str, str]] = {
    "applicant_age": ("法定代表人年龄", "legal representative's age"),
    "years_in_business": ("经营年限", "years in business"),
    "annual_revenue": ("年营业收入", "annual revenue"),
    "amount_to_revenue": ("申请金额占营收比例", "amount asked against revenue"),
    "requested_amount": ("申请金额", "amount asked"),
    "tax_grade": ("纳税信用等级", "tax credit grade"),
    "industry_section": ("所属行业门类", "industry section"),
    "employees": ("从业人数", "employees"),
    "term_months": ("申请期限", "term asked"),
    "repayment_method": ("还款方式", "repayment method"),
}


def feature_text(name: str, texts: Mapping[str, tuple[str, str]] | None = None) -> tuple[str, str]:
    if texts and name in texts:
        return texts[name]
    return FEATURE_TEXTS.get(name, (name, name))


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: str
    """What the applicant's value was read as: the bin label, or the raw value for a GBM."""
    points: float
    """Signed: negative pulled the score down."""
    text_zh: str
    text_en: str


@dataclass(frozen=True)
class ScoreResult:
    pd: float
    score: float
    base: float
    contributions: tuple[Contribution, ...]
    model: str
    bins: Mapping[str, int] | None = None
    """Scorecards only: the bin index of each variable (what monitoring counts, not values)."""

    def reasons(self, top: int = 4) -> list[Contribution]:
        """The contributions that cost the most points, worst first (ties by name)."""
        lost = [c for c in self.contributions if c.points < 0]
        lost.sort(key=lambda c: (c.points, c.feature))
        return lost[:top]

    def as_dict(self) -> dict[str, Any]:
        return {
            "pd": self.pd,
            "score": self.score,
            "base": self.base,
            "model": self.model,
            "contributions": [c.__dict__ for c in self.contributions],
        }
