"""Column types that keep the platform's conventions true in every database.

* ``Money`` — attributes are ``Decimal`` yuan, columns are BIGINT fen: exact everywhere,
  including SQLite, which has no exact decimal type.
* ``ExactDecimal`` — rates and other decimals stored as canonical text, so ``0.0725`` comes
  back as ``Decimal("0.0725")`` and never as a binary float.
* ``UTCDateTime`` — only timezone-aware datetimes go in; UTC comes out, on SQLite too.

:func:`as_stored` gives a row's values as reading them back would, so a use case can answer
from the rows it just wrote instead of another query.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, String, inspect
from sqlalchemy.types import TypeDecorator, TypeEngine

from puhui.domain.money import from_fen, to_fen


class Money(TypeDecorator[Decimal]):
    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money columns take Decimal, got {type(value).__name__}")
        return to_fen(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_fen(int(value))


class ExactDecimal(TypeDecorator[Decimal]):
    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"decimal columns take Decimal, got {type(value).__name__}")
        return format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware UTC times only")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


Row = TypeVar("Row")


def as_stored(row: Row) -> Row:
    """A transient copy of a mapped ``row`` with every column value as the database gives it
    back: money through fen, exact decimals through their text, times in UTC, JSON through
    JSON. Never added to a session; for building answers from rows just written."""
    mapper = inspect(type(row), raiseerr=True)
    values = {
        attr.key: _read_back(attr.columns[0].type, getattr(row, attr.key))
        for attr in mapper.column_attrs
    }
    return type(row)(**values)


def _read_back(type_: TypeEngine[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(type_, Money):
        return from_fen(to_fen(value))
    if isinstance(type_, ExactDecimal):
        return Decimal(format(value, "f"))
    if isinstance(type_, UTCDateTime):
        return value.astimezone(UTC)
    if isinstance(type_, JSON):
        return json.loads(json.dumps(value))
    return value
