"""Payoff, prepayment and early settlement as pure rules on a schedule."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from puhui.domain.daycount import DayCount
from puhui.domain.errors import ValidationError
from puhui.domain.schedule import LoanTerms, RepaymentMethod, build_schedule
from puhui.servicing.ledger import Line, LoanFacts, outstanding_principal, total_owed
from puhui.servicing.payoff import payoff
from puhui.servicing.rescheduling import (
    PrepaymentMode,
    parse_mode,
    plan_prepayment,
    plan_settlement,
)

D = Decimal
START = date(2026, 1, 15)


def loan(method: str = "equal_installment", paid: int = 2) -> tuple[LoanFacts, list[Line]]:
    """12,000.00 at 6 % over 12 months on 30/360 from 2026-01-15; the first ``paid`` paid."""
    schedule = build_schedule(
        LoanTerms(
            principal=D("12000.00"),
            annual_rate=D("0.06"),
            term_months=12,
            method=RepaymentMethod(method),
            start_date=START,
        )
    )
    lines = [Line(r.number, r.due_date, r.principal, r.interest) for r in schedule.instalments]
    lines = [x.pay(x.charged, x.due_date) if x.number <= paid else x for x in lines]
    facts = LoanFacts(D("0.06"), D("0.09"), RepaymentMethod(method), DayCount.THIRTY_360, START)
    return facts, lines


def interest(lines: list[Line] | tuple[Line, ...]) -> Decimal:
    return sum((x.interest for x in lines), D(0))


def principal(lines: list[Line] | tuple[Line, ...]) -> Decimal:
    return sum((x.principal for x in lines), D(0))


def test_early_settlement_known_answer_equal_principal() -> None:
    # Two instalments paid; 10,000.00 left. Settling on 2026-03-25, ten 30/360 days into the
    # period from 2026-03-15: 10,000.00 × 6 % × 10 / 360 = 16.67 (half up).
    facts, lines = loan("equal_principal")
    quote = payoff(facts, lines, date(2026, 3, 25))
    assert quote.period is not None and quote.period.days == 10
    assert quote.amounts.principal == D("10000.00")
    assert quote.amounts.interest == D("16.67")
    assert quote.total == D("10016.67")
    plan = plan_settlement(facts, lines, date(2026, 3, 25), D("10016.67"))
    assert plan.settles
    assert total_owed(plan.lines).total == 0
    assert principal(plan.lines) == D("12000.00")
    assert plan.closing is not None and plan.closing.due_date == date(2026, 3, 25)
    assert plan.closing.interest == D("16.67") and plan.closing.number == 3


def test_payoff_on_a_due_date_is_that_instalment_plus_the_principal_after_it() -> None:
    facts, lines = loan("equal_installment", paid=0)
    quote = payoff(facts, lines, date(2026, 2, 15))
    assert quote.total == D("1032.80") + (D("12000.00") - D("972.80"))


def test_payoff_includes_default_interest_of_overdue_instalments() -> None:
    facts, lines = loan("equal_installment", paid=0)
    quote = payoff(facts, lines, date(2026, 2, 25))  # instalment 1 ten days late
    assert quote.amounts.penalty == D("2.60")  # 1,032.80 × 9 % / 360 = 0.26 a day
    # 11,027.20 not yet due × 6 % × 10 / 360 = 18.38
    assert quote.amounts.interest == D("60.00") + D("18.38")
    assert quote.total == D("12000.00") + D("60.00") + D("18.38") + D("2.60")


def test_settlement_must_pay_the_payoff_exactly() -> None:
    facts, lines = loan("equal_principal")
    with pytest.raises(ValidationError) as short:
        plan_settlement(facts, lines, date(2026, 3, 25), D("10016.66"))
    assert short.value.rules == ("settlement.amount_short",)
    with pytest.raises(ValidationError) as more:
        plan_settlement(facts, lines, date(2026, 3, 25), D("10016.68"))
    assert more.value.rules == ("repayment.exceeds_payoff",)


@pytest.mark.parametrize("method", ["equal_installment", "equal_principal", "interest_first"])
def test_reduce_payment_keeps_the_due_dates_and_lowers_the_instalment(method: str) -> None:
    facts, lines = loan(method)
    before_future = [x for x in lines if x.due_date > date(2026, 3, 25)]
    plan = plan_prepayment(
        facts, lines, date(2026, 3, 25), D("3000.00"), PrepaymentMode.REDUCE_PAYMENT
    )
    assert [x.due_date for x in plan.new_lines] == [x.due_date for x in before_future]
    assert [x.number for x in plan.lines] == list(range(1, 14))  # closing line + 10
    assert principal(plan.lines) == D("12000.00")  # the principal column still sums exactly
    assert plan.new_lines[-1].principal > 0
    assert interest(plan.lines) < interest(lines)
    assert plan.regular_payment is not None
    assert plan.regular_payment < before_future[1].charged.total
    assert plan.closing is not None
    assert plan.interest_paid == plan.closing.interest
    assert plan.interest_paid + plan.principal_paid == D("3000.00")
    assert outstanding_principal(plan.lines) == principal(plan.new_lines)


def test_reduce_payment_known_answer_equal_installment() -> None:
    facts, lines = loan("equal_installment")
    plan = plan_prepayment(
        facts, lines, date(2026, 3, 25), D("3000.00"), PrepaymentMode.REDUCE_PAYMENT
    )
    # Balance not yet due 10,049.54; interest 2026-03-15 → 03-25 on it: 16.75; the rest,
    # 2,983.25, is principal: 7,066.29 is amortised over the remaining ten instalments.
    assert plan.interest_paid == D("16.75") and plan.principal_paid == D("2983.25")
    assert principal(plan.new_lines) == D("7066.29")
    # The first new instalment charges only 03-25 → 04-15 (20 days 30/360) on the new balance.
    assert plan.new_lines[0].interest == D("23.55")
    regular = build_schedule(
        LoanTerms(
            principal=D("7066.29"),
            annual_rate=D("0.06"),
            term_months=10,
            method=RepaymentMethod.EQUAL_INSTALLMENT,
            start_date=date(2026, 3, 15),
        )
    )
    assert plan.regular_payment == regular.instalments[1].payment


@pytest.mark.parametrize("method", ["equal_installment", "equal_principal"])
def test_reduce_term_keeps_the_instalment_and_shortens_the_term(method: str) -> None:
    facts, lines = loan(method)
    before_future = [x for x in lines if x.due_date > date(2026, 3, 25)]
    plan = plan_prepayment(
        facts, lines, date(2026, 3, 25), D("3000.00"), PrepaymentMode.REDUCE_TERM
    )
    kept = PrepaymentMode.REDUCE_PAYMENT
    longer = plan_prepayment(facts, lines, date(2026, 3, 25), D("3000.00"), kept)
    assert len(plan.new_lines) < len(before_future)
    assert principal(plan.lines) == D("12000.00")
    assert interest(plan.lines) < interest(longer.lines) < interest(lines)
    measure = "principal" if method == "equal_principal" else "payment"
    current = before_future[1].principal if measure == "principal" else D("1032.80")
    new = plan.new_lines[1].principal if measure == "principal" else plan.regular_payment
    assert new is not None and new <= current
    assert [x.due_date for x in plan.new_lines] == [
        x.due_date for x in before_future[: len(plan.new_lines)]
    ]


def test_reduce_term_on_an_interest_first_loan_is_refused() -> None:
    facts, lines = loan("interest_first")
    with pytest.raises(ValidationError) as caught:
        plan_prepayment(facts, lines, date(2026, 3, 25), D("3000"), PrepaymentMode.REDUCE_TERM)
    assert caught.value.rules == ("prepayment.mode",)
    with pytest.raises(ValidationError) as bad:
        parse_mode("shorter")
    assert bad.value.rules == ("prepayment.mode",)


def test_a_prepayment_must_reach_principal() -> None:
    facts, lines = loan("equal_installment", paid=1)  # instalment 2 overdue on 03-25
    with pytest.raises(ValidationError) as caught:
        plan_prepayment(facts, lines, date(2026, 3, 25), D("1000.00"), PrepaymentMode.REDUCE_TERM)
    assert caught.value.rules == ("prepayment.amount_below_due",)


def test_a_prepayment_first_clears_what_is_overdue() -> None:
    facts, lines = loan("equal_installment", paid=1)
    plan = plan_prepayment(
        facts, lines, date(2026, 3, 25), D("3000.00"), PrepaymentMode.REDUCE_PAYMENT
    )
    overdue = plan.cleared.totals
    assert overdue.principal == D("977.66") and overdue.interest == D("55.14")
    assert overdue.penalty == D("2.60")  # ten days of 0.26
    assert all(x.is_paid for x in plan.kept)
    assert overdue.total + plan.interest_paid + plan.principal_paid == D("3000.00")
    assert principal(plan.lines) == D("12000.00")


def test_interest_paid_in_advance_is_credited() -> None:
    facts, lines = loan("equal_installment", paid=2)
    # Instalment 3 (due 04-15) paid in advance on 03-20: its whole 50.25 interest and more.
    third = lines[2]
    lines[2] = third.pay(replace(third.charged, principal=D("100.00")), date(2026, 3, 20))
    quote = payoff(facts, lines, date(2026, 3, 25))
    # Accrued 03-15 → 03-25 on 10,049.54 − 100.00 = 9,949.54: 16.58; 50.25 already paid.
    assert quote.period is not None and quote.period.interest_to_date == D("16.58")
    assert quote.amounts.interest == 0
    assert quote.amounts.principal == D("9949.54") - (D("50.25") - D("16.58"))
    plan = plan_settlement(facts, lines, date(2026, 3, 25), quote.total)
    assert plan.settles and total_owed(plan.lines).total == 0
    assert principal(plan.lines) == D("12000.00")
    assert plan.interest_credit == D("33.67")


def test_no_prepayment_when_every_instalment_is_already_due() -> None:
    facts, lines = loan("equal_installment", paid=11)
    with pytest.raises(ValidationError) as caught:
        plan_prepayment(facts, lines, date(2027, 1, 20), D("10.00"), PrepaymentMode.REDUCE_TERM)
    assert caught.value.rules == ("prepayment.no_future_instalments",)
    quote = payoff(facts, lines, date(2027, 1, 20))
    plan = plan_settlement(facts, lines, date(2027, 1, 20), quote.total)
    assert plan.closing is None and plan.settles
