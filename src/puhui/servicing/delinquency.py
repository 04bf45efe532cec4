"""Days past due, delinquency buckets and default interest (罚息).

Why the rules are what they are
-------------------------------
* **Days past due** (DPD) as of a business date (Asia/Shanghai) is ``as_of − due date`` of the
  oldest instalment not fully paid — penalty and fee included — when that is positive, else 0.
  An instalment due today is not past due. Only the oldest unpaid instalment counts, as in
  Fineract and in credit-bureau reporting, so a borrower three instalments behind is 60-odd
  days past due, not three times 30.
* **Buckets** classify DPD (current 0, M1 1–30, M2 31–60, M3+ over 60). They are data
  (:data:`DEFAULT_BUCKETS`), because institutions and regulators draw the lines differently.
* **Default interest** accrues on an instalment's overdue amount — its unpaid principal plus
  unpaid interest — at the loan's annual ``penalty_rate`` on an actual/360 basis, for each day
  from the day after the due date. The day of a payment is charged on the balance before the
  payment (interest runs to the day money arrives).
* **Rounding: one accrual step is one day.** Each day's penalty is
  ``round_half_up(base × rate / 360)`` to the fen, and a stretch of ``n`` days at the same base
  is ``n`` times that. The base only changes when a payment arrives, and every payment first
  accrues up to its own date, so accruing once over a month gives *exactly* what a daily job
  would have — and a read costs the same on day 700 as on day 1 (Fineract's accrual history
  makes its loan reads slower every day; ours has none). The price is that a base below
  20.00 yuan at 9 % rounds to 0.00 a day; that is the bank convention of daily accrual.
  Example: 1,000.00 overdue at 9 % a year for 10 days → 0.25 a day → 2.50.
* **Caps.** The SPC private-lending provisions (Art. 29) cap overdue interest, penalties and
  fees together; the platform's cap checks live in ``domain.pricing`` and apply when the
  penalty rate is set in the contract, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Context, Decimal
from itertools import pairwise

from puhui.domain.money import round_fen
from puhui.servicing.ledger import Line

PENALTY_DAY_BASIS = 360
"""Default interest is actual days / 360, whatever the loan's own day count."""

_CTX = Context(prec=50)


@dataclass(frozen=True, slots=True)
class Bucket:
    """A delinquency class: DPD from ``min_days`` to ``max_days`` inclusive (None: no end)."""

    name: str
    min_days: int
    max_days: int | None

    def contains(self, dpd: int) -> bool:
        return dpd >= self.min_days and (self.max_days is None or dpd <= self.max_days)


DEFAULT_BUCKETS: tuple[Bucket, ...] = (
    Bucket("current", 0, 0),
    Bucket("M1", 1, 30),
    Bucket("M2", 31, 60),
    Bucket("M3+", 61, None),
)


def check_buckets(buckets: Sequence[Bucket]) -> None:
    """Buckets must start at 0, follow each other without gap or overlap and end open."""
    if not buckets or buckets[0].min_days != 0 or buckets[-1].max_days is not None:
        raise ValueError("buckets must start at 0 days and the last must have no upper bound")
    for before, after in pairwise(buckets):
        if before.max_days is None or after.min_days != before.max_days + 1:
            raise ValueError(f"bucket {after.name} does not follow {before.name} without a gap")


def bucket_for(dpd: int, buckets: Sequence[Bucket] = DEFAULT_BUCKETS) -> Bucket:
    """The bucket that ``dpd`` days past due falls in."""
    if dpd < 0:
        raise ValueError("days past due cannot be negative")
    for bucket in buckets:
        if bucket.contains(dpd):
            return bucket
    raise ValueError(f"no bucket holds {dpd} days past due")


def oldest_unpaid(lines: Iterable[Line]) -> Line | None:
    """The instalment with the earliest due date that still owes anything."""
    unpaid = [line for line in lines if not line.is_paid]
    return min(unpaid, key=lambda x: (x.due_date, x.number)) if unpaid else None


def days_past_due(lines: Iterable[Line], as_of: date) -> int:
    """DPD as of ``as_of`` (see the module docstring).

    Penalties not yet accrued do not change the answer: default interest only runs on a line
    that still owes principal or interest, and such a line is unpaid anyway.
    """
    oldest = oldest_unpaid(lines)
    return max((as_of - oldest.due_date).days, 0) if oldest is not None else 0


def daily_penalty(base: Decimal, annual_rate: Decimal) -> Decimal:
    """One day of default interest on ``base``: ``round_half_up(base × rate / 360)``."""
    return round_fen(_CTX.divide(_CTX.multiply(base, annual_rate), Decimal(PENALTY_DAY_BASIS)))


def accrue_penalty(line: Line, annual_rate: Decimal, as_of: date) -> Line:
    """``line`` with default interest charged through ``as_of`` (unchanged if nothing to add).

    Accrual never goes backwards: ``as_of`` before the line's accrual point changes nothing.
    A line with no unpaid principal or interest accrues nothing and is left untouched (its
    base can never grow again, so its accrual point no longer matters).
    """
    if line.penalty_base <= 0:
        return line
    start = line.due_date
    if line.penalty_accrued_to is not None and line.penalty_accrued_to > start:
        start = line.penalty_accrued_to
    days = (as_of - start).days
    if days <= 0:
        return line
    added = daily_penalty(line.penalty_base, annual_rate) * days
    return replace(line, penalty=line.penalty + added, penalty_accrued_to=as_of)


def accrue_all(lines: Iterable[Line], annual_rate: Decimal, as_of: date) -> list[Line]:
    return [accrue_penalty(line, annual_rate, as_of) for line in lines]


__all__ = [
    "DEFAULT_BUCKETS",
    "PENALTY_DAY_BASIS",
    "Bucket",
    "accrue_all",
    "accrue_penalty",
    "bucket_for",
    "check_buckets",
    "daily_penalty",
    "days_past_due",
    "oldest_unpaid",
]
