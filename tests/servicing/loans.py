"""Disbursed loans for tests: a Loan row and its ScheduleLine rows from ``build_schedule``.

Origination owns disbursement; servicing tests (and anyone else's) need a loan without going
through it. ``make_loan`` submits an application through the real use case (for the
institution, applicant and enterprise rows the foreign keys need), adds an offer, and writes
the loan directly with the ORM in state ``active`` (or as asked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select

from puhui.domain.clock import BUSINESS_TZ
from puhui.domain.schedule import LoanTerms, Schedule, build_schedule
from puhui.origination.institutions import register_institution
from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

START = date(2026, 1, 15)
"""Default disbursement date: instalments fall due on the 15th from 2026-02-15."""


@dataclass(frozen=True)
class LoanRef:
    id: str
    institution_id: str
    schedule: Schedule


def at(day: date, hour: int = 10) -> datetime:
    """``hour`` o'clock in Beijing on ``day``, as a UTC instant."""
    return datetime.combine(day, time(hour), tzinfo=BUSINESS_TZ).astimezone(UTC)


def other_institution(db: Database, code: str = "OTHER_BANK") -> str:
    """Register a second institution (a tenant); returns its code."""
    register_institution(
        UnitOfWork(db.sessions), code=code, name="另一家银行", institution_type="bank"
    )
    return code


def institution_id(db: Database, code: str = "DEMO_BANK") -> str:
    with db.sessions() as s:
        found = s.scalar(select(m.Institution.id).where(m.Institution.code == code))
        assert found is not None
        return found


def make_loan(
    db: Database,
    vault: Vault,
    indexer: BlindIndexer,
    *,
    ref: str = "LOAN-0001",
    institution_code: str = "DEMO_BANK",
    principal: str = "12000.00",
    annual_rate: str = "0.06",
    term_months: int = 12,
    method: str = "equal_installment",
    day_count: str = "30/360",
    penalty_rate: str = "0.09",
    start: date = START,
    allocation_order: str = "penalty,fee,interest,principal",
    state: str = "active",
    fee: str = "0.00",
) -> LoanRef:
    """A disbursed loan with its schedule; ``fee`` is a service fee on every instalment."""
    receipt = submit_application(
        UnitOfWork(db.sessions, actor="test"),
        vault,
        indexer,
        factories.application(
            institution_code=institution_code,
            external_ref=ref,
            amount=principal,
            term_months=term_months,
            repayment_method=method,
        ),
    )
    schedule = build_schedule(
        LoanTerms(
            principal=Decimal(principal),
            annual_rate=Decimal(annual_rate),
            term_months=term_months,
            method=method,  # type: ignore[arg-type]  # LoanTerms coerces enum values
            start_date=start,
            day_count=day_count,  # type: ignore[arg-type]
        )
    )
    disbursed_at = at(start)
    with db.sessions() as s:
        app = s.get(m.Application, receipt.application_id)
        assert app is not None
        offer = m.Offer(
            application_id=app.id,
            amount=Decimal(principal),
            annual_rate=Decimal(annual_rate),
            apr=Decimal(annual_rate),
            term_months=term_months,
            repayment_method=method,
            day_count=day_count,
            indicative_start=start,
            total_interest=schedule.total_interest,
            total_cost=schedule.total_interest,
            expires_at=disbursed_at + timedelta(days=7),
        )
        s.add(offer)
        s.flush()
        loan = m.Loan(
            institution_id=app.institution_id,
            application_id=app.id,
            offer_id=offer.id,
            applicant_id=app.applicant_id,
            principal=Decimal(principal),
            annual_rate=Decimal(annual_rate),
            apr=Decimal(annual_rate),
            term_months=term_months,
            repayment_method=method,
            day_count=day_count,
            state=state,
            outstanding_principal=Decimal(principal),
            penalty_rate=Decimal(penalty_rate),
            allocation_order=allocation_order,
            contracted_at=disbursed_at - timedelta(hours=1),
            disbursed_at=disbursed_at,
        )
        s.add(loan)
        s.flush()
        s.add_all(
            m.ScheduleLine(
                loan_id=loan.id,
                number=row.number,
                due_date=row.due_date,
                principal=row.principal,
                interest=row.interest,
                fee=Decimal(fee),
            )
            for row in schedule.instalments
        )
        s.commit()
        return LoanRef(loan.id, loan.institution_id, schedule)


def loan_row(db: Database, loan_id: str) -> m.Loan:
    with db.sessions() as s:
        loan = s.get(m.Loan, loan_id)
        assert loan is not None
        return loan


def schedule_lines(db: Database, loan_id: str) -> list[m.ScheduleLine]:
    with db.sessions() as s:
        return list(
            s.scalars(
                select(m.ScheduleLine)
                .where(m.ScheduleLine.loan_id == loan_id)
                .order_by(m.ScheduleLine.number)
            )
        )


def event_types(db: Database, loan_id: str) -> list[str]:
    with db.sessions() as s:
        return list(
            s.scalars(
                select(m.Event.event_type)
                .where(m.Event.aggregate_type == "loan", m.Event.aggregate_id == loan_id)
                .order_by(m.Event.id)
            )
        )


def events(db: Database, loan_id: str) -> list[m.Event]:
    with db.sessions() as s:
        return list(
            s.scalars(
                select(m.Event)
                .where(m.Event.aggregate_type == "loan", m.Event.aggregate_id == loan_id)
                .order_by(m.Event.id)
            )
        )
