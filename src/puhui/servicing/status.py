"""Use case: a loan's position on a business date, for a borrower's page or a partner's API.

Read-only: default interest to ``as_of`` is computed in memory and never written, and the unit
of work is closed without a commit. The cost of a read depends on the number of instalments,
never on how many days the loan has run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from puhui.domain.money import ZERO
from puhui.servicing.allocation import Amounts
from puhui.servicing.delinquency import accrue_all, bucket_for, days_past_due
from puhui.servicing.ledger import outstanding_principal
from puhui.servicing.payoff import payoff, split
from puhui.servicing.posting import as_business_date
from puhui.servicing.repository import facts_of, find_loan, line_of, schedule_rows
from puhui.store.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class LoanStatus:
    loan_id: str
    state: str
    as_of: date
    principal: Decimal
    """The principal lent."""
    outstanding_principal: Decimal
    due_now: Amounts
    """Owed on instalments due on or before ``as_of``, default interest accrued to it."""
    days_past_due: int
    bucket: str
    next_due_date: date | None
    """The first instalment due after ``as_of``."""
    next_due_amount: Decimal | None
    """What that instalment still owes."""
    payoff: Decimal
    """What settles the loan on ``as_of`` (``payoff_quote`` has the breakdown)."""
    remaining_instalments: int

    @property
    def amount_due_now(self) -> Decimal:
        return self.due_now.total


def loan_status(
    uow: UnitOfWork, *, institution_id: str, loan_id: str, as_of: date | datetime
) -> LoanStatus:
    """The loan's position on ``as_of`` (a business date, or an instant converted to one)."""
    day = as_business_date(as_of)
    with uow:
        loan = find_loan(uow, institution_id, loan_id, lock=False)
        facts = facts_of(loan)
        lines = accrue_all(
            [line_of(r) for r in schedule_rows(uow, loan.id)], facts.penalty_rate, day
        )
        state, principal = loan.state, loan.principal
    past, future = split(lines, day)
    due_now = Amounts.total_of(x.owed for x in past)
    upcoming = next((x for x in future if not x.is_paid), None)
    dpd = days_past_due(lines, day)
    return LoanStatus(
        loan_id=loan_id,
        state=state,
        as_of=day,
        principal=principal,
        outstanding_principal=outstanding_principal(lines),
        due_now=due_now,
        days_past_due=dpd,
        bucket=bucket_for(dpd).name,
        next_due_date=upcoming.due_date if upcoming else None,
        next_due_amount=upcoming.owed.total if upcoming else None,
        payoff=payoff(facts, lines, day).total if lines else ZERO,
        remaining_instalments=sum(1 for x in lines if not x.is_paid),
    )


__all__ = ["LoanStatus", "loan_status"]
