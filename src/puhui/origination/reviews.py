"""The human side of decisions: the review queue, a person's decision, and PIPL Art. 24.

* A referred application waits as an open ``review_tasks`` row; a reviewer approves (an offer
  is priced as for an automated approval) or declines, always with who and why.
* Art. 24 gives a person two rights over an automated decision: an explanation
  (``explain``: the outcome, every reason in Chinese and English, the model version, and how to
  ask for a person) and a human look (``request_human_review``: an automated decline goes back
  to the queue as referred, and a reviewer decides).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from puhui.domain.clock import business_date, require_aware
from puhui.domain.errors import FieldError, ValidationError
from puhui.domain.lifecycle import APPLICATION, ApplicationState
from puhui.origination.assessment import Reason
from puhui.origination.decide import create_offer, load_application
from puhui.origination.pricing_offer import OfferTerms, price_application
from puhui.origination.product import DEFAULT_PRODUCT, Product
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork

OUTCOMES = ("approve", "decline")


@dataclass(frozen=True)
class ReviewResult:
    task_id: str
    application_id: str
    outcome: str
    offer_id: str | None


@dataclass(frozen=True)
class Explanation:
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


def _latest_decision(uow: UnitOfWork, application_id: str) -> m.Decision | None:
    return uow.session.scalar(
        select(m.Decision)
        .where(m.Decision.application_id == application_id)
        .order_by(m.Decision.created_at.desc(), m.Decision.id.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class ReviewTaskInfo:
    id: str
    application_id: str
    kind: str
    reason: str
    requested_by: str
    created_at: datetime


def open_tasks(uow: UnitOfWork, institution_id: str, limit: int = 100) -> list[ReviewTaskInfo]:
    """The institution's review queue, oldest first."""
    with uow:
        rows = list(
            uow.session.scalars(
                select(m.ReviewTask)
                .where(m.ReviewTask.institution_id == institution_id, m.ReviewTask.status == "open")
                .order_by(m.ReviewTask.created_at)
                .limit(limit)
            )
        )
        return [
            ReviewTaskInfo(t.id, t.application_id, t.kind, t.reason, t.requested_by, t.created_at)
            for t in rows
        ]


def decide_review(
    uow: UnitOfWork,
    *,
    institution_id: str,
    task_id: str,
    reviewer: str,
    outcome: str,
    note: str,
    at: datetime,
    product: Product = DEFAULT_PRODUCT,
) -> ReviewResult:
    """A reviewer's decision on a referred application, recorded with who and why."""
    at = require_aware(at, "at")
    errors = []
    if outcome not in OUTCOMES:
        errors.append(("outcome", "review.outcome", "must be approve or decline"))
    if not reviewer or not reviewer.strip() or len(reviewer) > 120:
        errors.append(("reviewer", "review.reviewer", "the reviewer's name is required"))
    if not note or not note.strip() or len(note) > 2000:
        errors.append(("note", "review.note", "a reason (1-2000 characters) is required"))
    if errors:
        raise ValidationError(FieldError(*e) for e in errors)
    with uow:
        task = uow.session.get(m.ReviewTask, task_id)
        if task is None or task.institution_id != institution_id:
            raise ValidationError.single("task_id", "review.not_found", "no such review task")
        if task.status != "open":
            raise ValidationError.single(
                "task_id", "review.closed", "this review task is already closed"
            )
        app = load_application(uow, institution_id, task.application_id)
        reasons = (
            Reason("HUMAN_REVIEW", f"人工复核：{note.strip()}", f"human review: {note.strip()}"),
        )
        state = APPLICATION.apply(
            ApplicationState(app.state),
            f"reviewer_{outcome}",
            {"reasons": reasons, "reviewer": reviewer},
        )
        offer_id = None
        priced: OfferTerms | Reason | None = None
        if state is ApplicationState.APPROVED:
            latest = _latest_decision(uow, app.id)
            grade = latest.grade if latest and latest.grade else product.grade_order[-1]
            enterprise = uow.enterprises.get(app.enterprise_id)
            institution = uow.institutions.get(institution_id)
            assert enterprise is not None and institution is not None
            today = business_date(at)
            priced = price_application(
                app, enterprise, institution, grade=grade, product=product, start=today
            )
            if isinstance(priced, Reason):
                raise ValidationError.single("outcome", "review.cannot_price", priced.text_en)
            offer_id = m.new_id("ofr")
        app.state = state.value
        uow.session.add(
            m.Decision(
                application_id=app.id,
                outcome=state.value,
                reasons=[r.as_dict() for r in reasons],
                decided_by=reviewer,
                automated=False,
                details={"task_id": task.id},
            )
        )
        task.status, task.outcome, task.decided_by = "closed", state.value, reviewer
        task.note, task.closed_at = note.strip(), at
        uow.flush()
        uow.record_event(
            aggregate_type="application",
            aggregate_id=app.id,
            event_type=f"application.{state.value}",
            institution_id=institution_id,
            purpose="credit_assessment",
            payload={
                "outcome": state.value,
                "reviewer": reviewer,
                "task_id": task.id,
                "offer_id": offer_id,
            },
        )
        if isinstance(priced, OfferTerms) and offer_id is not None:
            create_offer(uow, app, priced, grade, product, at, business_date(at), offer_id=offer_id)
        uow.commit()
        return ReviewResult(task.id, app.id, state.value, offer_id)


def request_human_review(
    uow: UnitOfWork,
    *,
    institution_id: str,
    application_id: str,
    reason: str,
    requested_by: str,
    at: datetime,
) -> str:
    """The applicant refuses an automated decline and asks for a person (PIPL Art. 24)."""
    at = require_aware(at, "at")
    if not reason or not reason.strip() or len(reason) > 2000:
        raise ValidationError.single(
            "reason", "review.reason", "say why a person should look (1-2000 characters)"
        )
    with uow:
        app = load_application(uow, institution_id, application_id)
        latest = _latest_decision(uow, app.id)
        state = APPLICATION.apply(
            ApplicationState(app.state),
            "request_human_review",
            {"automated": bool(latest and latest.automated)},
        )
        app.state = state.value
        task = m.ReviewTask(
            institution_id=institution_id,
            application_id=app.id,
            kind="human_review_request",
            status="open",
            reason=reason.strip(),
            requested_by=requested_by,
            created_at=at,
        )
        uow.session.add(task)
        uow.flush()
        uow.record_event(
            aggregate_type="application",
            aggregate_id=app.id,
            event_type="application.human_review_requested",
            institution_id=institution_id,
            payload={"task_id": task.id},
        )
        uow.commit()
        return task.id


def explain(uow: UnitOfWork, *, institution_id: str, application_id: str) -> Explanation:
    """Why the application was decided as it was (PIPL Art. 24)."""
    with uow:
        app = load_application(uow, institution_id, application_id)
        d = _latest_decision(uow, app.id)
        if d is None:
            raise ValidationError.single(
                "application_id",
                "application.undecided",
                "the application has not been decided yet",
            )
        return Explanation(
            application_id=app.id,
            state=app.state,
            automated=d.automated,
            decided_by=d.decided_by,
            model_version=d.model_version,
            score=None if d.score is None else str(d.score),
            grade=d.grade,
            reasons=list(d.reasons),
            decided_at=d.created_at,
            human_review_available=(app.state == ApplicationState.DECLINED.value and d.automated),
        )


def cancel_application(
    uow: UnitOfWork, *, institution_id: str, application_id: str, at: datetime
) -> str:
    """The applicant withdraws an application before the contract."""
    require_aware(at, "at")
    with uow:
        app = load_application(uow, institution_id, application_id)
        app.state = APPLICATION.apply(ApplicationState(app.state), "cancel").value
        uow.session.execute(
            update(m.ReviewTask)
            .where(m.ReviewTask.application_id == app.id, m.ReviewTask.status == "open")
            .values(status="closed", outcome="cancelled", closed_at=at)
        )
        uow.record_event(
            aggregate_type="application",
            aggregate_id=app.id,
            event_type="application.cancelled",
            institution_id=institution_id,
        )
        uow.commit()
        return app.state
