"""The points policy, rule by rule (the anti-fraud rules are tested in tests/fraud)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from puhui.origination.assessment import ApplicationFacts
from puhui.origination.policy import BASE_POINTS, PointsPolicy

FACTS = ApplicationFacts(
    application_id="app_x",
    institution_id="ins_x",
    business_date=date(2026, 11, 28),
    amount=Decimal("300000.00"),
    term_months=12,
    repayment_method="equal_installment",
    applicant_age=46,
    years_in_business=Decimal("8.70"),
    annual_revenue=Decimal("3600000.00"),
    tax_grade="B",
    industry_code="I65",
    employees=25,
    uscc_needs_verification=False,
)


def test_points_are_the_sum_of_the_documented_bands() -> None:
    result = PointsPolicy().assess(FACTS)
    # years 5-10: 50, tax B: 50, revenue 2-10m: 40, amount 8.3 % ≤10 %: 60, age 26-55: 30,
    # employees 10-49: 20, industry I: 15
    assert result.score == BASE_POINTS + 50 + 50 + 40 + 60 + 30 + 20 + 15 == 765
    assert result.grade == "A" and not result.knockouts and not result.refer
    assert [r.code for r in result.reasons] == [
        "PTS_TAX_GRADE",
        "PTS_ANNUAL_REVENUE",  # ties (10 points) in code order
        "PTS_YEARS_IN_BUSINESS",
    ]
    assert [r.points_lost for r in result.reasons] == [30, 10, 10]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"applicant_age": 21}, "KO_AGE"),
        ({"applicant_age": 66}, "KO_AGE"),
        ({"years_in_business": Decimal("0.99")}, "KO_YEARS"),
        ({"tax_grade": "D"}, "KO_TAX_D"),
        ({"amount": Decimal("1800000.01")}, "KO_AMOUNT_REVENUE"),
        ({"annual_revenue": Decimal("0")}, "KO_AMOUNT_REVENUE"),
    ],
)
def test_each_knock_out(change: dict[str, Any], code: str) -> None:
    assert [k.code for k in PointsPolicy().assess(replace(FACTS, **change)).knockouts] == [code]


def test_boundaries_do_not_knock_out() -> None:
    for change in (
        {"applicant_age": 22},
        {"applicant_age": 65},
        {"years_in_business": Decimal("1")},
        {"amount": Decimal("1800000.00")},
    ):
        assert PointsPolicy().assess(replace(FACTS, **change)).knockouts == ()


def test_grades_refer_band_and_decline_band() -> None:
    weak = replace(
        FACTS,
        years_in_business=Decimal("1.5"),
        tax_grade="C",
        annual_revenue=Decimal("400000"),
        amount=Decimal("150000"),
        employees=0,
        industry_code="E48",
        applicant_age=24,
    )
    # 500 + 0 + 0 + 0 + 0 (37.5 %) + 10 + 0 + 0 = 510
    assert PointsPolicy().assess(weak).score == 510
    assert PointsPolicy().assess(weak).grade is None
    assert PointsPolicy().assess(weak).refer == ()
    borderline = replace(weak, tax_grade="B", employees=5, applicant_age=30)  # 510+50+10+20=590
    result = PointsPolicy().assess(borderline)
    assert result.score == 590 and result.grade is None
    assert [r.code for r in result.refer] == ["REFER_SCORE"]


def test_unverified_uscc_is_referred() -> None:
    result = PointsPolicy().assess(replace(FACTS, uscc_needs_verification=True))
    assert [r.code for r in result.refer] == ["REFER_USCC"]
