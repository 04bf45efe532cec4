"""Lifecycles: named transitions, guards, and no silent no-ops."""

from __future__ import annotations

import pytest

from puhui.domain.errors import InvalidTransition
from puhui.domain.lifecycle import APPLICATION, LOAN, ApplicationState, LoanState

A, L = ApplicationState, LoanState


def test_happy_path_of_an_application() -> None:
    s = A.SUBMITTED
    s = APPLICATION.apply(s, "start_review")
    s = APPLICATION.apply(s, "approve", {"reasons": ["score above cut-off"]})
    s = APPLICATION.apply(s, "accept_offer")
    s = APPLICATION.apply(s, "sign_contract")
    assert s is A.CONTRACTED


def test_referral_needs_a_named_reviewer() -> None:
    s = APPLICATION.apply(A.UNDER_REVIEW, "refer", {"reasons": ["thin file"]})
    assert s is A.REFERRED
    with pytest.raises(InvalidTransition, match="reviewer"):
        APPLICATION.apply(s, "reviewer_approve", {"reasons": ["ok"]})
    assert (
        APPLICATION.apply(s, "reviewer_decline", {"reasons": ["docs"], "reviewer": "li.si"})
        is A.DECLINED
    )


def test_decision_without_reasons_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="reason"):
        APPLICATION.apply(A.UNDER_REVIEW, "decline", {})


@pytest.mark.parametrize("state", [A.CONTRACTED, A.CANCELLED, A.EXPIRED])
def test_terminal_application_states_allow_nothing(state: ApplicationState) -> None:
    assert APPLICATION.allowed(state) == []
    with pytest.raises(InvalidTransition, match="terminal"):
        APPLICATION.apply(state, "cancel")


def test_repeated_transition_is_an_error_not_a_no_op() -> None:
    s = APPLICATION.apply(A.SUBMITTED, "start_review")
    with pytest.raises(InvalidTransition) as caught:
        APPLICATION.apply(s, "start_review")
    assert caught.value.state == "under_review" and caught.value.transition == "start_review"


def test_unknown_transition_is_an_error() -> None:
    with pytest.raises(InvalidTransition, match="no such transition"):
        APPLICATION.apply(A.SUBMITTED, "teleport")


def test_expired_offer_cannot_be_accepted() -> None:
    with pytest.raises(InvalidTransition, match="expired"):
        APPLICATION.apply(A.APPROVED, "accept_offer", {"offer_expired": True})


def test_loan_lifecycle_with_guards() -> None:
    s = LOAN.apply(L.CONTRACTED, "disburse")
    with pytest.raises(InvalidTransition, match="nothing is past due"):
        LOAN.apply(s, "fall_overdue", {"days_past_due": 0})
    s = LOAN.apply(s, "fall_overdue", {"days_past_due": 3})
    with pytest.raises(InvalidTransition, match="still past due"):
        LOAN.apply(s, "cure", {"days_past_due": 3})
    s = LOAN.apply(s, "cure", {"days_past_due": 0})
    with pytest.raises(InvalidTransition, match="outstanding"):
        LOAN.apply(s, "settle", {"outstanding_fen": 100})
    assert LOAN.apply(s, "settle", {"outstanding_fen": 0}) is L.SETTLED


def test_loan_disbursed_once() -> None:
    s = LOAN.apply(L.CONTRACTED, "disburse")
    with pytest.raises(InvalidTransition):
        LOAN.apply(s, "disburse")


def test_write_off_needs_an_approver_and_overdue_loan() -> None:
    with pytest.raises(InvalidTransition):
        LOAN.apply(L.ACTIVE, "write_off", {"approved_by": "cro"})
    with pytest.raises(InvalidTransition, match="approver"):
        LOAN.apply(L.OVERDUE, "write_off", {})
    assert LOAN.apply(L.OVERDUE, "write_off", {"approved_by": "cro"}) is L.WRITTEN_OFF


def test_every_state_is_reachable_or_initial() -> None:
    for machine, initial in ((APPLICATION, {A.SUBMITTED}), (LOAN, {L.CONTRACTED})):
        targets = {t.target for t in machine.transitions.values()}
        states = {s for t in machine.transitions.values() for s in t.sources} | targets
        assert states - targets <= initial


def test_automated_decline_can_be_put_to_a_person_once() -> None:
    assert APPLICATION.allowed(A.DECLINED) == ["request_human_review"]
    with pytest.raises(InvalidTransition, match="automated"):
        APPLICATION.apply(A.DECLINED, "request_human_review", {"automated": False})
    s = APPLICATION.apply(A.DECLINED, "request_human_review", {"automated": True})
    assert s is A.REFERRED
    s = APPLICATION.apply(s, "reviewer_decline", {"reasons": ["confirmed"], "reviewer": "wang"})
    with pytest.raises(InvalidTransition):
        APPLICATION.apply(s, "request_human_review", {"automated": False})
