"""Engines for the embedded default (SQLite in WAL mode) and for PostgreSQL.

SQLite is made to behave like a server database where it matters: foreign keys on, a busy
timeout instead of instant "database is locked", and ``BEGIN IMMEDIATE`` so a transaction takes
the write lock up front rather than failing when a read later turns into a write. PostgreSQL
connections are pg8000's, pipelined by ``store.pg`` (one round trip per statement).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Choose our drivers: pg8000 (BSD) for PostgreSQL when the URL names no driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+pg8000")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Named parameters, not sqlite3's default qmark: with positional ones SQLAlchemy
        # converts a value once per *occurrence* in the SQL, and the fraud-velocity query
        # names its 13 instants 77 times (≈ 0.35 ms a decision in datetime formatting alone).
        kwargs.setdefault("paramstyle", "named")
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    pipelined = parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "pg8000"
    if pipelined:  # named parameters, as for SQLite; ``store.pg`` converts them once
        kwargs.setdefault("paramstyle", "named")
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    if pipelined:
        _pipeline_pg8000(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled connection that sat unused this long is tested before it is handed out."""


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection before use only when it has been idle a while.

    SQLAlchemy's ``pool_pre_ping`` tests it on *every* checkout: one extra round trip per
    transaction, four per API request (≈ 1.2 ms of a request's latency on loopback). A
    connection checked in moments ago is as good as the server's last answer on it; one idle
    for ``PING_AFTER_IDLE_SECONDS`` (a restarted server, a dropped idle connection) is
    pinged, and a dead one replaced before any statement sees it — the pool's own retry on
    ``DisconnectionError``. Should the server go away within those seconds, the first
    statement fails instead, and SQLAlchemy discards the pool's connections as it does for
    any disconnect; a partner's retry (idempotent by design) then gets a fresh one.
    """

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("connection failed its ping; replacing it") from exc


def _pipeline_pg8000(engine: Engine) -> None:
    """Connect through ``store.pg`` (one round trip per statement), and send a many-row
    INSERT as one multi-row statement: SQLAlchemy does that for pg8000 only when it wants rows
    back, and otherwise hands the rows to pg8000's ``executemany``, which loops — seven link
    rows of an application would be seven round trips. psycopg2's dialect enables the same
    batching; the SQL is SQLAlchemy's own ``insertmanyvalues`` rewrite."""
    from puhui.store import pg

    engine.dialect.use_insertmanyvalues_wo_returning = True

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return pg.connect(*cargs, **cparams)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    writers = _WriterQueue(engine)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        raw = connection.connection.driver_connection
        writers.enter(raw)
        try:
            # Straight to the driver: the statement takes no parameters and returns nothing,
            # and ``exec_driver_sql`` would run SQLAlchemy's whole execution path each time.
            raw.execute("BEGIN IMMEDIATE")
        except BaseException:
            writers.leave(raw)
            raise


WRITER_WAIT_SECONDS = 30.0
"""How long a transaction waits for this process's other writers before it goes on to wait in
SQLite's own busy handler (as long again, ``busy_timeout``)."""


class _WriterQueue:
    """One transaction of this process at a time holds SQLite's write lock; the others wait
    here, on a lock that wakes the next one the moment the holder commits or rolls back.

    Every transaction here begins ``IMMEDIATE``, so they run one at a time anyway; what this
    changes is how the rest wait. SQLite's busy handler sleeps and retries (1, 2, 5, 10 … up
    to 100 ms between tries), so under concurrent requests a waiter often sleeps well past the
    moment the lock came free, and some wait far longer than others: at 4-8 concurrent API
    clients p99 was 4-15 × p50. Other processes still meet SQLite's busy handler; the server
    runs one process on SQLite.

    Held from ``begin`` to the end of the commit or rollback (the dialect's ``do_commit`` /
    ``do_rollback``, wrapped) and given back as well when the pool closes or invalidates a
    connection that holds it. A waiter that gives up after :data:`WRITER_WAIT_SECONDS` goes
    ahead without it, so a bug here costs time, never a deadlock.
    """

    def __init__(self, engine: Engine) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None
        dialect = engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(dbapi_connection: Any) -> None:
            try:
                commit(dbapi_connection)
            finally:
                self.leave(dbapi_connection)

        def do_rollback(dbapi_connection: Any) -> None:
            try:
                rollback(dbapi_connection)
            finally:
                self.leave(dbapi_connection)

        # instance attributes: this engine's dialect only
        dialect.do_commit = do_commit  # type: ignore[method-assign]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign]

        def closed(dbapi_connection: Any, *_args: Any) -> None:
            self.leave(dbapi_connection)

        for name in ("close", "invalidate", "detach"):
            event.listen(engine, name, closed)

    @staticmethod
    def _key(dbapi_connection: Any) -> int:
        return id(getattr(dbapi_connection, "driver_connection", None) or dbapi_connection)

    def enter(self, dbapi_connection: Any) -> None:
        if self._lock.acquire(timeout=WRITER_WAIT_SECONDS):
            self._holder = self._key(dbapi_connection)

    def leave(self, dbapi_connection: Any) -> None:
        if self._holder is not None and self._holder == self._key(dbapi_connection):
            self._holder = None
            self._lock.release()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
