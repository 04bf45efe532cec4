"""Days past due, buckets and default interest (罚息), without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from puhui.servicing.delinquency import (
    DEFAULT_BUCKETS,
    Bucket,
    accrue_penalty,
    bucket_for,
    check_buckets,
    daily_penalty,
    days_past_due,
)
from puhui.servicing.ledger import Line

D = Decimal
DUE = date(2026, 2, 15)


def line(
    number: int = 1, due: date = DUE, principal: str = "972.80", interest: str = "60.00"
) -> Line:
    return Line(number, due, D(principal), D(interest))


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(-3, "current"), (0, "current"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3+")],
)
def test_days_past_due_and_bucket_at_the_boundaries(days: int, bucket: str) -> None:
    as_of = DUE + timedelta(days=days)
    dpd = days_past_due([line(), line(2, date(2026, 3, 15))], as_of)
    assert dpd == max(days, 0)
    assert bucket_for(dpd).name == bucket


def test_days_past_due_counts_from_the_oldest_instalment_not_fully_paid() -> None:
    first = line().pay(line().charged, DUE)
    second = line(2, date(2026, 3, 15))
    third = line(3, date(2026, 4, 15))
    assert days_past_due([first, second, third], date(2026, 4, 20)) == 36
    assert days_past_due([first], date(2026, 4, 20)) == 0  # everything paid


def test_an_unpaid_penalty_keeps_an_instalment_past_due() -> None:
    charged = replace(line(), penalty=D("2.50"))
    paid_but_penalty = charged.pay(replace(charged.charged, penalty=D("0.00")), date(2026, 2, 25))
    assert days_past_due([paid_but_penalty], date(2026, 2, 26)) == 11
    assert paid_but_penalty.settled_on is None


def test_buckets_are_data_and_are_checked() -> None:
    check_buckets(DEFAULT_BUCKETS)
    custom = (Bucket("正常", 0, 0), Bucket("关注", 1, 90), Bucket("不良", 91, None))
    check_buckets(custom)
    assert bucket_for(90, custom).name == "关注" and bucket_for(91, custom).name == "不良"
    with pytest.raises(ValueError, match="gap"):
        check_buckets((Bucket("a", 0, 0), Bucket("b", 2, None)))
    with pytest.raises(ValueError, match="upper bound"):
        check_buckets((Bucket("a", 0, 10),))


def test_penalty_known_answer_1000_at_9_percent_for_10_days_is_2_50() -> None:
    overdue = line(principal="900.00", interest="100.00")
    assert daily_penalty(D("1000.00"), D("0.09")) == D("0.25")
    accrued = accrue_penalty(overdue, D("0.09"), DUE + timedelta(days=10))
    assert accrued.penalty == D("2.50")
    assert accrued.penalty_accrued_to == date(2026, 2, 25)


def test_penalty_runs_from_the_day_after_the_due_date_and_never_backwards() -> None:
    assert accrue_penalty(line(), D("0.09"), DUE) == line()  # due today: nothing yet
    once = accrue_penalty(line(), D("0.09"), DUE + timedelta(days=1))
    assert once.penalty == daily_penalty(D("1032.80"), D("0.09")) == D("0.26")
    assert accrue_penalty(once, D("0.09"), DUE) == once
    assert accrue_penalty(once, D("0.09"), DUE + timedelta(days=1)) == once


def test_penalty_runs_on_unpaid_principal_and_interest_only() -> None:
    part_paid = line().pay(replace(line().charged, principal=D("472.80")), DUE)
    accrued = accrue_penalty(part_paid, D("0.09"), DUE + timedelta(days=10))
    assert accrued.penalty == daily_penalty(D("500.00"), D("0.09")) * 10 == D("1.30")
    paid = line().pay(line().charged, DUE)
    assert accrue_penalty(paid, D("0.09"), DUE + timedelta(days=10)) == paid


def test_rounding_is_half_up_per_day() -> None:
    # 20.00 × 9 % / 360 = 0.005 exactly: rounds up to a fen a day; 19.99 rounds to nothing.
    assert daily_penalty(D("20.00"), D("0.09")) == D("0.01")
    assert daily_penalty(D("19.99"), D("0.09")) == D("0.00")


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**9).map(lambda n: Decimal(n).scaleb(-2)),
    st.integers(min_value=0, max_value=3600).map(lambda bp: Decimal(bp).scaleb(-4)),
    st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8),
)
def test_lazy_accrual_equals_daily_accrual(base: Decimal, rate: Decimal, steps: list[int]) -> None:
    start = Line(1, DUE, base, D("0.00"))
    lazy = start
    day = DUE
    for step in steps:  # accrue at irregular points, as reads and batch runs happen
        day += timedelta(days=step)
        lazy = accrue_penalty(lazy, rate, day)
    daily = start
    for k in range(1, (day - DUE).days + 1):
        daily = accrue_penalty(daily, rate, DUE + timedelta(days=k))
    once = accrue_penalty(start, rate, day)
    assert lazy.penalty == daily.penalty == once.penalty
