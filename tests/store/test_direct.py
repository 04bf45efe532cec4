"""Direct execution (``store.direct``) gives what SQLAlchemy's own execution gives: the same
rows, the same type conversions both ways, the same exceptions — on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from puhui.store import direct
from puhui.store.types import ExactDecimal, Money, UTCDateTime
from tests.conftest import Database

_META = MetaData()
PROBE = Table(
    "direct_probe",
    _META,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ref", String(20), unique=True, nullable=False),
    Column("amount", Money),
    Column("rate", ExactDecimal),
    Column("at", UTCDateTime),
    Column("doc", JSON),
    Column("tag", String(10), default="plain"),
    Column("made", String(40), default=lambda: "made-by-default"),
)


@pytest.fixture
def probe(database: Database) -> Iterator[Database]:
    _META.create_all(database.engine)
    try:
        yield database
    finally:
        _META.drop_all(database.engine)


def _row(ref: str, **more: Any) -> dict[str, Any]:
    east8 = timezone(timedelta(hours=8))
    return {
        "ref": ref,
        "amount": Decimal("1234.56"),
        "rate": Decimal("0.0725"),
        "at": datetime(2026, 11, 28, 20, 30, 15, 123456, tzinfo=east8),
        "doc": {"名": "值", "n": [1, 2]},
        **more,
    }


def _read(database: Database) -> list[tuple[Any, ...]]:
    columns = [c for c in PROBE.columns if c.key != "id"]
    with database.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).order_by(PROBE.c.ref))]


def test_inserted_rows_read_back_as_sqlalchemys_own_insert_writes_them(probe: Database) -> None:
    with probe.engine.begin() as conn:
        direct.insert_rows(conn, PROBE, [_row("d1"), _row("d2")])
        direct.insert_rows(conn, PROBE, [_row("d3", tag="given")])
    by_direct = _read(probe)
    with probe.engine.begin() as conn:
        conn.execute(PROBE.delete())
        conn.execute(insert(PROBE), [_row("d1"), _row("d2")])
        conn.execute(insert(PROBE), [_row("d3", tag="given")])
    assert by_direct == _read(probe)
    first = by_direct[0]
    assert first[1:5] == (
        Decimal("1234.56"),
        Decimal("0.0725"),
        datetime(2026, 11, 28, 12, 30, 15, 123456, tzinfo=UTC),
        {"名": "值", "n": [1, 2]},
    )
    assert first[5:] == ("plain", "made-by-default")  # Python-side defaults filled in
    assert by_direct[2][5] == "given"


def test_many_rows_go_in_chunks(probe: Database) -> None:
    rows = [_row(f"r{i:04d}") for i in range(direct.MAX_ROWS_PER_INSERT * 2 + 7)]
    with probe.engine.begin() as conn:
        direct.insert_rows(conn, PROBE, rows)
    assert [r[0] for r in _read(probe)] == [r["ref"] for r in rows]


def test_a_unique_violation_is_sqlalchemys_integrity_error_and_the_transaction_is_undone(
    probe: Database,
) -> None:
    with pytest.raises(IntegrityError), probe.engine.begin() as conn:
        direct.insert_rows(conn, PROBE, [_row("same")])
        direct.insert_rows(conn, PROBE, [_row("same")])
    assert _read(probe) == []
    with probe.engine.begin() as conn:  # the pooled connection is still good
        direct.insert_rows(conn, PROBE, [_row("after")])
    assert [r[0] for r in _read(probe)] == ["after"]


def test_rows_must_name_the_same_columns(probe: Database) -> None:
    with probe.engine.begin() as conn, pytest.raises(ValueError, match="same columns"):
        direct.insert_rows(conn, PROBE, [_row("a"), _row("b", tag="x")])
    reordered = dict(reversed(list(_row("d").items())))
    with probe.engine.begin() as conn:  # the same columns in another order are the same
        direct.insert_rows(conn, PROBE, [_row("c"), reordered])
    assert [r[0] for r in _read(probe)] == ["c", "d"]


def test_execute_processes_parameters_and_results_and_counts_rows(probe: Database) -> None:
    with probe.engine.begin() as conn:
        direct.insert_rows(conn, PROBE, [_row("a"), _row("b")])
        direct.insert_rows(conn, PROBE, [_row("c", tag="other")])
    move = (
        update(PROBE)
        .where(PROBE.c.tag == "plain", PROBE.c.at < bindparam("before"))
        .values(amount=bindparam("amount"))
    )
    read = select(PROBE.c.ref, PROBE.c.amount, PROBE.c.at).where(PROBE.c.ref == bindparam("r"))
    with probe.engine.begin() as conn:
        moved = direct.execute(
            conn, move, {"before": datetime(2027, 1, 1, tzinfo=UTC), "amount": Decimal("0.01")}
        )
        assert moved.rowcount == 2  # "c" is not tagged plain: the statement's own value holds
        row = direct.execute(conn, read, {"r": "a"}).first()
        assert direct.execute(conn, read, {"r": "none"}).first() is None
    assert row == ("a", Decimal("0.01"), datetime(2026, 11, 28, 12, 30, 15, 123456, tzinfo=UTC))
    assert row is not None and row[2].tzinfo is not None  # aware UTC on SQLite too


def test_a_text_statement_returns_raw_values(probe: Database) -> None:
    with probe.engine.begin() as conn:
        direct.insert_rows(conn, PROBE, [_row("t")])
        count = direct.execute(
            conn, text("SELECT count(*) FROM direct_probe WHERE ref = :r"), {"r": "t"}
        )
    assert count.scalar() == 1


def test_a_missing_parameter_is_named(probe: Database) -> None:
    statement = select(PROBE.c.ref).where(PROBE.c.ref == bindparam("wanted"))
    with probe.engine.begin() as conn, pytest.raises(TypeError, match="'wanted'"):
        direct.execute(conn, statement, {})


def test_an_in_list_parameter_is_refused(probe: Database) -> None:
    statement = select(PROBE.c.ref).where(PROBE.c.ref.in_(bindparam("refs", expanding=True)))
    with probe.engine.begin() as conn, pytest.raises(TypeError, match="expanding"):
        direct.execute(conn, statement, {"refs": ["a"]})


def test_statements_are_logged_where_sqlalchemy_logs_its_own(
    probe: Database, caplog: pytest.LogCaptureFixture
) -> None:
    engine_log = logging.getLogger("sqlalchemy.engine")
    engine_log.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.INFO), probe.engine.begin() as conn:
            direct.insert_rows(conn, PROBE, [_row("logged")])
    finally:
        engine_log.setLevel(logging.WARNING)
    assert "INSERT INTO direct_probe" in caplog.text
    assert "'logged'" in caplog.text  # the parameters too, as SQLAlchemy's own log has them
    caplog.clear()
    with probe.engine.begin() as conn:  # not at INFO: nothing
        direct.insert_rows(conn, PROBE, [_row("quiet")])
    assert "direct_probe" not in caplog.text


def test_an_engine_with_positional_parameters_is_refused_not_misled(
    probe: Database, tmp_path: Any
) -> None:
    """Compiled forms are kept per dialect *and* parameter style: an engine that was not made
    by ``store.db`` (positional ``?`` on SQLite) gets a clear refusal, never SQL compiled for
    the other style."""
    statement = select(PROBE.c.ref).where(PROBE.c.ref == bindparam("r"))
    with probe.engine.begin() as conn:  # compiled and cached for the named style first
        assert direct.execute(conn, statement, {"r": "none"}).first() is None
    plain = create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        with plain.begin() as conn, pytest.raises(TypeError, match="named paramstyle"):
            direct.execute(conn, statement, {"r": "none"})
    finally:
        plain.dispose()


def test_statements_sent_together_answer_in_order_each_as_on_its_own(probe: Database) -> None:
    with probe.engine.begin() as conn:
        direct.insert_rows(conn, PROBE, [_row("a"), _row("b")])
        direct.insert_rows(conn, PROBE, [_row("c", tag="other")])
    read = select(PROBE.c.ref, PROBE.c.amount, PROBE.c.at).where(PROBE.c.ref == bindparam("r"))
    count = text("SELECT count(*) FROM direct_probe WHERE tag = :tag")
    move = update(PROBE).where(PROBE.c.tag == bindparam("t")).values(amount=bindparam("amount"))
    with probe.engine.begin() as conn:
        calls = [
            (read, {"r": "a"}),
            (count, {"tag": "plain"}),
            (move, {"t": "plain", "amount": Decimal("9.99")}),
            (read, {"r": "b"}),  # sees the update sent before it
            (read, {"r": "none"}),
        ]
        together = direct.execute_together(conn, calls)
    with probe.engine.begin() as conn:
        one_by_one = [direct.execute(conn, s, p) for s, p in calls[:2]]
    at = datetime(2026, 11, 28, 12, 30, 15, 123456, tzinfo=UTC)
    assert together[0].rows == [("a", Decimal("1234.56"), at)]
    assert together[0].keys == one_by_one[0].keys == ("ref", "amount", "at")
    assert together[1].scalar() == one_by_one[1].scalar() == 2
    assert together[2].rowcount == 2
    assert together[3].rows == [("b", Decimal("9.99"), at)]
    assert together[4].rows == [] and together[4].first() is None


def test_a_failure_among_statements_sent_together_is_named_and_undoes_the_transaction(
    probe: Database,
) -> None:
    with probe.engine.begin() as conn:
        direct.insert_rows(conn, PROBE, [_row("taken")])
    add = insert(PROBE).values(
        {"ref": bindparam("ref"), "tag": bindparam("tag"), "made": bindparam("made")}
    )
    count = text("SELECT count(*) FROM direct_probe")
    with pytest.raises(IntegrityError) as caught, probe.engine.begin() as conn:
        direct.execute_together(
            conn,
            [
                (add, {"ref": "new", "tag": "t", "made": "m"}),
                (add, {"ref": "taken", "tag": "t", "made": "m"}),  # unique violation
                (count, {}),
            ],
        )
    assert direct.failed_statement(caught.value) == 1
    assert "direct_probe" in str(caught.value.statement)
    assert direct.failed_statement(ValueError()) is None
    assert [r[0] for r in _read(probe)] == ["taken"]  # "new" went with the transaction
    with probe.engine.begin() as conn:  # the pooled connection is still good
        assert direct.execute_together(conn, [(count, {}), (count, {})])[1].scalar() == 1
