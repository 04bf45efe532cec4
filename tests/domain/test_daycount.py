"""Day counts: ACT/360, ACT/365 Fixed and 30/360 Bond Basis, as exact Decimals."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, localcontext

import pytest

from puhui.domain.daycount import DayCount


def test_values_are_stable_names() -> None:
    assert [d.value for d in DayCount] == ["act/360", "act/365", "30/360"]
    assert DayCount("30/360") is DayCount.THIRTY_360


def test_bases() -> None:
    assert DayCount.ACT_360.basis == 360
    assert DayCount.ACT_365.basis == 365
    assert DayCount.THIRTY_360.basis == 360


def test_actual_days_count_the_calendar() -> None:
    start, end = date(2024, 1, 1), date(2025, 1, 1)  # 2024 is a leap year
    assert DayCount.ACT_365.days(start, end) == 366
    with localcontext() as ctx:
        ctx.prec = 50  # the documented precision of a non-terminating fraction
        assert DayCount.ACT_365.year_fraction(start, end) == Decimal(366) / Decimal(365)
        assert DayCount.ACT_360.year_fraction(date(2025, 1, 1), date(2025, 1, 31)) == (
            Decimal(30) / Decimal(360)
        )


def test_act_365_is_fixed_not_actual_actual() -> None:
    # A leap year is 366/365 of a year, not exactly one.
    assert DayCount.ACT_365.year_fraction(date(2024, 1, 1), date(2025, 1, 1)) > 1


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (date(2025, 1, 15), date(2025, 2, 15), 30),
        (date(2025, 1, 31), date(2025, 3, 31), 60),  # D1 31 → 30, then D2 31 → 30
        (date(2025, 1, 30), date(2025, 3, 31), 60),  # D1 30, so D2 31 → 30
        (date(2025, 1, 29), date(2025, 3, 31), 62),  # D1 29: D2 stays 31 (Bond Basis)
        (date(2025, 2, 28), date(2025, 3, 31), 33),  # no end-of-February rule (not 30/360 US)
        (date(2024, 2, 29), date(2025, 2, 28), 359),
        (date(2025, 1, 30), date(2025, 1, 31), 0),
    ],
)
def test_thirty_360_bond_basis(start: date, end: date, days: int) -> None:
    assert DayCount.THIRTY_360.days(start, end) == days


def test_thirty_360_month_is_exactly_a_twelfth() -> None:
    fraction = DayCount.THIRTY_360.year_fraction(date(2025, 1, 15), date(2025, 2, 15))
    with localcontext() as ctx:
        ctx.prec = 50
        assert fraction == Decimal(1) / Decimal(12)
    assert DayCount.THIRTY_360.year_fraction(date(2025, 1, 15), date(2026, 1, 15)) == 1


def test_year_fraction_is_decimal_and_exact_when_it_terminates() -> None:
    fraction = DayCount.ACT_360.year_fraction(date(2025, 1, 1), date(2025, 4, 1))
    assert isinstance(fraction, Decimal)
    assert fraction == Decimal("0.25")


def test_reversed_dates_give_a_negative_fraction() -> None:
    assert DayCount.ACT_365.year_fraction(date(2025, 1, 2), date(2025, 1, 1)) < 0


def test_datetimes_are_rejected() -> None:
    with pytest.raises(TypeError):
        DayCount.ACT_360.days(datetime(2025, 1, 1), date(2025, 2, 1))
