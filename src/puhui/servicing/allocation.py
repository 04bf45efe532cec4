"""Repayment allocation: which debts a payment pays, and in what order.

Why the rules are what they are
-------------------------------
* **Oldest instalment first.** Money clears the oldest debt before a newer one, so days past
  due fall as fast as the payment allows and a borrower is never reported late on an old
  instalment while a newer one is paid.
* **Within an instalment, a configurable order** of the four components. The default is
  penalty → fee → interest → principal, Fineract's default and the usual order of Chinese
  banks' contracts. A loan stores its policy in ``loans.allocation_order`` as a comma string
  (``"penalty,fee,interest,principal"``); it must name each component exactly once
  (rule ``allocation.order``).
* **Horizontal allocation**, the other common bank policy, is chosen with a ``horizontal:``
  prefix (``"horizontal:penalty,fee,interest,principal"``): across every instalment already
  due, all penalties first (oldest first), then all fees, and so on; money left over then pays
  instalments not yet due oldest first, component order inside each. Spreading it across
  instalments not yet due would pay next year's interest before this month's overdue
  principal, which no bank means by it.
* **No overpayment.** An amount above everything owed is refused (``repayment.exceeds_payoff``
  on ``amount``) instead of being held as a credit balance (Fineract's "overpaid" state): a
  borrower who wants to pay early asks for a prepayment, which also lowers the interest.
* **Exact.** Amounts are ``Decimal`` yuan with two places; nothing is rounded here, because
  allocation only moves whole fen from one bucket to another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from enum import StrEnum

from puhui.domain.errors import ValidationError
from puhui.domain.money import ZERO, parse_amount


class Component(StrEnum):
    """What a part of a payment pays; the value is the name used in policies and JSON."""

    PENALTY = "penalty"
    """Default interest (罚息) on overdue principal and interest."""
    FEE = "fee"
    INTEREST = "interest"
    PRINCIPAL = "principal"


DEFAULT_ORDER: tuple[Component, ...] = (
    Component.PENALTY,
    Component.FEE,
    Component.INTEREST,
    Component.PRINCIPAL,
)


class Strategy(StrEnum):
    VERTICAL = "vertical"
    """Instalment by instalment, oldest first; the component order inside each."""
    HORIZONTAL = "horizontal"
    """Component by component across the instalments already due; then as vertical."""


@dataclass(frozen=True, slots=True)
class Amounts:
    """An amount for each component (owed, paid or allocated)."""

    penalty: Decimal = ZERO
    fee: Decimal = ZERO
    interest: Decimal = ZERO
    principal: Decimal = ZERO

    def of(self, component: Component) -> Decimal:
        value: Decimal = getattr(self, component.value)
        return value

    @property
    def total(self) -> Decimal:
        return self.penalty + self.fee + self.interest + self.principal

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(
            self.penalty + other.penalty,
            self.fee + other.fee,
            self.interest + other.interest,
            self.principal + other.principal,
        )

    def __sub__(self, other: Amounts) -> Amounts:
        return Amounts(
            self.penalty - other.penalty,
            self.fee - other.fee,
            self.interest - other.interest,
            self.principal - other.principal,
        )

    def as_json(self) -> dict[str, str]:
        """Decimal strings, the form amounts take in events and stored JSON."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, raw: Mapping[str, str]) -> Amounts:
        return cls(**{f.name: Decimal(raw.get(f.name, "0.00")) for f in fields(cls)})

    @classmethod
    def total_of(cls, items: Iterable[Amounts]) -> Amounts:
        result = cls()
        for item in items:
            result = result + item
        return result


@dataclass(frozen=True, slots=True)
class AllocationPolicy:
    """A loan's allocation order and strategy, as stored in ``loans.allocation_order``."""

    order: tuple[Component, ...] = DEFAULT_ORDER
    strategy: Strategy = Strategy.VERTICAL

    def encode(self) -> str:
        names = ",".join(c.value for c in self.order)
        return names if self.strategy is Strategy.VERTICAL else f"{self.strategy.value}:{names}"


DEFAULT_POLICY = AllocationPolicy()


def parse_policy(raw: object, field: str = "allocation_order") -> AllocationPolicy:
    """Parse ``"[horizontal:]c1,c2,c3,c4"``: a permutation of the four components.

    Rules: ``allocation.order`` (not a permutation of penalty, fee, interest, principal) and
    ``allocation.strategy`` (a prefix other than ``vertical:`` or ``horizontal:``).
    """
    if not isinstance(raw, str):
        raise ValidationError.single(field, "allocation.order", "order must be a string")
    text = raw.strip().lower()
    strategy = Strategy.VERTICAL
    if ":" in text:
        prefix, text = text.split(":", 1)
        try:
            strategy = Strategy(prefix.strip())
        except ValueError:
            raise ValidationError.single(
                field,
                "allocation.strategy",
                f"strategy must be one of {', '.join(s.value for s in Strategy)}",
            ) from None
    names = [n.strip() for n in text.split(",")]
    expected = sorted(c.value for c in Component)
    if sorted(names) != expected:
        raise ValidationError.single(
            field,
            "allocation.order",
            f"order must name each of {', '.join(expected)} exactly once",
        )
    return AllocationPolicy(tuple(Component(n) for n in names), strategy)


@dataclass(frozen=True, slots=True)
class Due:
    """What is still owed on one instalment (charged minus paid)."""

    number: int
    due_date: date
    owed: Amounts


@dataclass(frozen=True, slots=True)
class Applied:
    """What one payment paid on one instalment."""

    number: int
    paid: Amounts

    def as_json(self) -> dict[str, object]:
        return {"number": self.number, **self.paid.as_json()}


@dataclass(frozen=True, slots=True)
class Allocation:
    """A payment split over instalments and components; ``lines`` holds only those paid."""

    amount: Decimal
    lines: tuple[Applied, ...]

    @property
    def totals(self) -> Amounts:
        return Amounts.total_of(a.paid for a in self.lines)

    def for_line(self, number: int) -> Amounts:
        for applied in self.lines:
            if applied.number == number:
                return applied.paid
        return Amounts()


def allocate(
    amount: Decimal,
    dues: Sequence[Due],
    policy: AllocationPolicy = DEFAULT_POLICY,
    *,
    as_of: date | None = None,
) -> Allocation:
    """Split ``amount`` over ``dues`` by ``policy`` (see the module docstring).

    ``as_of`` marks which instalments are already due for the horizontal strategy (all of
    them when None). Raises ``ValidationError`` ``repayment.exceeds_payoff`` on ``amount``
    when it is more than everything in ``dues``.
    """
    amount = parse_amount(amount, "amount", allow_zero=True)
    for due in dues:
        if any(due.owed.of(c) < 0 for c in Component):
            raise ValueError(f"instalment {due.number} owes a negative amount")
    ordered = sorted(dues, key=lambda d: (d.due_date, d.number))
    payoff = sum((d.owed.total for d in ordered), ZERO)
    if amount > payoff:
        raise ValidationError.single(
            "amount",
            "repayment.exceeds_payoff",
            f"amount is more than everything owed ({payoff}); prepay or settle instead",
        )
    paid: dict[int, dict[Component, Decimal]] = {d.number: {} for d in ordered}
    left = amount

    def take(due: Due, component: Component) -> None:
        nonlocal left
        share = min(left, due.owed.of(component) - paid[due.number].get(component, ZERO))
        if share > 0:
            paid[due.number][component] = paid[due.number].get(component, ZERO) + share
            left -= share

    if policy.strategy is Strategy.HORIZONTAL:
        already_due = [d for d in ordered if as_of is None or d.due_date <= as_of]
        for component in policy.order:
            for due in already_due:
                take(due, component)
    for due in ordered:
        for component in policy.order:
            take(due, component)
    assert left == 0
    lines = tuple(
        Applied(d.number, Amounts(**{c.value: v for c, v in paid[d.number].items()}))
        for d in ordered
        if paid[d.number]
    )
    return Allocation(amount, lines)


__all__ = [
    "DEFAULT_ORDER",
    "DEFAULT_POLICY",
    "Allocation",
    "AllocationPolicy",
    "Amounts",
    "Applied",
    "Component",
    "Due",
    "Strategy",
    "allocate",
    "parse_policy",
]
