"""pg8000 with one network round trip per statement, and placeholders converted once.

Why: pg8000 (BSD) is the PostgreSQL driver because psycopg is LGPL, and it is pure Python. Two
of its habits cost the API more than the SQL itself:

* **Three round trips per statement.** Its extended-protocol ``execute_unnamed`` sends Parse
  and waits, then Describe and waits, then Bind + Execute and waits, each followed by Sync;
  ``commit`` and ``rollback`` go the same way, and ``begin`` is one more simple query. On a
  loopback connection each wait is a scheduler hand-off between two processes, and a request
  of the open API runs a few dozen statements. Here Parse, Bind, Describe (portal), Execute and
  Sync go out in one write and the answers are read once — the pipelining the protocol was
  designed for (PostgreSQL docs, "Extended Query") — and ``begin`` rides along with the first
  statement of a transaction.
* **Placeholder rewriting on every call.** ``%s`` → ``$n`` is a character-by-character scan
  in Python of every statement, every time. SQLAlchemy sends the same few statement texts over
  and over, so the rewritten text is kept in a small LRU cache keyed by the text.

Nothing else changes: the same messages reach the server, values are converted by pg8000's own
converters, rows are decoded by its own handlers and errors surface as the same DB-API
exceptions (an error answer makes the server skip to Sync, so the connection stays usable, as
before). COPY and statements without parameters take pg8000's own path.

:func:`connect` makes such a connection; ``store.db`` hands it to SQLAlchemy's ``pg8000``
dialect through the engine's ``do_connect`` event, so the dialect is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pg8000 import legacy
from pg8000.converters import make_params
from pg8000.core import (
    BIND,
    DESCRIBE,
    EXECUTE_MSG,
    NULL_BYTE,
    PARSE,
    PORTAL,
    SYNC_MSG,
    Context,
    H_pack,
    _flush,
    _write,
    i_pack,
)
from pg8000.dbapi import IntegrityError, ProgrammingError, convert_paramstyle
from pg8000.exceptions import DatabaseError, InterfaceError

_BEGIN = "begin transaction"


@lru_cache(maxsize=2048)
def _numbered(operation: str) -> str:
    """``%s`` placeholders as ``$1, $2, …`` (the ``format`` paramstyle SQLAlchemy uses)."""
    statement, _ = convert_paramstyle("format", operation, ())
    return str(statement)


class PipelinedConnection(legacy.Connection):  # type: ignore[misc]
    """A pg8000 connection whose statements take one round trip each (module docstring)."""

    def cursor(self) -> PipelinedCursor:
        return PipelinedCursor(self)

    def execute_unnamed(
        self, statement: str, vals: Sequence[Any] = (), oids: Sequence[int] = (), stream: Any = None
    ) -> Context:
        if stream is not None:
            return super().execute_unnamed(statement, vals=vals, oids=oids, stream=stream)
        return self.execute_pipelined(statement, vals, oids, begin=False)

    def execute_pipelined(
        self, statement: str, vals: Sequence[Any], oids: Sequence[int], *, begin: bool
    ) -> Context:
        """Parse, Bind, Describe, Execute, Sync in one write (after ``begin`` if asked)."""
        opening = Context(_BEGIN) if begin else None
        if begin:
            self.send_QUERY(_BEGIN)
        context = Context(statement)
        encoding = self._client_encoding
        parse = bytearray(NULL_BYTE)  # the unnamed statement
        parse += statement.encode(encoding) + NULL_BYTE
        parse += H_pack(len(oids))
        for oid in oids:
            parse += i_pack(0 if oid == -1 else oid)
        params = make_params(self.py_types, vals)
        bind = bytearray(NULL_BYTE + NULL_BYTE)  # unnamed portal, unnamed statement
        bind += H_pack(0) + H_pack(len(params))  # parameters in text format
        for value in params:
            if value is None:
                bind += i_pack(-1)
            else:
                raw = value.encode(encoding)
                bind += i_pack(len(raw)) + raw
        bind += H_pack(0)  # results in text format
        # No Flush messages in between: the server answers everything at Sync, in one go.
        self._send_message(PARSE, parse)
        self._send_message(BIND, bind)
        self._send_message(DESCRIBE, PORTAL + NULL_BYTE)
        _write(self._sock, EXECUTE_MSG)
        _write(self._sock, SYNC_MSG)
        try:
            _flush(self._sock)
        except AttributeError:
            if self._sock is None:
                raise InterfaceError("connection is closed") from None
            raise
        failure: Exception | None = None
        if opening is not None:
            try:
                self.handle_messages(opening)
            except Exception as exc:  # still read the statement's answers: keep in step
                failure = exc
        try:
            self.handle_messages(context)
        except Exception as exc:
            failure = failure or exc
        if failure is not None:
            raise failure
        return context


class PipelinedCursor(legacy.Cursor):  # type: ignore[misc]
    """pg8000's cursor with cached placeholder conversion and pipelined execution."""

    def execute(self, operation: str, args: Any = (), stream: Any = None) -> PipelinedCursor:
        if stream is not None or not args or self.paramstyle != "format":
            super().execute(operation, args, stream)
            return self
        connection: PipelinedConnection = self._c
        if connection is None:
            raise InterfaceError("Cursor closed")
        begin = not connection._in_transaction and not connection.autocommit
        try:
            self._context = connection.execute_pipelined(
                _numbered(operation), args, self._input_oids, begin=begin
            )
        except DatabaseError as exc:
            raise _dbapi_error(exc) from None
        rows = [] if self._context.rows is None else self._context.rows
        self._row_iter = iter(rows)
        self._input_oids: Sequence[int] = ()
        self.input_types: list[Any] = []
        return self


def _dbapi_error(exc: DatabaseError) -> Exception:
    """The exception class pg8000's legacy cursor raises for a server error (same mapping)."""
    msg = exc.args[0] if exc.args else None
    cls: type[Exception] = ProgrammingError
    if isinstance(msg, dict) and msg.get("C") == "28000":
        cls = InterfaceError
    elif isinstance(msg, dict) and msg.get("C") == "23505":
        cls = IntegrityError
    return cls(msg)


def connect(*args: Any, **kwargs: Any) -> PipelinedConnection:
    """Like ``pg8000.connect``; SQLAlchemy's connect arguments pass through unchanged."""
    return PipelinedConnection(*args, **kwargs)
