"""Allocation: oldest instalment first, the component order inside it, or horizontally."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from puhui.domain.errors import ValidationError
from puhui.servicing.allocation import (
    DEFAULT_POLICY,
    AllocationPolicy,
    Amounts,
    Component,
    Due,
    Strategy,
    allocate,
    parse_policy,
)

D = Decimal


def three_instalments() -> list[Due]:
    """Two instalments past due (with penalties and a 5.00 fee each) and one not yet due."""
    return [
        Due(2, date(2026, 3, 15), Amounts(D("0.50"), D("5.00"), D("55.14"), D("977.66"))),
        Due(1, date(2026, 2, 15), Amounts(D("2.50"), D("5.00"), D("60.00"), D("972.80"))),
        Due(3, date(2026, 4, 15), Amounts(D("0.00"), D("5.00"), D("50.25"), D("982.55"))),
    ]


def split(policy: str, amount: str, as_of: date | None = None) -> dict[int, Amounts]:
    result = allocate(D(amount), three_instalments(), parse_policy(policy), as_of=as_of)
    assert result.totals.total == D(amount)
    return {a.number: a.paid for a in result.lines}


def test_default_order_pays_the_oldest_instalment_in_full_first() -> None:
    paid = split("penalty,fee,interest,principal", "1100.00")
    assert paid == {
        1: Amounts(D("2.50"), D("5.00"), D("60.00"), D("972.80")),
        2: Amounts(D("0.50"), D("5.00"), D("54.20"), D("0.00")),
    }


@pytest.mark.parametrize(
    ("order", "second"),
    [
        ("penalty,fee,interest,principal", Amounts(D("0.50"), D("5.00"), D("54.20"))),
        ("principal,interest,fee,penalty", Amounts(principal=D("59.70"))),
        ("interest,principal,penalty,fee", Amounts(interest=D("55.14"), principal=D("4.56"))),
        ("fee,penalty,principal,interest", Amounts(D("0.50"), D("5.00"), principal=D("54.20"))),
    ],
)
def test_each_order_is_applied_within_an_instalment(order: str, second: Amounts) -> None:
    paid = split(order, "1100.00")
    assert paid[1].total == D("1040.30")  # the oldest instalment is cleared whatever the order
    assert paid[2] == second


def test_partial_payment_within_the_first_instalment_follows_the_order() -> None:
    assert split("penalty,fee,interest,principal", "30.00") == {
        1: Amounts(D("2.50"), D("5.00"), D("22.50"))
    }
    assert split("principal,interest,fee,penalty", "30.00") == {1: Amounts(principal=D("30.00"))}


def test_payment_across_several_instalments_reaches_the_one_not_yet_due() -> None:
    paid = split("penalty,fee,interest,principal", "2100.00")
    assert paid[1].total == D("1040.30") and paid[2].total == D("1038.30")
    assert paid[3] == Amounts(fee=D("5.00"), interest=D("16.40"))


def test_horizontal_pays_every_penalty_then_every_fee_across_instalments_due() -> None:
    as_of = date(2026, 3, 20)
    horizontal = split("horizontal:penalty,fee,interest,principal", "100.00", as_of)
    assert horizontal == {
        1: Amounts(D("2.50"), D("5.00"), D("60.00")),
        2: Amounts(D("0.50"), D("5.00"), D("27.00")),
    }
    vertical = split("penalty,fee,interest,principal", "100.00", as_of)
    assert vertical == {1: Amounts(D("2.50"), D("5.00"), D("60.00"), D("32.50"))}


def test_horizontal_does_not_reach_ahead_into_instalments_not_yet_due() -> None:
    # All of instalments 1 and 2 is paid before anything of 3, which then goes vertically.
    paid = split("horizontal:principal,interest,fee,penalty", "2100.00", date(2026, 3, 20))
    assert paid[1].total == D("1040.30") and paid[2].total == D("1038.30")
    assert paid[3] == Amounts(principal=D("21.40"))


def test_an_amount_above_everything_owed_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        allocate(D("3116.41"), three_instalments())
    assert caught.value.errors[0].field == "amount"
    assert caught.value.rules == ("repayment.exceeds_payoff",)
    assert allocate(D("3116.40"), three_instalments()).totals.total == D("3116.40")


def test_zero_allocates_nothing_and_fractions_of_a_fen_are_refused() -> None:
    assert allocate(D("0"), three_instalments()).lines == ()
    with pytest.raises(ValidationError) as caught:
        allocate(D("1.005"), three_instalments())
    assert caught.value.rules == ("money.precision",)


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("penalty,fee,interest", "allocation.order"),
        ("penalty,fee,interest,interest", "allocation.order"),
        ("penalty,fee,interest,principal,principal", "allocation.order"),
        ("penalty,fee,interest,capital", "allocation.order"),
        ("diagonal:penalty,fee,interest,principal", "allocation.strategy"),
        (None, "allocation.order"),
    ],
)
def test_a_policy_must_name_each_component_once(raw: object, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_policy(raw)
    assert caught.value.rules == (rule,)
    assert caught.value.fields == ("allocation_order",)


def test_policies_round_trip_through_their_stored_form() -> None:
    assert parse_policy("penalty,fee,interest,principal") == DEFAULT_POLICY
    assert parse_policy(" Interest , Principal,fee,penalty ").order[0] is Component.INTEREST
    horizontal = AllocationPolicy(DEFAULT_POLICY.order, Strategy.HORIZONTAL)
    assert parse_policy(horizontal.encode()) == horizontal
    assert DEFAULT_POLICY.encode() == "penalty,fee,interest,principal"


fen = st.integers(min_value=0, max_value=200_000).map(lambda n: Decimal(n).scaleb(-2))
owed = st.builds(Amounts, fen, fen, fen, fen)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(owed, min_size=1, max_size=6),
    st.lists(st.integers(min_value=0, max_value=1_000_000), min_size=1, max_size=6),
    st.permutations(list(Component)),
    st.sampled_from(list(Strategy)),
)
def test_repeated_payments_never_pay_more_than_is_owed(
    owed_by_line: list[Amounts],
    payments: list[int],
    order: list[Component],
    strategy: Strategy,
) -> None:
    policy = AllocationPolicy(tuple(order), strategy)
    dues = [
        Due(n, date(2026, 1 + n, 15), amounts) for n, amounts in enumerate(owed_by_line, start=1)
    ]
    as_of = date(2026, 4, 1)
    for cents in payments:
        left = sum((d.owed.total for d in dues), Decimal(0))
        amount = min(Decimal(cents).scaleb(-2), left)
        result = allocate(amount, dues, policy, as_of=as_of)
        assert result.totals.total == amount
        dues = [Due(d.number, d.due_date, d.owed - result.for_line(d.number)) for d in dues]
        for d in dues:
            assert all(d.owed.of(c) >= 0 for c in Component)
        # Oldest first: a line is paid into only when every older line is fully paid, or
        # (horizontally) the component is paid across the lines already due.
        if strategy is Strategy.VERTICAL:
            touched = [d.number for d in dues if result.for_line(d.number).total > 0]
            for number in touched[:-1]:
                assert dues[number - 1].owed.total == 0
