"""``/v1/loans``: disburse (exactly once), read the loan and its schedule."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Request
from pydantic import Field

from puhui.api.context import Partner, platform_of
from puhui.api.schemas import DecimalString, StrictModel
from puhui.api.time import Now
from puhui.domain.pricing import percent
from puhui.origination.disburse import disburse, load_loan

router = APIRouter(prefix="/v1/loans", tags=["loans"])


class DisburseIn(StrictModel):
    disbursement_ref: str = Field(
        max_length=64,
        description="Your payment reference; a retry with the same "
        "reference returns the first result",
    )


class DisbursedOut(StrictModel):
    loan_id: str
    disbursement_ref: str
    disbursed_at: datetime
    amount: DecimalString
    net_amount: DecimalString
    first_due_date: date


@router.post("/{loan_id}/disburse", response_model=DisbursedOut)
def disburse_loan(
    loan_id: str, body: DisburseIn, request: Request, partner: Partner, now: Now
) -> DisbursedOut:
    p = platform_of(request)
    r = disburse(
        p.uow(partner.actor),
        institution_id=partner.institution_id,
        loan_id=loan_id,
        disbursement_ref=body.disbursement_ref,
        at=now,
    )
    return DisbursedOut(
        loan_id=r.loan_id,
        disbursement_ref=r.disbursement_ref,
        disbursed_at=r.disbursed_at,
        amount=r.amount,
        net_amount=r.net_amount,
        first_due_date=r.first_due_date,
    )


class InstalmentOut(StrictModel):
    number: int
    due_date: date
    principal: DecimalString
    interest: DecimalString
    fee: DecimalString
    penalty: DecimalString
    paid_principal: DecimalString
    paid_interest: DecimalString
    paid_fee: DecimalString
    paid_penalty: DecimalString
    settled_on: date | None


class LoanOut(StrictModel):
    apr: str
    id: str
    application_id: str
    state: str
    principal: DecimalString
    outstanding_principal: DecimalString
    term_months: int
    repayment_method: str
    contract_digest: str | None
    disbursed_at: datetime | None
    schedule: list[InstalmentOut]


@router.get("/{loan_id}", response_model=LoanOut)
def get(loan_id: str, request: Request, partner: Partner) -> LoanOut:
    p = platform_of(request)
    with p.uow(partner.actor) as uow:
        loan = load_loan(uow, partner.institution_id, loan_id)
        lines = uow.loans.schedule(loan.id)
        return LoanOut(
            apr=f"{percent(loan.apr)}%",
            id=loan.id,
            application_id=loan.application_id,
            state=loan.state,
            principal=loan.principal,
            outstanding_principal=loan.outstanding_principal,
            term_months=loan.term_months,
            repayment_method=loan.repayment_method,
            contract_digest=loan.contract_digest,
            disbursed_at=loan.disbursed_at,
            schedule=[
                InstalmentOut(
                    number=ln.number,
                    due_date=ln.due_date,
                    principal=ln.principal,
                    interest=ln.interest,
                    fee=ln.fee,
                    penalty=ln.penalty,
                    paid_principal=ln.paid_principal,
                    paid_interest=ln.paid_interest,
                    paid_fee=ln.paid_fee,
                    paid_penalty=ln.paid_penalty,
                    settled_on=ln.settled_on,
                )
                for ln in lines
            ],
        )
