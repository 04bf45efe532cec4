"""Use cases: partial prepayment, early settlement, and the payoff quote before either.

* ``payoff_quote`` — what settles the loan on a business date (rule in ``payoff``), computed in
  memory: a quote writes nothing, so asking twice or for a date in the future is harmless.
* ``prepay`` — pay what is due, then reduce principal and rebuild the remaining schedule
  (``rescheduling``), ``reduce_payment`` or ``reduce_term``. Event ``loan.prepaid`` (and
  ``loan.cured`` / ``loan.settled`` when it cures or pays off the loan).
* ``settle_early`` — pay the payoff exactly; the loan is settled. Event ``loan.settled``.

Both are postings like a repayment (one unit of work, idempotent by ``external_ref``, the loan
locked; see ``posting``) and store a ``Repayment`` row whose allocation records the prepayment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from puhui.domain.errors import ErrorCollector
from puhui.domain.lifecycle import LoanState
from puhui.servicing.allocation import Amounts, Applied
from puhui.servicing.ledger import outstanding_principal
from puhui.servicing.payoff import payoff
from puhui.servicing.posting import (
    PREPAYMENT,
    SETTLEMENT,
    Posting,
    PrepaymentSummary,
    RepaymentReceipt,
    apply_state,
    as_business_date,
    decide_state,
    record,
    run_posting,
    save_repayment,
    validate_posting,
)
from puhui.servicing.repository import (
    facts_of,
    find_loan,
    line_of,
    mark_posted,
    replace_future,
    schedule_rows,
    write_lines,
)
from puhui.servicing.rescheduling import (
    PrepaymentMode,
    Reschedule,
    parse_mode,
    plan_prepayment,
    plan_settlement,
)
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class PayoffQuote:
    """The amount that settles the loan on ``as_of``, by component. Valid for that business
    date only: default interest and current-period interest move every day."""

    loan_id: str
    as_of: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    penalty: Decimal
    total: Decimal
    interest_to_date: Decimal
    """Current-period interest up to ``as_of`` (included in ``interest``)."""
    interest_from: date | None
    """Start of the current period, when there is one."""
    interest_days: int


def payoff_quote(
    uow: UnitOfWork, *, institution_id: str, loan_id: str, as_of: date | datetime
) -> PayoffQuote:
    """The payoff on ``as_of`` (a business date, or an instant converted to one)."""
    day = as_business_date(as_of)
    with uow:
        loan = find_loan(uow, institution_id, loan_id, lock=False)
        lines = [line_of(r) for r in schedule_rows(uow, loan.id)]
        quote = payoff(facts_of(loan), lines, day)
        found = loan.id
    period = quote.period
    amounts = quote.amounts
    return PayoffQuote(
        loan_id=found,
        as_of=day,
        principal=amounts.principal,
        interest=amounts.interest,
        fee=amounts.fee,
        penalty=amounts.penalty,
        total=quote.total,
        interest_to_date=period.interest_to_date if period else Decimal("0.00"),
        interest_from=period.start if period else None,
        interest_days=period.days if period else 0,
    )


def prepay(
    uow: UnitOfWork,
    *,
    institution_id: str,
    loan_id: str,
    external_ref: str,
    amount: Decimal | str | int,
    received_at: datetime,
    mode: PrepaymentMode | str,
) -> RepaymentReceipt:
    """Prepay part of the principal; ``mode`` is ``reduce_payment`` or ``reduce_term``."""
    errors = ErrorCollector()
    chosen: PrepaymentMode | None = None
    posting: Posting | None = None
    with errors.checking():
        chosen = parse_mode(mode)
    with errors.checking():
        posting = validate_posting(loan_id, external_ref, amount, received_at)
    errors.raise_if_any()
    assert chosen is not None and posting is not None
    mode_ = chosen

    def apply(uow: UnitOfWork, loan: m.Loan, posting: Posting) -> RepaymentReceipt:
        rows = schedule_rows(uow, loan.id)
        lines = [line_of(r) for r in rows]
        plan = plan_prepayment(facts_of(loan), lines, posting.business_date, posting.amount, mode_)
        return _write(uow, loan, rows, posting, plan, PREPAYMENT)

    return run_posting(uow, institution_id, posting, PREPAYMENT, apply)


def settle_early(
    uow: UnitOfWork,
    *,
    institution_id: str,
    loan_id: str,
    external_ref: str,
    amount: Decimal | str | int,
    received_at: datetime,
) -> RepaymentReceipt:
    """Pay the loan off; ``amount`` must equal the payoff on the business date of
    ``received_at`` (``payoff_quote``): more is ``repayment.exceeds_payoff``, less
    ``settlement.amount_short``."""
    posting = validate_posting(loan_id, external_ref, amount, received_at)

    def apply(uow: UnitOfWork, loan: m.Loan, posting: Posting) -> RepaymentReceipt:
        rows = schedule_rows(uow, loan.id)
        lines = [line_of(r) for r in rows]
        plan = plan_settlement(facts_of(loan), lines, posting.business_date, posting.amount)
        return _write(uow, loan, rows, posting, plan, SETTLEMENT)

    return run_posting(uow, institution_id, posting, SETTLEMENT, apply)


def _write(
    uow: UnitOfWork,
    loan: m.Loan,
    rows: list[m.ScheduleLine],
    posting: Posting,
    plan: Reschedule,
    kind: str,
) -> RepaymentReceipt:
    day = posting.business_date
    final = plan.lines
    move = decide_state(LoanState(loan.state), final, day)

    # Every check has passed: from here on, write.
    write_lines(rows, plan.kept)
    if plan.closing is not None:
        replace_future(uow, loan.id, rows, plan.replaced, (plan.closing, *plan.new_lines))
    loan.outstanding_principal = outstanding_principal(final)
    mark_posted(loan)

    applied = list(plan.cleared.lines)
    if plan.closing is not None and (plan.interest_paid or plan.principal_paid):
        applied.append(
            Applied(
                plan.closing.number,
                Amounts(interest=plan.interest_paid, principal=plan.principal_paid),
            )
        )
    summary = PrepaymentSummary(
        mode=plan.mode.value if plan.mode else None,
        interest_to_date=plan.closing.interest if plan.closing else Decimal("0.00"),
        interest_credit=plan.interest_credit,
        principal_prepaid=plan.principal_paid + plan.interest_credit,
        remaining_instalments=len(plan.new_lines),
        next_due_date=plan.new_lines[0].due_date if plan.new_lines else None,
        next_payment=plan.next_payment,
        regular_payment=plan.regular_payment,
    )
    receipt = RepaymentReceipt(
        repayment_id=m.new_id("rpy"),
        loan_id=loan.id,
        external_ref=posting.external_ref,
        kind=kind,
        amount=posting.amount,
        business_date=day,
        lines=tuple(applied),
        outstanding_principal=loan.outstanding_principal,
        state=move.after.value,
        days_past_due=move.days_past_due,
        prepayment=summary,
    )
    save_repayment(uow, loan, posting, receipt)
    payload = {
        "repayment_id": receipt.repayment_id,
        "external_ref": posting.external_ref,
        "amount": str(posting.amount),
        "business_date": day.isoformat(),
        **{f"paid_{k}": v for k, v in receipt.totals.as_json().items()},
        **summary.as_json(),
        "outstanding_principal": str(loan.outstanding_principal),
    }
    if kind == PREPAYMENT:
        record(uow, loan, "loan.prepaid", payload)
        cause = {"repayment_id": receipt.repayment_id, "how": kind}
        apply_state(uow, loan, move, at=posting.received_at, as_of=day, payload=cause)
    else:
        apply_state(
            uow, loan, move, at=posting.received_at, as_of=day, payload={"how": kind, **payload}
        )
    return receipt


__all__ = ["PayoffQuote", "PrepaymentMode", "payoff_quote", "prepay", "settle_early"]
