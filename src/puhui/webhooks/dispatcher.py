"""The webhook dispatcher: from the outbox to partners' endpoints, at least once.

Two steps, each safe with several dispatchers running at once (API workers, a CLI process):

1. **Fan-out.** Unpublished outbox events that belong to an institution are read in one
   transaction per batch (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two dispatchers take
   different events; on SQLite ``BEGIN IMMEDIATE`` serialises them). Each event becomes one
   delivery row per active endpoint of *the same institution* subscribed to its type, and the
   event is marked published in the same commit. The unique (endpoint, event) constraint and
   ``ON CONFLICT DO NOTHING`` make a repeated fan-out harmless.
2. **Delivery.** Due deliveries are *claimed* in a short transaction that pushes their
   ``next_attempt_at`` out by a lease, so no other dispatcher picks them while the HTTP call
   runs — outside any transaction, because a slow partner must not hold database locks. The
   outcome is written in another short transaction, fenced on the attempt count, so a late
   answer to an expired claim cannot overwrite a newer one. A dispatcher that dies mid-call
   leaves the delivery to be retried when the lease runs out: receivers de-duplicate on
   ``webhook-id`` (the event id), which is what makes at-least-once delivery safe.

Failures are retried on :data:`RETRY_SCHEDULE` (data, not code), with a deterministic jitter
of ±10 % derived from the event, endpoint and attempt — reproducible in tests, yet spread out
so a recovering partner is not hit by every retry in the same second. ``Retry-After`` on a
429 or 503 stretches the wait; 410 Gone disables the endpoint, as the spec recommends.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import logging
import ssl
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, Select, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from puhui import __version__
from puhui.bootstrap import Platform
from puhui.domain.clock import now_utc, require_aware
from puhui.privacy.errors import DecryptionError, InvalidTokenError, PersonalDataErased
from puhui.privacy.vault import Vault
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from puhui.webhooks.endpoints import DeliveryStatus, disable_endpoint, open_secrets, subscribes
from puhui.webhooks.signing import sign

log = logging.getLogger(__name__)

RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
)
"""Wait after the 1st, 2nd, … failed attempt; one more attempt follows the last wait."""

MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.10
REQUEST_TIMEOUT = 5.0
"""Seconds for connecting and for each read; a partner should answer 2xx first, work later."""
CLAIM_LEASE = timedelta(minutes=2)
"""How long a claimed delivery is hidden from other dispatchers; far above the timeout."""
MAX_RETRY_AFTER = RETRY_SCHEDULE[-1]
USER_AGENT = f"puhui-webhooks/{__version__}"
_ERROR_CHARS = 200


def retry_delay(attempts: int, key: str) -> timedelta | None:
    """The wait after ``attempts`` failed attempts, jittered by ``key``; None: give up."""
    if attempts < 1:
        raise ValueError("attempts counts failed attempts, from 1")
    if attempts >= MAX_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE[attempts - 1].total_seconds()
    digest = hashlib.sha256(f"{key}#{attempts}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    return timedelta(seconds=round(base * (1 + JITTER * (2 * unit - 1)), 3))


# -- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResult:
    status: int
    reason: str = ""
    retry_after: float | None = None


class Transport(Protocol):
    """Sends one POST; raises ``OSError`` (or ``http.client.HTTPException``) on failure."""

    def __call__(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> HttpResult: ...


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None  # the HTTP-date form is rare for webhooks; the schedule applies then
    return float(value.strip())


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for the process (loading the CA store per request is slow)."""
    return ssl.create_default_context()


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpResult:
    """The default transport: stdlib ``http.client``, certificate checks on, no redirects.

    Redirects count as failures (the spec: the partner should update its URL instead).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=_tls())
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=body, headers=dict(headers))
        response = conn.getresponse()  # status and headers; the body is never read or kept
        return HttpResult(
            response.status, response.reason, _retry_after(response.getheader("Retry-After"))
        )
    finally:
        conn.close()


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchSummary:
    events_published: int = 0
    deliveries_created: int = 0
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def idle(self) -> bool:
        """Nothing was there to do (a loop may sleep)."""
        return not (self.events_published or self.attempted or self.failed or self.cancelled)

    def __add__(self, other: DispatchSummary) -> DispatchSummary:
        return DispatchSummary(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


# -- fan-out ---------------------------------------------------------------------------------


_EVENTS = m.table(m.Event)


def _locking(session: Session, query: Select[Any], *, of: Any) -> Select[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=of)
    return query  # SQLite: BEGIN IMMEDIATE already holds the database's write lock


def _insert_new_deliveries(session: Session, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    keys = ["endpoint_id", "event_id"]
    if dialect == "postgresql":
        stmt: Any = (
            pg_insert(m.WebhookDelivery).values(rows).on_conflict_do_nothing(index_elements=keys)
        )
    elif dialect == "sqlite":
        stmt = (
            sqlite_insert(m.WebhookDelivery)
            .values(rows)
            .on_conflict_do_nothing(index_elements=keys)
        )
    else:
        raise RuntimeError(f"webhook fan-out supports SQLite and PostgreSQL, not {dialect}")
    return int(cast(CursorResult[Any], session.execute(stmt)).rowcount or 0)


def fan_out(sessions: sessionmaker[Session], *, now: datetime, limit: int = 100) -> DispatchSummary:
    """One batch of outbox events to deliveries; one transaction.

    The events are read as plain rows and marked published with one ``UPDATE … WHERE id IN``:
    under load every API request leaves two or three events here, and loading each as an
    ORM object to flush one UPDATE apiece cost the server process more than the events'
    fan-out itself."""
    with UnitOfWork(sessions, actor="webhooks") as uow:
        s = uow.session
        events = s.execute(
            _locking(
                s,
                select(
                    _EVENTS.c.id,
                    _EVENTS.c.event_id,
                    _EVENTS.c.institution_id,
                    _EVENTS.c.event_type,
                    _EVENTS.c.occurred_at,
                )
                .where(_EVENTS.c.published_at.is_(None), _EVENTS.c.institution_id.is_not(None))
                .order_by(_EVENTS.c.id)
                .limit(limit),
                of=_EVENTS,
            )
        ).all()
        if not events:
            return DispatchSummary()
        endpoints: dict[str, list[m.WebhookEndpoint]] = defaultdict(list)
        for ep in s.scalars(
            select(m.WebhookEndpoint).where(
                m.WebhookEndpoint.institution_id.in_({e.institution_id for e in events}),
                m.WebhookEndpoint.active.is_(True),
            )
        ):
            endpoints[ep.institution_id].append(ep)
        rows: list[dict[str, Any]] = []
        for event in events:
            for ep in endpoints[event.institution_id]:  # this institution's endpoints only
                if subscribes(ep.event_types, event.event_type) and (
                    event.occurred_at >= ep.created_at
                ):
                    rows.append(
                        {
                            "endpoint_id": ep.id,
                            "event_id": event.event_id,
                            "status": DeliveryStatus.PENDING.value,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                    )
        s.execute(
            update(_EVENTS).where(_EVENTS.c.id.in_([e.id for e in events])).values(published_at=now)
        )
        created = _insert_new_deliveries(s, rows)
        uow.commit()
        return DispatchSummary(events_published=len(events), deliveries_created=created)


# -- delivery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    delivery_id: int
    attempts_before: int
    endpoint_id: str
    institution_id: str
    event_id: str
    url: str
    body: bytes
    headers: dict[str, str]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def webhook_body(event: m.Event, institution_code: str) -> bytes:
    """The JSON body partners receive: compact, UTF-8, the same on every attempt.

    ``resource`` names what changed (``application``/``app_…``, ``loan``/``lon_…``): several
    payloads (a cancellation, say) carry no id of their own.
    """
    message = {
        "id": event.event_id,
        "type": event.event_type,
        "timestamp": _iso(event.occurred_at),
        "institution": institution_code,
        "resource": {"type": event.aggregate_type, "id": event.aggregate_id},
        "data": event.payload,
    }
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _unsendable(
    event: m.Event | None, endpoint: m.WebhookEndpoint, keys: list[str] | None
) -> str | None:
    if event is None:
        return "event not found"
    if event.institution_id != endpoint.institution_id:
        return "event of another institution"  # cannot happen by fan-out; never sent anyway
    if keys is None:
        return "signing secret unreadable"
    return None


def _claim(
    sessions: sessionmaker[Session], vault: Vault, *, now: datetime, limit: int
) -> tuple[list[_Attempt], DispatchSummary]:
    with UnitOfWork(sessions, actor="webhooks") as uow:
        s = uow.session
        due = s.scalars(
            _locking(
                s,
                select(m.WebhookDelivery)
                .where(
                    m.WebhookDelivery.status == DeliveryStatus.PENDING.value,
                    m.WebhookDelivery.next_attempt_at <= now,
                )
                .order_by(m.WebhookDelivery.next_attempt_at, m.WebhookDelivery.id)
                .limit(limit),
                of=m.WebhookDelivery,
            )
        ).all()
        if not due:
            return [], DispatchSummary()
        endpoints = {
            e.id: e
            for e in s.scalars(
                select(m.WebhookEndpoint).where(
                    m.WebhookEndpoint.id.in_({d.endpoint_id for d in due})
                )
            )
        }
        events = {
            e.event_id: e
            for e in s.scalars(
                select(m.Event).where(m.Event.event_id.in_({d.event_id for d in due}))
            )
        }
        codes = dict(
            s.execute(
                select(m.Institution.id, m.Institution.code).where(
                    m.Institution.id.in_({e.institution_id for e in endpoints.values()})
                )
            )
            .tuples()
            .all()
        )
        secrets: dict[str, list[str] | None] = {}
        attempts: list[_Attempt] = []
        failed = cancelled = 0
        for d in due:
            ep, event = endpoints[d.endpoint_id], events.get(d.event_id)
            if not ep.active:
                d.status, d.next_attempt_at = DeliveryStatus.CANCELLED.value, None
                d.last_error = "endpoint disabled"
                cancelled += 1
                continue
            if ep.id not in secrets:
                try:
                    secrets[ep.id] = open_secrets(uow, vault, ep).valid_at(now)
                except (PersonalDataErased, DecryptionError, InvalidTokenError, ValueError):
                    log.exception("webhook endpoint %s: signing secret unreadable", ep.id)
                    secrets[ep.id] = None
            keys = secrets[ep.id]
            problem = _unsendable(event, ep, keys)
            if problem is not None or event is None or keys is None:
                log.error("webhook delivery %s not sent: %s", d.id, problem)
                d.status, d.next_attempt_at = DeliveryStatus.FAILED.value, None
                d.last_error = problem
                failed += 1
                continue
            body = webhook_body(event, codes[ep.institution_id])
            headers = sign(body, msg_id=event.event_id, timestamp=int(now.timestamp()), secret=keys)
            headers |= {"content-type": "application/json", "user-agent": USER_AGENT}
            d.next_attempt_at = now + CLAIM_LEASE
            attempts.append(
                _Attempt(
                    d.id,
                    d.attempts,
                    ep.id,
                    ep.institution_id,
                    event.event_id,
                    ep.url,
                    body,
                    headers,
                )
            )
        uow.commit()
        return attempts, DispatchSummary(failed=failed, cancelled=cancelled)


def _short(text: str) -> str:
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _send(attempt: _Attempt, transport: Transport, timeout: float) -> HttpResult | str:
    try:
        return transport(attempt.url, attempt.body, attempt.headers, timeout)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return _short(f"{type(exc).__name__}: {exc}")


def _record(
    sessions: sessionmaker[Session], attempt: _Attempt, outcome: HttpResult | str, now: datetime
) -> str | None:
    """Write one attempt's outcome; the delivery's new status, or None if the claim was stale."""
    attempts = attempt.attempts_before + 1
    values: dict[str, Any] = {"attempts": attempts}
    gone = False
    values["last_status_code"] = outcome.status if isinstance(outcome, HttpResult) else None
    if isinstance(outcome, HttpResult) and 200 <= outcome.status < 300:
        values |= {
            "status": DeliveryStatus.DELIVERED.value,
            "delivered_at": now,
            "next_attempt_at": None,
            "last_error": None,
        }
    elif isinstance(outcome, HttpResult) and outcome.status == 410:
        gone = True
        values |= {
            "status": DeliveryStatus.FAILED.value,
            "next_attempt_at": None,
            "last_error": "HTTP 410 Gone: the endpoint was disabled",
        }
    else:
        error = (
            outcome
            if isinstance(outcome, str)
            else _short(f"HTTP {outcome.status} {outcome.reason}".strip())
        )
        delay = retry_delay(attempts, f"{attempt.event_id}:{attempt.endpoint_id}")
        if delay is None:
            values |= {"status": DeliveryStatus.FAILED.value, "next_attempt_at": None}
        else:
            if isinstance(outcome, HttpResult) and outcome.retry_after is not None:
                wanted = min(timedelta(seconds=outcome.retry_after), MAX_RETRY_AFTER)
                delay = max(delay, wanted)
            values["next_attempt_at"] = now + delay
        values["last_error"] = error
    with UnitOfWork(sessions, actor="webhooks") as uow:
        updated = cast(
            CursorResult[Any],
            uow.session.execute(
                update(m.WebhookDelivery)
                .where(
                    m.WebhookDelivery.id == attempt.delivery_id,
                    m.WebhookDelivery.attempts == attempt.attempts_before,
                    m.WebhookDelivery.status == DeliveryStatus.PENDING.value,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        uow.commit()
    if not updated:
        log.warning("webhook delivery %s: outcome of a stale claim ignored", attempt.delivery_id)
        return None
    if gone:
        disable_endpoint(
            UnitOfWork(sessions, actor="webhooks"),
            institution_id=attempt.institution_id,
            endpoint_id=attempt.endpoint_id,
            reason="the endpoint answered 410 Gone",
        )
    status = str(values.get("status", DeliveryStatus.PENDING.value))
    if status != DeliveryStatus.DELIVERED.value:
        log.info(
            "webhook delivery %s to %s: attempt %d failed (%s), now %s",
            attempt.delivery_id,
            attempt.endpoint_id,
            attempts,
            values["last_error"],
            status,
        )
    return status


def deliver_due(
    sessions: sessionmaker[Session],
    vault: Vault,
    *,
    now: Callable[[], datetime] = now_utc,
    limit: int = 100,
    transport: Transport = http_post,
    timeout: float = REQUEST_TIMEOUT,
    concurrency: int = 8,
) -> DispatchSummary:
    """Attempt up to ``limit`` due deliveries: claim, POST in parallel, record each outcome."""
    attempts, summary = _claim(sessions, vault, now=now(), limit=limit)
    if not attempts:
        return summary
    counts: dict[str, int] = defaultdict(int)
    workers = max(1, min(concurrency, len(attempts)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook") as pool:
        futures = {pool.submit(_send, a, transport, timeout): a for a in attempts}
        for future in as_completed(futures):
            status = _record(sessions, futures[future], future.result(), now())
            counts[status or "stale"] += 1
    return summary + DispatchSummary(
        attempted=len(attempts),
        delivered=counts[DeliveryStatus.DELIVERED.value],
        retrying=counts[DeliveryStatus.PENDING.value],
        failed=counts[DeliveryStatus.FAILED.value],
    )


# -- entry points ----------------------------------------------------------------------------


def dispatch_once(
    platform: Platform,
    *,
    now: datetime | None = None,
    limit: int = 100,
    transport: Transport = http_post,
    timeout: float = REQUEST_TIMEOUT,
    concurrency: int = 8,
) -> DispatchSummary:
    """Fan out one batch of events, then attempt one batch of due deliveries.

    ``now`` fixes the clock (tests drive retries with it); by default the system clock is read
    at each step.
    """
    if not 1 <= limit <= 10_000:
        raise ValueError("limit must be between 1 and 10000")
    fixed = None if now is None else require_aware(now, "now")

    def clock() -> datetime:
        return now_utc() if fixed is None else fixed

    published = fan_out(platform.sessions, now=clock(), limit=limit)
    delivered = deliver_due(
        platform.sessions,
        platform.vault,
        now=clock,
        limit=limit,
        transport=transport,
        timeout=timeout,
        concurrency=concurrency,
    )
    return published + delivered


def run(
    platform: Platform,
    stop: threading.Event,
    interval: float = 1.0,
    *,
    limit: int = 100,
    gather: float = 0.2,
    transport: Transport = http_post,
    on_batch: Callable[[DispatchSummary], None] | None = None,
) -> None:
    """Dispatch until ``stop`` is set: every ``interval`` when idle, ``gather`` when busy.

    A round that filled a batch is followed at once by the next. A round that found some work
    but less than a batch waits ``gather`` seconds first: under steady traffic (each API request
    leaves two or three events) going straight on would run a round — five statements and a
    commit — for every couple of events, about a sixth of the server's and the database's CPU
    per request at 60 requests/s (BENCHMARKS.md, issue 3); waiting a fifth of a second lets one
    round take them all. An error in one round (the database restarting, say) is logged and
    the loop carries on.
    """
    while not stop.is_set():
        summary: DispatchSummary | None = None
        try:
            summary = dispatch_once(platform, limit=limit, transport=transport)
        except Exception:
            log.exception("webhook dispatch round failed; retrying in %.1f s", interval)
        if summary is not None and on_batch is not None and not summary.idle:
            on_batch(summary)
        if summary is None or summary.idle:
            stop.wait(interval)
        elif summary.events_published < limit and summary.attempted < limit:
            stop.wait(gather)
