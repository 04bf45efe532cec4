"""What it takes to settle a loan on a given business date.

Why the rules are what they are
-------------------------------
* **Early-settlement interest.** A borrower who settles early pays interest only for the time
  they had the money: interest in the current period (from the last due date on or before the
  settlement date — or from disbursement — to the settlement date) on the principal not yet
  due, ``round_half_up(principal_not_due × annual_rate × days / basis)`` where ``days`` and
  ``basis`` are those of the loan's own day count (30/360 counts Bond-Basis days over 360;
  ACT/360 and ACT/365 count calendar days). It is never more than the current instalment's
  scheduled interest. Instalments not yet due carry no interest at all.
* **Everything already due** is paid in full: principal, interest, fees and default interest
  accrued to the settlement date (``delinquency.accrue_penalty``).
* **Fees of instalments not yet due are waived**; fees already paid in advance are not
  refunded. Interest paid in advance on instalments not yet due (by a repayment posted before
  its due date) is credited: first against the current period's interest, the rest against
  principal.

The same figure caps a repayment (``repayment.exceeds_payoff``), is what ``settle_early``
requires, and is shown by ``payoff_quote`` and ``loan_status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Context, Decimal

from puhui.domain.money import ZERO, round_fen
from puhui.servicing.allocation import Amounts
from puhui.servicing.delinquency import accrue_all
from puhui.servicing.ledger import Line, LoanFacts

_CTX = Context(prec=50)


@dataclass(frozen=True, slots=True)
class CurrentPeriod:
    """The instalment period that ``as_of`` falls in: after ``start``, up to ``end``."""

    number: int
    """The number of the instalment due at ``end``."""
    start: date
    end: date
    principal_not_due: Decimal
    """Unpaid principal of every instalment due after ``as_of``."""
    days: int
    """Days from ``start`` to ``as_of`` by the loan's day count."""
    interest_to_date: Decimal
    """Interest accrued in the period up to ``as_of`` (see the module docstring)."""


def split(lines: Sequence[Line], as_of: date) -> tuple[list[Line], list[Line]]:
    """(instalments due on or before ``as_of``, instalments due after it), each oldest first."""
    ordered = sorted(lines, key=lambda x: (x.due_date, x.number))
    return [x for x in ordered if x.due_date <= as_of], [x for x in ordered if x.due_date > as_of]


def current_period(facts: LoanFacts, lines: Sequence[Line], as_of: date) -> CurrentPeriod | None:
    """The current period, or None when every instalment is already due."""
    past, future = split(lines, as_of)
    if not future:
        return None
    start = past[-1].due_date if past else facts.start_date
    start = min(start, as_of)
    balance = sum((x.principal - x.paid_principal for x in future), ZERO)
    days = facts.day_count.days(start, as_of)
    product = _CTX.multiply(_CTX.multiply(balance, facts.annual_rate), Decimal(days))
    interest = round_fen(_CTX.divide(product, Decimal(facts.day_count.basis)))
    interest = max(min(interest, future[0].interest), ZERO)
    return CurrentPeriod(future[0].number, start, future[0].due_date, balance, days, interest)


@dataclass(frozen=True, slots=True)
class Payoff:
    """What settles the loan on ``as_of``, by component, and how it was reached."""

    as_of: date
    overdue: Amounts
    """Owed on instalments due on or before ``as_of`` (default interest accrued to it)."""
    period: CurrentPeriod | None
    advance_interest: Decimal
    """Interest already paid on instalments not yet due; credited (module docstring)."""
    amounts: Amounts
    """The settlement amount by component, after the credit."""

    @property
    def total(self) -> Decimal:
        return self.amounts.total


def payoff(facts: LoanFacts, lines: Sequence[Line], as_of: date) -> Payoff:
    """The payoff on ``as_of``; accrues default interest in memory first (lines unchanged)."""
    accrued = accrue_all(lines, facts.penalty_rate, as_of)
    past, future = split(accrued, as_of)
    overdue = Amounts.total_of(x.owed for x in past)
    period = current_period(facts, accrued, as_of)
    advance = sum((x.paid_interest for x in future), ZERO)
    interest_to_date = period.interest_to_date if period else ZERO
    principal_not_due = period.principal_not_due if period else ZERO
    credit = max(advance - interest_to_date, ZERO)
    amounts = Amounts(
        penalty=overdue.penalty,
        fee=overdue.fee,
        interest=overdue.interest + max(interest_to_date - advance, ZERO),
        principal=overdue.principal + max(principal_not_due - credit, ZERO),
    )
    return Payoff(as_of, overdue, period, advance, amounts)


__all__ = ["CurrentPeriod", "Payoff", "current_period", "payoff", "split"]
