"""The shipped decision policy: explicit knock-out rules and a transparent points score.

Every number here is a policy choice a credit committee can read, argue with and change; none
is learned. The credit-model issue replaces the points score with a trained scorecard behind
the same ``CreditAssessor`` interface and keeps the knock-outs (``origination.credit_model``);
anti-fraud lives in ``puhui.fraud`` (rules as data over link-table features).

Knock-outs (decline, whatever the score):
  KO_AGE            legal representative younger than 22 or older than 65
  KO_YEARS          less than one year in business
  KO_TAX_D          tax credit grade D
  KO_AMOUNT_REVENUE asking for more than half of annual revenue (or no revenue)
The legal rate cap is the fifth knock-out; it needs the price, so the offer step applies it.

Refer to a person: a USCC that failed only its checksum (verify against the registry), or a
score in the refer band.

Points: base 500 plus one band per characteristic (table ``CHARACTERISTICS``); grades by
score: A ≥ 740, B ≥ 690, C ≥ 640, D ≥ 600; 580-599 refer; below 580 decline.
Reasons name the characteristics that lost the most points against their best band.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from puhui.origination.assessment import (
    ApplicationFacts,
    CreditAssessment,
    Reason,
)

BASE_POINTS = 500
GRADE_CUTS: tuple[tuple[str, int], ...] = (("A", 740), ("B", 690), ("C", 640), ("D", 600))
REFER_FROM = 580
POLICY_VERSION = "points-policy-2026.1"


@dataclass(frozen=True)
class Band:
    upper: Decimal | None  # exclusive upper bound; None = no bound
    points: int
    label: str


@dataclass(frozen=True)
class Characteristic:
    code: str
    name_zh: str
    name_en: str
    value: Callable[[ApplicationFacts], Decimal]
    bands: tuple[Band, ...]

    def band(self, facts: ApplicationFacts) -> Band:
        v = self.value(facts)
        for b in self.bands:
            if b.upper is None or v < b.upper:
                return b
        return self.bands[-1]

    @property
    def best(self) -> int:
        return max(b.points for b in self.bands)


def _d(x: str) -> Decimal:
    return Decimal(x)


_TAX_POINTS = {"A": 80, "B": 50, "M": 20, "C": 0, "D": 0}
_RISKY_SECTIONS = {"B": 0, "E": 0, "K": 0, "H": 5, "R": 5}  # mining, construction, real estate…


CHARACTERISTICS: tuple[Characteristic, ...] = (
    Characteristic(
        "years_in_business",
        "经营年限",
        "years in business",
        lambda f: f.years_in_business,
        (
            Band(_d("2"), 0, "<2"),
            Band(_d("5"), 30, "2-5"),
            Band(_d("10"), 50, "5-10"),
            Band(None, 60, "≥10"),
        ),
    ),
    Characteristic(
        "tax_grade",
        "纳税信用等级",
        "tax credit grade",
        lambda f: Decimal(_TAX_POINTS.get(f.tax_grade, 0)),
        (
            Band(_d("1"), 0, "C/D"),
            Band(_d("21"), 20, "M"),
            Band(_d("51"), 50, "B"),
            Band(None, 80, "A"),
        ),
    ),
    Characteristic(
        "annual_revenue",
        "年营业收入",
        "annual revenue",
        lambda f: f.annual_revenue,
        (
            Band(_d("500000"), 0, "<0.5m"),
            Band(_d("2000000"), 20, "0.5-2m"),
            Band(_d("10000000"), 40, "2-10m"),
            Band(None, 50, "≥10m"),
        ),
    ),
    Characteristic(
        "amount_to_revenue",
        "申请金额占营收比例",
        "amount against revenue",
        lambda f: (f.amount / f.annual_revenue) if f.annual_revenue else _d("99"),
        (
            Band(_d("0.10"), 60, "≤10%"),
            Band(_d("0.20"), 40, "10-20%"),
            Band(_d("0.35"), 20, "20-35%"),
            Band(None, 0, ">35%"),
        ),
    ),
    Characteristic(
        "applicant_age",
        "法定代表人年龄",
        "legal representative's age",
        lambda f: Decimal(f.applicant_age),
        (Band(_d("26"), 10, "22-25"), Band(_d("56"), 30, "26-55"), Band(None, 15, "56-65")),
    ),
    Characteristic(
        "employees",
        "从业人数",
        "employees",
        lambda f: Decimal(f.employees or 0),
        (
            Band(_d("1"), 0, "0"),
            Band(_d("10"), 10, "1-9"),
            Band(_d("50"), 20, "10-49"),
            Band(None, 25, "≥50"),
        ),
    ),
    Characteristic(
        "industry",
        "行业风险",
        "industry risk",
        lambda f: Decimal(_RISKY_SECTIONS.get(f.industry_code[:1], 15)),
        (
            Band(_d("1"), 0, "high-risk sector"),
            Band(_d("6"), 5, "elevated"),
            Band(None, 15, "standard"),
        ),
    ),
)


USCC_VERIFICATION = Reason(
    "REFER_USCC",
    "统一社会信用代码校验位不符，需向登记机关核实",
    "USCC check character fails: verify with the registry",
)
"""Referral, whatever model scores: a USCC that failed only its check character."""


def knockouts(f: ApplicationFacts) -> list[Reason]:
    """The knock-out rules, whatever model scores the application."""
    out = []
    if not 22 <= f.applicant_age <= 65:
        out.append(
            Reason(
                "KO_AGE",
                "法定代表人年龄不在22至65岁之间",
                "legal representative's age is outside 22-65",
            )
        )
    if f.years_in_business < 1:
        out.append(Reason("KO_YEARS", "企业经营不足一年", "in business for less than one year"))
    if f.tax_grade == "D":
        out.append(Reason("KO_TAX_D", "纳税信用等级为D", "tax credit grade is D"))
    if f.annual_revenue <= 0 or f.amount > f.annual_revenue / 2:
        out.append(
            Reason(
                "KO_AMOUNT_REVENUE",
                "申请金额超过年营业收入的一半",
                "amount asked exceeds half of annual revenue",
            )
        )
    return out


class PointsPolicy:
    """The transparent points score with knock-outs (a ``CreditAssessor``)."""

    name = POLICY_VERSION

    def __init__(
        self, characteristics: Sequence[Characteristic] = CHARACTERISTICS, top_reasons: int = 3
    ) -> None:
        self.characteristics = tuple(characteristics)
        self.top_reasons = top_reasons

    def assess(self, facts: ApplicationFacts) -> CreditAssessment:
        score = BASE_POINTS
        lost: list[Reason] = []
        for c in self.characteristics:
            band = c.band(facts)
            score += band.points
            if band.points < c.best:
                lost.append(
                    Reason(
                        f"PTS_{c.code.upper()}",
                        f"{c.name_zh}（{band.label}）得分低于最佳档",
                        f"{c.name_en} ({band.label}) scored below its best band",
                        c.best - band.points,
                    )
                )
        lost.sort(key=lambda r: (-r.points_lost, r.code))
        ko = knockouts(facts)
        grade = next((g for g, cut in GRADE_CUTS if score >= cut), None)
        refer: list[Reason] = []
        if facts.uscc_needs_verification:
            refer.append(USCC_VERIFICATION)
        if grade is None and score >= REFER_FROM:
            refer.append(
                Reason(
                    "REFER_SCORE",
                    "评分处于人工复核区间",
                    "score is in the band reviewed by a person",
                )
            )
        return CreditAssessment(
            score,
            grade,
            tuple(ko),
            tuple(refer),
            tuple(lost[: self.top_reasons]),
            POLICY_VERSION,
        )
