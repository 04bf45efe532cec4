"""Use case: post a repayment (正常还款) against a loan.

In one unit of work, on the loan locked for update: accrue default interest to the business
date of ``received_at``, refuse an amount above the payoff (``repayment.exceeds_payoff``),
allocate by the loan's policy (``allocation``), update the schedule lines (``settled_on`` when
an instalment is fully paid) and the loan's outstanding principal, move the loan's state, store
the ``Repayment`` with its allocation, and record ``repayment.received`` (+ ``loan.cured`` /
``loan.settled``). Idempotency and concurrency: see ``posting``.

A repayment never recalculates interest: money beyond what is due pays the next instalments
as scheduled. A borrower who wants the interest saving of paying early prepays or settles
(``prepayment``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from puhui.domain.errors import ValidationError
from puhui.domain.lifecycle import LoanState
from puhui.servicing.allocation import allocate
from puhui.servicing.delinquency import accrue_all
from puhui.servicing.ledger import apply_allocation, dues, outstanding_principal
from puhui.servicing.payoff import payoff
from puhui.servicing.posting import (
    REPAYMENT,
    Posting,
    RepaymentReceipt,
    apply_state,
    decide_state,
    record,
    run_posting,
    save_repayment,
    validate_posting,
)
from puhui.servicing.repository import (
    facts_of,
    line_of,
    mark_posted,
    schedule_rows,
    write_lines,
)
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork


def post_repayment(
    uow: UnitOfWork,
    *,
    institution_id: str,
    loan_id: str,
    external_ref: str,
    amount: Decimal | str | int,
    received_at: datetime,
) -> RepaymentReceipt:
    """Post ``amount`` received at ``received_at`` (see the module docstring)."""
    posting = validate_posting(loan_id, external_ref, amount, received_at)
    return run_posting(uow, institution_id, posting, REPAYMENT, _apply)


def _apply(uow: UnitOfWork, loan: m.Loan, posting: Posting) -> RepaymentReceipt:
    facts = facts_of(loan)
    rows = schedule_rows(uow, loan.id)
    day = posting.business_date
    lines = accrue_all([line_of(r) for r in rows], facts.penalty_rate, day)
    quote = payoff(facts, lines, day)
    if posting.amount > quote.total:
        raise ValidationError.single(
            "amount",
            "repayment.exceeds_payoff",
            f"amount is more than the payoff ({quote.total}); pay at most that, or settle early",
        )
    allocation = allocate(posting.amount, dues(lines), facts.policy, as_of=day)
    after = apply_allocation(lines, allocation, day)
    move = decide_state(LoanState(loan.state), after, day)

    # Every check has passed: from here on, write.
    write_lines(rows, after)
    loan.outstanding_principal = outstanding_principal(after)
    mark_posted(loan)
    receipt = RepaymentReceipt(
        repayment_id=m.new_id("rpy"),
        loan_id=loan.id,
        external_ref=posting.external_ref,
        kind=REPAYMENT,
        amount=posting.amount,
        business_date=day,
        lines=allocation.lines,
        outstanding_principal=loan.outstanding_principal,
        state=move.after.value,
        days_past_due=move.days_past_due,
    )
    save_repayment(uow, loan, posting, receipt)
    record(
        uow,
        loan,
        "repayment.received",
        {
            "repayment_id": receipt.repayment_id,
            "external_ref": posting.external_ref,
            "amount": str(posting.amount),
            "business_date": day.isoformat(),
            **{f"paid_{k}": v for k, v in receipt.totals.as_json().items()},
            "outstanding_principal": str(loan.outstanding_principal),
            "days_past_due": move.days_past_due,
        },
    )
    apply_state(
        uow,
        loan,
        move,
        at=posting.received_at,
        as_of=day,
        payload={"repayment_id": receipt.repayment_id, "how": REPAYMENT},
    )
    return receipt
