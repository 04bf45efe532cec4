"""Time conventions: instants are timezone-aware UTC; business dates are Asia/Shanghai.

A repayment due "on the 15th" is due on the 15th in Beijing, even though the database stores
the instant it was paid in UTC. Converting at one place keeps the two from being confused.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from puhui.domain.errors import ValidationError

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def require_aware(moment: datetime, field: str) -> datetime:
    """The same instant in UTC; a naive datetime is refused (rule ``time.timezone``)."""
    if not isinstance(moment, datetime):
        raise ValidationError.single(field, "time.type", "must be a date and time")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError.single(
            field, "time.timezone", "must carry a timezone (e.g. 2026-11-28T09:30:00+08:00)"
        )
    return moment.astimezone(UTC)


def business_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar date of an instant."""
    return require_aware(moment, "moment").astimezone(BUSINESS_TZ).date()


def now_utc() -> datetime:
    return datetime.now(UTC)
