"""``/v1/reviews``: the institution's review queue and its reviewers' decisions."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import Field

from puhui.api.context import Partner, platform_of
from puhui.api.schemas import StrictModel
from puhui.api.time import Now
from puhui.origination.reviews import decide_review, open_tasks

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])


class TaskOut(StrictModel):
    id: str
    application_id: str
    kind: str
    reason: str
    requested_by: str
    created_at: datetime


@router.get("", response_model=list[TaskOut], summary="Open review tasks, oldest first")
def queue(request: Request, partner: Partner) -> list[TaskOut]:
    p = platform_of(request)
    return [TaskOut(**t.__dict__) for t in open_tasks(p.uow(partner.actor), partner.institution_id)]


class ReviewDecisionIn(StrictModel):
    reviewer: str = Field(max_length=120, description="Who decides (recorded and audited)")
    outcome: str = Field(description="approve or decline")
    note: str = Field(max_length=2000, description="Why (shown to the applicant)")


class ReviewDecisionOut(StrictModel):
    task_id: str
    application_id: str
    outcome: str
    offer_id: str | None


@router.post("/{task_id}/decision", response_model=ReviewDecisionOut)
def decide(
    task_id: str,
    body: ReviewDecisionIn,
    request: Request,
    partner: Partner,
    now: Now,
) -> ReviewDecisionOut:
    p = platform_of(request)
    r = decide_review(
        p.uow(f"{partner.actor}/{body.reviewer}"),
        institution_id=partner.institution_id,
        task_id=task_id,
        reviewer=body.reviewer,
        outcome=body.outcome,
        note=body.note,
        at=now,
    )
    return ReviewDecisionOut(**r.__dict__)
