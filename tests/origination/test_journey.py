"""The origination journey at the use-case level: decide, offer, accept, disburse — on both DBs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from puhui.domain.errors import InvalidTransition, ValidationError
from puhui.domain.pricing import percent
from puhui.origination.accept import accept_offer
from puhui.origination.credit_model import ModelCreditAssessor
from puhui.origination.decide import decide_application
from puhui.origination.disburse import disburse
from puhui.origination.institutions import register_institution
from puhui.origination.product import DEFAULT_PRODUCT
from puhui.origination.reviews import (
    cancel_application,
    decide_review,
    explain,
    open_tasks,
    request_human_review,
)
from puhui.origination.submit import submit_application
from puhui.privacy import audit
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.risk import bundled
from puhui.risk.serving import LiveModel, LivePair
from puhui.risk.strategy import DecisionStrategy
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

AT = datetime(2026, 11, 28, 2, 30, tzinfo=UTC)


def approvable(**overrides: Any) -> dict[str, Any]:
    """A 46-year-old's established business asking for 8 % of its revenue."""
    base = factories.application(
        legal_representative={"id_number": factories.id_number("19800101")}
    )
    for key, value in overrides.items():
        if isinstance(value, dict):
            base[key].update(value)
        else:
            base[key] = value
    return base


class Journey:
    def __init__(self, db: Database, vault: Vault, indexer: BlindIndexer) -> None:
        self.db, self.vault, self.indexer = db, vault, indexer
        with self.uow() as uow:
            inst = uow.institutions.by_code("DEMO_BANK")
            assert inst is not None
            self.institution_id = inst.id

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db.sessions, actor="test")

    def submit(self, raw: dict[str, Any]) -> str:
        return submit_application(self.uow(), self.vault, self.indexer, raw).application_id

    def decide(self, app_id: str, **kw: Any) -> Any:
        return decide_application(
            self.uow(), institution_id=self.institution_id, application_id=app_id, at=AT, **kw
        )


@pytest.fixture
def journey(database: Database, institution: str, vault: Vault, indexer: BlindIndexer) -> Journey:
    return Journey(database, vault, indexer)


def test_approve_accept_disburse_end_to_end(journey: Journey, database: Database) -> None:
    app_id = journey.submit(approvable())
    result = journey.decide(app_id)
    assert result.outcome == "approved", result.reasons
    assert result.grade in ("A", "B") and result.offer_id
    with database.sessions() as s:
        offer = s.get(m.Offer, result.offer_id)
        assert offer is not None
        assert offer.amount == Decimal("300000.00")
        assert offer.upfront_fee == Decimal("1500.00")
        assert offer.apr > offer.annual_rate  # the fee is in the APR
        assert offer.total_cost == offer.total_interest + offer.upfront_fee
        assert offer.expires_at == AT + DEFAULT_PRODUCT.offer_validity
    accepted = accept_offer(
        journey.uow(),
        institution_id=journey.institution_id,
        offer_id=result.offer_id,
        at=AT + timedelta(hours=1),
    )
    again = accept_offer(
        journey.uow(),
        institution_id=journey.institution_id,
        offer_id=result.offer_id,
        at=AT + timedelta(hours=2),
    )
    assert again.replayed and again.loan_id == accepted.loan_id
    assert len(accepted.contract_digest) == 64
    d = disburse(
        journey.uow(),
        institution_id=journey.institution_id,
        loan_id=accepted.loan_id,
        disbursement_ref="PAY-1",
        at=AT + timedelta(days=1),
    )
    assert d.net_amount == Decimal("298500.00") and not d.replayed
    with database.sessions() as s:
        loan = s.get(m.Loan, accepted.loan_id)
        app = s.get(m.Application, app_id)
        assert loan is not None and app is not None
        assert (loan.state, app.state) == ("active", "contracted")
        lines = s.scalars(
            select(m.ScheduleLine)
            .where(m.ScheduleLine.loan_id == loan.id)
            .order_by(m.ScheduleLine.number)
        ).all()
        assert len(lines) == 12 and sum(ln.principal for ln in lines) == loan.principal
        assert lines[0].due_date.isoformat() == "2026-12-29"  # a month after disbursement
        types = [e.event_type for e in s.scalars(select(m.Event).order_by(m.Event.id))]
        journey_events = [
            "application.submitted",
            "application.approved",
            "offer.created",
            "offer.accepted",
            "loan.contracted",
            "loan.disbursed",
        ]
        assert [t for t in types if t in journey_events] == journey_events
        assert audit.verify(s).ok


def test_disbursement_happens_once_under_concurrent_requests(
    journey: Journey, database: Database
) -> None:
    result = journey.decide(journey.submit(approvable()))
    loan_id = accept_offer(
        journey.uow(), institution_id=journey.institution_id, offer_id=result.offer_id, at=AT
    ).loan_id
    outcomes: list[Any] = []

    def go(ref: str) -> None:
        try:
            outcomes.append(
                disburse(
                    journey.uow(),
                    institution_id=journey.institution_id,
                    loan_id=loan_id,
                    disbursement_ref=ref,
                    at=AT,
                )
            )
        except InvalidTransition as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=go, args=(f"PAY-{i % 2}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    firsts = [o for o in outcomes if not isinstance(o, Exception) and not o.replayed]
    assert len(firsts) == 1
    winner = firsts[0].disbursement_ref
    for o in outcomes:
        if isinstance(o, Exception):
            assert "already disbursed" in str(o)
        else:
            assert o.disbursement_ref == winner
    with database.sessions() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(m.Event)
                .where(m.Event.event_type == "loan.disbursed")
            )
            == 1
        )
        assert s.scalar(select(func.count()).select_from(m.ScheduleLine)) == 12


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"enterprise": {"tax_grade": "D"}}, "KO_TAX_D"),
        ({"enterprise": {"registered_on": "2026-06-01"}}, "KO_YEARS"),
        ({"amount": "2000000.00"}, "KO_AMOUNT_REVENUE"),
        ({"legal_representative": {"id_number": factories.id_number("19500101")}}, "KO_AGE"),
    ],
)
def test_knock_outs_decline_with_their_reason(
    journey: Journey, overrides: dict[str, Any], code: str
) -> None:
    result = journey.decide(journey.submit(approvable(**overrides)))
    assert result.outcome == "declined" and result.offer_id is None
    assert code in [r.code for r in result.reasons]


def test_rate_above_the_legal_cap_is_declined_not_repriced(
    journey: Journey, database: Database
) -> None:
    register_institution(
        UnitOfWork(database.sessions),
        code="LENDER_P",
        name="民间借贷",
        institution_type="private_lender",
    )
    # a strategy whose risk-based price (LPR + 1.5 % + 10 % margin + PD × LGD) breaks the cap
    greedy = ModelCreditAssessor(
        LivePair(LiveModel("bundled", "bundled", bundled.load()), None),
        strategy=DecisionStrategy(margin=Decimal("0.10")),
    )
    with journey.uow() as uow:
        inst = uow.institutions.by_code("LENDER_P")
        assert inst is not None
        journey.institution_id = inst.id
    app_id = journey.submit(approvable(institution_code="LENDER_P"))
    result = journey.decide(app_id, credit=greedy)
    assert result.outcome == "declined"
    assert [r.code for r in result.reasons] == ["KO_RATE_CAP"]  # 4 × 3.00 % LPR = 12 %


def test_unverified_uscc_is_referred_and_a_reviewer_decides_with_who_and_why(
    journey: Journey, database: Database
) -> None:
    app_id = journey.submit(approvable(enterprise={"uscc": "91350100M0001TGQXM"}))
    result = journey.decide(app_id)
    assert result.outcome == "referred" and result.review_task_id
    assert "REFER_USCC" in [r.code for r in result.reasons]
    tasks = open_tasks(journey.uow(), journey.institution_id)
    assert [t.id for t in tasks] == [result.review_task_id]
    with pytest.raises(ValidationError) as caught:
        decide_review(
            journey.uow(),
            institution_id=journey.institution_id,
            task_id=result.review_task_id,
            reviewer="",
            outcome="maybe",
            note="",
            at=AT,
        )
    assert set(caught.value.rules) == {"review.outcome", "review.reviewer", "review.note"}
    done = decide_review(
        journey.uow(),
        institution_id=journey.institution_id,
        task_id=result.review_task_id,
        reviewer="li.si",
        outcome="approve",
        note="registry confirms the code",
        at=AT,
    )
    assert done.outcome == "approved" and done.offer_id
    with database.sessions() as s:
        d = s.scalars(select(m.Decision).where(m.Decision.automated.is_(False))).one()
        assert d.decided_by == "li.si" and "registry confirms" in d.reasons[0]["text_en"]
    with pytest.raises(ValidationError) as caught:
        decide_review(
            journey.uow(),
            institution_id=journey.institution_id,
            task_id=result.review_task_id,
            reviewer="x",
            outcome="decline",
            note="again",
            at=AT,
        )
    assert caught.value.rules == ("review.closed",)


def test_explanation_and_human_review_of_an_automated_decline(journey: Journey) -> None:
    app_id = journey.submit(approvable(enterprise={"tax_grade": "D"}))
    journey.decide(app_id)
    why = explain(journey.uow(), institution_id=journey.institution_id, application_id=app_id)
    assert why.automated and why.human_review_available and why.state == "declined"
    assert why.reasons[0]["code"] == "KO_TAX_D" and "纳税" in why.reasons[0]["text_zh"]
    task_id = request_human_review(
        journey.uow(),
        institution_id=journey.institution_id,
        application_id=app_id,
        reason="grade was corrected in 2026",
        requested_by="applicant",
        at=AT,
    )
    done = decide_review(
        journey.uow(),
        institution_id=journey.institution_id,
        task_id=task_id,
        reviewer="wang.wu",
        outcome="decline",
        note="grade D confirmed",
        at=AT,
    )
    assert done.outcome == "declined"
    after = explain(journey.uow(), institution_id=journey.institution_id, application_id=app_id)
    assert not after.automated and not after.human_review_available
    with pytest.raises(InvalidTransition):
        request_human_review(
            journey.uow(),
            institution_id=journey.institution_id,
            application_id=app_id,
            reason="again",
            requested_by="applicant",
            at=AT,
        )


def test_other_tenants_see_nothing(journey: Journey, database: Database) -> None:
    app_id = journey.submit(approvable())
    result = journey.decide(app_id)
    other = register_institution(
        UnitOfWork(database.sessions), code="OTHER", name="其他银行", institution_type="bank"
    )
    for call in (
        lambda: decide_application(
            journey.uow(), institution_id=other.id, application_id=app_id, at=AT
        ),
        lambda: explain(journey.uow(), institution_id=other.id, application_id=app_id),
        lambda: accept_offer(
            journey.uow(), institution_id=other.id, offer_id=result.offer_id, at=AT
        ),
    ):
        with pytest.raises(ValidationError) as caught:
            call()
        assert caught.value.rules[0].endswith("not_found")


def test_expired_offer_is_refused_and_expires_the_application(
    journey: Journey, database: Database
) -> None:
    app_id = journey.submit(approvable())
    result = journey.decide(app_id)
    with pytest.raises(ValidationError) as caught:
        accept_offer(
            journey.uow(),
            institution_id=journey.institution_id,
            offer_id=result.offer_id,
            at=AT + timedelta(days=8),
        )
    assert caught.value.rules == ("offer.expired",)
    with database.sessions() as s:
        app = s.get(m.Application, app_id)
        assert app is not None and app.state == "expired"


def test_deciding_twice_is_an_error_and_cancel_closes_open_tasks(journey: Journey) -> None:
    app_id = journey.submit(approvable(enterprise={"uscc": "91350100M0001TGQXM"}))
    journey.decide(app_id)
    with pytest.raises(InvalidTransition):
        journey.decide(app_id)
    assert (
        cancel_application(
            journey.uow(), institution_id=journey.institution_id, application_id=app_id, at=AT
        )
        == "cancelled"
    )
    assert open_tasks(journey.uow(), journey.institution_id) == []


def test_apr_is_the_headline_rate_of_the_offer(journey: Journey, database: Database) -> None:
    result = journey.decide(journey.submit(approvable()))
    with database.sessions() as s:
        offer = s.get(m.Offer, result.offer_id)
        assert offer is not None
        event = s.scalars(select(m.Event).where(m.Event.event_type == "offer.created")).one()
        assert event.payload["apr_percent"] == str(percent(offer.apr))
