"""Application and loan lifecycles as explicit state machines.

Each transition has a name, the states it may start from, the state it leads to and optional
guards (named predicates over a context). An illegal move raises ``InvalidTransition``; it is
never a silent no-op, so a repeated or out-of-order request is visible to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from puhui.domain.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)

Guard = Callable[[Mapping[str, Any]], str | None]
"""A guard returns ``None`` when the move is allowed, or the reason it is not."""


@dataclass(frozen=True)
class Transition(Generic[S]):
    name: str
    sources: frozenset[S]
    target: S
    guards: tuple[Guard, ...] = ()


@dataclass(frozen=True)
class StateMachine(Generic[S]):
    """A set of named transitions over one state enum."""

    name: str
    transitions: Mapping[str, Transition[S]] = field(default_factory=dict)
    terminal: frozenset[S] = frozenset()

    def allowed(self, state: S) -> list[str]:
        """Names of the transitions that can start from ``state`` (ignoring guards)."""
        return sorted(t.name for t in self.transitions.values() if state in t.sources)

    def apply(self, state: S, transition: str, context: Mapping[str, Any] | None = None) -> S:
        """The state after ``transition`` from ``state``, or ``InvalidTransition``."""
        move = self.transitions.get(transition)
        if move is None:
            raise InvalidTransition(self.name, state.value, transition, "no such transition")
        if state not in move.sources:
            reason = (
                "state is terminal"
                if state in self.terminal
                else (f"allowed from {sorted(s.value for s in move.sources)}")
            )
            raise InvalidTransition(self.name, state.value, transition, reason)
        ctx = context or {}
        for guard in move.guards:
            refusal = guard(ctx)
            if refusal is not None:
                raise InvalidTransition(self.name, state.value, transition, refusal)
        return move.target


def _machine(
    name: str, terminal: set[S], moves: list[tuple[str, set[S], S, tuple[Guard, ...]]]
) -> StateMachine[S]:
    return StateMachine(
        name=name,
        transitions={
            n: Transition(n, frozenset(src), dst, guards) for n, src, dst, guards in moves
        },
        terminal=frozenset(terminal),
    )


class ApplicationState(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    REFERRED = "referred"
    APPROVED = "approved"
    DECLINED = "declined"
    OFFER_ACCEPTED = "offer_accepted"
    CONTRACTED = "contracted"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


def _reason_given(ctx: Mapping[str, Any]) -> str | None:
    return None if ctx.get("reasons") else "a decision must carry at least one reason"


def _reviewer_named(ctx: Mapping[str, Any]) -> str | None:
    return None if ctx.get("reviewer") else "a human decision must name the reviewer"


def _automated_decision(ctx: Mapping[str, Any]) -> str | None:
    # PIPL Art. 24: a person may refuse a decision made solely by automated means.
    return None if ctx.get("automated") else "only an automated decision can be put to a person"


def _offer_not_expired(ctx: Mapping[str, Any]) -> str | None:
    return "the offer has expired" if ctx.get("offer_expired") else None


A = ApplicationState
APPLICATION: StateMachine[ApplicationState] = _machine(
    "application",
    {A.CONTRACTED, A.CANCELLED, A.EXPIRED},
    [
        ("start_review", {A.SUBMITTED}, A.UNDER_REVIEW, ()),
        ("approve", {A.UNDER_REVIEW}, A.APPROVED, (_reason_given,)),
        ("decline", {A.UNDER_REVIEW}, A.DECLINED, (_reason_given,)),
        ("refer", {A.UNDER_REVIEW}, A.REFERRED, (_reason_given,)),
        ("reviewer_approve", {A.REFERRED}, A.APPROVED, (_reason_given, _reviewer_named)),
        ("reviewer_decline", {A.REFERRED}, A.DECLINED, (_reason_given, _reviewer_named)),
        ("request_human_review", {A.DECLINED}, A.REFERRED, (_automated_decision,)),
        ("accept_offer", {A.APPROVED}, A.OFFER_ACCEPTED, (_offer_not_expired,)),
        ("expire_offer", {A.APPROVED}, A.EXPIRED, ()),
        ("sign_contract", {A.OFFER_ACCEPTED}, A.CONTRACTED, ()),
        (
            "cancel",
            {A.SUBMITTED, A.UNDER_REVIEW, A.REFERRED, A.APPROVED, A.OFFER_ACCEPTED},
            A.CANCELLED,
            (),
        ),
    ],
)
"""An application: submitted → under review → approved / declined / referred → offer accepted
→ contracted. Cancelled by the applicant at any point before the contract. An automated
decline can be put to a person (``request_human_review``, PIPL Art. 24): it goes back to the
review queue as referred; a human decline is final."""


class LoanState(StrEnum):
    CONTRACTED = "contracted"
    ACTIVE = "active"
    OVERDUE = "overdue"
    SETTLED = "settled"
    WRITTEN_OFF = "written_off"
    CANCELLED = "cancelled"


def _fully_repaid(ctx: Mapping[str, Any]) -> str | None:
    return (
        None if ctx.get("outstanding_fen", 1) == 0 else "the loan still has an outstanding balance"
    )


def _past_due(ctx: Mapping[str, Any]) -> str | None:
    return None if ctx.get("days_past_due", 0) > 0 else "nothing is past due"


def _nothing_past_due(ctx: Mapping[str, Any]) -> str | None:
    return None if ctx.get("days_past_due", 1) == 0 else "instalments are still past due"


def _write_off_approved(ctx: Mapping[str, Any]) -> str | None:
    return None if ctx.get("approved_by") else "a write-off needs a named approver"


L = LoanState
LOAN: StateMachine[LoanState] = _machine(
    "loan",
    {L.SETTLED, L.WRITTEN_OFF, L.CANCELLED},
    [
        ("disburse", {L.CONTRACTED}, L.ACTIVE, ()),
        ("cancel", {L.CONTRACTED}, L.CANCELLED, ()),
        ("fall_overdue", {L.ACTIVE}, L.OVERDUE, (_past_due,)),
        ("cure", {L.OVERDUE}, L.ACTIVE, (_nothing_past_due,)),
        ("settle", {L.ACTIVE, L.OVERDUE}, L.SETTLED, (_fully_repaid,)),
        ("write_off", {L.OVERDUE}, L.WRITTEN_OFF, (_write_off_approved,)),
    ],
)
"""A loan: contracted → disbursed (active) ⇄ overdue → settled, or written off from overdue."""
