"""Loading and saving loans for servicing: tenant-scoped, locked when about to change.

* Every load names the institution. A loan of another institution is reported exactly like a
  loan that does not exist (``loan.not_found`` on ``loan_id``): answering "forbidden" would
  tell a partner that the id exists elsewhere.
* A use case that changes a loan loads it ``SELECT … FOR UPDATE``, so two postings to the same
  loan queue on PostgreSQL instead of both reading the old balance (SQLite's ``BEGIN
  IMMEDIATE`` already queues every writer). The loan's ``version`` column is the second line of
  defence: every posting marks the loan changed, so its UPDATE checks and increments the
  version and a lost update would fail loudly (``StaleDataError``) rather than silently.
* Rows are converted to ``ledger.Line`` values for the rules and written back afterwards, so
  the rules never touch the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from puhui.domain.clock import business_date
from puhui.domain.daycount import DayCount
from puhui.domain.errors import ValidationError
from puhui.domain.schedule import RepaymentMethod
from puhui.servicing.allocation import parse_policy
from puhui.servicing.ledger import Line, LoanFacts
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork

_LINE_FIELDS = (
    "due_date",
    "principal",
    "interest",
    "fee",
    "penalty",
    "paid_principal",
    "paid_interest",
    "paid_fee",
    "paid_penalty",
    "penalty_accrued_to",
    "settled_on",
)


def not_found() -> ValidationError:
    return ValidationError.single("loan_id", "loan.not_found", "no such loan")


def find_loan(uow: UnitOfWork, institution_id: str, loan_id: object, *, lock: bool) -> m.Loan:
    """The institution's loan, locked for update when ``lock``; else ``loan.not_found``."""
    if not isinstance(loan_id, str) or not isinstance(institution_id, str):
        raise not_found()
    query = select(m.Loan).where(m.Loan.id == loan_id, m.Loan.institution_id == institution_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    loan = uow.session.scalar(query)
    if loan is None:
        raise not_found()
    return loan


def lock_loans(uow: UnitOfWork, loan_ids: Sequence[str]) -> list[m.Loan]:
    """Several loans locked for update, in id order (one order everywhere: no deadlock)."""
    query = (
        select(m.Loan)
        .where(m.Loan.id.in_(list(loan_ids)))
        .order_by(m.Loan.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(uow.session.scalars(query))


def schedule_rows(uow: UnitOfWork, loan_id: str) -> list[m.ScheduleLine]:
    return list(uow.loans.schedule(loan_id))


def schedule_rows_of(uow: UnitOfWork, loan_ids: Sequence[str]) -> dict[str, list[m.ScheduleLine]]:
    """The schedules of several loans in one query, by loan id."""
    rows = uow.session.scalars(
        select(m.ScheduleLine)
        .where(m.ScheduleLine.loan_id.in_(list(loan_ids)))
        .order_by(m.ScheduleLine.loan_id, m.ScheduleLine.number)
    )
    result: dict[str, list[m.ScheduleLine]] = {loan_id: [] for loan_id in loan_ids}
    for row in rows:
        result[row.loan_id].append(row)
    return result


def facts_of(loan: m.Loan) -> LoanFacts:
    """The loan-level terms the rules need; a corrupt allocation order is reported as such."""
    disbursed = loan.disbursed_at or loan.contracted_at
    return LoanFacts(
        annual_rate=loan.annual_rate,
        penalty_rate=loan.penalty_rate,
        method=RepaymentMethod(loan.repayment_method),
        day_count=DayCount(loan.day_count),
        start_date=business_date(disbursed),
        policy=parse_policy(loan.allocation_order),
    )


def line_of(row: m.ScheduleLine) -> Line:
    return Line(
        number=row.number,
        due_date=row.due_date,
        principal=row.principal,
        interest=row.interest,
        fee=row.fee,
        penalty=row.penalty,
        paid_principal=row.paid_principal,
        paid_interest=row.paid_interest,
        paid_fee=row.paid_fee,
        paid_penalty=row.paid_penalty,
        penalty_accrued_to=row.penalty_accrued_to,
        settled_on=row.settled_on,
    )


def row_of(loan_id: str, line: Line) -> m.ScheduleLine:
    row = m.ScheduleLine(loan_id=loan_id, number=line.number)
    write_line(row, line)
    return row


def write_line(row: m.ScheduleLine, line: Line) -> bool:
    """Copy ``line`` onto ``row``; True when anything changed."""
    if row.number != line.number:
        raise ValueError(f"line {line.number} written onto row {row.number}")
    changed = False
    for name in _LINE_FIELDS:
        value = getattr(line, name)
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def write_lines(rows: Iterable[m.ScheduleLine], lines: Iterable[Line]) -> int:
    """Write each line onto the row of the same number; the number of rows changed."""
    by_number = {row.number: row for row in rows}
    return sum(write_line(by_number[line.number], line) for line in lines)


def replace_future(
    uow: UnitOfWork,
    loan_id: str,
    rows: Sequence[m.ScheduleLine],
    replaced: Iterable[int],
    new: Iterable[Line],
) -> None:
    """Delete the rows numbered ``replaced`` and insert ``new`` lines in their place.

    The deletes are flushed first: the new lines reuse numbers, and ``(loan_id, number)`` is
    unique (SQLAlchemy would otherwise insert before it deletes).
    """
    gone = set(replaced)
    for row in rows:
        if row.number in gone:
            uow.session.delete(row)
    uow.flush()
    uow.session.add_all([row_of(loan_id, line) for line in new])


def mark_posted(loan: m.Loan) -> None:
    """Make the loan's UPDATE (and so its version check) part of every posting."""
    flag_modified(loan, "outstanding_principal")


def repayment_by_ref(uow: UnitOfWork, loan_id: str, external_ref: str) -> m.Repayment | None:
    return uow.session.scalar(
        select(m.Repayment).where(
            m.Repayment.loan_id == loan_id, m.Repayment.external_ref == external_ref
        )
    )


def active_loan_ids(
    uow: UnitOfWork, *, after: str | None, limit: int, institution_id: str | None
) -> list[str]:
    """Ids of active and overdue loans after ``after`` in id order (keyset pagination)."""
    query = select(m.Loan.id).where(m.Loan.state.in_(("active", "overdue")))
    if after is not None:
        query = query.where(m.Loan.id > after)
    if institution_id is not None:
        query = query.where(m.Loan.institution_id == institution_id)
    return list(uow.session.scalars(query.order_by(m.Loan.id).limit(limit)))
