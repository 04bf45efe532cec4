"""Use case: disburse a contracted loan — exactly once.

The loan row is locked (``SELECT … FOR UPDATE``; SQLite's writer lock does the same) and
moved along the loan lifecycle, so a second request finds it already active: with the same
``disbursement_ref`` it gets the first result back (a retry), with another it is refused
(``InvalidTransition``). The unique ``disbursement_ref`` and the row's version column are two
more guards. The repayment schedule is built here, from the real disbursement date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from puhui.domain.clock import business_date, require_aware
from puhui.domain.daycount import DayCount
from puhui.domain.errors import InvalidTransition, ValidationError
from puhui.domain.identifiers import validate_reference
from puhui.domain.lifecycle import LOAN, LoanState
from puhui.domain.schedule import LoanTerms, RepaymentMethod, build_schedule
from puhui.origination.product import DEFAULT_PRODUCT, Product
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class DisbursementResult:
    loan_id: str
    disbursement_ref: str
    disbursed_at: datetime
    amount: Decimal
    net_amount: Decimal
    first_due_date: date
    replayed: bool


def load_loan(uow: UnitOfWork, institution_id: str, loan_id: str, *, lock: bool = False) -> m.Loan:
    q = select(m.Loan).where(m.Loan.id == loan_id, m.Loan.institution_id == institution_id)
    loan = uow.session.scalar(q.with_for_update() if lock else q)
    if loan is None:
        raise ValidationError.single("loan_id", "loan.not_found", "no such loan")
    return loan


def _result(loan: m.Loan, first_due: date, replayed: bool) -> DisbursementResult:
    assert loan.disbursed_at is not None and loan.disbursement_ref is not None
    return DisbursementResult(
        loan.id,
        loan.disbursement_ref,
        loan.disbursed_at,
        loan.principal,
        loan.principal - loan.upfront_fee,
        first_due,
        replayed,
    )


def disburse(
    uow: UnitOfWork,
    *,
    institution_id: str,
    loan_id: str,
    disbursement_ref: str,
    at: datetime,
    product: Product = DEFAULT_PRODUCT,
) -> DisbursementResult:
    at = require_aware(at, "at")
    disbursement_ref = validate_reference(disbursement_ref, "disbursement_ref", "disbursement.ref")
    with uow:
        loan = load_loan(uow, institution_id, loan_id, lock=True)
        if loan.disbursed_at is not None:
            if loan.disbursement_ref == disbursement_ref:
                first = uow.loans.schedule(loan.id)[0].due_date
                return _result(loan, first, replayed=True)
            raise InvalidTransition(
                "loan", loan.state, "disburse", "already disbursed under another reference"
            )
        loan.state = LOAN.apply(LoanState(loan.state), "disburse").value
        terms = LoanTerms(
            principal=loan.principal,
            annual_rate=loan.annual_rate,
            term_months=loan.term_months,
            method=RepaymentMethod(loan.repayment_method),
            start_date=business_date(at),
            day_count=DayCount(loan.day_count),
            first_period=product.first_period,
        )
        schedule = build_schedule(terms)
        uow.loans.add_schedule(
            m.ScheduleLine(
                loan_id=loan.id,
                number=row.number,
                due_date=row.due_date,
                principal=row.principal,
                interest=row.interest,
            )
            for row in schedule.instalments
        )
        loan.disbursed_at = at
        loan.disbursement_ref = disbursement_ref
        loan.outstanding_principal = loan.principal
        uow.flush()
        uow.record_event(
            aggregate_type="loan",
            aggregate_id=loan.id,
            event_type="loan.disbursed",
            institution_id=institution_id,
            purpose="loan_servicing",
            payload={
                "amount": str(loan.principal),
                "net_amount": str(loan.principal - loan.upfront_fee),
                "disbursement_ref": disbursement_ref,
                "first_due_date": schedule.instalments[0].due_date.isoformat(),
                "instalments": len(schedule.instalments),
            },
        )
        try:
            uow.commit()
        except IntegrityError:
            raise ValidationError.single(
                "disbursement_ref",
                "disbursement.ref_used",
                "this reference was already used for another loan's disbursement",
            ) from None
        return _result(loan, schedule.instalments[0].due_date, replayed=False)
