"""Use case: assess a submitted application and decide — approve with an offer, decline, or
refer to a person — always with reasons.

One unit of work: start the review, gather the facts (no personal data decrypted: age comes
from the stored birth date, sharing from blind-index counts), run the anti-fraud and credit
assessors, apply knock-outs and cut-offs, price the offer within the legal cap, and record the
decision, the offer or the review task, and their events.

On the API's hot path: the application and its parties' facts come in one query on the
connection, its state moves with a versioned UPDATE (``ApplicationRepository.change_state``)
and the new rows go in with one INSERT each, so the ORM tracks nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from puhui.domain.clock import business_date, require_aware
from puhui.domain.errors import ValidationError
from puhui.domain.identifiers import age_on
from puhui.domain.lifecycle import APPLICATION, ApplicationState
from puhui.domain.pricing import InstitutionType, percent
from puhui.domain.schedule import RepaymentMethod
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
from puhui.origination.pricing_offer import OfferTerms, price
from puhui.origination.product import DEFAULT_PRODUCT, Product
from puhui.privacy.partner_key import reveal_partner_key
from puhui.privacy.vault import Vault
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
    """What :func:`decide_application` wrote (rows outside any session, every attribute set
    as reading them back would give it)."""

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


def _with_partner_key(
    uow: UnitOfWork, vault: Vault | None, facts: ApplicationFacts, app: m.Application, at: datetime
) -> ApplicationFacts:
    """The facts with the business key for a federated model's partner, or why not."""
    if vault is None:
        return replace(facts, partner_refusal="this decision was made without the vault")
    key, refusal = reveal_partner_key(
        uow, vault, applicant_id=app.applicant_id, enterprise_id=app.enterprise_id, at=at
    )
    return replace(facts, partner_key=key, partner_refusal=refusal)


def decide_application(
    uow: UnitOfWork,
    *,
    institution_id: str,
    application_id: str,
    at: datetime,
    fraud: FraudAssessor | None = None,
    credit: CreditAssessor | None = None,
    product: Product = DEFAULT_PRODUCT,
    vault: Vault | None = None,
) -> DecisionResult:
    """Assess and decide one submitted application, in one transaction.

    ``vault`` lets a federated credit model reveal the business key to the data partner
    (under the applicant's joint-modelling consent, audited); without it such a model uses its
    fallback and the decision says so."""
    at = require_aware(at, "at")
    today = business_date(at)
    with uow:
        found = uow.applications.for_decision(institution_id, application_id)
        if found is None:
            raise ValidationError.single(
                "application_id", "application.not_found", "no such application"
            )
        app = found.application
        state = APPLICATION.apply(ApplicationState(app.state), "start_review")
        if found.birth_date is None:
            raise ValidationError.single(
                "application_id", "applicant.erased", "the applicant's data has been erased"
            )
        features, list_hits = fraud_features(uow.session, app.id, found.annual_revenue)
        facts = ApplicationFacts(
            application_id=app.id,
            institution_id=institution_id,
            business_date=today,
            amount=app.amount,
            term_months=app.term_months,
            repayment_method=app.repayment_method,
            applicant_age=age_on(found.birth_date, today),
            years_in_business=_years_between(found.registered_on, today),
            annual_revenue=found.annual_revenue,
            tax_grade=found.tax_grade,
            industry_code=found.industry_code,
            employees=found.employees,
            uscc_needs_verification=found.uscc_needs_verification,
            fraud_features=features,
        )
        fraud_result = (fraud or current_fraud_assessor(uow.session)).assess(facts)
        credit_assessor = credit or current_credit_assessor(uow.session)
        if getattr(credit_assessor, "needs_partner_key", False):
            facts = _with_partner_key(uow, vault, facts, app, at)
        credit_result = credit_assessor.assess(facts)

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
            priced = price(
                product=product,
                grade=credit_result.grade,
                asked_amount=app.amount,
                annual_revenue=found.annual_revenue,
                term_months=app.term_months,
                method=RepaymentMethod(app.repayment_method),
                start=today,
                institution_type=InstitutionType(found.institution_type),
                annual_rate=credit_result.annual_rate,
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
        uow.applications.change_state(app, state.value)
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
        rows: list[m.Base] = [decision]
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
            rows.append(task)
            task_id = task.id
        # Written now, one INSERT each, outside the session's unit of work: they reference
        # only rows that exist already and are never changed again here.
        uow.insert(*rows)
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
    uow.insert(offer)
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
