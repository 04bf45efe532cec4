"""The schedule after a partial prepayment or an early settlement (提前还款 / 提前结清).

Why the rules are what they are
-------------------------------
* **What is due goes first.** A prepayment first pays everything due on or before its date
  (default interest accrued to that date included) and the interest of the current period up
  to that date (``payoff.current_period``); only the rest reduces principal. A prepayment that
  would not reach principal is refused (``prepayment.amount_below_due``): post a repayment.
* **History is kept.** Instalments due on or before the date stay as they are, now paid.
  Instalments not yet due are replaced: one *closing line* dated the prepayment date records
  the principal prepaid, the current period's interest to date, and whatever had already been
  paid on the replaced instalments (so no payment disappears from the schedule); then the
  rebuilt remaining schedule, on the same due dates, numbered after it. The principal column
  still sums exactly to the loan.
* **Recompute with ``domain.schedule``.** The new balance is amortised from the start of the
  current period (a regular period ending on the next due date, so the due dates and their
  month-end anchor are kept), then the first new instalment's interest is cut to what the new
  balance accrues from the prepayment date to that due date — the time before was already paid
  on the old balance. So the first new instalment is a little below the others.
* **Modes.** ``reduce_payment`` keeps the maturity (same number of remaining instalments,
  lower payment). ``reduce_term`` keeps the instalment: the shortest remaining term whose
  payment (等额本息) or principal per instalment (等额本金) is not above what the borrower pays
  now, that being the amount the current balance gives over the current remaining term. A
  先息后本 loan has no instalment to keep, so ``reduce_term`` is refused for it
  (``prepayment.mode``).
* **Fees** of replaced instalments move to the rebuilt ones on the same due dates; those of
  instalments that disappear under ``reduce_term`` are waived. An early settlement is a
  prepayment of all principal (see ``payoff`` for its interest rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Context, Decimal
from enum import StrEnum

from puhui.domain.errors import ValidationError
from puhui.domain.money import ZERO, round_fen
from puhui.domain.schedule import (
    FirstPeriod,
    LoanTerms,
    RepaymentMethod,
    Schedule,
    add_months,
    build_schedule,
)
from puhui.servicing.allocation import Allocation, allocate
from puhui.servicing.delinquency import accrue_all
from puhui.servicing.ledger import Line, LoanFacts, apply_allocation, dues
from puhui.servicing.payoff import Payoff, payoff, split

_CTX = Context(prec=50)


class PrepaymentMode(StrEnum):
    REDUCE_PAYMENT = "reduce_payment"
    """Keep the term; recompute a lower instalment."""
    REDUCE_TERM = "reduce_term"
    """Keep the instalment; shorten the term."""


def parse_mode(raw: object, field: str = "mode") -> PrepaymentMode:
    """A prepayment mode by value; anything else is ``prepayment.mode``."""
    if isinstance(raw, PrepaymentMode):
        return raw
    try:
        return PrepaymentMode(str(raw))
    except ValueError:
        choices = ", ".join(m.value for m in PrepaymentMode)
        raise ValidationError.single(
            field, "prepayment.mode", f"mode must be one of {choices}"
        ) from None


@dataclass(frozen=True, slots=True)
class Reschedule:
    """A planned prepayment or settlement: the new lines and how the money was used."""

    as_of: date
    amount: Decimal
    mode: PrepaymentMode | None
    """None for a full settlement."""
    payoff_before: Payoff
    cleared: Allocation
    """What paid the instalments due on or before ``as_of`` (all of it)."""
    interest_paid: Decimal
    """New money paid toward the current period's interest to date."""
    principal_paid: Decimal
    """New money paid toward principal not yet due."""
    interest_credit: Decimal
    """Interest paid earlier in advance, beyond what accrued, now counted as principal."""
    kept: tuple[Line, ...]
    closing: Line | None
    new_lines: tuple[Line, ...]
    replaced: tuple[int, ...]
    """Numbers of the instalments not yet due that the closing and new lines replace."""

    @property
    def lines(self) -> tuple[Line, ...]:
        closing = (self.closing,) if self.closing is not None else ()
        return (*self.kept, *closing, *self.new_lines)

    @property
    def settles(self) -> bool:
        return not self.new_lines

    @property
    def next_payment(self) -> Decimal | None:
        return self.new_lines[0].charged.total if self.new_lines else None

    @property
    def regular_payment(self) -> Decimal | None:
        """The instalment from the second new one on (the first is shortened; see above)."""
        if not self.new_lines:
            return None
        return self.new_lines[min(1, len(self.new_lines) - 1)].charged.total


def plan_prepayment(
    facts: LoanFacts, lines: Sequence[Line], as_of: date, amount: Decimal, mode: PrepaymentMode
) -> Reschedule:
    """Plan a partial prepayment of ``amount`` on ``as_of`` (module docstring).

    Rules: ``prepayment.mode`` (``reduce_term`` on 先息后本), ``prepayment.backdated``,
    ``prepayment.no_future_instalments``, ``prepayment.amount_below_due``,
    ``repayment.exceeds_payoff``. Paying exactly the payoff settles the loan.
    """
    if mode is PrepaymentMode.REDUCE_TERM and facts.method is RepaymentMethod.INTEREST_FIRST:
        raise ValidationError.single(
            "mode",
            "prepayment.mode",
            "an interest-first loan has no instalment to keep; use reduce_payment",
        )
    return _plan(facts, lines, as_of, amount, mode)


def plan_settlement(
    facts: LoanFacts, lines: Sequence[Line], as_of: date, amount: Decimal
) -> Reschedule:
    """Plan paying the loan off on ``as_of``; ``amount`` must be the payoff exactly.

    Rules: ``repayment.exceeds_payoff`` (more), ``settlement.amount_short`` (less),
    ``prepayment.backdated``.
    """
    return _plan(facts, lines, as_of, amount, None)


def _plan(
    facts: LoanFacts,
    lines: Sequence[Line],
    as_of: date,
    amount: Decimal,
    mode: PrepaymentMode | None,
) -> Reschedule:
    if any(x.settled_on is not None and x.settled_on > as_of for x in lines):
        raise ValidationError.single(
            "received_at",
            "prepayment.backdated",
            "a later payment is already recorded; a prepayment cannot be dated before it",
        )
    quote = payoff(facts, lines, as_of)
    if amount > quote.total:
        raise ValidationError.single(
            "amount",
            "repayment.exceeds_payoff",
            f"amount is more than the payoff ({quote.total})",
        )
    if mode is None and amount < quote.total:
        raise ValidationError.single(
            "amount",
            "settlement.amount_short",
            f"settling the loan today takes {quote.total}",
        )
    past, future = split(accrue_all(lines, facts.penalty_rate, as_of), as_of)
    period = quote.period
    if mode is not None and (not future or period is None):
        raise ValidationError.single(
            "received_at",
            "prepayment.no_future_instalments",
            "every instalment is already due; post a repayment instead",
        )
    overdue_total = quote.overdue.total
    interest_to_date = period.interest_to_date if period else ZERO
    interest_paid = max(interest_to_date - quote.advance_interest, ZERO)
    credit = max(quote.advance_interest - interest_to_date, ZERO)
    required = overdue_total + interest_paid
    if mode is not None and amount <= required:
        raise ValidationError.single(
            "amount",
            "prepayment.amount_below_due",
            f"{required} is due first; a prepayment must be more than that",
        )
    cleared = allocate(overdue_total, dues(past), facts.policy, as_of=as_of)
    kept = tuple(apply_allocation(past, cleared, as_of))
    principal_paid = amount - required
    if not future or period is None:
        return Reschedule(as_of, amount, mode, quote, cleared, ZERO, ZERO, ZERO, kept, None, (), ())
    prepaid = principal_paid + credit
    balance = period.principal_not_due - prepaid
    assert balance >= 0, "the payoff check keeps prepaid principal within the balance"
    advance_principal = sum((x.paid_principal for x in future), ZERO)
    advance_fee = sum((x.paid_fee for x in future), ZERO)
    closing = Line(
        number=future[0].number,
        due_date=as_of,
        principal=advance_principal + prepaid,
        interest=interest_to_date,
        fee=advance_fee,
        paid_principal=advance_principal + prepaid,
        paid_interest=interest_to_date,
        paid_fee=advance_fee,
        settled_on=as_of,
    )
    new_lines: tuple[Line, ...] = ()
    if balance > 0:
        assert mode is not None
        term = len(future) if mode is PrepaymentMode.REDUCE_PAYMENT else None
        new_lines = _new_lines(facts, future, as_of, period.principal_not_due, balance, term)
    return Reschedule(
        as_of=as_of,
        amount=amount,
        mode=mode,
        payoff_before=quote,
        cleared=cleared,
        interest_paid=interest_paid,
        principal_paid=principal_paid,
        interest_credit=credit,
        kept=kept,
        closing=closing,
        new_lines=new_lines,
        replaced=tuple(x.number for x in future),
    )


def rebuild(facts: LoanFacts, future: Sequence[Line], balance: Decimal, term: int) -> Schedule:
    """Amortise ``balance`` over ``term`` instalments on the due dates of ``future``.

    The schedule starts one regular period before the first remaining due date, on the
    month-end anchor of the remaining due dates, so ``domain.schedule`` reproduces them.
    """
    first_due = future[0].due_date
    anchor = max(x.due_date.day for x in future)
    terms = LoanTerms(
        principal=balance,
        annual_rate=facts.annual_rate,
        term_months=term,
        method=facts.method,
        start_date=add_months(first_due, -1, anchor),
        first_due_date=first_due,
        day_count=facts.day_count,
        first_period=FirstPeriod.REGULAR,
    )
    return build_schedule(terms)


def _instalment_measure(facts: LoanFacts, schedule: Schedule) -> Decimal:
    first = schedule.instalments[0]
    return first.principal if facts.method is RepaymentMethod.EQUAL_PRINCIPAL else first.payment


def shortest_term(
    facts: LoanFacts, future: Sequence[Line], old_balance: Decimal, new_balance: Decimal
) -> int:
    """The fewest instalments whose instalment is not above the current one (reduce_term)."""
    reference = _instalment_measure(facts, rebuild(facts, future, old_balance, len(future)))
    low, high = 1, len(future)
    while low < high:
        middle = (low + high) // 2
        if _instalment_measure(facts, rebuild(facts, future, new_balance, middle)) <= reference:
            high = middle
        else:
            low = middle + 1
    return low


def _new_lines(
    facts: LoanFacts,
    future: Sequence[Line],
    as_of: date,
    old_balance: Decimal,
    balance: Decimal,
    term: int | None,
) -> tuple[Line, ...]:
    if term is None:
        term = shortest_term(facts, future, old_balance, balance)
    schedule = rebuild(facts, future, balance, term)
    first_due = future[0].due_date
    days = facts.day_count.days(as_of, first_due)
    product = _CTX.multiply(_CTX.multiply(balance, facts.annual_rate), Decimal(days))
    rest_of_period = round_fen(_CTX.divide(product, Decimal(facts.day_count.basis)))
    base_number = future[0].number
    result: list[Line] = []
    for k, row in enumerate(schedule.instalments):
        old = future[k]
        interest = row.interest if k else max(min(row.interest, rest_of_period), ZERO)
        result.append(
            Line(
                number=base_number + k + 1,
                due_date=old.due_date,
                principal=row.principal,
                interest=interest,
                fee=old.fee - old.paid_fee,
            )
        )
    return tuple(result)


__all__ = [
    "PrepaymentMode",
    "Reschedule",
    "parse_mode",
    "plan_prepayment",
    "plan_settlement",
    "rebuild",
    "shortest_term",
]
