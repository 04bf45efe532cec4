"""The shipped decision policy, rule by rule, and the blind-index signals it reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from puhui.domain.identifiers import luhn_check_digit
from puhui.origination.assessment import ApplicationFacts, FraudOutcome, FraudSignals
from puhui.origination.institutions import register_institution
from puhui.origination.policy import BASE_POINTS, PointsPolicy, VelocityRules
from puhui.origination.signals import fraud_signals
from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

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
    signals=FraudSignals(),
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


@pytest.mark.parametrize(
    ("signals", "outcome", "codes"),
    [
        (FraudSignals(), FraudOutcome.PASS, []),
        (FraudSignals(device_distinct_applicants_7d=4), FraudOutcome.REJECT, ["FR_DEVICE_SHARED"]),
        (FraudSignals(bank_account_other_applicants=3), FraudOutcome.REJECT, ["FR_ACCOUNT_SHARED"]),
        (FraudSignals(mobile_other_applicants=3), FraudOutcome.REJECT, ["FR_MOBILE_SHARED"]),
        (FraudSignals(device_applications_24h=3), FraudOutcome.REVIEW, ["FR_DEVICE_VELOCITY"]),
        (FraudSignals(mobile_other_applicants=1), FraudOutcome.REVIEW, ["FR_MOBILE_REUSED"]),
        (FraudSignals(bank_account_other_applicants=2), FraudOutcome.REVIEW, ["FR_ACCOUNT_REUSED"]),
        (FraudSignals(applicant_applications_30d=4), FraudOutcome.REVIEW, ["FR_REPEAT"]),
        (
            FraudSignals(device_applications_24h=2, applicant_applications_30d=3),
            FraudOutcome.PASS,
            [],
        ),
    ],
)
def test_velocity_rules(signals: FraudSignals, outcome: FraudOutcome, codes: list[str]) -> None:
    result = VelocityRules().assess(replace(FACTS, signals=signals))
    assert result.outcome is outcome and [h.code for h in result.hits] == codes


T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def _submit(db: Database, vault: Vault, indexer: BlindIndexer, n: int, **person: str) -> str:
    raw = factories.application(
        external_ref=f"R{n}",
        submitted_at=T0 + timedelta(hours=n),
        legal_representative={"id_number": factories.id_number(f"1980010{n + 1}"), **person},
        enterprise={"uscc": "91110108551385082Q"},
    )
    return submit_application(UnitOfWork(db.sessions), vault, indexer, raw).application_id


def test_signals_count_sharing_across_people_and_institutions(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    register_institution(
        UnitOfWork(database.sessions), code="OTHER", name="其他银行", institution_type="bank"
    )
    card = factories.BANK_CARD
    _submit(database, vault, indexer, 0, mobile="13900000001", bank_account=card)
    own_card = "622202020011223355" + luhn_check_digit("622202020011223355")
    _submit(database, vault, indexer, 1, mobile="13900000001", bank_account=own_card)
    other = factories.application(
        institution_code="OTHER",
        external_ref="X1",
        submitted_at=T0 + timedelta(hours=2),
        legal_representative={
            "id_number": factories.id_number("19800105"),
            "mobile": "13900000001",
            "bank_account": card,
        },
    )
    submit_application(UnitOfWork(database.sessions), vault, indexer, other)
    last = _submit(database, vault, indexer, 3, mobile="13900000001", bank_account=card)
    with UnitOfWork(database.sessions) as uow:
        app = uow.applications.get(last)
        assert app is not None
        applicant = uow.applicants.get(app.applicant_id)
        assert applicant is not None
        s = fraud_signals(uow.session, app, applicant)
    # all four share the factory's device; four different people used it within 7 days
    assert s.device_applications_24h == 4 and s.device_distinct_applicants_7d == 4
    assert s.mobile_other_applicants == 3  # three other people, one at another institution
    assert s.bank_account_other_applicants == 2
    assert s.applicant_applications_30d == 1
