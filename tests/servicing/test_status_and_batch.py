"""Loan status (read-only) and the nightly delinquency refresh (batched, idempotent)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.servicing.allocation import Amounts
from puhui.servicing.batch import DelinquencySummary, refresh_delinquency
from puhui.servicing.repayments import post_repayment
from puhui.servicing.status import LoanStatus, loan_status
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests.conftest import Database
from tests.servicing.loans import (
    LoanRef,
    at,
    event_types,
    loan_row,
    make_loan,
    other_institution,
    schedule_lines,
)
from tests.servicing.test_repayments import counts

D = Decimal


def status(db: Database, loan: LoanRef, as_of: date) -> LoanStatus:
    return loan_status(
        UnitOfWork(db.sessions), institution_id=loan.institution_id, loan_id=loan.id, as_of=as_of
    )


def test_status_known_answer_ten_days_late(database: Database, loan: LoanRef) -> None:
    before = counts(database)
    got = status(database, loan, date(2026, 2, 25))
    assert got.state == "active"  # the batch has not run; the status still shows the truth
    assert got.due_now == Amounts(penalty=D("2.60"), interest=D("60.00"), principal=D("972.80"))
    assert got.amount_due_now == D("1035.40")
    assert (got.days_past_due, got.bucket) == (10, "M1")
    assert (got.next_due_date, got.next_due_amount) == (date(2026, 3, 15), D("1032.80"))
    assert got.outstanding_principal == D("12000.00")
    # 1,035.40 due + 11,027.20 not yet due + 11,027.20 × 6 % × 10 / 360 = 18.38
    assert got.payoff == D("12080.98")
    assert got.remaining_instalments == 12
    # Read-only: nothing accrued, nothing written.
    assert counts(database) == before
    assert all(x.penalty_accrued_to is None for x in schedule_lines(database, loan.id))
    assert loan_row(database, loan.id).version == 1


def test_status_reads_cost_the_same_after_two_years(database: Database, loan: LoanRef) -> None:
    got = status(database, loan, date(2028, 1, 15))
    assert got.days_past_due == 699 and got.bucket == "M3+"
    assert got.due_now.principal == D("12000.00") and got.next_due_date is None
    assert got.payoff == got.amount_due_now


def test_refresh_moves_loans_and_is_idempotent(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    late = make_loan(database, vault, indexer, ref="L-LATE")
    paid = make_loan(database, vault, indexer, ref="L-PAID")
    settled = make_loan(database, vault, indexer, ref="L-DONE", state="settled")
    post_repayment(
        UnitOfWork(database.sessions),
        institution_id=paid.institution_id,
        loan_id=paid.id,
        external_ref="P1",
        amount="1032.80",
        received_at=at(date(2026, 2, 15)),
    )
    seen: list[DelinquencySummary] = []
    first = refresh_delinquency(
        database.sessions, as_of=date(2026, 2, 20), batch_size=1, on_progress=seen.append
    )
    assert first.loans == 2 and first.batches == 2 and len(seen) == 2
    assert first.became_overdue == 1 and first.cured == 0
    assert first.penalty_accrued == D("1.30") and first.lines_accrued == 1
    assert first.by_bucket == {"M1": 1, "current": 1}
    assert loan_row(database, late.id).state == "overdue"
    assert loan_row(database, paid.id).state == "active"
    assert loan_row(database, settled.id).state == "settled"
    snapshot = counts(database), [x.penalty for x in schedule_lines(database, late.id)]

    again = refresh_delinquency(database.sessions, as_of=date(2026, 2, 20))
    assert again.became_overdue == 0 and again.lines_accrued == 0
    assert again.penalty_accrued == 0
    assert (counts(database), [x.penalty for x in schedule_lines(database, late.id)]) == snapshot
    assert event_types(database, late.id) == ["loan.overdue"]

    # A later night accrues only the new days; a second instalment joins the base after 03-15.
    third = refresh_delinquency(database.sessions, as_of=date(2026, 3, 20))
    lines = schedule_lines(database, late.id)
    assert lines[0].penalty == D("0.26") * 33 and lines[1].penalty == D("0.26") * 5
    assert third.became_overdue == 1  # the paid loan's second instalment is now late
    assert third.by_bucket == {"M2": 1, "M1": 1}


def test_refresh_cures_an_overdue_loan_with_nothing_past_due(
    database: Database, loan: LoanRef
) -> None:
    refresh_delinquency(database.sessions, as_of=date(2026, 2, 20))
    assert loan_row(database, loan.id).state == "overdue"
    # The posting that clears the arrears cures the loan itself; the batch then has nothing to do.
    post_repayment(
        UnitOfWork(database.sessions),
        institution_id=loan.institution_id,
        loan_id=loan.id,
        external_ref="P1",
        amount="1034.10",
        received_at=at(date(2026, 2, 20)),
    )
    assert loan_row(database, loan.id).state == "active"
    assert refresh_delinquency(database.sessions, as_of=date(2026, 2, 21)).cured == 0
    assert event_types(database, loan.id) == ["loan.overdue", "repayment.received", "loan.cured"]
    # A loan marked overdue with nothing past due (say, by an operator's correction) is cured.
    with database.sessions() as s:
        row = s.get(m.Loan, loan.id)
        assert row is not None
        row.state = "overdue"
        s.commit()
    summary = refresh_delinquency(database.sessions, as_of=date(2026, 2, 21))
    assert summary.cured == 1 and loan_row(database, loan.id).state == "active"
    assert event_types(database, loan.id)[-1] == "loan.cured"


def test_accruing_daily_or_once_gives_the_same_penalties(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    daily = make_loan(database, vault, indexer, ref="L-DAILY")
    # The twin lives at another institution, so the daily runs (scoped to the first) skip it.
    lazy = make_loan(
        database, vault, indexer, ref="L-LAZY", institution_code=other_institution(database)
    )
    pay_day, end = date(2026, 3, 2), date(2026, 4, 10)
    day = date(2026, 2, 16)
    while day <= end:
        if day == pay_day:
            for loan in (daily, lazy):  # a partial payment changes the base mid-way
                post_repayment(
                    UnitOfWork(database.sessions),
                    institution_id=loan.institution_id,
                    loan_id=loan.id,
                    external_ref="PART",
                    amount="700.00",
                    received_at=at(pay_day),
                )
        refresh_delinquency(database.sessions, as_of=day, institution_id=daily.institution_id)
        day += timedelta(days=1)
    in_memory = status(database, lazy, end)
    refresh_delinquency(database.sessions, as_of=end, institution_id=lazy.institution_id)
    daily_penalties = [x.penalty for x in schedule_lines(database, daily.id)]
    assert daily_penalties == [x.penalty for x in schedule_lines(database, lazy.id)]
    assert sum(daily_penalties, D(0)) > 0
    # The status computed in memory before the lazy loan's accrual agrees with it too.
    owed = sum((x.penalty - x.paid_penalty for x in schedule_lines(database, lazy.id)), D(0))
    assert in_memory.due_now.penalty == owed == D("13.78") - D("3.90")  # 15 days paid on 03-02
