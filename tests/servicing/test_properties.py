"""Any sequence of repayments and prepayments keeps the schedule's books straight.

Run through the real use cases on both databases (few examples: each builds a loan).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from puhui.domain.errors import ValidationError
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.servicing.prepayment import prepay
from puhui.servicing.repayments import post_repayment
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests.conftest import Database
from tests.servicing.loans import at, loan_row, make_loan, schedule_lines

D = Decimal
_refs = itertools.count(1)

EXPECTED = {
    "repayment.exceeds_payoff",
    "prepayment.amount_below_due",
    "prepayment.no_future_instalments",
    "prepayment.mode",  # reduce_term on an interest-first loan
    "loan.state",
}

operations = st.lists(
    st.tuples(
        st.sampled_from(["repay", "repay", "reduce_payment", "reduce_term"]),
        st.integers(min_value=0, max_value=40),  # days after the previous operation
        st.one_of(  # fen: an instalment's worth, or a large part of the loan
            st.integers(min_value=1, max_value=250_000),
            st.integers(min_value=250_000, max_value=1_300_000),
        ),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=operations,
    method=st.sampled_from(["equal_installment", "equal_principal", "interest_first"]),
    order=st.sampled_from(
        [
            "penalty,fee,interest,principal",
            "principal,interest,fee,penalty",
            "horizontal:fee,interest,penalty,principal",
        ]
    ),
)
def test_payments_never_pay_more_than_is_due(
    database: Database,
    institution: str,
    vault: Vault,
    indexer: BlindIndexer,
    ops: list[tuple[str, int, int]],
    method: str,
    order: str,
) -> None:
    loan = make_loan(
        database,
        vault,
        indexer,
        ref=f"PROP-{next(_refs)}",
        method=method,
        allocation_order=order,
        term_months=6,
        fee="2.00",
    )
    day = date(2026, 1, 20)
    for n, (kind, gap, fen) in enumerate(ops):
        day += timedelta(days=gap)
        amount = D(fen).scaleb(-2)
        uow = UnitOfWork(database.sessions, actor="test")
        common = {
            "institution_id": loan.institution_id,
            "loan_id": loan.id,
            "external_ref": f"OP-{n}",
            "amount": amount,
            "received_at": at(day),
        }
        try:
            if kind == "repay":
                post_repayment(uow, **common)  # type: ignore[arg-type]
            else:
                prepay(uow, mode=kind, **common)  # type: ignore[arg-type]
        except ValidationError as refused:
            assert set(refused.rules) <= EXPECTED, refused
        check_books(database, loan.id)


def check_books(db: Database, loan_id: str) -> None:
    lines = schedule_lines(db, loan_id)
    for x in lines:
        for paid, due in [
            (x.paid_principal, x.principal),
            (x.paid_interest, x.interest),
            (x.paid_fee, x.fee),
            (x.paid_penalty, x.penalty),
        ]:
            assert D(0) <= paid <= due, (x.number, paid, due)
        assert (x.settled_on is not None) == (
            x.paid_principal + x.paid_interest + x.paid_fee + x.paid_penalty
            == x.principal + x.interest + x.fee + x.penalty
        )
    principal_paid = sum((x.paid_principal for x in lines), D(0))
    assert sum((x.principal for x in lines), D(0)) == D("12000.00")
    assert principal_paid <= D("12000.00")
    loan = loan_row(db, loan_id)
    assert loan.outstanding_principal == D("12000.00") - principal_paid
    assert (loan.state == "settled") == all(x.settled_on is not None for x in lines)
    with db.sessions() as s:
        received = sum(
            s.scalars(select(m.Repayment.amount).where(m.Repayment.loan_id == loan_id)), D(0)
        )
    paid_total = sum(
        (x.paid_principal + x.paid_interest + x.paid_fee + x.paid_penalty for x in lines), D(0)
    )
    assert received == paid_total  # every fen received is on exactly one line
