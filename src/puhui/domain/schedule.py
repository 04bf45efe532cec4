"""Repayment schedules: 等额本息, 等额本金 and 先息后本, exact to the fen.

Why the rules are what they are
-------------------------------
* **Amounts** are ``Decimal`` rounded to the fen ROUND_HALF_UP (``money.round_fen``), like a
  Chinese bank statement. Interest is computed on the *actual* opening balance of each period
  and rounded once per period. The principal column sums exactly to the loan principal, the
  last closing balance is zero, and the last instalment absorbs every rounding difference.
* **Periodic rate.** A regular period is one calendar month. Its rate is ``annual_rate / 12``
  under ``DayCount.THIRTY_360`` (a 30/360 month is exactly 1/12 of a year), and
  ``annual_rate × actual days / basis`` under ``ACT_360`` and ``ACT_365``. Interest for a
  period is ``round_fen(opening × annual_rate × fraction)`` with the division done last.
* **First period.** The first due date defaults to one month after disbursement, same day of
  month clamped to month end. If another first due date is chosen the first period is
  *broken* and :class:`FirstPeriod` says how it is charged: ``REGULAR`` charges it as the
  regular month that ends on the first due date; ``ACTUAL_DAYS`` charges
  ``annual_rate × day_count.year_fraction(start_date, first_due_date)``.
* **Level payment (等额本息).** The payment is the one that exactly amortises the principal
  under the schedule's own period rates ``g_k``: ``A = P·Π(1+g_k) / Σ_j Π_{k>j}(1+g_k)``,
  rounded half up to the fen. With 30/360 and a regular first period every ``g_k`` is
  ``r = annual/12`` and this is the textbook ``A = P·r·(1+r)^n / ((1+r)^n − 1)``
  (100,000 at 6% over 12 months: 8,606.64). A broken first period or an ACT day count changes
  ``g_k`` and so the payment, which is how the instalment is "recomputed so the principal still
  fully amortises". It is computed to 60 significant digits before rounding.
* **The last 等额本息 instalment** pays the remaining principal and, like every other one, the
  level payment, its interest being the level payment less that principal — so the borrower
  pays exactly what the contract promises each month and total interest is
  ``n × A − P`` (10,000 at 6% over 12 months: 12 × 860.66 − 10,000 = 327.92), the figure
  Chinese bank calculators show. This holds whenever that interest lies between zero and the
  interest accrued in the period; otherwise (the rounded payment was above the exact one, or
  the drift below is large) the last instalment pays the remaining principal plus the interest
  accrued. Either way a borrower never pays more interest than accrued nor more than the
  level payment, and the last instalment absorbs every rounding difference.
* **Rounding drift.** With a fixed payment, a fraction of a fen of rounding compounds at the
  periodic rate. In extreme cases (a tiny principal over a long term, or a high rate over
  decades) the rounded payment would pay the loan off before the last due date; the payment
  is then lowered by whole fen to the largest one that does not (the last instalment absorbs
  the rest). Likewise 等额本金 uses ``round_fen(P/n)`` unless that would exhaust the balance
  early, in which case it rounds down. A period whose interest exceeds the level payment
  (a long broken first period, or a 31-day month of an ACT schedule at a high rate over a long
  term) pays its interest and no principal. The drift is small for real loans (5% over
  30 years: a few yuan at most) and large only for combinations nobody lends at: 24% over 360
  months on 30/360 ends with 2,300.46 against a level 2,001.60, and on ACT/360 at 18% or more
  over 30 years dozens of months pay interest only. Use 30/360 for long amortising loans.
* **Due dates** keep the day of month of the disbursement date when the first due date is the
  default, or of the chosen first due date otherwise, clamped to month end
  (31 Jan → 28 Feb → 31 Mar).

A schedule can be rebuilt from an outstanding balance (after a prepayment or a restructuring)
with ``LoanTerms(principal=outstanding, term_months=remaining, start_date=<date interest is
paid to>, first_due_date=<next due date>, ...)``.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_DOWN, Context, Decimal, InvalidOperation
from enum import Enum
from typing import TypeVar

from puhui.domain.daycount import DayCount
from puhui.domain.errors import ErrorCollector, ValidationError
from puhui.domain.money import FEN, ZERO, parse_amount, round_fen

MAX_TERM_MONTHS = 360
"""Thirty years, the longest term of any loan the platform schedules."""

RATE_PLACES = 10
"""Rates may carry at most this many decimal places (0.0435 is 4.35% a year)."""

_CTX = Context(prec=60)
_ONE = Decimal(1)

_E = TypeVar("_E", bound=Enum)


class RepaymentMethod(Enum):
    """How principal is repaid; the value is the stable name stored with a contract."""

    EQUAL_INSTALLMENT = "equal_installment"
    """等额本息: the same payment every period; interest falls and principal rises."""
    EQUAL_PRINCIPAL = "equal_principal"
    """等额本金: the same principal every period plus interest on the balance."""
    INTEREST_FIRST = "interest_first"
    """先息后本: interest every period, all principal with the last instalment."""


class FirstPeriod(Enum):
    """How a broken (odd-length) first period is charged."""

    REGULAR = "regular"
    """As the regular month that ends on the first due date."""
    ACTUAL_DAYS = "actual_days"
    """By the day count over the actual dates from disbursement to the first due date."""


def parse_rate(raw: object, field: str = "annual_rate", *, maximum: Decimal = _ONE) -> Decimal:
    """Parse a rate given as a decimal fraction (``"0.06"`` is 6%).

    Rules named in errors: ``rate.type`` (a decimal string, int or Decimal — never a float or
    bool), ``rate.format`` (a finite number), ``rate.precision`` (at most ``RATE_PLACES``
    decimal places) and ``rate.range`` (``0 ≤ rate < maximum``; 1, i.e. 100%, by default).
    """
    if isinstance(raw, bool | float) or not isinstance(raw, str | int | Decimal):
        raise ValidationError.single(
            field, "rate.type", "rate must be a decimal string or a Decimal, not a float"
        )
    try:
        value = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(raw)
    except InvalidOperation:
        raise ValidationError.single(field, "rate.format", f"{raw!r} is not a number") from None
    if not value.is_finite():
        raise ValidationError.single(field, "rate.format", "rate must be a finite number")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -RATE_PLACES:
        places = Decimal(1).scaleb(-RATE_PLACES)
        if value != value.quantize(places, context=_CTX):
            raise ValidationError.single(
                field, "rate.precision", f"rate has more than {RATE_PLACES} decimal places"
            )
    if value < 0 or value >= maximum:
        raise ValidationError.single(
            field, "rate.range", f"rate must be at least 0 and less than {maximum} (a fraction)"
        )
    return value


def add_months(day: date, months: int, anchor_day: int | None = None) -> date:
    """The date ``months`` calendar months after ``day`` (before, if negative).

    The day of month is ``anchor_day`` (default ``day.day``) clamped to the month's last day,
    so a monthly series anchored on the 31st runs 31 Jan, 28 Feb, 31 Mar.
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(anchor_day or day.day, last))


@dataclass(frozen=True, slots=True)
class LoanTerms:
    """What a schedule is built from; validated and normalised on construction.

    ``principal`` may be given as a decimal string or int (``money.parse_amount``) and
    ``annual_rate`` as a decimal string (``parse_rate``); enums may be given by value. After
    construction every field holds its canonical type and ``first_due_date`` is never None.

    Raises ``ValidationError`` listing every broken rule at once, fields prefixed ``terms.``:
    ``money.*`` (principal), ``rate.*`` (annual_rate), ``schedule.term_type`` and
    ``schedule.term_range`` (1..360 months), ``schedule.method``, ``schedule.day_count``,
    ``schedule.first_period``, ``schedule.date_type`` (a ``date``, not a ``datetime``),
    ``schedule.first_due_after_start`` and ``schedule.first_due_within_two_months``.
    """

    principal: Decimal
    annual_rate: Decimal
    term_months: int
    method: RepaymentMethod
    start_date: date
    first_due_date: date | None = None
    day_count: DayCount = DayCount.THIRTY_360
    first_period: FirstPeriod = FirstPeriod.ACTUAL_DAYS

    def __post_init__(self) -> None:
        errors = ErrorCollector()
        principal: Decimal | None = None
        rate: Decimal | None = None
        with errors.checking():
            principal = parse_amount(self.principal, "terms.principal")
        with errors.checking():
            rate = parse_rate(self.annual_rate, "terms.annual_rate")
        term = self.term_months
        if isinstance(term, bool) or not isinstance(term, int):
            errors.add("terms.term_months", "schedule.term_type", "term must be an integer")
        elif not 1 <= term <= MAX_TERM_MONTHS:
            errors.add(
                "terms.term_months",
                "schedule.term_range",
                f"term must be 1 to {MAX_TERM_MONTHS} months",
            )
        method = _coerce(RepaymentMethod, self.method, "terms.method", "schedule.method", errors)
        day_count = _coerce(
            DayCount, self.day_count, "terms.day_count", "schedule.day_count", errors
        )
        first_period = _coerce(
            FirstPeriod, self.first_period, "terms.first_period", "schedule.first_period", errors
        )
        start = self.start_date
        start_ok = _is_date(start)
        if not start_ok:
            errors.add("terms.start_date", "schedule.date_type", "start date must be a date")
        first_due = self.first_due_date
        if first_due is not None and not _is_date(first_due):
            errors.add(
                "terms.first_due_date", "schedule.date_type", "first due date must be a date"
            )
        elif start_ok:
            if first_due is None:
                first_due = add_months(start, 1)
            elif first_due <= start:
                errors.add(
                    "terms.first_due_date",
                    "schedule.first_due_after_start",
                    "first due date must be after the disbursement date",
                )
            elif first_due > add_months(start, 2):
                errors.add(
                    "terms.first_due_date",
                    "schedule.first_due_within_two_months",
                    "first due date must be at most two months after the disbursement date",
                )
        errors.raise_if_any()
        object.__setattr__(self, "principal", principal)
        object.__setattr__(self, "annual_rate", rate)
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "day_count", day_count)
        object.__setattr__(self, "first_period", first_period)
        object.__setattr__(self, "first_due_date", first_due)

    @property
    def first_due(self) -> date:
        """The first due date (always set after validation)."""
        assert self.first_due_date is not None
        return self.first_due_date

    @property
    def periodic_rate(self) -> Decimal:
        """``annual_rate / 12``: the rate of a regular month under 30/360."""
        return _CTX.divide(self.annual_rate, Decimal(12))

    @property
    def has_broken_first_period(self) -> bool:
        """True when the first due date is not the default one month after disbursement."""
        return self.first_due != add_months(self.start_date, 1)

    def due_dates(self) -> tuple[date, ...]:
        """Every due date, first to last."""
        first = self.first_due
        anchor = first.day if self.has_broken_first_period else self.start_date.day
        return (first, *(add_months(first, k, anchor) for k in range(1, self.term_months)))


@dataclass(frozen=True, slots=True)
class Instalment:
    """One row of a schedule; ``payment = principal + interest``."""

    number: int
    due_date: date
    days: int
    """Actual calendar days since the previous due date (the disbursement date for row 1)."""
    opening_principal: Decimal
    principal: Decimal
    interest: Decimal
    payment: Decimal
    closing_principal: Decimal


@dataclass(frozen=True, slots=True)
class Schedule:
    """A repayment schedule with its totals (computed from the rows)."""

    terms: LoanTerms
    instalments: tuple[Instalment, ...]
    total_principal: Decimal = field(init=False)
    total_interest: Decimal = field(init=False)
    total_payment: Decimal = field(init=False)

    def __post_init__(self) -> None:
        rows = self.instalments
        object.__setattr__(self, "total_principal", sum((r.principal for r in rows), ZERO))
        object.__setattr__(self, "total_interest", sum((r.interest for r in rows), ZERO))
        object.__setattr__(self, "total_payment", sum((r.payment for r in rows), ZERO))


@dataclass(frozen=True, slots=True)
class _Period:
    number: int
    due_date: date
    days: int
    numerator: int
    denominator: int
    """The period is ``numerator / denominator`` of a year."""


def level_payment(principal: Decimal, annual_rate: Decimal, term_months: int) -> Decimal:
    """The textbook 等额本息 payment with ``r = annual_rate / 12``, rounded half up to the fen.

    ``A = P·r·(1+r)^n / ((1+r)^n − 1)``, or ``P / n`` at a zero rate. Arguments are taken as
    already validated (construct :class:`LoanTerms` to validate them); only the term is checked.
    """
    if isinstance(term_months, bool) or not isinstance(term_months, int) or term_months < 1:
        raise ValidationError.single(
            "term_months", "schedule.term_range", f"term must be 1 to {MAX_TERM_MONTHS} months"
        )
    r = _CTX.divide(annual_rate, Decimal(12))
    return round_fen(_level_exact(principal, [r] * term_months))


def build_schedule(terms: LoanTerms) -> Schedule:
    """The repayment schedule for ``terms`` (see the module docstring for every rule)."""
    periods = _periods(terms)
    method = terms.method
    if method is RepaymentMethod.EQUAL_INSTALLMENT:
        rows = _equal_installment(terms, periods)
    elif method is RepaymentMethod.EQUAL_PRINCIPAL:
        rows = _equal_principal(terms, periods)
    else:
        rows = _interest_first(terms, periods)
    return Schedule(terms, tuple(rows))


def _periods(terms: LoanTerms) -> list[_Period]:
    dues = terms.due_dates()
    thirty = terms.day_count is DayCount.THIRTY_360
    basis = terms.day_count.basis
    periods: list[_Period] = []
    previous = terms.start_date
    for number, due in enumerate(dues, start=1):
        days = (due - previous).days
        if number == 1 and terms.has_broken_first_period:
            if terms.first_period is FirstPeriod.ACTUAL_DAYS:
                num, den = terms.day_count.days(previous, due), basis
            elif thirty:
                num, den = 1, 12
            else:
                num, den = (due - add_months(due, -1)).days, basis
        elif thirty:
            num, den = 1, 12
        else:
            num, den = days, basis
        periods.append(_Period(number, due, days, num, den))
        previous = due
    return periods


def _growth(rate: Decimal, period: _Period) -> Decimal:
    return _CTX.divide(_CTX.multiply(rate, Decimal(period.numerator)), Decimal(period.denominator))


def _interest(balance: Decimal, rate: Decimal, period: _Period) -> Decimal:
    # Multiply first, divide last: exact products, one correctly rounded quotient.
    product = _CTX.multiply(_CTX.multiply(balance, rate), Decimal(period.numerator))
    return round_fen(_CTX.divide(product, Decimal(period.denominator)))


def _level_exact(principal: Decimal, growths: Sequence[Decimal]) -> Decimal:
    """The payment that amortises ``principal`` exactly over periods growing by ``growths``."""
    n = len(growths)
    first = growths[0]
    if all(g == first for g in growths):
        if first == 0:
            return _CTX.divide(principal, Decimal(n))
        compound = _CTX.power(_CTX.add(_ONE, first), n)
        return _CTX.divide(
            _CTX.multiply(_CTX.multiply(principal, first), compound), _CTX.subtract(compound, _ONE)
        )
    product = _ONE
    annuity = Decimal(0)
    for g in growths:
        factor = _CTX.add(_ONE, g)
        product = _CTX.multiply(product, factor)
        annuity = _CTX.add(_CTX.multiply(annuity, factor), _ONE)
    return _CTX.divide(_CTX.multiply(principal, product), annuity)


def _equal_installment(terms: LoanTerms, periods: list[_Period]) -> list[Instalment]:
    rate = terms.annual_rate
    interest_cache: dict[tuple[Decimal, int], Decimal] = {}

    def simulate(payment: Decimal) -> list[Instalment] | None:
        balance = terms.principal
        rows: list[Instalment] = []
        last = len(periods)
        for p in periods:
            key = (balance, p.number)
            interest = interest_cache.get(key)
            if interest is None:
                interest = interest_cache[key] = _interest(balance, rate, p)
            if p.number == last:
                principal = balance
                shortfall = payment - balance
                if ZERO <= shortfall <= interest:
                    interest = shortfall  # keep the last payment level (see module docstring)
            else:
                principal = max(payment - interest, ZERO)
                if principal >= balance:
                    return None  # the loan would be paid off before its last due date
            rows.append(_row(p, balance, principal, interest))
            balance -= principal
        return rows

    payment = round_fen(_level_exact(terms.principal, [_growth(rate, p) for p in periods]))
    rows = simulate(payment)
    if rows is not None:
        return rows
    # Largest whole-fen payment that keeps a balance until the last due date; 0 always does.
    good, bad = 0, int(payment / FEN)
    while bad - good > 1:
        middle = (good + bad) // 2
        if simulate(Decimal(middle) * FEN) is None:
            bad = middle
        else:
            good = middle
    rows = simulate(Decimal(good) * FEN)
    assert rows is not None
    return rows


def _equal_principal(terms: LoanTerms, periods: list[_Period]) -> list[Instalment]:
    n = len(periods)
    total = terms.principal
    exact_share = _CTX.divide(total, Decimal(n))
    share = round_fen(exact_share)
    if share * (n - 1) >= total and n > 1:
        share = exact_share.quantize(FEN, rounding=ROUND_DOWN)
    balance = total
    rows: list[Instalment] = []
    for p in periods:
        principal = balance if p.number == n else share
        rows.append(_row(p, balance, principal, _interest(balance, terms.annual_rate, p)))
        balance -= principal
    return rows


def _interest_first(terms: LoanTerms, periods: list[_Period]) -> list[Instalment]:
    n = len(periods)
    balance = terms.principal
    rows: list[Instalment] = []
    for p in periods:
        principal = balance if p.number == n else ZERO
        rows.append(_row(p, balance, principal, _interest(balance, terms.annual_rate, p)))
    return rows


def _row(p: _Period, opening: Decimal, principal: Decimal, interest: Decimal) -> Instalment:
    return Instalment(
        number=p.number,
        due_date=p.due_date,
        days=p.days,
        opening_principal=opening,
        principal=principal,
        interest=interest,
        payment=principal + interest,
        closing_principal=opening - principal,
    )


def _is_date(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _coerce(
    enum: type[_E], raw: object, field_name: str, rule: str, errors: ErrorCollector
) -> _E | None:
    if isinstance(raw, enum):
        return raw
    try:
        return enum(raw)
    except (ValueError, TypeError):
        choices = ", ".join(str(m.value) for m in enum)
        errors.add(field_name, rule, f"{raw!r} is not one of: {choices}")
        return None


__all__ = [
    "MAX_TERM_MONTHS",
    "RATE_PLACES",
    "FirstPeriod",
    "Instalment",
    "LoanTerms",
    "RepaymentMethod",
    "Schedule",
    "add_months",
    "build_schedule",
    "level_payment",
    "parse_rate",
]
