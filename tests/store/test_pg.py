"""``store.pg``: pg8000 pipelined to one round trip per statement behaves as pg8000 does."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from puhui.store import pg
from tests.conftest import Database


@pytest.fixture
def pg_db(database: Database) -> Database:
    if database.kind != "postgresql":
        pytest.skip("PostgreSQL driver")
    return database


def test_connections_are_pipelined_and_values_round_trip(pg_db: Database) -> None:
    at = datetime(2026, 11, 28, 8, 30, 15, 123456, tzinfo=UTC)
    with pg_db.engine.connect() as conn:
        assert isinstance(conn.connection.dbapi_connection, pg.PipelinedConnection)
        row = conn.execute(
            text(
                "select cast(:a as int), cast(:b as text), cast(:c as numeric), "
                "cast(:d as timestamptz), cast(:e as bytea), cast(:f as text)"
            ),
            {
                "a": 42,
                "b": "普惠 '%s' %%",
                "c": Decimal("1234.56"),
                "d": at,
                "e": b"\x00\xff",
                "f": None,
            },
        ).one()
        assert tuple(row) == (42, "普惠 '%s' %%", Decimal("1234.56"), at, b"\x00\xff", None)
        rows = conn.execute(text("select generate_series(1, :n)"), {"n": 3}).scalars().all()
        assert rows == [1, 2, 3]


def test_errors_keep_their_classes_and_the_connection_stays_usable(pg_db: Database) -> None:
    with pg_db.engine.connect() as conn:
        conn.execute(text("create temporary table t (k int primary key)"))
        conn.execute(text("insert into t values (:k)"), {"k": 1})
        conn.commit()
        with pytest.raises(IntegrityError):
            conn.execute(text("insert into t values (:k)"), {"k": 1})
        conn.rollback()
        with pytest.raises(ProgrammingError):
            conn.execute(text("select nosuchcolumn from t where k = :k"), {"k": 1})
        conn.rollback()
        assert conn.execute(text("select count(*) from t where k = :k"), {"k": 1}).scalar() == 1
        conn.execute(text("insert into t values (:k)"), {"k": 2})  # begins a new transaction
        conn.rollback()
        assert conn.execute(text("select count(*) from t where k > :k"), {"k": 0}).scalar() == 1


def test_dates_and_times_read_as_pg8000_reads_them(pg_db: Database) -> None:
    """ISO text goes through ``fromisoformat``; what it cannot read, pg8000's converter."""
    from pg8000.converters import date_in, timestamp_in, timestamptz_in

    values = {
        "timestamptz": [
            "2026-11-28 20:17:28.361045+00",
            "2026-11-28 20:17:28+05:30",
            "1900-01-01 00:00:00+08:05:43",
            "infinity",
            "-infinity",
        ],
        "timestamp": ["2026-11-28 20:17:28.5", "2026-11-28 00:00:00", "infinity"],
        "date": ["2026-11-28", "0044-03-15 BC", "-infinity"],
    }
    own = {"timestamptz": timestamptz_in, "timestamp": timestamp_in, "date": date_in}
    with pg_db.engine.connect() as conn:
        conn.execute(text("set time zone 'UTC'"))
        for type_name, texts in values.items():
            for value in texts:
                raw = conn.execute(text(f"select cast(:v as {type_name})::text"), {"v": value})
                as_text = raw.scalar_one()
                got = conn.execute(
                    text(f"select cast(:v as {type_name})"), {"v": value}
                ).scalar_one()
                assert got == own[type_name](as_text), (type_name, value, as_text)
