"""Read models: what a partner sees of an application and an offer.

No personal data is decrypted for these views; identifiers a partner sent are only ever shown
back masked (by the adapter that still holds them), so a view is safe to log and cache.
The offer view puts the APR first and labels every other rate as secondary (PBOC 〔2021〕 No. 3).

:func:`decided_view` builds the view of an application just decided from the rows the decision
wrote, instead of reading them back in another transaction; it gives exactly what
:func:`application_view` would read (values pass through their column types' round trip).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from puhui.domain.daycount import DayCount
from puhui.domain.errors import ValidationError
from puhui.domain.pricing import percent
from puhui.domain.schedule import LoanTerms, RepaymentMethod, build_schedule
from puhui.origination.accept import load_offer
from puhui.origination.decide import RecordedDecision, load_application
from puhui.origination.product import DEFAULT_PRODUCT, Product
from puhui.store import models as m
from puhui.store.types import as_stored
from puhui.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class OfferView:
    id: str
    application_id: str
    apr: Decimal
    amount: Decimal
    term_months: int
    repayment_method: str
    annual_rate: Decimal
    upfront_fee: Decimal
    total_interest: Decimal
    total_cost: Decimal
    expires_at: datetime
    accepted_at: datetime | None
    schedule: list[dict[str, Any]]
    day_count: str

    @property
    def apr_percent(self) -> Decimal:
        return percent(self.apr)

    @property
    def disclosure(self) -> str:
        return (
            f"年化利率（APR）{self.apr_percent}%，按内部收益率（IRR）计算，含全部利息和费用。"
            f" APR {self.apr_percent}% a year, by IRR, including all interest and fees."
        )


@dataclass(frozen=True)
class ApplicationView:
    id: str
    external_ref: str
    state: str
    amount: Decimal
    term_months: int
    repayment_method: str
    submitted_at: datetime
    decision: dict[str, Any] | None
    offer: OfferView | None
    loan_id: str | None
    open_review_task_id: str | None


def _offer_view(offer: m.Offer, product: Product) -> OfferView:
    terms = LoanTerms(
        principal=offer.amount,
        annual_rate=offer.annual_rate,
        term_months=offer.term_months,
        method=RepaymentMethod(offer.repayment_method),
        start_date=offer.indicative_start,
        day_count=DayCount(offer.day_count),
        first_period=product.first_period,
    )
    rows = [
        {
            "number": r.number,
            "due_date": r.due_date.isoformat(),
            "principal": str(r.principal),
            "interest": str(r.interest),
            "payment": str(r.payment),
            "closing_principal": str(r.closing_principal),
        }
        for r in build_schedule(terms).instalments
    ]
    return OfferView(
        offer.id,
        offer.application_id,
        offer.apr,
        offer.amount,
        offer.term_months,
        offer.repayment_method,
        offer.annual_rate,
        offer.upfront_fee,
        offer.total_interest,
        offer.total_cost,
        offer.expires_at,
        offer.accepted_at,
        rows,
        offer.day_count,
    )


def offer_view(
    uow: UnitOfWork, *, institution_id: str, offer_id: str, product: Product = DEFAULT_PRODUCT
) -> OfferView:
    with uow:
        offer, _ = load_offer(uow, institution_id, offer_id)
        return _offer_view(offer, product)


def application_view(
    uow: UnitOfWork, *, institution_id: str, application_id: str, product: Product = DEFAULT_PRODUCT
) -> ApplicationView:
    with uow:
        app = load_application(uow, institution_id, application_id)
        return _application_view(uow, app, product)


def application_view_by_ref(
    uow: UnitOfWork, *, institution_id: str, external_ref: str, product: Product = DEFAULT_PRODUCT
) -> ApplicationView:
    with uow:
        app = uow.applications.by_external_ref(institution_id, external_ref)
        if app is None:
            raise ValidationError.single(
                "external_ref", "application.not_found", "no such application"
            )
        return _application_view(uow, app, product)


def decided_view(
    recorded: RecordedDecision, review_task_id: str | None, product: Product = DEFAULT_PRODUCT
) -> ApplicationView:
    """The view of an application right after ``decide_application`` recorded it: no loan
    yet, the open review task is the one the decision opened (if any)."""
    return _view_of(
        recorded.application,
        None if recorded.offer is None else as_stored(recorded.offer),
        as_stored(recorded.decision),
        None,
        review_task_id,
        product,
    )


def _application_view(uow: UnitOfWork, app: m.Application, product: Product) -> ApplicationView:
    s = uow.session
    decision = s.scalar(
        select(m.Decision)
        .where(m.Decision.application_id == app.id)
        .order_by(m.Decision.created_at.desc(), m.Decision.id.desc())
        .limit(1)
    )
    offer = s.scalar(
        select(m.Offer)
        .where(m.Offer.application_id == app.id)
        .order_by(m.Offer.created_at.desc())
        .limit(1)
    )
    loan_id = s.scalar(select(m.Loan.id).where(m.Loan.application_id == app.id))
    task_id = s.scalar(
        select(m.ReviewTask.id).where(
            m.ReviewTask.application_id == app.id, m.ReviewTask.status == "open"
        )
    )
    return _view_of(app, offer, decision, loan_id, task_id, product)


def _view_of(
    app: m.Application,
    offer: m.Offer | None,
    decision: m.Decision | None,
    loan_id: str | None,
    task_id: str | None,
    product: Product,
) -> ApplicationView:
    decision_out = (
        None
        if decision is None
        else {
            "outcome": decision.outcome,
            "automated": decision.automated,
            "decided_by": decision.decided_by,
            "score": None if decision.score is None else int(decision.score),
            "grade": decision.grade,
            "reasons": decision.reasons,
            "decided_at": decision.created_at,
        }
    )
    return ApplicationView(
        app.id,
        app.external_ref,
        app.state,
        app.amount,
        app.term_months,
        app.repayment_method,
        app.submitted_at,
        decision_out,
        None if offer is None else _offer_view(offer, product),
        loan_id,
        task_id,
    )
