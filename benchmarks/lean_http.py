"""A minimal asyncio HTTP/1.1 keep-alive client for one ``http://host:port`` origin.

Why this exists: ``bench_api.py`` is a load generator that runs on the same (2-core) machine
as the server it measures, so every millisecond of CPU it spends per request is taken from the
server under test. A general-purpose client (httpx2, used before) spent ≈ 2–3 ms of generator
CPU per request there, mostly in generality a benchmark does not need (URL and header models,
layered transports, per-phase timeouts). This client does only what the benchmark's hot path
needs, so the generator's CPU stays off the server's cores:

* one origin, plain HTTP/1.1 over TCP, persistent connections (opened lazily, at most
  ``limit``, one request in flight on each, most recently used reused first);
* the request is written as one ``bytes`` (request line, ``Host``, ``Content-Length``, the
  caller's headers, the body) and the answer is parsed from a ``bytearray`` in an
  :class:`asyncio.Protocol` — no stream objects, no per-request task;
* bodies by ``Content-Length``, ``Transfer-Encoding: chunked``, or until the server closes;
  a ``Connection: close`` answer (or a server that closes) drops that connection;
* one deadline per request (waiting for a free connection, connecting, sending and receiving
  all count against it); when it passes :class:`TimeoutError` is raised and the connection
  is dropped (its answer could still arrive, and would be taken for the next request's).

Retrying is deliberately narrow: a request is retried once, on a fresh connection, only when a
*reused* idle connection turns out to have been closed by the server (uvicorn closes idle
keep-alive connections after 5 s) before a single byte of the answer arrived. Anything else —
a fresh connection that fails, an answer cut off midway — raises :class:`LeanHTTPError`, so
the benchmark counts it as an error rather than hiding it.

Not supported, on purpose: TLS, proxies, redirects, cookies, compression (no
``Accept-Encoding`` is sent, so a server does not compress), ``Expect: 100-continue``,
pipelining, HTTP/2.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "LeanClient",
    "LeanConnectionError",
    "LeanHTTPError",
    "LeanProtocolError",
    "LeanResponse",
]

HeadersIn = Mapping[str, str] | Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]]
"""Request headers: a mapping (``str`` or ``bytes`` names and values) or ``(name, value)``
byte pairs. ``Host`` and ``Content-Length`` are added by the client; do not pass them."""

MAX_HEAD = 64 * 1024
"""The most bytes a response's status line and headers may take."""

_CRLF = b"\r\n"
_HEAD_END = b"\r\n\r\n"
_NO_BODY_STATUS = frozenset({204, 304})
_HEX_DIGITS = b"0123456789abcdefABCDEF"

# Parser states of a connection's current answer.
_HEAD = 0
_FIXED = 1
_CHUNK_SIZE = 2
_CHUNK_DATA = 3
_TRAILERS = 4
_UNTIL_CLOSE = 5


class LeanHTTPError(Exception):
    """A request failed without a usable answer (timeouts raise :class:`TimeoutError`)."""


class LeanConnectionError(LeanHTTPError):
    """Connecting failed, or the server closed (or reset) the connection before answering."""

    def __init__(self, message: str, *, answer_started: bool = False) -> None:
        super().__init__(message)
        self.answer_started = answer_started
        """Whether any byte of the answer had arrived when the connection was lost."""


class LeanProtocolError(LeanHTTPError):
    """The server's answer is not HTTP/1.x as this client understands it."""


class LeanResponse:
    """One complete answer: status, headers (lower-cased names), and the whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        """Lower-cased names; repeated headers joined with ``", "``."""
        self.body = body

    @property
    def status_code(self) -> int:
        """Alias of :attr:`status`, as httpx spells it."""
        return self.status

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced): for messages, not parsing."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; :class:`ValueError` when it is not JSON."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<LeanResponse {self.status} ({len(self.body)} bytes)>"


class _Connection(asyncio.Protocol):
    """One TCP connection and the parser of the answer to its one request in flight.

    The answer is parsed as bytes arrive (``data_received``), from a ``bytearray`` with a read
    offset, so the common case — a whole answer in one segment — costs one ``find`` and a few
    slices. The waiting caller is woken through a plain future.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        """False once the connection must not carry another request."""
        self.requests = 0
        """Requests that have been started on this connection."""
        self._buf = bytearray()
        self._pos = 0
        self._waiter: asyncio.Future[LeanResponse] | None = None
        self._head_only = False
        self._started = False
        self._reset_answer()

    def _reset_answer(self) -> None:
        self._state = _HEAD
        self._status = 0
        self._headers: dict[str, str] = {}
        self._keep_alive = True
        self._remaining = 0
        self._chunks: list[bytes] = []

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes with no request waiting (an unsolicited 408 before a close, or the rest of
            # an answer whose request timed out or was cancelled): this connection is spent.
            self.abort()
            return
        self._started = True
        self._buf += data
        try:
            response = self._parse()
        except LeanProtocolError as exc:
            self.abort()
            waiter.set_exception(exc)
            return
        if response is not None:
            if self._pos < len(self._buf):  # bytes after the answer: nothing was asked for them
                self.reusable = False
            del self._buf[: self._pos]
            self._pos = 0
            self._waiter = None
            if not self._keep_alive:
                self.close()
            waiter.set_result(response)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if self._state == _UNTIL_CLOSE and exc is None:  # the close ends this answer's body
            self._chunks.append(bytes(self._buf[self._pos :]))
            waiter.set_result(LeanResponse(self._status, self._headers, b"".join(self._chunks)))
            return
        where = "mid-answer" if self._started else "before an answer"
        reason = f": {exc!r}" if exc is not None else ""
        waiter.set_exception(
            LeanConnectionError(f"connection closed {where}{reason}", answer_started=self._started)
        )

    # -- requests -----------------------------------------------------------------------------

    def send(self, data: bytes, waiter: asyncio.Future[LeanResponse], head_only: bool) -> None:
        """Write one request; ``waiter`` gets its answer (or the failure)."""
        self.requests += 1
        self._started = False
        if self.closed or self.transport is None or self.transport.is_closing():
            waiter.set_exception(LeanConnectionError("connection closed before sending"))
            return
        self._waiter = waiter
        self._head_only = head_only
        self._reset_answer()
        self.transport.write(data)

    def time_out(self, waiter: asyncio.Future[LeanResponse]) -> None:
        """``waiter``'s deadline passed: fail it with :class:`TimeoutError`, drop the line."""
        if waiter.done():  # answered just before the deadline; the caller has not resumed yet
            return
        self._waiter = None
        self.abort()
        waiter.set_exception(TimeoutError("no complete answer before the deadline"))

    def abort(self) -> None:
        """Abort: the connection is in an unknown state (mid-answer, timed out, bad bytes)."""
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()

    def close(self) -> None:
        """Close gracefully (after a complete answer, or when idle)."""
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    # -- parsing ------------------------------------------------------------------------------

    def _parse(self) -> LeanResponse | None:
        """Advance through the buffer; the response once it is complete, else None."""
        buf = self._buf
        while True:
            state = self._state
            if state == _HEAD:
                end = buf.find(_HEAD_END, self._pos)
                if end < 0:
                    if len(buf) - self._pos > MAX_HEAD:
                        raise LeanProtocolError("response head larger than MAX_HEAD")
                    return None
                head = bytes(buf[self._pos : end])
                self._pos = end + 4
                if self._start_body(head):
                    continue
                return self._finish()
            if state == _FIXED:
                end = self._pos + self._remaining
                if len(buf) < end:
                    return None
                self._chunks.append(bytes(buf[self._pos : end]))
                self._pos = end
                return self._finish()
            if state == _CHUNK_SIZE:
                end = buf.find(_CRLF, self._pos)
                if end < 0:
                    if len(buf) - self._pos > 1024:
                        raise LeanProtocolError("chunk size line too long")
                    return None
                size_text = bytes(buf[self._pos : end]).split(b";", 1)[0].strip()
                self._pos = end + 2
                if not size_text or size_text.strip(_HEX_DIGITS):
                    raise LeanProtocolError(f"bad chunk size {size_text[:40]!r}")
                size = int(size_text, 16)
                if size == 0:
                    self._state = _TRAILERS
                else:
                    self._remaining = size
                    self._state = _CHUNK_DATA
                continue
            if state == _CHUNK_DATA:
                end = self._pos + self._remaining
                if len(buf) < end + 2:
                    return None
                if buf[end : end + 2] != _CRLF:
                    raise LeanProtocolError("chunk data not followed by CRLF")
                self._chunks.append(bytes(buf[self._pos : end]))
                self._pos = end + 2
                self._state = _CHUNK_SIZE
                continue
            if state == _TRAILERS:  # trailer fields are read and ignored, up to an empty line
                end = buf.find(_CRLF, self._pos)
                if end < 0:
                    if len(buf) - self._pos > MAX_HEAD:
                        raise LeanProtocolError("chunked trailers larger than MAX_HEAD")
                    return None
                empty = end == self._pos
                self._pos = end + 2
                if empty:
                    return self._finish()
                continue
            # _UNTIL_CLOSE: everything up to the close is the body (see connection_lost).
            return None

    def _start_body(self, head: bytes) -> bool:
        """Parse a status line and headers; set the body state. True: parse on."""
        lines = head.split(_CRLF)
        version, _, rest = lines[0].partition(b" ")
        code, _, _reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise LeanProtocolError(f"bad status line {lines[0][:80]!r}")
        status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):
                raise LeanProtocolError("obsolete header line folding")
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise LeanProtocolError(f"bad header line {line[:80]!r}")
            key = name.decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            old = headers.get(key)
            headers[key] = text if old is None else f"{old}, {text}"
        if 100 <= status < 200:
            if status == 101:
                raise LeanProtocolError("unexpected 101 Switching Protocols")
            self._reset_answer()  # an interim answer (100 Continue, 103): the real one follows
            return True
        connection = headers.get("connection", "").lower()
        if version == b"HTTP/1.1":
            self._keep_alive = "close" not in connection
        else:
            self._keep_alive = "keep-alive" in connection
        self._status = status
        self._headers = headers
        transfer = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if self._head_only or status in _NO_BODY_STATUS:
            self._state = _HEAD  # complete: no body
            return False
        if transfer is not None:
            if transfer.rsplit(",", 1)[-1].strip().lower() != "chunked":
                raise LeanProtocolError(f"unsupported Transfer-Encoding {transfer!r}")
            self._state = _CHUNK_SIZE
            return True
        if length is not None:
            values = {v.strip() for v in length.split(",")}
            size = values.pop() if len(values) == 1 else ""
            if not size.isdigit():
                raise LeanProtocolError(f"bad Content-Length {length!r}")
            self._remaining = int(size)
            self._state = _FIXED
            return True
        self._keep_alive = False
        self._state = _UNTIL_CLOSE
        return True

    def _finish(self) -> LeanResponse:
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        response = LeanResponse(self._status, self._headers, body)
        self._state = _HEAD
        return response


class LeanClient:
    """A pool of at most ``limit`` keep-alive connections to ``base_url`` (``http://h:p``).

    Each request holds a *slot* from start to end: an idle connection, or the right to open a
    new one. So at most ``limit`` requests are in flight and at most ``limit`` connections are
    open; further requests queue (first come, first served) within their own deadline. Use one
    client per event loop; :meth:`close` (or ``async with``) closes its connections.
    """

    def __init__(self, base_url: str, *, limit: int = 64) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.host: str = parts.hostname
        self.port: int = parts.port or 80
        self.limit = limit
        host = f"[{self.host}]" if ":" in self.host else self.host
        authority = host if self.port == 80 else f"{host}:{self.port}"
        self._host_line = b"Host: " + authority.encode("ascii") + _CRLF
        self._idle: list[_Connection] = []
        """Idle connections; the most recently used is at the end and is reused first."""
        self._all: set[_Connection] = set()
        self._slots = 0
        """Slots taken: connections in use or idle, and connections being opened."""
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        """Requests waiting for a slot: handed an idle connection, or None (open a new one)."""
        self._closed = False
        self.connections_opened = 0
        """Connections opened so far (for tests and diagnostics)."""
        self.retries = 0
        """Requests sent again after a reused connection turned out closed."""

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        headers: HeadersIn = (),
        body: bytes = b"",
        timeout: float = 30.0,
    ) -> LeanResponse:
        """Send one request and return the whole answer.

        ``path`` is the request target as sent (``/v1/x?y=1``). Raises :class:`TimeoutError`
        when no complete answer arrives within ``timeout`` seconds (waiting for a free
        connection and connecting included), :class:`LeanHTTPError` on any other failure.
        """
        if self._closed:
            raise LeanHTTPError("client is closed")
        data = self._encode(method, path, headers, body)
        head_only = method == "HEAD"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        conn = await self._acquire(loop, deadline)  # holds a slot from here on
        try:
            if conn is None:
                conn = await self._connect(deadline)
            try:
                response = await self._exchange(loop, conn, data, head_only, deadline)
            except LeanConnectionError as exc:
                # A reused connection the server had closed while it was idle (uvicorn: after
                # its keep-alive timeout), noticed only now. No byte of an answer came, so the
                # server almost surely never took the request (and the benchmark's requests
                # carry an Idempotency-Key anyway): send it again, once, on a fresh
                # connection in the same slot.
                if exc.answer_started or conn.requests < 2:
                    raise
                self._retire(conn)
                conn = None
                self.retries += 1
                conn = await self._connect(deadline)
                response = await self._exchange(loop, conn, data, head_only, deadline)
        except BaseException:  # failed, timed out or cancelled: the connection is spent
            if conn is not None:
                conn.abort()
            self._release(conn)
            raise
        self._release(conn)
        return response

    async def close(self) -> None:
        """Close every connection and refuse new requests; waiting requests fail."""
        self._closed = True
        self._idle = []
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(LeanHTTPError("client closed"))
        await asyncio.sleep(0)  # let the transports close

    # -- internals ----------------------------------------------------------------------------

    def _encode(self, method: str, path: str, headers: HeadersIn, body: bytes) -> bytes:
        """The request's bytes: request line, Host, Content-Length, headers, body."""
        if not path.startswith("/") or " " in path or "\r" in path or "\n" in path:
            raise ValueError(f"bad request target {path!r}")
        parts = [
            method.encode("ascii"),
            b" ",
            path.encode("ascii"),
            b" HTTP/1.1\r\n",
            self._host_line,
            b"Content-Length: %d\r\n" % len(body),
        ]
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            n = name.encode("latin-1") if isinstance(name, str) else name
            v = value.encode("latin-1") if isinstance(value, str) else value
            if b"\r" in v or b"\n" in v or b"\r" in n or b"\n" in n or b":" in n:
                raise ValueError(f"bad header {n!r}")  # no header injection
            parts += (n, b": ", v, _CRLF)
        parts += (_CRLF, body)
        return b"".join(parts)

    async def _acquire(
        self, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> _Connection | None:
        """A slot: an idle connection, or None (open one). Waits while ``limit`` are taken."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.reusable:
                return conn
            self._retire(conn)  # closed by the server while idle
            self._slots -= 1
        if self._slots < self.limit:
            self._slots += 1
            return None
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        handle = loop.call_at(deadline, _expire, waiter)
        try:
            handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # handed a slot, then cancelled: pass it on
            raise
        finally:
            handle.cancel()
        if handed is not None and not handed.reusable:  # closed by the server since hand-over
            self._retire(handed)
            return None
        return handed

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise LeanConnectionError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self.connections_opened += 1
        self._all.add(conn)
        return conn

    @staticmethod
    async def _exchange(
        loop: asyncio.AbstractEventLoop,
        conn: _Connection,
        data: bytes,
        head_only: bool,
        deadline: float,
    ) -> LeanResponse:
        waiter: asyncio.Future[LeanResponse] = loop.create_future()
        conn.send(data, waiter, head_only)
        handle = loop.call_at(deadline, conn.time_out, waiter)
        try:
            return await waiter
        finally:
            handle.cancel()

    def _release(self, conn: _Connection | None) -> None:
        """End of a request: its connection (or, if spent, its bare slot) to a waiter or back."""
        if conn is not None and (not conn.reusable or self._closed):
            self._retire(conn)
            conn = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # skip those that timed out or were cancelled
                waiter.set_result(conn)  # the slot passes on as it is
                return
        if conn is None:
            self._slots -= 1
        else:
            self._idle.append(conn)

    def _retire(self, conn: _Connection) -> None:
        """Close a connection for good (its slot is the caller's business)."""
        conn.close()
        self._all.discard(conn)


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no free connection before the deadline"))
