"""Day-count conventions: how many years of interest lie between two dates.

A contract must name its day count (REFERENCE.md §2: "state the day count in the contract"),
because the same annual rate gives different interest under each. Three are supported:

* ``ACT_360`` — actual days / 360; the common convention of daily-interest (随借随还) credit
  lines in China, where the daily rate is annual / 360.
* ``ACT_365`` — actual days / 365 ("Actual/365 Fixed": always 365, leap years included).
* ``THIRTY_360`` — 30/360 **Bond Basis** (ISDA 2006 §4.16(f)): every month counts 30 days,
  ``D1 = 31 → 30``; ``D2 = 31 → 30`` only when ``D1`` is then 30. There is no special rule
  for the end of February (that is the "30/360 US" / SIA variant, which we do not use).
  Under it a whole calendar month is exactly 1/12 of a year, which is why schedules under
  ``THIRTY_360`` charge annual/12 for every regular month.

The year fraction is returned as an exact ``Decimal`` when it terminates; otherwise it is
correct to 50 significant digits. Callers that must round interest exactly should multiply
by :meth:`DayCount.days` first and divide by :attr:`DayCount.basis` last.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Context, Decimal
from enum import Enum

_CTX = Context(prec=50)


class DayCount(Enum):
    """A day-count convention; the value is the stable name stored with a contract."""

    ACT_360 = "act/360"
    ACT_365 = "act/365"
    THIRTY_360 = "30/360"

    @property
    def basis(self) -> int:
        """Days in the denominator of the year fraction."""
        return 365 if self is DayCount.ACT_365 else 360

    def days(self, start: date, end: date) -> int:
        """Days counted from ``start`` to ``end`` (negative when ``end`` is earlier)."""
        _check_date("start", start)
        _check_date("end", end)
        if self is not DayCount.THIRTY_360:
            return (end - start).days
        d1, d2 = start.day, end.day
        if d1 == 31:
            d1 = 30
        if d2 == 31 and d1 == 30:
            d2 = 30
        return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)

    def year_fraction(self, start: date, end: date) -> Decimal:
        """Years from ``start`` to ``end``: ``days(start, end) / basis``, as a Decimal."""
        return _CTX.divide(Decimal(self.days(start, end)), Decimal(self.basis))


def _check_date(name: str, value: object) -> None:
    # datetime is a subclass of date; a timestamp here would silently drop its time zone.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}")
