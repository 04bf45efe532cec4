"""``store.pg``: pg8000 pipelined to one round trip per statement behaves as pg8000 does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pg8000.dbapi import ProgrammingError as DriverProgrammingError
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from puhui.store import direct, pg
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


def _round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the network writes ``store.pg`` flushes (one per round trip)."""
    flushes = [0]
    real = pg._flush

    def counted(sock: object) -> None:
        flushes[0] += 1
        real(sock)

    monkeypatch.setattr(pg, "_flush", counted)
    return flushes


def _later(conn: Any, sql: str, **params: Any) -> None:
    cursor = conn.connection.cursor()
    cursor.execute_later(sql, params)
    cursor.close()


@pytest.fixture
def later_t(pg_db: Database) -> Iterator[Connection]:
    """A connection and a scratch table ``later_t (k int primary key, v text)``."""
    with pg_db.engine.connect() as conn:
        conn.execute(text("create table later_t (k int primary key, v text)"))
        conn.commit()
        try:
            yield conn
        finally:
            conn.rollback()
            conn.execute(text("drop table later_t"))
            conn.commit()


def test_queued_writes_ride_with_the_next_statement(
    later_t: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = later_t
    trips = _round_trips(monkeypatch)
    _later(conn, "insert into later_t (k, v) values (:k, :v)", k=1, v="一")
    _later(conn, "insert into later_t (k, v) values (:k, :v)", k=2, v="二")
    _later(conn, "update later_t set v = :v where k = :k", k=1, v="壹")
    assert trips[0] == 0  # nothing sent yet
    seen = conn.execute(text("select k, v from later_t where k > :k order by k"), {"k": 0})
    assert [tuple(r) for r in seen] == [(1, "壹"), (2, "二")]  # visible, in order
    assert trips[0] == 1  # the writes went with the read, BEGIN too
    _later(conn, "insert into later_t (k, v) values (:k, :v)", k=3, v="三")
    conn.commit()
    assert trips[0] == 2  # and with the COMMIT
    count = conn.execute(text("select count(*) from later_t where k > :k"), {"k": 0})
    assert count.scalar() == 3


def test_a_failing_queued_write_fails_the_next_statement_and_the_transaction(
    later_t: Connection,
) -> None:
    conn = later_t
    conn.execute(text("insert into later_t (k) values (:k)"), {"k": 1})
    conn.commit()
    conn.begin()
    _later(conn, "insert into later_t (k) values (:k)", k=2)
    _later(conn, "insert into later_t (k) values (:k)", k=1)  # duplicate
    with pytest.raises(IntegrityError) as caught:
        conn.commit()  # the statement that sends them raises their error
    assert "queued to go with this statement" in "\n".join(
        getattr(caught.value.orig, "__notes__", [])
    )
    conn.rollback()
    conn.begin()
    _later(conn, "insert into later_t (k) values (:k)", k=5)
    _later(conn, "insert into later_t (k) values (:k)", k=5)
    with pytest.raises(IntegrityError):  # raised by a read as well
        conn.execute(text("select count(*) from later_t where k > :k"), {"k": 0})
    conn.rollback()
    rows = conn.execute(text("select k from later_t where k > :k"), {"k": 0})
    assert [r[0] for r in rows] == [1]  # nothing of either transaction was kept


def test_a_rollback_drops_queued_writes_and_reads_do_not_wait(later_t: Connection) -> None:
    conn = later_t
    conn.begin()
    _later(conn, "insert into later_t (k) values (:k)", k=7)
    conn.rollback()  # never sent
    conn.begin()
    _later(conn, "insert into later_t (k) values (:k)", k=8)
    # a statement without parameters takes pg8000's own path: the write goes first
    driver = conn.connection.dbapi_connection
    assert driver is not None
    driver.notices.clear()
    assert conn.execute(text("select count(*) from later_t")).scalar() == 1
    assert not driver.notices  # no second BEGIN ("already a transaction in progress")
    conn.commit()
    assert conn.execute(text("select max(k) from later_t")).scalar() == 8
    cursor = conn.connection.cursor()
    with pytest.raises(DriverProgrammingError, match="return no rows"):
        cursor.execute_later("insert into later_t (k) values (:k) returning k", {"k": 9})
    with pytest.raises(DriverProgrammingError, match="return no rows"):
        cursor.execute_later("select :k", {"k": 9})


def test_in_autocommit_a_write_that_could_wait_is_sent_at_once(
    pg_db: Database, later_t: Connection
) -> None:
    auto = later_t.execution_options(isolation_level="AUTOCOMMIT")
    _later(auto, "insert into later_t (k) values (:k)", k=11)
    with pg_db.engine.connect() as other:  # already committed, seen elsewhere
        found = other.execute(text("select count(*) from later_t where k = :k"), {"k": 11})
        assert found.scalar() == 1


def test_statements_sent_together_take_one_round_trip(
    later_t: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = later_t
    conn.begin()
    trips = _round_trips(monkeypatch)
    _later(conn, "insert into later_t (k, v) values (:k, :v)", k=1, v="一")
    reads = [
        (text("select v from later_t where k = :k"), {"k": 1}),  # sees the queued write
        (text("select count(*) from later_t where k > :k"), {"k": 0}),
        (text("insert into later_t (k, v) values (:k, :v) returning k"), {"k": 2, "v": "二"}),
    ]
    found = direct.execute_together(conn, reads)
    assert trips[0] == 1  # BEGIN, the queued write and three statements in one write
    assert [r.rows for r in found] == [[("一",)], [(1,)], [(2,)]]
    assert found[0].keys == ("v",)
    conn.commit()
    assert trips[0] == 2


def test_after_a_failure_sent_together_the_rest_do_not_run_and_the_connection_recovers(
    later_t: Connection,
) -> None:
    conn = later_t
    conn.begin()
    add = text("insert into later_t (k) values (:k)")
    with pytest.raises(IntegrityError) as caught:
        direct.execute_together(conn, [(add, {"k": 1}), (add, {"k": 1}), (add, {"k": 3})])
    assert direct.failed_statement(caught.value) == 1
    conn.rollback()
    assert conn.execute(text("select count(*) from later_t where k > :k"), {"k": 0}).scalar() == 0
    # prepared statements whose first use failed are forgotten, not left half-known
    found = direct.execute_together(conn, [(add, {"k": 4}), (add, {"k": 5})])
    assert [r.rowcount for r in found] == [1, 1]
    conn.commit()
    auto = conn.execution_options(isolation_level="AUTOCOMMIT")  # one by one, each committed
    with pytest.raises(IntegrityError):
        direct.execute_together(auto, [(add, {"k": 6}), (add, {"k": 4})])
    rows = conn.execute(text("select k from later_t where k > :k order by k"), {"k": 0})
    assert [r[0] for r in rows] == [4, 5, 6]
