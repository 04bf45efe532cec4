"""Property-based checks of schedules, APR and caps over the whole valid input space."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from puhui.domain.daycount import DayCount
from puhui.domain.pricing import (
    CapRule,
    InstitutionType,
    apr_by_irr,
    check_rate_cap,
    lpr_on,
    schedule_cash_flows,
)
from puhui.domain.schedule import (
    MAX_TERM_MONTHS,
    FirstPeriod,
    LoanTerms,
    RepaymentMethod,
    build_schedule,
)

FAST = settings(max_examples=150, deadline=None)

principals = st.integers(min_value=1, max_value=10**13).map(lambda fen: Decimal(fen).scaleb(-2))
rates = st.integers(min_value=0, max_value=9999).map(lambda bp: Decimal(bp).scaleb(-4))
terms_months = st.integers(min_value=1, max_value=MAX_TERM_MONTHS)
starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))
# None is the default first due date; 1..59 days is always within two months.
first_due_offsets = st.one_of(st.none(), st.integers(min_value=1, max_value=59))


@st.composite
def loan_terms(
    draw: st.DrawFn,
    *,
    method: RepaymentMethod | None = None,
    day_count: DayCount | None = None,
    regular_first: bool = False,
    rate: st.SearchStrategy[Decimal] = rates,
    months: st.SearchStrategy[int] = terms_months,
    principal: st.SearchStrategy[Decimal] = principals,
) -> LoanTerms:
    start = draw(starts)
    offset = None if regular_first else draw(first_due_offsets)
    return LoanTerms(
        principal=draw(principal),
        annual_rate=draw(rate),
        term_months=draw(months),
        method=method or draw(st.sampled_from(RepaymentMethod)),
        start_date=start,
        first_due_date=None if offset is None else start + timedelta(days=offset),
        day_count=day_count or draw(st.sampled_from(DayCount)),
        first_period=draw(st.sampled_from(FirstPeriod)),
    )


@FAST
@given(loan_terms())
def test_every_schedule_keeps_its_invariants(terms: LoanTerms) -> None:
    schedule = build_schedule(terms)
    rows = schedule.instalments
    assert len(rows) == terms.term_months
    assert sum(r.principal for r in rows) == terms.principal  # exactly, to the fen
    assert rows[-1].closing_principal == 0
    assert all(r.closing_principal > 0 for r in rows[:-1])  # never repaid early
    opening = terms.principal
    previous_due = terms.start_date
    for row in rows:
        assert row.opening_principal == opening
        assert row.interest >= 0 and row.principal >= 0
        assert row.payment == row.principal + row.interest
        assert row.closing_principal == row.opening_principal - row.principal
        assert row.due_date > previous_due and row.days == (row.due_date - previous_due).days
        for amount in (row.principal, row.interest, row.payment, row.closing_principal):
            assert amount == amount.quantize(Decimal("0.01"))
        opening, previous_due = row.closing_principal, row.due_date
    assert schedule.total_payment == schedule.total_principal + schedule.total_interest


@FAST
@given(loan_terms(method=RepaymentMethod.EQUAL_INSTALLMENT))
def test_equal_instalments_are_level_but_for_the_last(terms: LoanTerms) -> None:
    rows = build_schedule(terms).instalments
    if len(rows) == 1:
        return
    level = min(r.payment for r in rows[:-1])
    # Every row but the last pays the level payment — or, when its interest alone exceeds it
    # (an ACT month longer than average, a long broken first period), that interest alone.
    for row in rows[:-1]:
        assert row.payment == level or (row.principal == 0 and row.payment > level)
    if terms.day_count is DayCount.THIRTY_360 and (
        not terms.has_broken_first_period or terms.first_period is FirstPeriod.REGULAR
    ):
        assert {r.payment for r in rows[:-1]} == {level}
    # The last pays the level payment or less, unless rounding drift left more principal.
    last = rows[-1]
    assert last.payment <= level or last.principal > level


@FAST
@given(loan_terms(method=RepaymentMethod.EQUAL_PRINCIPAL, day_count=DayCount.THIRTY_360))
def test_equal_principal_is_level_but_for_the_last(terms: LoanTerms) -> None:
    rows = build_schedule(terms).instalments
    assert len({r.principal for r in rows[:-1]}) <= 1
    interests = [r.interest for r in rows]
    assert interests[1:] == sorted(interests[1:], reverse=True)  # falls with the balance


@FAST
@given(loan_terms(method=RepaymentMethod.INTEREST_FIRST, day_count=DayCount.THIRTY_360))
def test_interest_first_charges_the_same_interest_every_regular_month(terms: LoanTerms) -> None:
    rows = build_schedule(terms).instalments
    assert all(r.principal == 0 for r in rows[:-1])
    assert len({r.interest for r in rows[1:]}) <= 1


@FAST
@given(
    loan_terms(
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        day_count=DayCount.THIRTY_360,
        regular_first=True,
        rate=st.integers(min_value=1, max_value=3600).map(lambda bp: Decimal(bp).scaleb(-4)),
        months=st.integers(min_value=1, max_value=120),
        principal=st.integers(min_value=100_000, max_value=10**10).map(
            lambda fen: Decimal(fen).scaleb(-2)
        ),
    )
)
def test_apr_of_a_fee_free_annuity_is_its_nominal_rate(terms: LoanTerms) -> None:
    schedule = build_schedule(terms)
    apr = apr_by_irr(schedule_cash_flows(schedule))
    # Interest is exact on the balance but for half a fen of rounding per row and the drift
    # the last row absorbs. Their effect on the periodic rate is at most their discounted sum
    # over the discounted balances (first order), bounded below with v ≤ 1 ≥ v^n.
    r = terms.periodic_rate
    v_n = (1 + r) ** -terms.term_months
    balances = sum(row.opening_principal for row in schedule.instalments)
    deviations = sum(abs(row.interest - row.opening_principal * r) for row in schedule.instalments)
    tolerance = 2 * deviations / (v_n * balances) + Decimal("1e-15")
    assert abs(apr.periodic_rate - r) <= tolerance
    assert abs(apr.nominal_annual - terms.annual_rate) <= 12 * tolerance


@FAST
@given(
    loan_terms(
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        regular_first=True,
        months=st.integers(min_value=1, max_value=60),
    ),
    st.integers(min_value=1, max_value=5000),
)
def test_an_upfront_fee_raises_the_apr(terms: LoanTerms, per_mille: int) -> None:
    schedule = build_schedule(terms)
    fee = (terms.principal * per_mille / 10000).quantize(Decimal("0.01"))
    if fee == 0:
        return
    without = apr_by_irr(schedule_cash_flows(schedule))
    with_fee = apr_by_irr(schedule_cash_flows(schedule, upfront_fee=fee))
    assert with_fee.nominal_annual > without.nominal_annual


aprs = st.integers(min_value=0, max_value=10**6).map(lambda n: Decimal(n).scaleb(-6))
contract_dates = st.dates(min_value=date(2019, 8, 20), max_value=date(2030, 12, 31))


@FAST
@given(aprs, aprs, contract_dates, st.sampled_from(InstitutionType))
def test_cap_check_is_monotone_in_the_apr(
    a: Decimal, b: Decimal, day: date, institution: InstitutionType
) -> None:
    low, high = sorted((a, b))
    low_check = check_rate_cap(low, day, institution)
    high_check = check_rate_cap(high, day, institution)
    assert low_check.cap == high_check.cap
    if high_check.allowed:
        assert low_check.allowed
    assert low_check.allowed == (low <= low_check.cap)


@FAST
@given(
    st.integers(min_value=1, max_value=100).map(Decimal),
    st.integers(min_value=1, max_value=100).map(Decimal),
    contract_dates,
)
def test_lpr_cap_grows_with_the_multiple(m1: Decimal, m2: Decimal, day: date) -> None:
    low, high = sorted((m1, m2))
    low_cap = check_rate_cap(Decimal(0), day, CapRule.lpr_multiple(low, "t")).cap
    high_cap = check_rate_cap(Decimal(0), day, CapRule.lpr_multiple(high, "t")).cap
    assert low_cap <= high_cap
    assert low_cap == low * lpr_on(day)
