"""Posting repayments: allocation, state moves and events, idempotency, concurrency, tenancy."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from puhui.domain.errors import ValidationError
from puhui.privacy import audit
from puhui.servicing.batch import refresh_delinquency
from puhui.servicing.repayments import post_repayment
from puhui.servicing.status import loan_status
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests.conftest import Database
from tests.servicing.loans import (
    LoanRef,
    at,
    event_types,
    events,
    loan_row,
    schedule_lines,
)

D = Decimal
COUNTED = [m.Repayment, m.Event, m.AuditRecord, m.ScheduleLine]


def counts(db: Database) -> dict[str, int]:
    with db.sessions() as s:
        return {
            t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in COUNTED
        }


def pay(db: Database, loan: LoanRef, ref: str, amount: str, day: date, **kw: Any) -> Any:
    return post_repayment(
        UnitOfWork(db.sessions, actor="test"),
        institution_id=kw.pop("institution_id", loan.institution_id),
        loan_id=loan.id,
        external_ref=ref,
        amount=amount,
        received_at=at(day, kw.pop("hour", 10)),
    )


def test_an_on_time_payment_settles_the_instalment(database: Database, loan: LoanRef) -> None:
    receipt = pay(database, loan, "PAY-1", "1032.80", date(2026, 2, 15))
    assert not receipt.replayed and receipt.kind == "repayment"
    assert [(a.number, a.paid.interest, a.paid.principal) for a in receipt.lines] == [
        (1, D("60.00"), D("972.80"))
    ]
    assert receipt.outstanding_principal == D("11027.20")
    assert receipt.state == "active" and receipt.days_past_due == 0
    lines = schedule_lines(database, loan.id)
    assert lines[0].settled_on == date(2026, 2, 15) and lines[1].settled_on is None
    assert lines[0].paid_principal == D("972.80") and lines[0].paid_interest == D("60.00")
    row = loan_row(database, loan.id)
    assert row.outstanding_principal == D("11027.20") and row.version == 2
    assert event_types(database, loan.id) == ["repayment.received"]
    with database.sessions() as s:
        stored = s.scalar(select(m.Repayment).where(m.Repayment.loan_id == loan.id))
        assert stored is not None and stored.allocation["lines"][0]["principal"] == "972.80"
        assert stored.business_date == date(2026, 2, 15)


def test_business_date_is_beijing_time(database: Database, loan: LoanRef) -> None:
    # 2026-02-15 23:30 in Beijing is 15:30 UTC, still the due date: not late.
    receipt = pay(database, loan, "LATE-EVENING", "1032.80", date(2026, 2, 15), hour=23)
    assert receipt.business_date == date(2026, 2, 15)
    assert receipt.lines[0].paid.penalty == 0


def test_active_overdue_cured_settled_with_events(database: Database, loan: LoanRef) -> None:
    pay(database, loan, "PAY-01", "1032.80", date(2026, 2, 15))
    summary = refresh_delinquency(database.sessions, as_of=date(2026, 3, 20))
    assert summary.became_overdue == 1 and summary.loans == 1
    assert loan_row(database, loan.id).state == "overdue"
    overdue = events(database, loan.id)[-1]
    assert overdue.event_type == "loan.overdue"
    assert overdue.payload["days_past_due"] == 5 and overdue.payload["bucket"] == "M1"
    lines = schedule_lines(database, loan.id)
    assert lines[1].penalty == D("1.30")  # 5 days × round(1,032.80 × 9 % / 360) = 5 × 0.26
    assert lines[1].penalty_accrued_to == date(2026, 3, 20)

    cured = pay(database, loan, "PAY-02", "1034.10", date(2026, 3, 20))
    assert cured.lines[0].paid.penalty == D("1.30")
    assert cured.state == "active" and cured.days_past_due == 0
    assert event_types(database, loan.id)[-2:] == ["repayment.received", "loan.cured"]

    for line in schedule_lines(database, loan.id)[2:]:
        due = line.principal + line.interest
        receipt = pay(database, loan, f"PAY-{line.number:02}", str(due), line.due_date)
    assert receipt.state == "settled" and receipt.outstanding_principal == 0
    row = loan_row(database, loan.id)
    assert row.state == "settled" and row.closed_at is not None
    assert row.outstanding_principal == 0
    assert all(x.settled_on == x.due_date for x in schedule_lines(database, loan.id)[2:])
    types = event_types(database, loan.id)
    assert types[:2] == ["repayment.received", "loan.overdue"]
    assert types.count("repayment.received") == 12
    assert types[-2:] == ["repayment.received", "loan.settled"]
    with database.sessions() as s:
        assert audit.verify(s).ok
    with pytest.raises(ValidationError) as caught:
        pay(database, loan, "PAY-99", "1.00", date(2027, 2, 1))
    assert caught.value.rules == ("loan.state",)


def test_a_payment_overdue_when_posted_moves_the_loan_overdue(
    database: Database, loan: LoanRef
) -> None:
    receipt = pay(database, loan, "PART", "500.00", date(2026, 2, 20))
    assert receipt.state == "overdue" and receipt.days_past_due == 5
    assert receipt.lines[0].paid.penalty == D("1.30")
    assert event_types(database, loan.id) == ["repayment.received", "loan.overdue"]


def test_partial_payments_across_several_instalments(database: Database, loan: LoanRef) -> None:
    # Two instalments late on 2026-03-20: instalment 1 by 33 days, 2 by five.
    receipt = pay(database, loan, "CATCH-UP", "2000.00", date(2026, 3, 20))
    by_line = {a.number: a.paid for a in receipt.lines}
    # 33 × 0.26 = 8.58 on instalment 1; 5 × 0.26 = 1.30 on instalment 2.
    assert by_line[1].penalty == D("8.58") and by_line[1].total == D("1041.38")
    assert by_line[2].penalty == D("1.30") and by_line[2].interest == D("55.14")
    assert by_line[2].principal == D("2000.00") - D("1041.38") - D("1.30") - D("55.14")
    assert receipt.state == "overdue" and receipt.days_past_due == 5
    assert schedule_lines(database, loan.id)[0].settled_on == date(2026, 3, 20)


def test_overpayment_is_refused_and_nothing_is_written(database: Database, loan: LoanRef) -> None:
    status = loan_status(
        UnitOfWork(database.sessions),
        institution_id=loan.institution_id,
        loan_id=loan.id,
        as_of=date(2026, 2, 15),
    )
    before = counts(database)
    with pytest.raises(ValidationError) as caught:
        pay(database, loan, "TOO-MUCH", str(status.payoff + D("0.01")), date(2026, 2, 15))
    assert caught.value.rules == ("repayment.exceeds_payoff",)
    assert caught.value.fields == ("amount",)
    assert counts(database) == before
    assert loan_row(database, loan.id).version == 1
    # The payoff itself is accepted, but a repayment never recalculates interest: it pays the
    # coming instalments as scheduled (interest included) and leaves 333.58 of principal.
    receipt = pay(database, loan, "EXACT", str(status.payoff), date(2026, 2, 15))
    assert status.payoff == D("12060.00")
    assert receipt.outstanding_principal == D("333.58") and receipt.state == "active"


def test_invalid_input_lists_every_error(database: Database, loan: LoanRef) -> None:
    from datetime import datetime

    before = counts(database)
    with pytest.raises(ValidationError) as caught:
        post_repayment(
            UnitOfWork(database.sessions),
            institution_id=loan.institution_id,
            loan_id=loan.id,
            external_ref="",
            amount=12.5,  # type: ignore[arg-type]
            received_at=datetime(2026, 2, 15, 10, 0),
        )
    assert set(caught.value.rules) == {"money.type", "time.timezone", "repayment.external_ref"}
    assert counts(database) == before


def test_a_retry_replays_the_stored_receipt(database: Database, loan: LoanRef) -> None:
    first = pay(database, loan, "PAY-1", "1032.80", date(2026, 2, 15))
    pay(database, loan, "PAY-2", "1032.80", date(2026, 3, 15))
    after = counts(database)
    again = pay(database, loan, "PAY-1", "1032.80", date(2026, 2, 15))
    assert again.replayed and again.repayment_id == first.repayment_id
    assert again.lines == first.lines
    assert again.outstanding_principal == first.outstanding_principal  # as it was then
    assert counts(database) == after
    with pytest.raises(ValidationError) as caught:
        pay(database, loan, "PAY-1", "1000.00", date(2026, 2, 15))
    assert caught.value.rules == ("repayment.external_ref_reused",)
    assert counts(database) == after


def test_concurrent_identical_postings_create_one_repayment(
    database: Database, loan: LoanRef
) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            results.append(pay(database, loan, "SAME-REF", "1032.80", date(2026, 2, 15)))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({r.repayment_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert counts(database)["repayments"] == 1
    assert loan_row(database, loan.id).outstanding_principal == D("11027.20")
    assert event_types(database, loan.id) == ["repayment.received"]


def test_concurrent_different_postings_lose_no_update(database: Database, loan: LoanRef) -> None:
    errors: list[BaseException] = []

    def go(n: int) -> None:
        try:
            pay(database, loan, f"PART-{n}", "100.00", date(2026, 2, 10))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    first = schedule_lines(database, loan.id)[0]
    assert first.paid_interest == D("60.00") and first.paid_principal == D("440.00")
    row = loan_row(database, loan.id)
    assert row.outstanding_principal == D("11560.00") and row.version == 6
    with database.sessions() as s:
        assert audit.verify(s).ok


def test_another_institution_sees_no_loan_and_writes_nothing(
    database: Database, loan: LoanRef
) -> None:
    from tests.servicing.loans import institution_id, other_institution

    other = institution_id(database, other_institution(database))
    before = counts(database)
    with pytest.raises(ValidationError) as caught:
        pay(database, loan, "PAY-1", "1032.80", date(2026, 2, 15), institution_id=other)
    assert caught.value.rules == ("loan.not_found",) and caught.value.fields == ("loan_id",)
    with pytest.raises(ValidationError) as status:
        loan_status(
            UnitOfWork(database.sessions),
            institution_id=other,
            loan_id=loan.id,
            as_of=date(2026, 2, 15),
        )
    assert status.value.rules == ("loan.not_found",)
    with pytest.raises(ValidationError) as missing:
        pay(
            database,
            LoanRef("lon_nope", loan.institution_id, loan.schedule),
            "X",
            "1",
            date(2026, 2, 15),
        )
    assert missing.value.rules == caught.value.rules  # the same answer as for a stranger's loan
    assert counts(database) == before
    # The right institution can still use the reference: nothing was recorded against it.
    assert not pay(database, loan, "PAY-1", "1032.80", date(2026, 2, 15)).replayed


def test_a_duplicate_that_slips_past_the_lookup_is_caught_by_the_constraint(
    database: Database, loan: LoanRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    from puhui.servicing.repository import repayment_by_ref as real

    first = pay(database, loan, "PAY-1", "1032.80", date(2026, 2, 15))
    calls: list[str] = []

    def blind_once(uow: UnitOfWork, loan_id: str, ref: str) -> m.Repayment | None:
        calls.append(ref)
        return None if len(calls) == 1 else real(uow, loan_id, ref)

    monkeypatch.setattr("puhui.servicing.posting.repayment_by_ref", blind_once)
    after = counts(database)
    again = pay(database, loan, "PAY-1", "1032.80", date(2026, 2, 15))
    assert len(calls) == 2  # the insert hit the unique constraint; the retry replayed
    assert again.replayed and again.repayment_id == first.repayment_id
    assert counts(database) == after
