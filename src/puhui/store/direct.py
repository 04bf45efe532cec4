"""The hot statements of a request, compiled by SQLAlchemy once and run on the driver's cursor.

Why: a partner's ``POST /v1/applications`` runs about thirty statements, and SQLAlchemy's
execution path (cache-key generation, execution context, parameter processing, result
construction) cost more per statement than the driver itself: on PostgreSQL ≈ 3 ms of a
request's 14 ms of server CPU went to it, as much as pg8000 and the network round trips
together (``benchmarks/profile_submit.py``, measured on the 2-core machine). The statements
on that path are fixed Core constructs — inserts of new rows, the audit chain's head, the
nonce, the rate counter, the idempotency record — so this module asks SQLAlchemy to compile
each one once per dialect and remembers what the compilation says: the SQL text, each bound
parameter's type processor (``Money`` to fen, ``UTCDateTime`` to UTC, JSON to text) and the
result columns' processors. Executing is then a dictionary comprehension and one
``cursor.execute`` on the connection SQLAlchemy already holds, in its transaction.

What SQLAlchemy would otherwise do and this keeps: the same SQL and the same type
conversions (its own processors, through public ``TypeEngine`` methods); a driver error
comes back as SQLAlchemy's exception (``IntegrityError`` and the rest, through
``DBAPIError.instance``), and a lost connection invalidates the pooled connection as
SQLAlchemy's own path does; statements and parameters are logged to the engine's logger when
it logs at INFO (``echo=True``), so the log of a request still shows every statement. What it
does not: engine events (``before_cursor_execute``) do not fire for these statements, and
only Python-side column defaults are filled in (no ``server_default`` or SQL-expression
defaults; none of the tables written here has one, and :func:`insert_rows` refuses a table
that does).

Writes whose answer nobody reads (the new rows of a use case, its events and audit records,
the audit head's move) can go ``later``: PostgreSQL's pipelined connection (``store.pg``) sends
them in the same network write as the next statement of the transaction, which saves a round
trip each — 14 of a submission's 33.

Reads that do not depend on one another's answers can go together
(:func:`execute_together`): on PostgreSQL in one round trip, elsewhere one after the other.

SQLAlchemy is still what builds, compiles and types every statement; the ORM keeps the rest
of the work (loading aggregates, flushing changed ones). Where an ORM object must be read
back, its query stays on the ORM.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Column, Connection, Dialect, Insert, Table, bindparam, insert
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any]

MAX_ROWS_PER_INSERT = 100
"""Rows per multi-row INSERT (SQLite allows 32,766 parameters a statement, PostgreSQL 65,535;
the widest table written here has 16 columns)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, str, Processor | None], ...]
    """(the caller's key, name in the SQL, processor) for every parameter the caller gives."""
    results: tuple[Processor | None, ...]
    fixed: tuple[tuple[str, Any], ...] = ()
    """(name in the SQL, processed value) of the parameters the statement carries its own value
    for (``column == "x"`` in a WHERE clause); not the caller's to give."""


@dataclass(frozen=True, slots=True)
class Result:
    """The rows (processed, as tuples), their column names and the row count of one direct
    execution."""

    rows: list[tuple[Any, ...]]
    keys: tuple[str, ...]
    rowcount: int

    def mappings(self) -> list[dict[str, Any]]:
        """The rows as dicts by column name."""
        return [dict(zip(self.keys, row, strict=True)) for row in self.rows]

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        """The first column of the first row; None when there is no row."""
        return self.rows[0][0] if self.rows else None


MAX_COMPILED = 1024
"""Compiled statements kept; beyond this the cache starts afresh (statements are meant to be
built once, at import or in an ``lru_cache``; this bounds a caller that builds them per call)."""

_compiled: dict[tuple[ClauseElement, tuple[str, str]], _Compiled] = {}
"""By statement (statements compare and hash by identity) and dialect flavour."""


def _flavour(dialect: Dialect) -> tuple[str, str]:
    """What a compiled statement depends on: the SQL dialect and its parameter style."""
    return dialect.name, dialect.paramstyle


def _bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    return type_.dialect_impl(dialect).result_processor(dialect, None)


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    if compiled.positional:  # the engines of ``store.db`` use named parameters everywhere
        raise TypeError(f"{dialect.name}: direct execution needs the named paramstyle")
    binds: list[tuple[str, str, Processor | None]] = []
    fixed: list[tuple[str, Any]] = []
    for name, param in compiled.binds.items():
        if param.expanding:
            raise TypeError("direct execution takes no expanding (IN-list) parameters")
        proc = _bind_processor(param.type, dialect)
        if param.callable is not None:
            raise TypeError(f"{name}: direct execution takes no callable parameter values")
        if param.required:
            binds.append((name, name, proc))
        else:
            fixed.append((name, param.value if proc is None else proc(param.value)))
    columns = getattr(statement, "exported_columns", None) or ()
    results = tuple(_result_processor(c.type, dialect) for c in columns)
    return _Compiled(compiled.string, tuple(binds), results, tuple(fixed))


def _compiled_for(conn: Connection, statement: ClauseElement) -> _Compiled:
    key = (statement, _flavour(conn.dialect))
    found = _compiled.get(key)
    if found is None:
        found = _compile(statement, conn.dialect)
        if len(_compiled) >= MAX_COMPILED:
            _compiled.clear()
        _compiled[key] = found
    return found


def execute(
    conn: Connection,
    statement: ClauseElement,
    params: Mapping[str, Any] | None = None,
    *,
    later: bool = False,
) -> Result:
    """Run a fixed statement (one built at import time) in ``conn``'s transaction.

    Every parameter the statement names must be in ``params``; results come back processed
    by their columns' types (a ``text()`` statement's columns are untyped: raw values).
    ``later``: see :func:`insert_rows`; the result is then empty, its row count -1."""
    compiled = _compiled_for(conn, statement)
    return _run(conn, compiled, _bound(compiled, params), later)


def execute_together(
    conn: Connection, calls: Sequence[tuple[ClauseElement, Mapping[str, Any] | None]]
) -> list[Result]:
    """Run fixed statements whose parameters do not depend on one another's results, in
    ``conn``'s transaction, and return their results in order.

    On PostgreSQL's pipelined connection (``store.pg``) they share one network round trip;
    elsewhere they run one after the other. Either way the first failure is raised and, in a
    transaction, the statements after it have no effect (PostgreSQL aborts the transaction;
    SQLite never runs them); :func:`failed_statement` tells which one failed. For statements
    that would otherwise wait on one another for no reason — the fraud features of one
    application, say."""
    prepared = []
    for statement, params in calls:
        compiled = _compiled_for(conn, statement)
        prepared.append((compiled, _bound(compiled, params)))
    dbapi_connection = conn.connection
    cursor = dbapi_connection.cursor()
    together = getattr(cursor, "execute_together", None)
    if together is None or len(prepared) < 2:
        cursor.close()
        results = []
        for index, (compiled, bound) in enumerate(prepared):
            try:
                results.append(_run(conn, compiled, bound))
            except StatementError as exc:
                exc.statement_index = index  # type: ignore[attr-defined]
                raise
        return results
    for compiled, bound in prepared:
        _log(conn, compiled.sql, bound)
    try:
        answers = together([(compiled.sql, bound) for compiled, bound in prepared])
    except conn.dialect.loaded_dbapi.Error as exc:
        # no index: a write queued to go with these failed first
        failed: int | None = getattr(exc, "statement_index", None)
        error = _error(conn, *prepared[failed or 0], exc, cursor)
        if failed is not None:
            error.statement_index = failed  # type: ignore[attr-defined]
        raise error from exc
    finally:
        cursor.close()
    return [
        Result(_processed(compiled, rows), keys, rowcount)
        for (compiled, _), (rows, keys, rowcount) in zip(prepared, answers, strict=True)
    ]


def failed_statement(error: BaseException) -> int | None:
    """The position, in the list given to :func:`execute_together`, of the statement whose
    failure ``error`` is; None for an error from anywhere else."""
    index = getattr(error, "statement_index", None)
    return index if isinstance(index, int) else None


def _bound(compiled: _Compiled, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The driver's parameters: the caller's values through their types' processors."""
    values = params or {}
    bound = dict(compiled.fixed)
    for key, name, proc in compiled.binds:
        if key not in values:
            raise TypeError(f"direct execution: no value for parameter {key!r}")
        value = values[key]
        bound[name] = value if proc is None else proc(value)
    return bound


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, later: bool = False
) -> None:
    """Insert ``rows`` (dicts by column key) into ``table`` as multi-row INSERTs.

    A column absent from a row takes its Python-side default, as SQLAlchemy's own insert
    would give it; every row must name the same columns.

    ``later`` lets PostgreSQL's connection (``store.pg``) send the insert with the next
    statement of the transaction instead of on its own round trip. For writes whose failure
    the caller does not catch on the spot: an error (a unique violation, say) is raised by
    that next statement or the COMMIT, and fails the use case as a whole. On SQLite it runs
    at once."""
    if not rows:
        return
    keys = tuple(rows[0])
    for other in rows[1:]:
        if other.keys() != rows[0].keys():
            raise ValueError(f"{table.name}: every row of one insert must name the same columns")
    defaults = _defaults(table, keys)
    for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
        chunk = rows[start : start + MAX_ROWS_PER_INSERT]
        compiled = _insert_for(conn, table, keys, len(chunk))
        width = len(compiled.binds) // len(chunk)
        bound: dict[str, Any] = {}
        for i, row in enumerate(chunk):
            full = {**row, **{k: python_default(c) for k, c in defaults}} if defaults else row
            for key, name, proc in compiled.binds[i * width : (i + 1) * width]:
                value = full[key]
                bound[name] = value if proc is None else proc(value)
        _run(conn, compiled, bound, later)


def _defaults(table: Table, keys: tuple[str, ...]) -> list[tuple[str, Column[Any]]]:
    """(column key, column) for each column the rows leave to a Python-side default."""
    out: list[tuple[str, Column[Any]]] = []
    for column in table.columns:
        if column.key in keys:
            continue
        if column.server_default is not None:
            raise TypeError(f"{column}: a server default cannot be filled in here")
        if column.default is not None:
            out.append((column.key, column))
    return out


def python_default(column: Column[Any]) -> Any:
    """A fresh value of ``column``'s Python-side default (a scalar, or the callable's result),
    as SQLAlchemy's insert computes it."""
    default = column.default
    if default is not None and default.is_callable:
        return default.arg(None)  # type: ignore[attr-defined]
    if default is not None and default.is_scalar:
        return default.arg  # type: ignore[attr-defined]
    raise TypeError(f"{column}: only Python defaults can be filled in")


_inserts: dict[tuple[str, tuple[str, str], tuple[str, ...], int], _Compiled] = {}


def _insert_for(conn: Connection, table: Table, keys: tuple[str, ...], n: int) -> _Compiled:
    """The ``n``-row INSERT of ``keys`` (and the defaulted columns) into ``table``; its
    parameters are named ``<column>__<row>`` and listed row by row, in column order."""
    cache_key = (table.fullname, _flavour(conn.dialect), keys, n)
    found = _inserts.get(cache_key)
    if found is not None:
        return found
    columns = [c for c in table.columns if c.key in keys or c.default is not None]
    values = [{c.key: bindparam(f"{c.key}__{i}", type_=c.type) for c in columns} for i in range(n)]
    # the list form even for one row: a single-row insert would add ``RETURNING id``
    statement: Insert = insert(table).values(values)
    compiled = statement.compile(dialect=conn.dialect)
    if compiled.positional:
        raise TypeError(f"{conn.dialect.name}: direct execution needs the named paramstyle")
    binds = tuple(
        (c.key, f"{c.key}__{i}", _bind_processor(c.type, conn.dialect))
        for i in range(n)
        for c in columns
    )
    missing = {name for _, name, _ in binds} - set(compiled.binds)
    if missing:  # pragma: no cover - SQLAlchemy renamed a parameter
        raise RuntimeError(f"{table.name}: parameters {sorted(missing)} not in the compiled insert")
    found = _Compiled(compiled.string, binds, ())
    _inserts[cache_key] = found
    return found


def _log(conn: Connection, sql: str, bound: dict[str, Any]) -> None:
    """Log the statement and its parameters where SQLAlchemy logs its own (the engine's
    logger at INFO, ``echo=True``), hiding the parameters if the engine hides them."""
    logger = conn.engine.logger
    if not logger.isEnabledFor(logging.INFO):
        return
    logger.info("%s", sql)
    if conn.engine.hide_parameters:
        logger.info("[direct] [SQL parameters hidden due to hide_parameters=True]")
    else:
        logger.info("[direct] %r", bound)


def _run(
    conn: Connection, compiled: _Compiled, bound: dict[str, Any], later: bool = False
) -> Result:
    dbapi_connection = conn.connection
    cursor = dbapi_connection.cursor()
    _log(conn, compiled.sql, bound)
    queue = getattr(cursor, "execute_later", None) if later else None
    if queue is not None:
        try:
            queue(compiled.sql, bound)
        finally:
            cursor.close()
        return Result([], (), -1)
    try:
        cursor.execute(compiled.sql, bound)
        rows: list[tuple[Any, ...]] = []
        keys: tuple[str, ...] = ()
        if cursor.description is not None:
            keys = tuple(str(d[0]) for d in cursor.description)
            rows = _processed(compiled, cursor.fetchall())
        return Result(rows, keys, cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _error(conn, compiled, bound, exc, cursor) from exc
    finally:
        cursor.close()


def _processed(compiled: _Compiled, fetched: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows as tuples, each value through its result column's processor."""
    procs = compiled.results
    if any(procs):
        return [
            tuple(v if p is None else p(v) for v, p in zip(row, procs, strict=True))
            for row in fetched
        ]
    return [tuple(row) for row in fetched]


def _error(
    conn: Connection, compiled: _Compiled, bound: dict[str, Any], exc: Any, cursor: Any
) -> StatementError:
    """SQLAlchemy's exception for a driver error, as its own execution path would raise it;
    a lost connection is invalidated on the way."""
    dialect = conn.dialect
    dbapi_connection = conn.connection
    gone = dialect.is_disconnect(exc, dbapi_connection, cursor)
    if gone:
        conn.invalidate(exc)
    error: StatementError = DBAPIError.instance(
        compiled.sql,
        bound,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=gone,
        dialect=dialect,
    )
    return error
