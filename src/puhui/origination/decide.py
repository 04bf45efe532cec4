"""Use case: assess a submitted application and decide — approve with an offer, decline, or
refer to a person — always with reasons.

One unit of work: start the review, gather the facts (no personal data decrypted: age comes
from the stored birth date, sharing from blind-index counts), run the anti-fraud and credit
assessors, apply knock-outs and cut-offs, price the offer within the legal cap, and record the
decision, the offer or the review task, and their events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from puhui.domain.clock import business_date, require_aware
from puhui.domain.errors import ValidationError
from puhui.domain.identifiers import age_on
from puhui.domain.lifecycle import APPLICATION, ApplicationState
from puhui.domain.pricing import percent
from puhui.fraud.features import fraud_features
from puhui.origination.assessment import (
    ApplicationFacts,
    CreditAssessor,
    FraudAssessor,
    FraudOutcome,
    Reason,
)
from puhui.origination.credit_model import current_credit_assessor
from puhui.origination.fraud_check import current_fraud_assessor
from puhui.origination.pricing_offer import OfferTerms, price_application
from puhui.origination.product import DEFAULT_PRODUCT, Product
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class DecisionResult:
    application_id: str
    outcome: str  # approved | declined | referred
    reasons: tuple[Reason, ...]
    score: int | None
    grade: str | None
    offer_id: str | None
    review_task_id: str | None
    recorded: RecordedDecision | None = field(default=None, compare=False, repr=False)
    """The rows as committed, so a caller can answer without reading them back."""


@dataclass(frozen=True)
class RecordedDecision:
    """What :func:`decide_application` wrote (detached rows, every attribute loaded)."""

    application: m.Application
    decision: m.Decision
    offer: m.Offer | None


def _years_between(start: date, end: date) -> Decimal:
    return (Decimal((end - start).days) / Decimal("365.25")).quantize(Decimal("0.01"))


def load_application(uow: UnitOfWork, institution_id: str, application_id: str) -> m.Application:
    """The institution's application, or ``application.not_found`` (never another tenant's)."""
    app = uow.applications.for_institution(institution_id, application_id)
    if app is None:
        raise ValidationError.single(
            "application_id", "application.not_found", "no such application"
        )
    return app


def decide_application(
    uow: UnitOfWork,
    *,
    institution_id: str,
    application_id: str,
    at: datetime,
    fraud: FraudAssessor | None = None,
    credit: CreditAssessor | None = None,
    product: Product = DEFAULT_PRODUCT,
) -> DecisionResult:
    at = require_aware(at, "at")
    today = business_date(at)
    with uow:
        parties = uow.applications.with_parties(institution_id, application_id)
        if parties is None:
            raise ValidationError.single(
                "application_id", "application.not_found", "no such application"
            )
        app, applicant, enterprise, institution = parties
        state = APPLICATION.apply(ApplicationState(app.state), "start_review")
        if applicant.birth_date is None:
            raise ValidationError.single(
                "application_id", "applicant.erased", "the applicant's data has been erased"
            )
        features, list_hits = fraud_features(uow.session, app.id, enterprise.annual_revenue)
        facts = ApplicationFacts(
            application_id=app.id,
            institution_id=institution_id,
            business_date=today,
            amount=app.amount,
            term_months=app.term_months,
            repayment_method=app.repayment_method,
            applicant_age=age_on(applicant.birth_date, today),
            years_in_business=_years_between(enterprise.registered_on, today),
            annual_revenue=enterprise.annual_revenue,
            tax_grade=enterprise.tax_grade,
            industry_code=enterprise.industry_code,
            employees=enterprise.employees,
            uscc_needs_verification=enterprise.uscc_needs_verification,
            fraud_features=features,
        )
        fraud_result = (fraud or current_fraud_assessor(uow.session)).assess(facts)
        credit_result = (credit or current_credit_assessor(uow.session)).assess(facts)

        offer_terms: OfferTerms | None = None
        reasons: tuple[Reason, ...]
        if fraud_result.outcome is FraudOutcome.REJECT:
            outcome, reasons = "decline", fraud_result.hits
        elif credit_result.knockouts:
            outcome, reasons = "decline", credit_result.knockouts
        elif fraud_result.outcome is FraudOutcome.REVIEW or credit_result.refer:
            outcome = "refer"
            reasons = fraud_result.hits + credit_result.refer + credit_result.reasons
        elif credit_result.grade is None:
            outcome = "decline"
            reasons = (
                Reason(
                    "KO_SCORE",
                    "综合评分低于准入标准",
                    "overall score is below the approval cut-off",
                ),
                *credit_result.reasons,
            )
        else:
            priced = price_application(
                app,
                enterprise,
                institution,
                grade=credit_result.grade,
                product=product,
                annual_rate=credit_result.annual_rate,
                start=today,
            )
            if isinstance(priced, Reason):
                outcome, reasons = "decline", (priced,)
            else:
                outcome, offer_terms = "approve", priced
                reasons = (
                    Reason(
                        "OK_GRADE",
                        f"风险等级{credit_result.grade}，评分达到准入标准",
                        f"grade {credit_result.grade}: score meets the cut-off",
                    ),
                    *credit_result.reasons,
                )

        state = APPLICATION.apply(state, outcome, {"reasons": reasons})
        app.state = state.value
        decision = m.Decision(
            application_id=app.id,
            outcome=state.value,
            reasons=[r.as_dict() for r in reasons],
            decided_by=credit_result.model_version,
            automated=True,
            model_version=credit_result.model_version,
            score=Decimal(credit_result.score),
            grade=credit_result.grade,
            details={
                "fraud": {
                    "outcome": fraud_result.outcome.value,
                    "assessor": fraud_result.assessor,
                    "hits": [h.code for h in fraud_result.hits],
                    "features": features,
                    "list_hits": list_hits,
                },
                "knockouts": [k.code for k in credit_result.knockouts],
                "model": dict(credit_result.details),
            },
        )
        uow.session.add(decision)
        task_id = None
        offer_id = m.new_id("ofr") if offer_terms is not None else None
        if state is ApplicationState.REFERRED:
            task = m.ReviewTask(
                id=m.new_id("rev"),
                institution_id=institution_id,
                application_id=app.id,
                kind="referral",
                status="open",
                reason="; ".join(r.code for r in reasons),
                requested_by=credit_result.model_version,
            )
            uow.session.add(task)
            task_id = task.id
        # No flush here: the new rows reference only rows that exist already, so one flush
        # (the audit head's read, then the commit) writes them all.
        uow.record_event(
            aggregate_type="application",
            aggregate_id=app.id,
            event_type=f"application.{state.value}",
            institution_id=institution_id,
            purpose="credit_assessment",
            payload={
                "outcome": state.value,
                "score": credit_result.score,
                "grade": credit_result.grade,
                "offer_id": offer_id,
                "reasons": [r.code for r in reasons],
            },
        )
        offer = None
        if offer_terms is not None and offer_id is not None:
            offer = create_offer(
                uow,
                app,
                offer_terms,
                credit_result.grade or "",
                product,
                at,
                today,
                offer_id=offer_id,
            )
        uow.commit()
        return DecisionResult(
            app.id,
            state.value,
            reasons,
            credit_result.score,
            credit_result.grade,
            offer_id,
            task_id,
            RecordedDecision(app, decision, offer),
        )


def create_offer(
    uow: UnitOfWork,
    app: m.Application,
    terms: OfferTerms,
    grade: str,
    product: Product,
    at: datetime,
    today: date,
    *,
    offer_id: str,
) -> m.Offer:
    """Record an offer (and its event) in the caller's unit of work, after the decision's
    event: the outbox then tells a partner "approved" before "here is the offer"."""
    offer = m.Offer(
        id=offer_id,
        application_id=app.id,
        amount=terms.amount,
        annual_rate=terms.annual_rate,
        apr=terms.apr.nominal_annual,
        term_months=terms.term_months,
        repayment_method=terms.method.value,
        day_count=product.day_count.value,
        upfront_fee=terms.upfront_fee,
        grade=grade,
        indicative_start=today,
        total_interest=terms.total_interest,
        total_cost=terms.total_cost,
        expires_at=at + product.offer_validity,
    )
    uow.session.add(offer)
    uow.record_event(
        aggregate_type="offer",
        aggregate_id=offer.id,
        event_type="offer.created",
        institution_id=app.institution_id,
        purpose="credit_assessment",
        payload={
            "application_id": app.id,
            "amount": str(terms.amount),
            "apr_percent": str(percent(terms.apr.nominal_annual)),
            "term_months": terms.term_months,
        },
    )
    return offer
