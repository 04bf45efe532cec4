"""Repayment schedules: known answers, first-period and day-count rules, validation."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Any

import pytest

from puhui.domain.daycount import DayCount
from puhui.domain.errors import ValidationError
from puhui.domain.money import round_fen
from puhui.domain.schedule import (
    FirstPeriod,
    LoanTerms,
    RepaymentMethod,
    Schedule,
    add_months,
    build_schedule,
    level_payment,
    parse_rate,
)

EI = RepaymentMethod.EQUAL_INSTALLMENT
EP = RepaymentMethod.EQUAL_PRINCIPAL
IF = RepaymentMethod.INTEREST_FIRST
START = date(2025, 1, 15)


def terms(**overrides: Any) -> LoanTerms:
    values: dict[str, Any] = {
        "principal": Decimal("10000"),
        "annual_rate": Decimal("0.06"),
        "term_months": 12,
        "method": EI,
        "start_date": START,
    }
    values.update(overrides)
    return LoanTerms(**values)


def fen_half_up(value: Fraction) -> Decimal:
    """An independent exact rounding: a Fraction to the fen, half up."""
    fen = (value * 100 * 2 + 1) // 2
    return Decimal(fen) / 100


def assert_invariants(schedule: Schedule) -> None:
    rows = schedule.instalments
    assert len(rows) == schedule.terms.term_months
    assert sum(r.principal for r in rows) == schedule.terms.principal
    assert rows[-1].closing_principal == 0
    assert rows[0].opening_principal == schedule.terms.principal
    for before, after in pairwise(rows):
        assert after.opening_principal == before.closing_principal
        assert after.due_date > before.due_date
    for row in rows:
        assert row.payment == row.principal + row.interest
        assert row.closing_principal == row.opening_principal - row.principal
        assert row.interest >= 0 and row.principal >= 0
    assert schedule.total_principal == schedule.terms.principal
    assert schedule.total_payment == schedule.total_principal + schedule.total_interest


# --- known answers (REFERENCE.md §2) ---------------------------------------------------


def test_100k_at_6_percent_over_12_months_is_8606_64_a_month() -> None:
    assert level_payment(Decimal(100000), Decimal("0.06"), 12) == Decimal("8606.64")
    schedule = build_schedule(terms(principal=Decimal(100000)))
    assert {row.payment for row in schedule.instalments} == {Decimal("8606.64")}
    assert_invariants(schedule)


@pytest.mark.parametrize(
    ("method", "total_interest"),
    [(EP, Decimal("325.00")), (EI, Decimal("327.92")), (IF, Decimal("600.00"))],
)
def test_total_interest_on_10k_over_12_months_at_6_percent(
    method: RepaymentMethod, total_interest: Decimal
) -> None:
    schedule = build_schedule(terms(method=method))
    assert schedule.total_interest == total_interest
    assert_invariants(schedule)


def test_regular_first_period_flag_changes_nothing_when_the_period_is_regular() -> None:
    schedule = build_schedule(terms(first_period=FirstPeriod.REGULAR))
    assert schedule.total_interest == Decimal("327.92")
    assert schedule.instalments == build_schedule(terms()).instalments


def test_equal_instalment_rows_follow_the_balance() -> None:
    schedule = build_schedule(terms())
    first, last = schedule.instalments[0], schedule.instalments[-1]
    assert (first.interest, first.principal, first.payment) == (
        Decimal("50.00"),
        Decimal("810.66"),
        Decimal("860.66"),
    )
    for row in schedule.instalments[:-1]:
        assert row.interest == round_fen(row.opening_principal * Decimal("0.005"))
    # The last row keeps the level payment; its interest absorbs the rounding drift.
    assert last.payment == Decimal("860.66")
    assert last.principal == Decimal("856.42") and last.interest == Decimal("4.24")


def test_equal_principal_last_row_absorbs_rounding() -> None:
    schedule = build_schedule(terms(method=EP))
    principals = [row.principal for row in schedule.instalments]
    assert principals[:-1] == [Decimal("833.33")] * 11
    assert principals[-1] == Decimal("833.37")
    assert schedule.instalments[0].interest == Decimal("50.00")


def test_interest_first() -> None:
    schedule = build_schedule(terms(method=IF))
    assert [row.interest for row in schedule.instalments] == [Decimal("50.00")] * 12
    assert [row.principal for row in schedule.instalments[:-1]] == [Decimal(0)] * 11
    assert schedule.instalments[-1].payment == Decimal("10050.00")


@pytest.mark.parametrize("method", list(RepaymentMethod))
def test_zero_rate(method: RepaymentMethod) -> None:
    schedule = build_schedule(terms(method=method, annual_rate=Decimal(0)))
    assert schedule.total_interest == 0
    assert_invariants(schedule)


def test_amounts_are_rounded_to_the_fen() -> None:
    schedule = build_schedule(terms(principal=Decimal("12345.67"), annual_rate=Decimal("0.0435")))
    for row in schedule.instalments:
        for amount in (row.principal, row.interest, row.payment, row.closing_principal):
            assert amount.as_tuple().exponent == -2


# --- due dates ---------------------------------------------------------------------------


def test_due_dates_clamp_to_month_end_and_keep_the_anchor() -> None:
    schedule = build_schedule(terms(start_date=date(2025, 1, 31), term_months=4))
    assert [row.due_date for row in schedule.instalments] == [
        date(2025, 2, 28),
        date(2025, 3, 31),
        date(2025, 4, 30),
        date(2025, 5, 31),
    ]
    assert [row.days for row in schedule.instalments] == [28, 31, 30, 31]


def test_leap_february() -> None:
    loan = terms(start_date=date(2024, 1, 30), term_months=2)
    assert loan.due_dates() == (date(2024, 2, 29), date(2024, 3, 30))


def test_chosen_first_due_date_sets_the_due_day() -> None:
    loan = terms(start_date=date(2025, 1, 10), first_due_date=date(2025, 2, 20), term_months=3)
    assert loan.has_broken_first_period
    assert loan.due_dates() == (date(2025, 2, 20), date(2025, 3, 20), date(2025, 4, 20))


def test_default_first_due_date_is_resolved() -> None:
    implicit = terms(start_date=date(2025, 1, 31))
    explicit = terms(start_date=date(2025, 1, 31), first_due_date=date(2025, 2, 28))
    assert implicit.first_due_date == date(2025, 2, 28)
    assert implicit == explicit
    assert not explicit.has_broken_first_period


def test_add_months() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2025, 2, 28), 1, anchor_day=31) == date(2025, 3, 31)
    assert add_months(date(2025, 3, 31), -1) == date(2025, 2, 28)
    assert add_months(date(2025, 12, 15), 1) == date(2026, 1, 15)
    assert add_months(date(2025, 1, 15), -13) == date(2023, 12, 15)


# --- broken first period and day counts --------------------------------------------------


def test_broken_first_period_actual_days_under_30_360() -> None:
    loan = terms(
        principal=Decimal(100000),
        start_date=date(2025, 1, 10),
        first_due_date=date(2025, 2, 20),  # 40 days on 30/360
        first_period=FirstPeriod.ACTUAL_DAYS,
    )
    schedule = build_schedule(loan)
    rows = schedule.instalments
    assert rows[0].days == 41
    assert rows[0].interest == Decimal("666.67")  # 100,000 × 6% × 40/360
    r, f1 = Fraction(6, 1200), Fraction(40, 360) * Fraction(6, 100)
    exact = 100000 * (1 + f1) * (1 + r) ** 11 * r / ((1 + r) ** 12 - 1)
    assert {row.payment for row in rows[:-1]} == {fen_half_up(exact)}
    assert fen_half_up(exact) > Decimal("8606.64")  # recomputed so it still amortises
    assert abs(rows[-1].payment - fen_half_up(exact)) <= Decimal("0.10")
    assert_invariants(schedule)


def test_broken_first_period_regular_is_charged_as_a_full_month() -> None:
    loan = terms(
        principal=Decimal(100000),
        start_date=date(2025, 1, 10),
        first_due_date=date(2025, 2, 20),
        first_period=FirstPeriod.REGULAR,
    )
    schedule = build_schedule(loan)
    assert schedule.instalments[0].interest == Decimal("500.00")
    assert {row.payment for row in schedule.instalments} == {Decimal("8606.64")}


def test_short_broken_first_period_lowers_interest() -> None:
    loan = terms(
        principal=Decimal(100000),
        method=IF,
        start_date=date(2025, 1, 25),
        first_due_date=date(2025, 2, 5),
        day_count=DayCount.ACT_360,
    )
    schedule = build_schedule(loan)
    assert schedule.instalments[0].days == 11
    assert schedule.instalments[0].interest == Decimal("183.33")  # 100,000 × 6% × 11/360


def test_act_365_interest_uses_actual_days_and_the_payment_still_amortises() -> None:
    loan = terms(principal=Decimal(100000), day_count=DayCount.ACT_365)
    schedule = build_schedule(loan)
    rows = schedule.instalments
    assert rows[0].days == 31
    assert rows[0].interest == Decimal("509.59")  # 100,000 × 6% × 31/365
    factors = [1 + Fraction(6, 100) * Fraction(row.days, 365) for row in rows]
    product, annuity = Fraction(1), Fraction(0)
    for factor in factors:
        product *= factor
        annuity = annuity * factor + 1
    exact = 100000 * product / annuity
    assert {row.payment for row in rows[:-1]} == {fen_half_up(exact)}
    assert abs(rows[-1].payment - fen_half_up(exact)) <= Decimal("0.10")
    assert_invariants(schedule)


def test_act_360_charges_more_than_30_360_over_a_year() -> None:
    act = build_schedule(terms(method=IF, day_count=DayCount.ACT_360))
    thirty = build_schedule(terms(method=IF))
    assert act.total_interest > thirty.total_interest  # 365/360 of a year


# --- rebuilding from an outstanding balance ----------------------------------------------


def test_schedule_from_outstanding_balance_and_remaining_term() -> None:
    original = build_schedule(terms(principal=Decimal(100000)))
    sixth = original.instalments[5]
    rest = build_schedule(
        terms(
            principal=sixth.closing_principal,
            term_months=6,
            start_date=sixth.due_date,
            first_due_date=original.instalments[6].due_date,
        )
    )
    assert not rest.terms.has_broken_first_period
    assert [r.due_date for r in rest.instalments] == [r.due_date for r in original.instalments[6:]]
    assert abs(rest.instalments[0].payment - Decimal("8606.64")) <= Decimal("0.01")
    assert rest.instalments[0].interest == original.instalments[6].interest
    assert_invariants(rest)


# --- extreme but valid inputs keep every invariant ---------------------------------------


@pytest.mark.parametrize(
    ("principal", "rate", "months", "day_count"),
    [
        ("100", "0", 360, DayCount.THIRTY_360),  # 0.28 × 359 would overpay 100.00
        ("1000", "0.36", 360, DayCount.THIRTY_360),
        ("1000", "0.99", 360, DayCount.ACT_360),
        ("0.01", "0.06", 12, DayCount.THIRTY_360),
        ("99999999999.99", "0.9999", 360, DayCount.ACT_365),
    ],
)
@pytest.mark.parametrize("method", list(RepaymentMethod))
def test_extreme_inputs_keep_invariants(
    principal: str, rate: str, months: int, day_count: DayCount, method: RepaymentMethod
) -> None:
    schedule = build_schedule(
        terms(
            principal=Decimal(principal),
            annual_rate=Decimal(rate),
            term_months=months,
            day_count=day_count,
            method=method,
        )
    )
    assert_invariants(schedule)
    assert all(row.closing_principal > 0 for row in schedule.instalments[:-1])


def test_tiny_principal_over_long_term_lowers_the_level_payment() -> None:
    schedule = build_schedule(
        terms(principal=Decimal(100), annual_rate=Decimal(0), term_months=360)
    )
    payments = {row.payment for row in schedule.instalments[:-1]}
    assert payments == {Decimal("0.27")}  # 0.28 would repay 100.00 by month 358
    assert schedule.instalments[-1].payment == Decimal("3.07")


# --- input handling and validation -------------------------------------------------------


def test_values_are_stable_strings() -> None:
    assert [m.value for m in RepaymentMethod] == [
        "equal_installment",
        "equal_principal",
        "interest_first",
    ]
    assert [f.value for f in FirstPeriod] == ["regular", "actual_days"]


def test_strings_and_enum_values_are_normalised() -> None:
    loan = LoanTerms(
        principal="10000",  # type: ignore[arg-type]
        annual_rate="0.06",  # type: ignore[arg-type]
        term_months=12,
        method="equal_principal",  # type: ignore[arg-type]
        start_date=START,
        day_count="act/365",  # type: ignore[arg-type]
        first_period="regular",  # type: ignore[arg-type]
    )
    assert loan.principal == Decimal("10000.00")
    assert loan.annual_rate == Decimal("0.06")
    assert loan.method is EP
    assert loan.day_count is DayCount.ACT_365
    assert loan.first_period is FirstPeriod.REGULAR
    assert loan.periodic_rate == Decimal("0.005")


def test_terms_are_frozen() -> None:
    loan = terms()
    with pytest.raises(AttributeError):
        loan.term_months = 24  # type: ignore[misc]


BAD_INPUTS: list[tuple[dict[str, Any], str, str]] = [
    ({"principal": 10000.0}, "terms.principal", "money.type"),
    ({"principal": "ten"}, "terms.principal", "money.format"),
    ({"principal": Decimal("0.001")}, "terms.principal", "money.precision"),
    ({"principal": Decimal(0)}, "terms.principal", "money.positive"),
    ({"principal": Decimal("1e12")}, "terms.principal", "money.maximum"),
    ({"annual_rate": 0.06}, "terms.annual_rate", "rate.type"),
    ({"annual_rate": "six"}, "terms.annual_rate", "rate.format"),
    ({"annual_rate": Decimal("NaN")}, "terms.annual_rate", "rate.format"),
    ({"annual_rate": Decimal("0.00000000001")}, "terms.annual_rate", "rate.precision"),
    ({"annual_rate": Decimal("-0.01")}, "terms.annual_rate", "rate.range"),
    ({"annual_rate": Decimal(1)}, "terms.annual_rate", "rate.range"),
    ({"term_months": "12"}, "terms.term_months", "schedule.term_type"),
    ({"term_months": True}, "terms.term_months", "schedule.term_type"),
    ({"term_months": 0}, "terms.term_months", "schedule.term_range"),
    ({"term_months": 361}, "terms.term_months", "schedule.term_range"),
    ({"method": "balloon"}, "terms.method", "schedule.method"),
    ({"day_count": "act/act"}, "terms.day_count", "schedule.day_count"),
    ({"first_period": "stub"}, "terms.first_period", "schedule.first_period"),
    ({"start_date": datetime(2025, 1, 15, 9)}, "terms.start_date", "schedule.date_type"),
    ({"start_date": "2025-01-15"}, "terms.start_date", "schedule.date_type"),
    ({"first_due_date": "2025-02-15"}, "terms.first_due_date", "schedule.date_type"),
    ({"first_due_date": START}, "terms.first_due_date", "schedule.first_due_after_start"),
    (
        {"first_due_date": date(2025, 3, 16)},
        "terms.first_due_date",
        "schedule.first_due_within_two_months",
    ),
]


@pytest.mark.parametrize(("overrides", "field", "rule"), BAD_INPUTS)
def test_each_rule_names_field_and_rule(overrides: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        terms(**overrides)
    assert (field, rule) in zip(caught.value.fields, caught.value.rules, strict=True)


def test_first_due_date_two_months_out_is_allowed() -> None:
    assert terms(first_due_date=date(2025, 3, 15)).has_broken_first_period


def test_all_errors_are_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        terms(principal="-5", annual_rate=0.1, term_months=0, method="x", start_date=None)
    assert set(caught.value.rules) == {
        "money.positive",
        "rate.type",
        "schedule.term_range",
        "schedule.method",
        "schedule.date_type",
    }


def test_parse_rate_accepts_strings_and_a_custom_maximum() -> None:
    assert parse_rate(" 0.0435 ") == Decimal("0.0435")
    assert parse_rate(Decimal("1.5"), maximum=Decimal(10)) == Decimal("1.5")
    assert parse_rate(0) == 0
    with pytest.raises(ValidationError) as caught:
        parse_rate(True, "offer.rate")
    assert caught.value.fields == ("offer.rate",) and caught.value.rules == ("rate.type",)


def test_level_payment_checks_the_term() -> None:
    assert level_payment(Decimal(1200), Decimal(0), 12) == Decimal("100.00")
    with pytest.raises(ValidationError) as caught:
        level_payment(Decimal(1200), Decimal(0), 0)
    assert caught.value.rules == ("schedule.term_range",)
