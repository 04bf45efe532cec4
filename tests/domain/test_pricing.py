"""APR by IRR (PBOC 〔2021〕 No. 3), the LPR table and legal caps."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from puhui.domain.errors import ValidationError
from puhui.domain.pricing import (
    DEFAULT_CAP_RULES,
    LPR_1Y,
    AprResult,
    CapKind,
    CapRule,
    InstitutionType,
    apr_by_irr,
    apr_by_xirr,
    apr_of_schedule,
    cap_rules,
    check_rate_cap,
    ensure_within_cap,
    flat_fee,
    lpr_on,
    percent,
    schedule_cash_flows,
    schedule_dated_cash_flows,
)
from puhui.domain.schedule import LoanTerms, RepaymentMethod, Schedule, build_schedule

START = date(2025, 1, 15)


def annuity(principal: str = "10000", rate: str = "0.06", **more: Any) -> Schedule:
    return build_schedule(
        LoanTerms(
            principal=Decimal(principal),
            annual_rate=Decimal(rate),
            term_months=more.pop("term_months", 12),
            method=more.pop("method", RepaymentMethod.EQUAL_INSTALLMENT),
            start_date=more.pop("start_date", START),
            **more,
        )
    )


def rule_of(caught: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str]:
    error = caught.value.errors[0]
    return error.field, error.rule


# --- known answers (REFERENCE.md §2) -----------------------------------------------------


def test_flat_monthly_fee_is_13_03_percent_not_7_2() -> None:
    schedule = annuity(rate="0")
    fee = flat_fee(Decimal(10000), Decimal("0.006"))
    assert fee == Decimal("60.00")
    flows = schedule_cash_flows(schedule, fee_per_instalment=fee)
    assert flows[0] == Decimal("-10000.00")
    assert flows[1] == Decimal("893.33")
    result = apr_by_irr(flows)
    assert percent(result.periodic_rate) == Decimal("1.09")
    assert (result.periodic_rate * 100).quantize(Decimal("0.0001")) == Decimal("1.0862")
    assert result.nominal_percent == Decimal("13.03")
    assert result.effective_percent == Decimal("13.84")
    assert str(result) == "APR 13.03% (effective 13.84%)"


def test_upfront_fee_of_300_makes_a_6_percent_annuity_11_74() -> None:
    result = apr_of_schedule(annuity(), upfront_fee=Decimal(300))
    assert result.nominal_percent == Decimal("11.74")
    assert apr_by_irr(schedule_cash_flows(annuity(), upfront_fee=Decimal(300))) == result


def test_fee_free_annuity_apr_is_its_nominal_rate() -> None:
    result = apr_of_schedule(annuity(principal="100000"))
    assert result.nominal_percent == Decimal("6.00")
    assert abs(result.nominal_annual - Decimal("0.06")) < Decimal("0.00001")
    assert result.effective_percent == Decimal("6.17")


def test_irr_matches_a_closed_form() -> None:
    # Lend 1000, get 1100 one period later: exactly 10% per period.
    result = apr_by_irr([Decimal(-1000), Decimal(1100)], periods_per_year=1)
    assert result.periodic_rate == Decimal("0.1")
    assert result.nominal_annual == result.effective_annual == Decimal("0.1")
    # Two periods: (1 + r)^2 = 1.21.
    assert apr_by_irr([-1000, 0, 1210]).periodic_rate == Decimal("0.1")


def test_rates_are_decimal_with_20_places() -> None:
    result = apr_by_irr([Decimal(-9700), *[Decimal("860.66")] * 12])
    assert isinstance(result, AprResult)
    for rate in (result.periodic_rate, result.nominal_annual, result.effective_annual):
        assert isinstance(rate, Decimal)
    assert result.periodic_rate.as_tuple().exponent == -20


def test_agrees_with_numpy_financial() -> None:
    npf = pytest.importorskip("numpy_financial")
    flows = schedule_cash_flows(annuity(term_months=36), upfront_fee=Decimal(250))
    theirs = npf.irr([float(c) for c in flows])
    assert abs(float(apr_by_irr(flows).periodic_rate) - theirs) < 1e-12


# --- input shapes ------------------------------------------------------------------------


def test_indexed_flows_equal_plain_flows_and_repeats_add_up() -> None:
    plain = apr_by_irr([Decimal(-9700), *[Decimal("860.66")] * 12])
    indexed = apr_by_irr(
        [(0, Decimal(-10000)), (0, Decimal(300))]
        + [(k, Decimal("860.66")) for k in range(12, 0, -1)]
    )
    assert plain == indexed


def test_sign_convention_does_not_matter() -> None:
    lender = [Decimal(-9700), *[Decimal("860.66")] * 12]
    borrower = [-c for c in lender]
    assert apr_by_irr(lender) == apr_by_irr(borrower)


def test_disbursement_may_come_later_than_period_zero() -> None:
    assert apr_by_irr([(3, -1000), (4, 1100)], periods_per_year=1).periodic_rate == Decimal("0.1")


def test_negative_irr() -> None:
    assert apr_by_irr([-1000, 900], periods_per_year=1).periodic_rate == Decimal("-0.1")


def test_quarterly_periods() -> None:
    result = apr_by_irr([-1000, 1020], periods_per_year=4)
    assert result.nominal_annual == Decimal("0.08")
    assert result.effective_annual == Decimal("1.02") ** 4 - 1


# --- dated flows (XIRR, actual/365) ------------------------------------------------------


def test_xirr_over_365_days_is_the_simple_yield() -> None:
    result = apr_by_xirr([(date(2025, 1, 1), -1000), (date(2026, 1, 1), 1100)])
    assert abs(result.effective_annual - Decimal("0.1")) < Decimal("1e-18")
    assert result.periods_per_year == 12
    # The equivalent nominal monthly rate: 12 × (1.1^(1/12) − 1) = 9.57%.
    assert result.nominal_percent == Decimal("9.57")


def test_xirr_uses_actual_over_365() -> None:
    result = apr_by_xirr([(date(2024, 1, 1), -1000), (date(2025, 1, 1), 1100)])  # 366 days
    expected = Decimal("1.1") ** (Decimal(365) / Decimal(366)) - 1
    assert abs(result.effective_annual - expected) < Decimal("1e-18")


def test_dated_apr_of_a_regular_schedule_is_close_to_the_periodic_one() -> None:
    schedule = annuity()
    periodic = apr_of_schedule(schedule)
    dated = apr_of_schedule(schedule, dated=True)
    assert abs(dated.nominal_annual - periodic.nominal_annual) < Decimal("0.001")
    flows = schedule_dated_cash_flows(schedule)
    assert flows[0] == (START, Decimal("-10000.00"))
    assert flows[1] == (date(2025, 2, 15), Decimal("860.66"))


def test_broken_first_period_uses_dated_flows_by_default() -> None:
    schedule = annuity(first_due_date=date(2025, 3, 1))
    assert apr_of_schedule(schedule) == apr_of_schedule(schedule, dated=True)
    assert apr_of_schedule(schedule) != apr_of_schedule(schedule, dated=False)


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flows", "field", "rule"),
    [
        ([-1000.0, 1100.0], "cash_flows[0]", "apr.flow_type"),
        ([Decimal(-1000), True], "cash_flows[1]", "apr.flow_type"),
        ([Decimal(-1000), Decimal("Infinity")], "cash_flows[1]", "apr.flow_type"),
        ([(-1, Decimal(-1000)), (1, Decimal(1100))], "cash_flows[0]", "apr.period_index"),
        ([(0.5, Decimal(-1000)), (1, Decimal(1100))], "cash_flows[0]", "apr.period_index"),
        ([Decimal(1000), Decimal(1100)], "cash_flows", "apr.sign_change"),
        ([Decimal(-1000)], "cash_flows", "apr.sign_change"),
        ([], "cash_flows", "apr.sign_change"),
        ([Decimal(-1000), Decimal("0.0001")], "cash_flows", "apr.no_solution"),
    ],
)
def test_bad_cash_flows(flows: list[Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        apr_by_irr(flows)
    assert rule_of(caught) == (field, rule)


@pytest.mark.parametrize("periods", [0, 367, True, 12.0])
def test_bad_periods_per_year(periods: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        apr_by_irr([-1000, 1100], periods_per_year=periods)
    assert rule_of(caught) == ("periods_per_year", "apr.periods_per_year")


def test_dated_flows_need_dates() -> None:
    with pytest.raises(ValidationError) as caught:
        apr_by_xirr([(datetime(2025, 1, 1), -1000), (date(2026, 1, 1), 1100)])
    assert rule_of(caught) == ("cash_flows[0]", "apr.flow_date")
    with pytest.raises(ValidationError) as caught:
        apr_by_xirr([])
    assert rule_of(caught) == ("cash_flows", "apr.sign_change")


@pytest.mark.parametrize(
    ("fees", "field", "rule"),
    [
        ({"upfront_fee": Decimal(10000)}, "fees.upfront", "fees.upfront_below_principal"),
        ({"upfront_fee": 300.0}, "fees.upfront", "money.type"),
        ({"upfront_fee": Decimal(-1)}, "fees.upfront", "money.positive"),
        ({"fee_per_instalment": Decimal("0.001")}, "fees.per_instalment", "money.precision"),
    ],
)
def test_bad_fees(fees: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        schedule_cash_flows(annuity(), **fees)
    assert rule_of(caught) == (field, rule)


def test_percent_display_is_half_up_to_two_places() -> None:
    assert percent(Decimal("0.130250")) == Decimal("13.03")  # half-even would give 13.02
    assert percent(Decimal("0.1302499")) == Decimal("13.02")


# --- LPR ---------------------------------------------------------------------------------


def test_lpr_table_is_sorted_and_ends_at_3_percent() -> None:
    days = [day for day, _ in LPR_1Y]
    assert days == sorted(days) and len(set(days)) == len(days)
    assert LPR_1Y[0] == (date(2019, 8, 20), Decimal("0.0425"))
    assert LPR_1Y[-1] == (date(2025, 5, 20), Decimal("0.0300"))


@pytest.mark.parametrize(
    ("day", "rate"),
    [
        (date(2019, 8, 20), "0.0425"),
        (date(2020, 4, 19), "0.0405"),
        (date(2020, 4, 20), "0.0385"),
        (date(2021, 6, 1), "0.0385"),
        (date(2024, 10, 20), "0.0335"),
        (date(2025, 5, 19), "0.0310"),
        (date(2025, 5, 20), "0.0300"),
        (date(2026, 3, 1), "0.0300"),
    ],
)
def test_lpr_in_force_on_a_day(day: date, rate: str) -> None:
    assert lpr_on(day) == Decimal(rate)


def test_no_lpr_before_the_table() -> None:
    with pytest.raises(ValidationError) as caught:
        lpr_on(date(2019, 8, 19))
    assert rule_of(caught) == ("contract_date", "pricing.lpr_unknown")
    with pytest.raises(ValidationError) as caught:
        lpr_on(datetime(2025, 1, 1))
    assert rule_of(caught) == ("contract_date", "pricing.date_type")


# --- caps --------------------------------------------------------------------------------


def test_private_lender_cap_is_four_times_the_lpr_at_contract_date() -> None:
    check = check_rate_cap(Decimal("0.12"), date(2025, 6, 1), InstitutionType.PRIVATE_LENDER)
    assert check.allowed and check.cap == Decimal("0.12")
    assert "LPR of 3.00%" in check.basis and "Art. 25" in check.basis
    earlier = check_rate_cap(Decimal("0.12"), date(2025, 5, 19), InstitutionType.PRIVATE_LENDER)
    assert earlier.cap == Decimal("0.124")
    over = check_rate_cap(Decimal("0.12001"), date(2025, 6, 1), InstitutionType.PRIVATE_LENDER)
    assert not over.allowed


def test_licensed_institutions_default_to_24_percent() -> None:
    assert set(DEFAULT_CAP_RULES) == set(InstitutionType)
    for kind in InstitutionType:
        if kind is not InstitutionType.PRIVATE_LENDER:
            check = check_rate_cap(Decimal("0.24"), date(2025, 6, 1), kind)
            assert check.allowed and check.cap == Decimal("0.24")
            assert check.basis.startswith("24.00% a year all-in")


def test_flat_fee_loan_is_above_the_private_cap_but_within_the_licensed_one() -> None:
    result = apr_by_irr(schedule_cash_flows(annuity(rate="0"), fee_per_instalment=Decimal(60)))
    day = date(2025, 6, 1)
    assert check_rate_cap(result, day, InstitutionType.MICROLENDER).allowed
    with pytest.raises(ValidationError) as caught:
        ensure_within_cap(result, day, InstitutionType.PRIVATE_LENDER)
    assert rule_of(caught) == ("offer.apr", "pricing.legal_cap")
    message = caught.value.errors[0].message
    assert "13.03%" in message and "12.00%" in message and "Art. 25" in message


def test_cap_uses_the_unrounded_apr() -> None:
    assert not check_rate_cap(Decimal("0.24004"), date(2025, 6, 1), InstitutionType.BANK).allowed


def test_ensure_within_cap_returns_the_check() -> None:
    check = ensure_within_cap(Decimal("0.1"), date(2025, 6, 1), InstitutionType.BANK)
    assert check.allowed


def test_operator_overrides() -> None:
    rules = cap_rules(
        {
            "microlender": {"kind": "fixed_apr", "value": "0.18", "source": "provincial rule"},
            InstitutionType.BANK: CapRule.lpr_multiple(Decimal(4), "bank policy"),
        }
    )
    day = date(2025, 6, 1)
    micro = check_rate_cap(Decimal("0.20"), day, InstitutionType.MICROLENDER, rules=rules)
    assert not micro.allowed and micro.cap == Decimal("0.18") and "provincial rule" in micro.basis
    assert check_rate_cap(Decimal("0.2"), day, InstitutionType.BANK, rules=rules).cap == Decimal(
        "0.12"
    )
    assert DEFAULT_CAP_RULES[InstitutionType.MICROLENDER].value == Decimal("0.24")  # untouched
    with pytest.raises(TypeError):
        rules[InstitutionType.BANK] = CapRule.fixed_apr(Decimal(1), "x")  # type: ignore[index]


def test_a_rule_can_be_passed_directly_with_its_own_lpr_table() -> None:
    table = ((date(2030, 1, 20), Decimal("0.025")),)
    rule = CapRule(CapKind.LPR_MULTIPLE, Decimal(4), "test")
    check = check_rate_cap(Decimal("0.1"), date(2030, 2, 1), rule, lpr_table=table)
    assert check.allowed and check.cap == Decimal("0.100")


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        (
            {"bank": {"kind": "cap", "value": "0.2"}},
            "cap_rules.bank.cap_rule.kind",
            "pricing.cap_rule_kind",
        ),
        (
            {"bank": {"kind": "fixed_apr", "value": 0.2}},
            "cap_rules.bank.cap_rule.value",
            "pricing.cap_rule_value",
        ),
        (
            {"bank": {"kind": "fixed_apr", "value": "-1"}},
            "cap_rules.bank.cap_rule.value",
            "pricing.cap_rule_value",
        ),
        (
            {"shadow_bank": {"kind": "fixed_apr", "value": "0.2"}},
            "cap_rules.shadow_bank",
            "pricing.institution_type",
        ),
    ],
)
def test_bad_overrides(overrides: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        cap_rules(overrides)
    assert rule_of(caught) == (field, rule)


def test_missing_rule_for_an_institution_type() -> None:
    with pytest.raises(ValidationError) as caught:
        check_rate_cap(Decimal("0.1"), date(2025, 6, 1), InstitutionType.BANK, rules={})
    assert rule_of(caught) == ("institution_type", "pricing.institution_type")


@pytest.mark.parametrize("apr", [0.1, "0.1", Decimal("NaN"), True])
def test_apr_must_be_a_finite_decimal(apr: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        check_rate_cap(apr, date(2025, 6, 1), InstitutionType.BANK)
    assert rule_of(caught) == ("offer.apr", "rate.type")


def test_contract_date_before_lpr_table_is_an_error_for_lpr_caps_only() -> None:
    old = date(2019, 1, 1)
    assert check_rate_cap(Decimal("0.1"), old, InstitutionType.BANK).allowed
    with pytest.raises(ValidationError) as caught:
        check_rate_cap(Decimal("0.1"), old, InstitutionType.PRIVATE_LENDER)
    assert rule_of(caught) == ("contract_date", "pricing.lpr_unknown")


def test_xirr_checks_periods_per_year() -> None:
    with pytest.raises(ValidationError) as caught:
        apr_by_xirr([(date(2025, 1, 1), -1000), (date(2026, 1, 1), 1100)], periods_per_year=0)
    assert rule_of(caught) == ("periods_per_year", "apr.periods_per_year")
