"""``/v1/repayments`` and a loan's servicing: repayments, prepayments, early settlement,
status and payoff quotes (rules in ``servicing/``, documented in docs/servicing.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from puhui.api.context import Partner, platform_of
from puhui.api.schemas import DecimalString, StrictModel
from puhui.api.time import Now
from puhui.domain.clock import business_date
from puhui.servicing.posting import RepaymentReceipt
from puhui.servicing.prepayment import payoff_quote, prepay, settle_early
from puhui.servicing.repayments import post_repayment
from puhui.servicing.status import loan_status

router = APIRouter(prefix="/v1", tags=["repayments"])


class RepaymentIn(StrictModel):
    loan_id: str
    external_ref: str = Field(max_length=64, description="Your payment reference (dedupe key)")
    amount: DecimalString
    received_at: datetime | None = Field(
        default=None, description="Value time of the payment; defaults to now"
    )


class ReceiptOut(StrictModel):
    repayment_id: str
    loan_id: str
    external_ref: str
    kind: str
    amount: DecimalString
    business_date: date
    allocation: list[dict[str, Any]]
    outstanding_principal: DecimalString
    state: str
    days_past_due: int
    replayed: bool


def _receipt(r: RepaymentReceipt) -> ReceiptOut:
    return ReceiptOut(
        repayment_id=r.repayment_id,
        loan_id=r.loan_id,
        external_ref=r.external_ref,
        kind=r.kind,
        amount=r.amount,
        business_date=r.business_date,
        allocation=[line.as_json() for line in r.lines],
        outstanding_principal=r.outstanding_principal,
        state=r.state,
        days_past_due=r.days_past_due,
        replayed=r.replayed,
    )


@router.post(
    "/repayments",
    response_model=ReceiptOut,
    status_code=201,
    summary="Post a repayment (allocated penalty → fee → interest → principal)",
)
def repay(body: RepaymentIn, request: Request, partner: Partner, now: Now) -> ReceiptOut:
    p = platform_of(request)
    return _receipt(
        post_repayment(
            p.uow(partner.actor),
            institution_id=partner.institution_id,
            loan_id=body.loan_id,
            external_ref=body.external_ref,
            amount=body.amount,
            received_at=body.received_at or now,
        )
    )


class PrepaymentIn(StrictModel):
    external_ref: str = Field(max_length=64)
    amount: DecimalString
    mode: str = Field(description="reduce_payment (keep the term) or reduce_term")


@router.post(
    "/loans/{loan_id}/prepayments",
    response_model=ReceiptOut,
    status_code=201,
    summary="Partial prepayment; the remaining schedule is recomputed",
)
def prepayment(
    loan_id: str, body: PrepaymentIn, request: Request, partner: Partner, now: Now
) -> ReceiptOut:
    p = platform_of(request)
    return _receipt(
        prepay(
            p.uow(partner.actor),
            institution_id=partner.institution_id,
            loan_id=loan_id,
            external_ref=body.external_ref,
            amount=body.amount,
            received_at=now,
            mode=body.mode,
        )
    )


class SettlementIn(StrictModel):
    external_ref: str = Field(max_length=64)
    amount: DecimalString = Field(description="Must equal today's payoff quote")


@router.post(
    "/loans/{loan_id}/settlement",
    response_model=ReceiptOut,
    status_code=201,
    summary="Settle the loan early with today's payoff amount",
)
def settlement(
    loan_id: str, body: SettlementIn, request: Request, partner: Partner, now: Now
) -> ReceiptOut:
    p = platform_of(request)
    return _receipt(
        settle_early(
            p.uow(partner.actor),
            institution_id=partner.institution_id,
            loan_id=loan_id,
            external_ref=body.external_ref,
            amount=body.amount,
            received_at=now,
        )
    )


class StatusOut(StrictModel):
    loan_id: str
    state: str
    as_of: date
    outstanding_principal: DecimalString
    due_now: dict[str, str]
    days_past_due: int
    bucket: str
    next_due_date: date | None
    next_due_amount: DecimalString | None
    payoff: DecimalString
    remaining_instalments: int


AsOf = Annotated[date | None, Query(description="Business date (Asia/Shanghai); default today")]


@router.get(
    "/loans/{loan_id}/status",
    response_model=StatusOut,
    summary="Amounts due, days past due and delinquency bucket as of a business date",
)
def status(
    loan_id: str, request: Request, partner: Partner, now: Now, as_of: AsOf = None
) -> StatusOut:
    p = platform_of(request)
    s = loan_status(
        p.uow(partner.actor),
        institution_id=partner.institution_id,
        loan_id=loan_id,
        as_of=as_of or business_date(now),
    )
    return StatusOut(
        loan_id=s.loan_id,
        state=s.state,
        as_of=s.as_of,
        outstanding_principal=s.outstanding_principal,
        due_now={k: str(v) for k, v in s.due_now.as_json().items()},
        days_past_due=s.days_past_due,
        bucket=s.bucket,
        next_due_date=s.next_due_date,
        next_due_amount=s.next_due_amount,
        payoff=s.payoff,
        remaining_instalments=s.remaining_instalments,
    )


class PayoffOut(StrictModel):
    loan_id: str
    as_of: date
    total: DecimalString
    principal: DecimalString
    interest: DecimalString
    fee: DecimalString
    penalty: DecimalString


@router.get(
    "/loans/{loan_id}/payoff",
    response_model=PayoffOut,
    summary="What settles the loan on a business date (valid that day only)",
)
def payoff(
    loan_id: str, request: Request, partner: Partner, now: Now, as_of: AsOf = None
) -> PayoffOut:
    p = platform_of(request)
    q = payoff_quote(
        p.uow(partner.actor),
        institution_id=partner.institution_id,
        loan_id=loan_id,
        as_of=as_of or business_date(now),
    )
    return PayoffOut(
        loan_id=q.loan_id,
        as_of=q.as_of,
        total=q.total,
        principal=q.principal,
        interest=q.interest,
        fee=q.fee,
        penalty=q.penalty,
    )
