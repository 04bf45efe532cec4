"""Per-client request rate limits, counted in the database so every API worker shares them.

Each partner client may make ``ApiClient.rate_limit_per_minute`` requests per fixed one-minute
window. The count lives in ``rate_counters`` keyed by (client, window start) and is bumped by one
upsert that returns the new count::

    INSERT INTO rate_counters (client_id, window_start, count) VALUES (:c, :w, 1)
    ON CONFLICT (client_id, window_start) DO UPDATE SET count = rate_counters.count + 1
    RETURNING count

— the same statement on PostgreSQL and on SQLite (3.35 or later). It is atomic, so two workers
can never both see the last free slot; a dict in the process could not give that guarantee
once there is more than one worker (DESIGN.md, "Growing past one machine").

Why a fixed window rather than a sliding log or token bucket: one row and one statement per
request, and it is what partners can reason about ("600 a minute"). Its known weakness — up to
twice the limit across a window boundary — is acceptable for a fairness limit; it is not a
security control (authentication and signatures are).

Over the limit the request gets 429 ``rate_limited`` with ``Retry-After`` (seconds until the
window ends). Every authenticated response carries ``RateLimit-Limit``, ``RateLimit-Remaining``
and ``RateLimit-Reset`` (the IETF draft's names), added by :class:`RateLimitHeaders`.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, TextClause, delete, text
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from puhui.api.limits import ApiProblem
from puhui.store import direct
from puhui.store.models import RateCounter

WINDOW_SECONDS = 60
SCOPE_KEY = "puhui.rate_limit_headers"
"""Where a request's rate-limit headers wait for the response (in the ASGI scope)."""

LIMIT_HEADER = "RateLimit-Limit"
REMAINING_HEADER = "RateLimit-Remaining"
RESET_HEADER = "RateLimit-Reset"


@dataclass(frozen=True)
class RateDecision:
    """The outcome of counting one request."""

    limit: int
    count: int
    reset_after: int
    """Seconds until the current window ends (at least 1)."""

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)

    def headers(self) -> dict[str, str]:
        return {
            LIMIT_HEADER: str(self.limit),
            REMAINING_HEADER: str(self.remaining),
            RESET_HEADER: str(self.reset_after),
        }

    def problem(self) -> ApiProblem:
        return ApiProblem(
            429,
            "rate_limited",
            "Too many requests",
            f"this client may make {self.limit} requests per minute; retry in {self.reset_after} s",
            headers={"Retry-After": str(self.reset_after), **self.headers()},
        )


def window_start(now: float) -> int:
    return int(now // WINDOW_SECONDS) * WINDOW_SECONDS


_BUMP = text(
    "INSERT INTO rate_counters (client_id, window_start, count) "
    "VALUES (:client_id, :window_start, 1) "
    "ON CONFLICT (client_id, window_start) DO UPDATE SET count = rate_counters.count + 1 "
    "RETURNING count"
)
"""The upsert above, as text: SQLAlchemy cannot cache a compiled ``ON CONFLICT`` statement,
so the expression form was compiled afresh on every request (≈ 0.3 ms)."""


def consume(session: Session, client_id: str, limit: int, now: float) -> RateDecision:
    """Count one request of ``client_id`` in the current window (within ``session``'s
    transaction; the caller commits)."""
    conn = session.connection()
    statement, params = bump(conn, client_id, now)
    count = direct.execute(conn, statement, params).scalar()
    return decision(int(count), limit, now)


def bump(conn: Connection, client_id: str, now: float) -> tuple[TextClause, dict[str, Any]]:
    """The statement that counts one request of ``client_id`` in the current window and
    answers the new count, with its parameters: for a caller that sends it together with
    other statements (``direct.execute_together``) and passes the count to :func:`decision`."""
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(
            f"SQLite {sqlite3.sqlite_version} lacks UPSERT … RETURNING (needs 3.35 or later)"
        )
    return _BUMP, {"client_id": client_id, "window_start": window_start(now)}


def decision(count: int, limit: int, now: float) -> RateDecision:
    """What a window's count (this request included) means for the request made at ``now``."""
    reset_after = max(1, math.ceil(window_start(now) + WINDOW_SECONDS - now))
    return RateDecision(limit=limit, count=count, reset_after=reset_after)


def purge(session: Session, now: float) -> int:
    """Delete counters of windows that ended more than a window ago; the caller commits."""
    result = session.execute(
        delete(RateCounter).where(RateCounter.window_start < window_start(now) - WINDOW_SECONDS)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def remember_headers(scope: Scope, decision: RateDecision) -> None:
    """Have :class:`RateLimitHeaders` put ``decision``'s headers on this request's response."""
    scope[SCOPE_KEY] = decision.headers()


class RateLimitHeaders:
    """ASGI middleware adding the rate-limit headers recorded during the request to its
    response — any response, including one a handler built itself or an error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            extra = scope.get(SCOPE_KEY)
            if message["type"] == "http.response.start" and extra:
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in extra.items():
                    raw = name.lower().encode("latin-1")
                    if raw not in present:
                        headers.append((raw, value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
