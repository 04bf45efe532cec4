"""``/v1/applications``: submit (and decide at once), read, explain, ask for a person, cancel.

A submission is validated by the schema (shape: unknown fields rejected, amounts as decimal
strings) and then by the domain (rules: identifiers, ranges, consent), is recorded, and is
decided in the same request: the response carries the decision with its reasons and, when
approved, the offer with its APR. Identifiers come back masked, never in the clear.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from puhui.api.context import Partner, PartnerContext, platform_of
from puhui.api.offers import OfferOut, offer_out
from puhui.api.schemas import DecimalString, ResponseModel, StrictModel
from puhui.api.time import Now
from puhui.domain.lifecycle import ApplicationState
from puhui.origination.decide import decide_application
from puhui.origination.reviews import cancel_application, explain, request_human_review
from puhui.origination.submit import submit_application
from puhui.origination.views import ApplicationView, application_view, decided_view
from puhui.privacy.masking import mask_id_number, mask_mobile, mask_name

router = APIRouter(prefix="/v1/applications", tags=["applications"])


class ConsentIn(StrictModel):
    purpose: str = Field(examples=["credit_assessment"])
    scope: list[str] = Field(examples=[["identity", "contact", "financial_account", "enterprise"]])
    text_version: str = Field(max_length=32, examples=["2026.1"])
    channel: str = Field(examples=["app"])


class EnterpriseIn(StrictModel):
    name: str = Field(max_length=200)
    uscc: str = Field(max_length=32, description="统一社会信用代码 (GB 32100)")
    industry_code: str = Field(max_length=8, description="GB/T 4754 code, e.g. I65")
    division_code: str = Field(max_length=6, description="GB/T 2260 division of registration")
    registered_on: date
    annual_revenue: DecimalString
    tax_grade: str = Field(max_length=1, description="A, B, M, C or D")
    employees: int | None = Field(default=None, ge=0, strict=True)


class PersonIn(StrictModel):
    name: str = Field(max_length=40)
    id_number: str = Field(max_length=32, description="居民身份证号 (GB 11643)")
    mobile: str = Field(max_length=20)
    bank_account: str = Field(max_length=32)
    address: str = Field(max_length=200)


class ApplicationIn(StrictModel):
    external_ref: str = Field(max_length=64, description="Your reference; unique per institution")
    enterprise: EnterpriseIn
    legal_representative: PersonIn
    amount: DecimalString
    term_months: int = Field(strict=True)
    repayment_method: str = Field(examples=["equal_installment"])
    purpose: str = Field(max_length=200)
    channel: str = "api"
    device_id: str | None = Field(default=None, max_length=128)
    ip: str | None = Field(default=None, max_length=45)
    consents: list[ConsentIn] = Field(max_length=10)


class DecisionOut(ResponseModel):
    outcome: str
    automated: bool
    decided_by: str
    score: int | None
    grade: str | None
    reasons: list[dict[str, Any]]
    decided_at: datetime


class ApplicationOut(ResponseModel):
    id: str
    external_ref: str
    state: str
    amount: DecimalString
    term_months: int
    repayment_method: str
    submitted_at: datetime
    decision: DecisionOut | None
    offer: OfferOut | None
    loan_id: str | None
    review_task_id: str | None
    applicant: dict[str, str] | None = Field(
        default=None, description="Echo of the submitted person, masked"
    )


def _out(view: ApplicationView, applicant: dict[str, str] | None = None) -> ApplicationOut:
    return ApplicationOut(
        id=view.id,
        external_ref=view.external_ref,
        state=view.state,
        amount=view.amount,
        term_months=view.term_months,
        repayment_method=view.repayment_method,
        submitted_at=view.submitted_at,
        decision=None if view.decision is None else DecisionOut(**view.decision),
        offer=None if view.offer is None else offer_out(view.offer),
        loan_id=view.loan_id,
        review_task_id=view.open_review_task_id,
        applicant=applicant,
    )


@router.post(
    "",
    status_code=201,
    response_model=ApplicationOut,
    summary="Submit an application; it is decided in the same request",
)
async def submit(
    body: ApplicationIn, request: Request, partner: Partner, now: Now
) -> ApplicationOut:
    # The use cases block, so they run in the thread pool — in one hand-off: for a plain
    # ``def`` handler FastAPI makes a second one just to check the returned model.
    return await run_in_threadpool(_submit, body, request, partner, now)


def _submit(
    body: ApplicationIn, request: Request, partner: PartnerContext, now: datetime
) -> ApplicationOut:
    p = platform_of(request)
    raw = body.model_dump()
    raw.update(institution_code=partner.institution_code, submitted_at=now)
    raw["enterprise"]["registered_on"] = body.enterprise.registered_on.isoformat()
    raw["amount"] = str(body.amount)
    raw["enterprise"]["annual_revenue"] = str(body.enterprise.annual_revenue)
    receipt = submit_application(p.uow(partner.actor), p.vault, p.indexer, raw)
    view: ApplicationView | None = None
    if receipt.state == ApplicationState.SUBMITTED.value:
        # Also a retry whose first attempt was recorded but never decided: decide it now.
        result = decide_application(
            p.uow(partner.actor),
            institution_id=partner.institution_id,
            application_id=receipt.application_id,
            at=now,
            vault=p.vault,
        )
        if result.recorded is not None:  # answer from what was written: no read-back
            view = decided_view(result.recorded, result.review_task_id)
    if view is None:  # a replay of an application decided earlier: read it
        view = application_view(
            p.uow(partner.actor),
            institution_id=partner.institution_id,
            application_id=receipt.application_id,
        )
    person = body.legal_representative
    masked = {
        "name": mask_name(person.name),
        "id_number": mask_id_number(person.id_number),
        "mobile": mask_mobile(person.mobile),
    }
    return _out(view, masked)


@router.get("/{application_id}", response_model=ApplicationOut)
def get(application_id: str, request: Request, partner: Partner) -> ApplicationOut:
    p = platform_of(request)
    return _out(
        application_view(
            p.uow(partner.actor),
            institution_id=partner.institution_id,
            application_id=application_id,
        )
    )


class ExplanationOut(StrictModel):
    application_id: str
    state: str
    automated: bool
    decided_by: str
    model_version: str | None
    score: str | None
    grade: str | None
    reasons: list[dict[str, Any]]
    decided_at: datetime
    human_review_available: bool
    how_to_request_human_review: str | None


@router.get(
    "/{application_id}/explanation",
    response_model=ExplanationOut,
    summary="Why the application was decided so (PIPL Art. 24)",
)
def explanation(application_id: str, request: Request, partner: Partner) -> ExplanationOut:
    p = platform_of(request)
    e = explain(
        p.uow(partner.actor), institution_id=partner.institution_id, application_id=application_id
    )
    how = (
        f"POST /v1/applications/{application_id}/human-review with a reason"
        if e.human_review_available
        else None
    )
    return ExplanationOut(**e.__dict__, how_to_request_human_review=how)


class HumanReviewIn(StrictModel):
    reason: str = Field(max_length=2000)
    requested_by: str = Field(default="applicant", max_length=120)


class TaskOut(StrictModel):
    review_task_id: str


@router.post(
    "/{application_id}/human-review",
    status_code=202,
    response_model=TaskOut,
    summary="Refuse the automated decision and ask for a person (PIPL Art. 24)",
)
def human_review(
    application_id: str, body: HumanReviewIn, request: Request, partner: Partner, now: Now
) -> TaskOut:
    p = platform_of(request)
    task_id = request_human_review(
        p.uow(partner.actor),
        institution_id=partner.institution_id,
        application_id=application_id,
        reason=body.reason,
        requested_by=body.requested_by,
        at=now,
    )
    return TaskOut(review_task_id=task_id)


class StateOut(StrictModel):
    id: str
    state: str


@router.post("/{application_id}/cancel", response_model=StateOut)
def cancel(application_id: str, request: Request, partner: Partner, now: Now) -> StateOut:
    p = platform_of(request)
    state = cancel_application(
        p.uow(partner.actor),
        institution_id=partner.institution_id,
        application_id=application_id,
        at=now,
    )
    return StateOut(id=application_id, state=state)
