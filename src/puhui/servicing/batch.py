"""The nightly delinquency run: accrue default interest and move loans between active and overdue.

For every active or overdue loan (all institutions, or one), in batches of ``batch_size`` in
loan-id order: lock the batch's loans, load their schedules in one query, accrue default
interest to ``as_of`` (``delinquency.accrue_penalty``, stored on each line), then move active →
overdue (``loan.overdue`` with DPD and bucket) or overdue → active (``loan.cured``). One
transaction per batch, so a failure loses at most one batch and a re-run picks up from there.

Re-running for the same date changes nothing: accrual to a date already reached adds nothing
and a loan already in the right state records no event. Keyset pagination (``id > last``)
keeps each batch's query as cheap as the first however large the portfolio, and the loans
locked in id order cannot deadlock with a posting, which locks a single loan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from puhui.domain.clock import now_utc
from puhui.domain.lifecycle import LoanState
from puhui.domain.money import ZERO
from puhui.servicing.allocation import Amounts
from puhui.servicing.delinquency import accrue_all, bucket_for
from puhui.servicing.posting import apply_state, decide_state
from puhui.servicing.repository import (
    active_loan_ids,
    line_of,
    lock_loans,
    schedule_rows_of,
    write_lines,
)
from puhui.store.unit_of_work import UnitOfWork

UowFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True, slots=True)
class DelinquencySummary:
    as_of: date
    loans: int = 0
    """Active and overdue loans looked at."""
    batches: int = 0
    lines_accrued: int = 0
    """Schedule lines whose default interest moved."""
    penalty_accrued: Decimal = ZERO
    became_overdue: int = 0
    cured: int = 0
    by_bucket: dict[str, int] = field(default_factory=dict)
    """Loans per delinquency bucket after the run."""


def refresh_delinquency(
    sessions_or_uow_factory: sessionmaker[Session] | UowFactory,
    *,
    as_of: date,
    batch_size: int = 500,
    on_progress: Callable[[DelinquencySummary], None] | None = None,
    institution_id: str | None = None,
) -> DelinquencySummary:
    """Run the delinquency refresh for business date ``as_of`` (see the module docstring).

    ``on_progress`` is called with the running totals after each committed batch.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    factory = _uow_factory(sessions_or_uow_factory)
    summary = DelinquencySummary(as_of)
    last: str | None = None
    while True:
        uow = factory()
        with uow:
            ids = active_loan_ids(uow, after=last, limit=batch_size, institution_id=institution_id)
            if not ids:
                break
            summary = _refresh_batch(uow, ids, as_of, summary)
            uow.commit()
        last = ids[-1]
        if on_progress is not None:
            on_progress(summary)
    return summary


def _refresh_batch(
    uow: UnitOfWork, ids: list[str], as_of: date, summary: DelinquencySummary
) -> DelinquencySummary:
    loans = lock_loans(uow, ids)
    schedules = schedule_rows_of(uow, [loan.id for loan in loans])
    lines_accrued, penalty, overdue, cured = 0, ZERO, 0, 0
    by_bucket = dict(summary.by_bucket)
    for loan in loans:
        state = LoanState(loan.state)
        if state not in (LoanState.ACTIVE, LoanState.OVERDUE):
            continue  # settled by a posting between listing and locking
        rows = schedules[loan.id]
        before = [line_of(r) for r in rows]
        after = accrue_all(before, loan.penalty_rate, as_of)
        penalty += sum((a.penalty - b.penalty for a, b in zip(after, before, strict=True)), ZERO)
        lines_accrued += write_lines(rows, after)
        move = decide_state(state, after, as_of)
        if move.event in ("loan.overdue", "loan.cured"):
            past_due = Amounts.total_of(x.owed for x in after if x.due_date <= as_of)
            apply_state(
                uow,
                loan,
                move,
                at=now_utc(),
                as_of=as_of,
                payload={"past_due": str(past_due.total)},
            )
            overdue += move.event == "loan.overdue"
            cured += move.event == "loan.cured"
        bucket = bucket_for(move.days_past_due).name
        by_bucket[bucket] = by_bucket.get(bucket, 0) + 1
    return replace(
        summary,
        loans=summary.loans + len(loans),
        batches=summary.batches + 1,
        lines_accrued=summary.lines_accrued + lines_accrued,
        penalty_accrued=summary.penalty_accrued + penalty,
        became_overdue=summary.became_overdue + overdue,
        cured=summary.cured + cured,
        by_bucket=by_bucket,
    )


def _uow_factory(source: sessionmaker[Session] | UowFactory) -> UowFactory:
    if isinstance(source, sessionmaker):
        sessions = source
        return lambda: UnitOfWork(sessions, actor="servicing.delinquency")
    return source


__all__ = ["DelinquencySummary", "refresh_delinquency"]
