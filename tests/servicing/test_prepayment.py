"""Prepayment, early settlement and the payoff quote, through the use cases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from puhui.domain.errors import ValidationError
from puhui.privacy import audit
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.servicing.prepayment import payoff_quote, prepay, settle_early
from puhui.servicing.repayments import post_repayment
from puhui.store.unit_of_work import UnitOfWork
from tests.conftest import Database
from tests.servicing.loans import (
    LoanRef,
    at,
    event_types,
    events,
    institution_id,
    loan_row,
    make_loan,
    other_institution,
    schedule_lines,
)
from tests.servicing.test_repayments import counts

D = Decimal
DAY = date(2026, 3, 25)


def uow(db: Database) -> UnitOfWork:
    return UnitOfWork(db.sessions, actor="test")


def pay_first_two(db: Database, loan: LoanRef) -> None:
    for line in schedule_lines(db, loan.id)[:2]:
        post_repayment(
            uow(db),
            institution_id=loan.institution_id,
            loan_id=loan.id,
            external_ref=f"PAY-{line.number}",
            amount=line.principal + line.interest,
            received_at=at(line.due_date),
        )


def do_prepay(db: Database, loan: LoanRef, mode: str, amount: str = "3000.00", **kw: Any) -> Any:
    return prepay(
        uow(db),
        institution_id=kw.get("institution_id", loan.institution_id),
        loan_id=loan.id,
        external_ref=kw.get("ref", "PRE-1"),
        amount=amount,
        received_at=at(kw.get("day", DAY)),
        mode=mode,
    )


def total_interest(db: Database, loan_id: str) -> Decimal:
    return sum((x.interest for x in schedule_lines(db, loan_id)), D(0))


def test_reduce_payment_rebuilds_the_remaining_schedule(database: Database, loan: LoanRef) -> None:
    pay_first_two(database, loan)
    interest_before = total_interest(database, loan.id)
    receipt = do_prepay(database, loan, "reduce_payment")
    assert receipt.kind == "prepayment" and receipt.prepayment is not None
    assert receipt.prepayment.mode == "reduce_payment"
    assert receipt.prepayment.interest_to_date == D("16.75")
    assert receipt.prepayment.principal_prepaid == D("2983.25")
    assert receipt.prepayment.remaining_instalments == 10
    assert receipt.prepayment.next_due_date == date(2026, 4, 15)
    assert receipt.outstanding_principal == D("7066.29")
    assert receipt.totals.total == D("3000.00")
    lines = schedule_lines(database, loan.id)
    assert [x.number for x in lines] == list(range(1, 14))
    assert sum((x.principal for x in lines), D(0)) == D("12000.00")
    assert sum((x.principal - x.paid_principal for x in lines), D(0)) == D("7066.29")
    assert lines[2].due_date == DAY and lines[2].settled_on == DAY
    assert [x.due_date for x in lines[3:]] == [x.due_date for x in loan.schedule.instalments[2:]]
    assert total_interest(database, loan.id) < interest_before
    assert loan_row(database, loan.id).outstanding_principal == D("7066.29")
    assert event_types(database, loan.id)[-1] == "loan.prepaid"
    payload = events(database, loan.id)[-1].payload
    assert payload["mode"] == "reduce_payment" and payload["remaining_instalments"] == 10
    with database.sessions() as s:
        assert audit.verify(s).ok
    # The new schedule is serviced like the old one.
    nxt = lines[3]
    after = post_repayment(
        uow(database),
        institution_id=loan.institution_id,
        loan_id=loan.id,
        external_ref="PAY-AFTER",
        amount=nxt.principal + nxt.interest,
        received_at=at(nxt.due_date),
    )
    assert after.lines[0].number == 4 and after.state == "active"


def test_reduce_term_shortens_the_schedule(database: Database, loan: LoanRef) -> None:
    pay_first_two(database, loan)
    interest_before = total_interest(database, loan.id)
    receipt = do_prepay(database, loan, "reduce_term")
    assert receipt.prepayment is not None
    remaining = receipt.prepayment.remaining_instalments
    assert remaining < 10
    assert receipt.prepayment.regular_payment is not None
    assert receipt.prepayment.regular_payment <= D("1032.80")
    lines = schedule_lines(database, loan.id)
    assert len(lines) == 3 + remaining
    assert sum((x.principal for x in lines), D(0)) == D("12000.00")
    assert total_interest(database, loan.id) < interest_before


def test_prepayment_is_idempotent_and_validated(database: Database, loan: LoanRef) -> None:
    pay_first_two(database, loan)
    first = do_prepay(database, loan, "reduce_payment")
    after = counts(database)
    again = do_prepay(database, loan, "reduce_payment")
    assert again.replayed and again.repayment_id == first.repayment_id
    assert again.prepayment == first.prepayment
    assert counts(database) == after
    with pytest.raises(ValidationError) as reused:
        post_repayment(
            uow(database),
            institution_id=loan.institution_id,
            loan_id=loan.id,
            external_ref="PRE-1",
            amount="3000.00",
            received_at=at(DAY),
        )
    assert reused.value.rules == ("repayment.external_ref_reused",)
    with pytest.raises(ValidationError) as bad:
        do_prepay(database, loan, "sideways", amount="-1", ref="PRE-2")
    assert set(bad.value.rules) == {"prepayment.mode", "money.positive"}
    with pytest.raises(ValidationError) as backdated:
        do_prepay(database, loan, "reduce_term", ref="PRE-3", day=date(2026, 3, 20))
    assert backdated.value.rules == ("prepayment.backdated",)
    assert counts(database) == after


def test_prepaying_an_overdue_loan_clears_and_cures_it(database: Database, loan: LoanRef) -> None:
    receipt = do_prepay(database, loan, "reduce_payment", amount="5000.00")
    # Instalments 1 (38 days) and 2 (10 days) were late; both are cleared first.
    assert [a.number for a in receipt.lines] == [1, 2, 3]
    assert receipt.lines[0].paid.penalty == D("9.88") and receipt.lines[1].paid.penalty == D("2.60")
    assert receipt.state == "active" and receipt.days_past_due == 0
    assert event_types(database, loan.id) == ["loan.prepaid"]  # it was never marked overdue


def test_early_settlement_known_answer(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    loan = make_loan(database, vault, indexer, method="equal_principal")
    pay_first_two(database, loan)
    quote = payoff_quote(
        uow(database), institution_id=loan.institution_id, loan_id=loan.id, as_of=DAY
    )
    # 10,000.00 principal + 10,000.00 × 6 % × 10 / 360 = 16.67 for 2026-03-15 → 03-25.
    assert (quote.principal, quote.interest, quote.fee, quote.penalty) == (
        D("10000.00"),
        D("16.67"),
        D("0.00"),
        D("0.00"),
    )
    assert quote.total == D("10016.67") and quote.interest_days == 10
    assert quote.interest_from == date(2026, 3, 15)
    before = counts(database)
    with pytest.raises(ValidationError) as short:
        settle_early(
            uow(database),
            institution_id=loan.institution_id,
            loan_id=loan.id,
            external_ref="SETTLE",
            amount="10000.00",
            received_at=at(DAY),
        )
    assert short.value.rules == ("settlement.amount_short",)
    assert counts(database) == before
    receipt = settle_early(
        uow(database),
        institution_id=loan.institution_id,
        loan_id=loan.id,
        external_ref="SETTLE",
        amount=quote.total,
        received_at=at(DAY),
    )
    assert receipt.kind == "settlement" and receipt.state == "settled"
    assert receipt.outstanding_principal == 0
    row = loan_row(database, loan.id)
    assert row.state == "settled" and row.closed_at == at(DAY)
    lines = schedule_lines(database, loan.id)
    assert len(lines) == 3 and all(x.settled_on is not None for x in lines)
    assert sum((x.principal for x in lines), D(0)) == D("12000.00")
    assert sum((x.interest for x in lines), D(0)) == D("60.00") + D("55.00") + D("16.67")
    settled = events(database, loan.id)[-1]
    assert settled.event_type == "loan.settled"
    assert settled.payload["how"] == "settlement" and settled.payload["amount"] == "10016.67"


def test_settling_an_overdue_loan_pays_its_penalties(database: Database, loan: LoanRef) -> None:
    quote = payoff_quote(
        uow(database), institution_id=loan.institution_id, loan_id=loan.id, as_of=DAY
    )
    assert quote.penalty == D("12.48")  # 38 × 0.26 + 10 × 0.26
    receipt = settle_early(
        uow(database),
        institution_id=loan.institution_id,
        loan_id=loan.id,
        external_ref="SETTLE",
        amount=str(quote.total),
        received_at=at(DAY),
    )
    assert receipt.state == "settled" and receipt.totals.penalty == D("12.48")
    assert event_types(database, loan.id) == ["loan.settled"]


def test_a_quote_writes_nothing(database: Database, loan: LoanRef) -> None:
    before = counts(database)
    quote = payoff_quote(
        uow(database), institution_id=loan.institution_id, loan_id=loan.id, as_of=DAY
    )
    assert quote.penalty > 0
    assert counts(database) == before
    assert all(
        x.penalty == 0 and x.penalty_accrued_to is None for x in schedule_lines(database, loan.id)
    )
    assert loan_row(database, loan.id).version == 1


def test_other_institutions_cannot_prepay_settle_or_quote(
    database: Database, loan: LoanRef
) -> None:
    other = institution_id(database, other_institution(database))
    before = counts(database)
    calls: list[Callable[[], object]] = [
        lambda: do_prepay(database, loan, "reduce_payment", institution_id=other),
        lambda: settle_early(
            uow(database),
            institution_id=other,
            loan_id=loan.id,
            external_ref="S",
            amount="1.00",
            received_at=at(DAY),
        ),
        lambda: payoff_quote(uow(database), institution_id=other, loan_id=loan.id, as_of=DAY),
    ]
    for call in calls:
        with pytest.raises(ValidationError) as caught:
            call()
        assert caught.value.rules == ("loan.not_found",)
    assert counts(database) == before
