"""A schedule line as an immutable value, and what applying a payment does to it.

The servicing rules work on these values, not on ORM rows, for two reasons: they stay pure
(a test of a rule needs no database), and a read (``loan_status``, ``payoff_quote``) can
compute penalties up to a date in memory without any risk of the accrual being flushed to the
database by an autoflush.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from puhui.domain.daycount import DayCount
from puhui.domain.money import ZERO
from puhui.domain.schedule import RepaymentMethod
from puhui.servicing.allocation import DEFAULT_POLICY, Allocation, AllocationPolicy, Amounts, Due


@dataclass(frozen=True, slots=True)
class LoanFacts:
    """The loan-level terms the servicing rules need, read from the loan row."""

    annual_rate: Decimal
    penalty_rate: Decimal
    method: RepaymentMethod
    day_count: DayCount
    start_date: date
    """The business date of disbursement: interest runs from here to the first due date."""
    policy: AllocationPolicy = DEFAULT_POLICY


@dataclass(frozen=True, slots=True)
class Line:
    """One instalment: what it charges, what has been paid, and its penalty accrual point.

    ``penalty`` is the default interest charged up to and including ``penalty_accrued_to``
    (None until the first accrual).
    """

    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal = ZERO
    penalty: Decimal = ZERO
    paid_principal: Decimal = ZERO
    paid_interest: Decimal = ZERO
    paid_fee: Decimal = ZERO
    paid_penalty: Decimal = ZERO
    penalty_accrued_to: date | None = None
    settled_on: date | None = None

    @property
    def charged(self) -> Amounts:
        return Amounts(self.penalty, self.fee, self.interest, self.principal)

    @property
    def paid(self) -> Amounts:
        return Amounts(self.paid_penalty, self.paid_fee, self.paid_interest, self.paid_principal)

    @property
    def owed(self) -> Amounts:
        return self.charged - self.paid

    @property
    def is_paid(self) -> bool:
        return self.owed.total == 0

    @property
    def penalty_base(self) -> Decimal:
        """Unpaid principal and interest: what default interest runs on once past due."""
        return (self.principal - self.paid_principal) + (self.interest - self.paid_interest)

    def due(self) -> Due:
        return Due(self.number, self.due_date, self.owed)

    def pay(self, amounts: Amounts, on: date) -> Line:
        """This line after ``amounts`` were paid on it on ``on``; refuses paying too much."""
        paid = self.paid + amounts
        owed = self.charged - paid
        if min(owed.penalty, owed.fee, owed.interest, owed.principal) < 0:
            raise ValueError(f"payment exceeds what instalment {self.number} owes")
        updated = replace(
            self,
            paid_penalty=paid.penalty,
            paid_fee=paid.fee,
            paid_interest=paid.interest,
            paid_principal=paid.principal,
        )
        if updated.is_paid and updated.settled_on is None:
            updated = replace(updated, settled_on=on)
        return updated


def dues(lines: Iterable[Line]) -> list[Due]:
    """What each line still owes, oldest first."""
    return [line.due() for line in sorted(lines, key=lambda x: (x.due_date, x.number))]


def apply_allocation(lines: Sequence[Line], allocation: Allocation, on: date) -> list[Line]:
    """The lines after ``allocation`` was paid on ``on`` (fully paid lines get ``settled_on``)."""
    return [line.pay(allocation.for_line(line.number), on) for line in lines]


def total_owed(lines: Iterable[Line]) -> Amounts:
    return Amounts.total_of(line.owed for line in lines)


def outstanding_principal(lines: Iterable[Line]) -> Decimal:
    return sum((line.principal - line.paid_principal for line in lines), ZERO)


__all__ = [
    "Line",
    "LoanFacts",
    "apply_allocation",
    "dues",
    "outstanding_principal",
    "total_owed",
]
