"""Use case: the applicant accepts an offer, which contracts the loan.

Until the e-contract issue brings PAdES signatures, acceptance is a click-wrap contract: the
loan records the contract text version and a SHA-256 digest of the exact terms accepted, so
what was agreed can be proven later. Accepting twice returns the same loan; accepting an
expired offer expires the application and is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from puhui.domain.clock import require_aware
from puhui.domain.errors import ValidationError
from puhui.domain.lifecycle import APPLICATION, ApplicationState, LoanState
from puhui.origination.product import DEFAULT_PRODUCT, Product
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class AcceptResult:
    offer_id: str
    application_id: str
    loan_id: str
    contract_digest: str
    replayed: bool


def load_offer(
    uow: UnitOfWork, institution_id: str, offer_id: str
) -> tuple[m.Offer, m.Application]:
    offer = uow.session.get(m.Offer, offer_id)
    app = (
        None
        if offer is None
        else uow.applications.for_institution(institution_id, offer.application_id)
    )
    if offer is None or app is None:
        raise ValidationError.single("offer_id", "offer.not_found", "no such offer")
    return offer, app


def contract_terms(offer: m.Offer, version: str) -> dict[str, str]:
    """The terms the borrower agrees to, canonically: what the digest covers."""
    return {
        "contract_version": version,
        "offer_id": offer.id,
        "amount": str(offer.amount),
        "apr": str(offer.apr),
        "annual_rate": str(offer.annual_rate),
        "term_months": str(offer.term_months),
        "repayment_method": offer.repayment_method,
        "day_count": offer.day_count,
        "upfront_fee": str(offer.upfront_fee),
        "total_cost": str(offer.total_cost),
    }


def accept_offer(
    uow: UnitOfWork,
    *,
    institution_id: str,
    offer_id: str,
    at: datetime,
    product: Product = DEFAULT_PRODUCT,
) -> AcceptResult:
    at = require_aware(at, "at")
    with uow:
        offer, app = load_offer(uow, institution_id, offer_id)
        if offer.accepted_at is not None:
            loan = uow.session.query(m.Loan).filter_by(offer_id=offer.id).one()
            return AcceptResult(offer.id, app.id, loan.id, loan.contract_digest or "", True)
        expired = at > offer.expires_at
        if expired and app.state == ApplicationState.APPROVED.value:
            app.state = APPLICATION.apply(ApplicationState(app.state), "expire_offer").value
            uow.record_event(
                aggregate_type="application",
                aggregate_id=app.id,
                event_type="application.expired",
                institution_id=institution_id,
                payload={"offer_id": offer.id},
            )
            uow.commit()
        if expired:
            raise ValidationError.single(
                "offer_id", "offer.expired", f"the offer expired at {offer.expires_at.isoformat()}"
            )
        state = APPLICATION.apply(
            ApplicationState(app.state), "accept_offer", {"offer_expired": False}
        )
        state = APPLICATION.apply(state, "sign_contract")
        terms = contract_terms(offer, product.contract_version)
        digest = hashlib.sha256(
            json.dumps(terms, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()
        offer.accepted_at = at
        app.state = state.value
        loan = m.Loan(
            institution_id=institution_id,
            application_id=app.id,
            offer_id=offer.id,
            applicant_id=app.applicant_id,
            principal=offer.amount,
            annual_rate=offer.annual_rate,
            apr=offer.apr,
            term_months=offer.term_months,
            repayment_method=offer.repayment_method,
            day_count=offer.day_count,
            state=LoanState.CONTRACTED.value,
            outstanding_principal=offer.amount,
            upfront_fee=offer.upfront_fee,
            penalty_rate=offer.annual_rate * product.penalty_rate_multiplier,
            allocation_order=product.allocation_order,
            contract_version=product.contract_version,
            contract_digest=digest,
            contracted_at=at,
        )
        uow.session.add(loan)
        uow.flush()
        uow.record_event(
            aggregate_type="offer",
            aggregate_id=offer.id,
            event_type="offer.accepted",
            institution_id=institution_id,
            purpose="loan_servicing",
            payload={"application_id": app.id},
        )
        uow.record_event(
            aggregate_type="loan",
            aggregate_id=loan.id,
            event_type="loan.contracted",
            institution_id=institution_id,
            purpose="loan_servicing",
            payload={
                "application_id": app.id,
                "principal": str(loan.principal),
                "contract_digest": digest,
            },
        )
        uow.commit()
        return AcceptResult(offer.id, app.id, loan.id, digest, False)
