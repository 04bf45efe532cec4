"""What every money-in use case shares: validation, idempotency, receipts and state moves.

* **Validate before writing.** Amount, time and reference are checked before a unit of work
  opens; the loan's rules (state, payoff, prepayment limits) before anything is changed.
* **Idempotent by ``(loan_id, external_ref)``.** A retried posting with the same amount (and
  the same kind: repayment, prepayment or settlement) returns the stored receipt with
  ``replayed=True`` — the receipt as it was, including the balance after it, not today's.
  The same reference with another amount or kind is refused
  (``repayment.external_ref_reused``). Two identical postings racing each other are resolved
  by the loan's row lock and, failing that, by the unique constraint and one retry, which
  then finds the stored row.
* **State follows the schedule.** After every posting the loan's state is moved along
  ``domain.lifecycle.LOAN``: settled when nothing is owed, cured when an overdue loan has
  nothing past due, overdue when an active one has (normally the nightly batch's job).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from puhui.domain.clock import business_date, require_aware
from puhui.domain.errors import ErrorCollector, ValidationError
from puhui.domain.identifiers import validate_reference
from puhui.domain.lifecycle import LOAN, LoanState
from puhui.domain.money import parse_amount, to_fen
from puhui.privacy.consent import Purpose
from puhui.servicing.allocation import Amounts, Applied
from puhui.servicing.delinquency import bucket_for, days_past_due
from puhui.servicing.ledger import Line, total_owed
from puhui.servicing.repository import find_loan, repayment_by_ref
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork

PURPOSE = Purpose.LOAN_SERVICING

REPAYMENT = "repayment"
PREPAYMENT = "prepayment"
SETTLEMENT = "settlement"

SERVICEABLE = frozenset({LoanState.ACTIVE, LoanState.OVERDUE})


@dataclass(frozen=True, slots=True)
class Posting:
    """A validated request to post money against a loan."""

    loan_id: str
    external_ref: str
    amount: Decimal
    received_at: datetime
    business_date: date


def validate_posting(
    loan_id: object, external_ref: object, amount: object, received_at: object
) -> Posting:
    """Every input rule at once: ``money.*`` on amount, ``time.*`` on received_at,
    ``repayment.external_ref`` (1-64 characters: letters, digits, ``_ . : -``),
    ``loan.not_found`` for a non-string id."""
    errors = ErrorCollector()
    value: Decimal | None = None
    moment: datetime | None = None
    with errors.checking():
        value = parse_amount(amount, "amount")
    if not isinstance(received_at, datetime):
        errors.add("received_at", "time.type", "must be a date and time")
    else:
        with errors.checking():
            moment = require_aware(received_at, "received_at")
    ref = ""
    with errors.checking():
        ref = validate_reference(external_ref, "external_ref", "repayment.external_ref")
    if not isinstance(loan_id, str) or not loan_id:
        errors.add("loan_id", "loan.not_found", "no such loan")
    errors.raise_if_any()
    assert value is not None and moment is not None and isinstance(loan_id, str)
    return Posting(loan_id, ref, value, moment, business_date(moment))


@dataclass(frozen=True, slots=True)
class PrepaymentSummary:
    """How a prepayment or settlement changed the schedule."""

    mode: str | None
    interest_to_date: Decimal
    """Interest of the current period up to the prepayment date, charged on the closing line."""
    interest_credit: Decimal
    """Interest paid earlier in advance, beyond what accrued, counted as principal."""
    principal_prepaid: Decimal
    remaining_instalments: int
    next_due_date: date | None
    next_payment: Decimal | None
    regular_payment: Decimal | None

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "interest_to_date": str(self.interest_to_date),
            "interest_credit": str(self.interest_credit),
            "principal_prepaid": str(self.principal_prepaid),
            "remaining_instalments": self.remaining_instalments,
            "next_due_date": self.next_due_date.isoformat() if self.next_due_date else None,
            "next_payment": _str_or_none(self.next_payment),
            "regular_payment": _str_or_none(self.regular_payment),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PrepaymentSummary:
        return cls(
            mode=raw["mode"],
            interest_to_date=Decimal(raw["interest_to_date"]),
            interest_credit=Decimal(raw["interest_credit"]),
            principal_prepaid=Decimal(raw["principal_prepaid"]),
            remaining_instalments=int(raw["remaining_instalments"]),
            next_due_date=date.fromisoformat(raw["next_due_date"])
            if raw["next_due_date"]
            else None,
            next_payment=_decimal_or_none(raw["next_payment"]),
            regular_payment=_decimal_or_none(raw["regular_payment"]),
        )


@dataclass(frozen=True, slots=True)
class RepaymentReceipt:
    """What a posting did: the split by instalment and component, and the loan after it."""

    repayment_id: str
    loan_id: str
    external_ref: str
    kind: str
    amount: Decimal
    business_date: date
    lines: tuple[Applied, ...]
    outstanding_principal: Decimal
    state: str
    days_past_due: int
    replayed: bool = False
    prepayment: PrepaymentSummary | None = None

    @property
    def totals(self) -> Amounts:
        return Amounts.total_of(a.paid for a in self.lines)

    def allocation_json(self, policy: str) -> dict[str, Any]:
        """The ``repayments.allocation`` JSON: enough to give the same receipt back later."""
        stored: dict[str, Any] = {
            "kind": self.kind,
            "policy": policy,
            "lines": [a.as_json() for a in self.lines],
            "totals": self.totals.as_json(),
            "after": {
                "outstanding_principal": str(self.outstanding_principal),
                "state": self.state,
                "days_past_due": self.days_past_due,
            },
        }
        if self.prepayment is not None:
            stored["prepayment"] = self.prepayment.as_json()
        return stored

    @classmethod
    def from_row(cls, row: m.Repayment, *, replayed: bool) -> RepaymentReceipt:
        stored = row.allocation
        after = stored["after"]
        lines = tuple(
            Applied(int(x["number"]), Amounts.from_json(x)) for x in stored.get("lines", [])
        )
        summary = stored.get("prepayment")
        return cls(
            repayment_id=row.id,
            loan_id=row.loan_id,
            external_ref=row.external_ref,
            kind=str(stored["kind"]),
            amount=row.amount,
            business_date=row.business_date,
            lines=lines,
            outstanding_principal=Decimal(after["outstanding_principal"]),
            state=str(after["state"]),
            days_past_due=int(after["days_past_due"]),
            replayed=replayed,
            prepayment=PrepaymentSummary.from_json(summary) if summary else None,
        )


Apply = Callable[[UnitOfWork, m.Loan, Posting], RepaymentReceipt]


def run_posting(
    uow: UnitOfWork, institution_id: str, posting: Posting, kind: str, apply: Apply
) -> RepaymentReceipt:
    """Run ``apply`` once per ``(loan, external_ref)`` in one unit of work (module docstring)."""
    try:
        return _run(uow, institution_id, posting, kind, apply)
    except (IntegrityError, StaleDataError):
        # A concurrent posting committed first and our transaction rolled back whole;
        # once more either replays its receipt or applies ours to the new balance.
        return _run(uow, institution_id, posting, kind, apply)


def _run(
    uow: UnitOfWork, institution_id: str, posting: Posting, kind: str, apply: Apply
) -> RepaymentReceipt:
    with uow:
        loan = find_loan(uow, institution_id, posting.loan_id, lock=True)
        existing = repayment_by_ref(uow, loan.id, posting.external_ref)
        if existing is not None:
            return _replay(existing, posting, kind)
        if LoanState(loan.state) not in SERVICEABLE:
            raise ValidationError.single(
                "loan_id", "loan.state", f"a {loan.state} loan takes no payments"
            )
        if posting.business_date < business_date(loan.disbursed_at or loan.contracted_at):
            raise ValidationError.single(
                "received_at", "repayment.before_disbursement", "received before disbursement"
            )
        receipt = apply(uow, loan, posting)
        uow.commit()
        return receipt


def _replay(row: m.Repayment, posting: Posting, kind: str) -> RepaymentReceipt:
    stored_kind = row.allocation.get("kind")
    if row.amount != posting.amount or stored_kind != kind:
        raise ValidationError.single(
            "external_ref",
            "repayment.external_ref_reused",
            "this reference was already used for a different payment",
        )
    return RepaymentReceipt.from_row(row, replayed=True)


def save_repayment(
    uow: UnitOfWork, loan: m.Loan, posting: Posting, receipt: RepaymentReceipt
) -> m.Repayment:
    row = m.Repayment(
        id=receipt.repayment_id,
        loan_id=loan.id,
        external_ref=posting.external_ref,
        amount=posting.amount,
        received_at=posting.received_at,
        business_date=posting.business_date,
        allocation=receipt.allocation_json(loan.allocation_order),
    )
    uow.session.add(row)
    return row


@dataclass(frozen=True, slots=True)
class StateMove:
    """A loan state change decided from its schedule; ``event`` is None when nothing moves."""

    before: LoanState
    after: LoanState
    event: str | None
    days_past_due: int


def decide_state(state: LoanState, lines: Sequence[Line], as_of: date) -> StateMove:
    """Settle, cure or fall overdue as the schedule says on ``as_of`` (module docstring)."""
    dpd = days_past_due(lines, as_of)
    owed = total_owed(lines).total
    if owed == 0:
        after = LOAN.apply(state, "settle", {"outstanding_fen": to_fen(owed)})
        return StateMove(state, after, "loan.settled", dpd)
    if state is LoanState.OVERDUE and dpd == 0:
        return StateMove(state, LOAN.apply(state, "cure", {"days_past_due": dpd}), "loan.cured", 0)
    if state is LoanState.ACTIVE and dpd > 0:
        after = LOAN.apply(state, "fall_overdue", {"days_past_due": dpd})
        return StateMove(state, after, "loan.overdue", dpd)
    return StateMove(state, state, None, dpd)


def apply_state(
    uow: UnitOfWork,
    loan: m.Loan,
    move: StateMove,
    *,
    at: datetime,
    as_of: date,
    payload: Mapping[str, Any] | None = None,
) -> None:
    """Set the loan's new state and record its event (masked, non-personal payload)."""
    if move.event is None:
        return
    loan.state = move.after.value
    if move.after is LoanState.SETTLED:
        loan.closed_at = at
    record(
        uow,
        loan,
        move.event,
        {
            "from": move.before.value,
            "to": move.after.value,
            "business_date": as_of.isoformat(),
            "days_past_due": move.days_past_due,
            "bucket": bucket_for(move.days_past_due).name,
            **(payload or {}),
        },
    )


def record(uow: UnitOfWork, loan: m.Loan, event_type: str, payload: Mapping[str, Any]) -> None:
    """An outbox event on the loan: ids, dates and amounts only, never personal data."""
    uow.record_event(
        aggregate_type="loan",
        aggregate_id=loan.id,
        event_type=event_type,
        institution_id=loan.institution_id,
        purpose=PURPOSE.value,
        payload=payload,
    )


def as_business_date(as_of: object, field: str = "as_of") -> date:
    """A business date as given, or the Asia/Shanghai date of an aware instant."""
    if isinstance(as_of, datetime):
        return business_date(require_aware(as_of, field))
    if isinstance(as_of, date):
        return as_of
    raise ValidationError.single(field, "time.type", "must be a date")


def _str_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal_or_none(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
