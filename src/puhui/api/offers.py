"""``/v1/offers``: read an offer (APR first, with the full schedule) and accept it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from puhui.api.context import Partner, platform_of
from puhui.api.schemas import DecimalString, ResponseModel, StrictModel
from puhui.api.time import Now
from puhui.domain.pricing import percent
from puhui.origination.accept import accept_offer
from puhui.origination.views import OfferView, offer_view

router = APIRouter(prefix="/v1/offers", tags=["offers"])


class OfferOut(ResponseModel):
    """Field order is deliberate: the APR is the first and headline rate (PBOC 〔2021〕 No. 3)."""

    apr: str = Field(description="年化利率 APR, percent, by IRR over all costs — the headline")
    disclosure: str
    id: str
    application_id: str
    amount: DecimalString
    term_months: int
    repayment_method: str
    upfront_fee: DecimalString
    total_interest: DecimalString
    total_cost: DecimalString
    secondary_rates: dict[str, str] = Field(
        description="Other rates, for reference only; never shown larger than the APR"
    )
    day_count: str
    expires_at: datetime
    accepted_at: datetime | None
    schedule: list[dict[str, Any]]


def offer_out(v: OfferView) -> OfferOut:
    return OfferOut(
        apr=f"{v.apr_percent}%",
        disclosure=v.disclosure,
        id=v.id,
        application_id=v.application_id,
        amount=v.amount,
        term_months=v.term_months,
        repayment_method=v.repayment_method,
        upfront_fee=v.upfront_fee,
        total_interest=v.total_interest,
        total_cost=v.total_cost,
        secondary_rates={"nominal_annual_interest_rate": f"{percent(v.annual_rate)}%"},
        day_count=v.day_count,
        expires_at=v.expires_at,
        accepted_at=v.accepted_at,
        schedule=v.schedule,
    )


@router.get("/{offer_id}", response_model=OfferOut)
def get(offer_id: str, request: Request, partner: Partner) -> OfferOut:
    p = platform_of(request)
    return offer_out(
        offer_view(p.uow(partner.actor), institution_id=partner.institution_id, offer_id=offer_id)
    )


class AcceptedOut(StrictModel):
    offer_id: str
    application_id: str
    loan_id: str
    contract_digest: str


@router.post(
    "/{offer_id}/accept",
    response_model=AcceptedOut,
    summary="Accept the offer: contracts the loan (click-wrap, digest of the terms)",
)
def accept(
    offer_id: str,
    request: Request,
    partner: Partner,
    now: Now,
) -> AcceptedOut:
    p = platform_of(request)
    r = accept_offer(
        p.uow(partner.actor), institution_id=partner.institution_id, offer_id=offer_id, at=now
    )
    return AcceptedOut(
        offer_id=r.offer_id,
        application_id=r.application_id,
        loan_id=r.loan_id,
        contract_digest=r.contract_digest,
    )
