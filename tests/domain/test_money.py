"""Money: exact Decimal yuan, integer fen, half-up rounding, strict parsing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from puhui.domain.errors import ValidationError
from puhui.domain.money import format_cny, from_fen, parse_amount, round_fen, to_fen


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        ("0.005", "0.01"),
        ("0.004", "0.00"),
        ("2.675", "2.68"),
        ("-0.005", "-0.01"),
        ("8606.6435", "8606.64"),
    ],
)
def test_round_half_up_to_the_fen(value: str, rounded: str) -> None:
    assert round_fen(Decimal(value)) == Decimal(rounded)


def test_fen_round_trip() -> None:
    assert to_fen(Decimal("8606.64")) == 860664
    assert from_fen(860664) == Decimal("8606.64")
    with pytest.raises(TypeError):
        from_fen(1.5)  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_from_fen_to_fen_is_identity(fen: int) -> None:
    assert to_fen(from_fen(fen)) == fen


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (0.1, "money.type"),
        (True, "money.type"),
        (None, "money.type"),
        ("abc", "money.format"),
        ("NaN", "money.format"),
        ("Infinity", "money.format"),
        ("1.001", "money.precision"),
        ("-5", "money.positive"),
        ("0", "money.positive"),
        ("1e12", "money.maximum"),
    ],
)
def test_bad_amounts_name_field_and_rule(raw: object, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_amount(raw, "loan.amount")
    assert caught.value.errors[0].field == "loan.amount"
    assert caught.value.rules == (rule,)


def test_good_amounts() -> None:
    assert parse_amount("100000") == Decimal("100000.00")
    assert parse_amount(" 12.5 ") == Decimal("12.50")
    assert parse_amount(Decimal("1.230")) == Decimal("1.23")
    assert parse_amount(0, allow_zero=True) == Decimal("0.00")
    assert format_cny(Decimal("1234567.8")) == "¥1,234,567.80"
