"""``Idempotency-Key`` on every state-changing ``/v1`` request: retry safely, execute once.

A partner that times out on ``POST /v1/applications`` cannot know whether it was processed;
with an ``Idempotency-Key`` it simply retries, and gets the first response back instead of a
second execution (semantics of Stripe and of the IETF draft "The Idempotency-Key HTTP Header
Field"):

* the key is 1-255 printable ASCII characters, scoped to the partner institution; missing →
  400 ``idempotency.key_required``, malformed → 400 ``idempotency.key_invalid``;
* a record (institution, key, method, path, SHA-256 of the body) is **inserted before the
  handler runs** — normally by the authentication gate, in the same short transaction as the
  nonce and the rate counter (:meth:`IdempotencyStore.claim_statement`), otherwise in a
  transaction of its own; the unique constraint on (institution, key) picks one winner among
  concurrent workers, so fifty identical requests at once execute the handler once;
* the winner's response — status, headers and body, an error response too — is stored when the
  handler returns, *before* it is sent, so a client that saw a response always gets the same one
  again: a later request with the same key and body gets it back with ``Idempotent-Replayed:
  true``;
* same key, different method, path or body → 422 ``idempotency.key_reused``;
* same key while the first is still running → 409 ``idempotency.in_progress`` + ``Retry-After``;
* an unexpected exception (a 500) releases the key: nothing was promised, the retry runs again;
* records expire after ``api_idempotency_ttl_hours`` (24 h) and are purged along the way;
* a record left "in progress" by a worker that died is taken over after a lease
  (``api_idempotency_lease_seconds``, 5 min — longer than any request may take).

Why middleware rather than a wrapper each handler calls: a handler cannot forget it, and the
middleware sees the response exactly as it goes out (after exception handlers rendered domain
errors), which is what must be replayed. It runs after authentication (``api.auth``'s gate),
because the key belongs to the authenticated institution.

Exactly-once across a crash *between* a use case's commit and the storing of its response is
out of reach of any HTTP-level scheme; use cases whose effects matter keep a natural key of their
own too (``external_ref`` on applications, repayments and disbursements).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import ColumnElement, TextClause, bindparam, delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from puhui.api.context import PartnerContext
from puhui.api.limits import ApiProblem, replay_body
from puhui.store import direct
from puhui.store.models import IdempotencyRecord, table
from puhui.store.types import UTCDateTime

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
IN_PROGRESS, COMPLETED = "in_progress", "completed"
PRECLAIM_KEY = "idempotency_claim"
"""Where the authentication gate leaves a claim it made (in the request's ``scope["state"]``)."""
RETRY_AFTER_SECONDS = 1

_KEY = re.compile(r"[\x20-\x7e]+")
_BODY_ENCODING = ":body-encoding"  # not a possible HTTP header name: marks a base64 body
_NOT_STORED = frozenset(
    {
        "content-length",
        "date",
        "server",
        "set-cookie",
        "x-correlation-id",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        REPLAYED_HEADER.lower(),
    }
)
"""Headers that belong to one delivery, not to the outcome being replayed."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def to_response(self) -> Response:
        response = Response(content=self.body, status_code=self.status, headers=self.headers)
        response.headers[REPLAYED_HEADER] = "true"
        return response


@dataclass(frozen=True)
class Claim:
    """This worker won the key and must run the handler, then complete or release."""

    record_id: int
    started_at: datetime


@dataclass(frozen=True)
class ClaimRequest:
    """What a request claims: its key and the fingerprint of method, path and body."""

    key: str
    method: str
    path: str
    request_hash: str


@dataclass(frozen=True)
class IdempotencyScope:
    """Which requests the protocol applies to: ``methods`` under ``prefix``, except ``exempt``."""

    prefix: str = "/v1"
    methods: frozenset[str] = frozenset({"POST", "PATCH"})
    exempt: frozenset[str] = frozenset()

    def applies(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        prefix = self.prefix.rstrip("/")
        return (
            scope["type"] == "http"
            and scope.get("method", "") in self.methods
            and (path == prefix or path.startswith(prefix + "/"))
            and path not in self.exempt
        )

    def claim_request(self, scope: Scope, body: bytes) -> ClaimRequest | None:
        """The claim this request would make, if the protocol applies and its key is
        well-formed; None otherwise (the middleware then gives the refusal, as before)."""
        if not self.applies(scope):
            return None
        try:
            key = parse_key(Headers(scope=scope).getlist(IDEMPOTENCY_HEADER))
        except ApiProblem:
            return None
        return ClaimRequest(key, scope.get("method", ""), request_path(scope), fingerprint(body))


def request_path(scope: Scope) -> str:
    """The path a record is kept under: as sent (``raw_path``), at most 255 characters."""
    raw: bytes = scope.get("raw_path") or str(scope.get("path", "")).encode()
    return raw.decode("latin-1")


def parse_key(values: Iterable[str]) -> str:
    """The request's key; raises the 400 ApiProblem the protocol promises."""
    keys = list(values)
    if not keys:
        raise ApiProblem(
            400,
            "idempotency.key_required",
            "Idempotency-Key required",
            f"send an {IDEMPOTENCY_HEADER} header (1-{MAX_KEY_LENGTH} printable characters, "
            "e.g. a UUID) with every POST",
        )
    key = keys[0]
    if len(keys) > 1 or not (1 <= len(key) <= MAX_KEY_LENGTH) or not _KEY.fullmatch(key):
        raise ApiProblem(
            400,
            "idempotency.key_invalid",
            "Idempotency-Key invalid",
            f"{IDEMPOTENCY_HEADER} must be one value of 1-{MAX_KEY_LENGTH} printable ASCII "
            "characters",
        )
    return key


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class IdempotencyStore:
    """The records in ``idempotency_keys``; every method is one short transaction."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        ttl: timedelta = timedelta(hours=24),
        lease: timedelta = timedelta(minutes=5),
        now: Callable[[], datetime],
        due: Callable[[str], bool] = lambda _task: False,
    ) -> None:
        self._sessions = sessions
        self.ttl = ttl
        self.lease = lease
        self._now = now
        self._due = due

    def begin(
        self, *, institution_id: str, key: str, method: str, path: str, request_hash: str
    ) -> Claim | StoredResponse:
        """Claim ``key`` for this request, or return the stored response to replay.

        Raises ApiProblem 422 ``idempotency.key_reused`` or 409 ``idempotency.in_progress``.
        """
        if self._due("idempotency"):
            self.purge()
        for _ in range(5):  # a loser retries when the record vanished or expired meanwhile
            now = self._now()
            with self._sessions() as session:
                record = IdempotencyRecord(
                    institution_id=institution_id,
                    key=key,
                    method=method,
                    path=path[:255],
                    request_hash=request_hash,
                    state=IN_PROGRESS,
                    created_at=now,
                    expires_at=now + self.ttl,
                )
                session.add(record)
                try:
                    session.commit()
                    return Claim(record.id, now)
                except IntegrityError:
                    session.rollback()
            outcome = self._existing(institution_id, key, method, path, request_hash, now)
            if outcome is not None:
                return outcome
        raise _in_progress()

    def claim_statement(
        self, institution_id: str, request: ClaimRequest
    ) -> tuple[TextClause, dict[str, Any], datetime]:
        """The claim, inside the caller's transaction: its statement, parameters and time, for
        a caller that sends it together with other statements (the caller commits) and reads
        the answer with :func:`claim_from` — None when the key is already recorded, and then
        :meth:`begin` sorts out replay, 409 or 422.

        One ``INSERT … ON CONFLICT DO NOTHING RETURNING id``, so a lost race leaves the
        caller's transaction usable (its nonce and rate count are still committed)."""
        now = self._now()
        row = {
            "institution_id": institution_id,
            "key": request.key,
            "method": request.method,
            "path": request.path[:255],
            "request_hash": request.request_hash,
            "state": IN_PROGRESS,
            "created_at": now,
            "expires_at": now + self.ttl,
        }
        return _CLAIM, row, now

    def unclaim_in(self, session: Session, claim: Claim) -> None:
        """Undo a claim inside the caller's transaction: the request it was made for will not
        run after all (the rate limit refused it)."""
        session.execute(delete(IdempotencyRecord).where(*_held(claim)))

    def _existing(
        self,
        institution_id: str,
        key: str,
        method: str,
        path: str,
        request_hash: str,
        now: datetime,
    ) -> Claim | StoredResponse | None:
        with self._sessions() as session:
            found = session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.institution_id == institution_id,
                    IdempotencyRecord.key == key,
                )
            )
            if found is None:  # released by a failed original: try to insert again
                return None
            if found.expires_at <= now:
                session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.id == found.id, IdempotencyRecord.expires_at <= now
                    )
                )
                session.commit()
                return None
            if (found.method, found.path, found.request_hash) != (method, path[:255], request_hash):
                raise ApiProblem(
                    422,
                    "idempotency.key_reused",
                    "Idempotency-Key reused",
                    f"this {IDEMPOTENCY_HEADER} was used for a different request (method, path "
                    "or body); use a new key for a new request",
                )
            if found.state == COMPLETED:
                return _stored(found)
            if found.created_at > now - self.lease:
                raise _in_progress()
            # The worker that claimed it has been silent past the lease: take over, once.
            taken = session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == found.id,
                    IdempotencyRecord.state == IN_PROGRESS,
                    IdempotencyRecord.created_at == found.created_at,
                )
                .values(created_at=now)
            )
            session.commit()
            if getattr(taken, "rowcount", 0) == 1:
                return Claim(found.id, now)
            raise _in_progress()

    def complete(self, claim: Claim, response: StoredResponse) -> bool:
        """Store the response; False if the claim was lost (taken over after the lease)."""
        body, headers = _encode_body(response)
        with self._sessions() as session:
            result = direct.execute(
                session.connection(),
                _COMPLETE,
                {
                    "record_id": claim.record_id,
                    "started_at": claim.started_at,
                    "status": response.status,
                    "body": body,
                    "headers": headers,
                },
            )
            session.commit()
            return result.rowcount == 1

    def release(self, claim: Claim) -> None:
        """Forget the key after the handler failed unexpectedly: a retry runs afresh."""
        with self._sessions() as session:
            session.execute(delete(IdempotencyRecord).where(*_held(claim)))
            session.commit()

    def purge(self) -> int:
        """Delete expired records; returns how many."""
        with self._sessions() as session:
            result = session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= self._now())
            )
            session.commit()
            return int(getattr(result, "rowcount", 0) or 0)


_KEYS = table(IdempotencyRecord)


_CLAIM = text(
    "INSERT INTO idempotency_keys (institution_id, key, method, path, request_hash, state, "
    "created_at, expires_at) VALUES (:institution_id, :key, :method, :path, :request_hash, "
    ":state, :created_at, :expires_at) ON CONFLICT (institution_id, key) DO NOTHING RETURNING id"
).bindparams(
    bindparam("created_at", type_=UTCDateTime()), bindparam("expires_at", type_=UTCDateTime())
)
"""The claim as text (the same on PostgreSQL and SQLite ≥ 3.35): SQLAlchemy cannot cache a
compiled ``ON CONFLICT`` statement, so the expression form was compiled on every request."""


def claim_from(answer: direct.Result, at: datetime) -> Claim | None:
    """The claim the claim statement's answer made; None when the key was already recorded."""
    record_id = answer.scalar()
    return None if record_id is None else Claim(int(record_id), at)


_COMPLETE = (
    update(_KEYS)
    .where(
        _KEYS.c.id == bindparam("record_id"),
        _KEYS.c.state == IN_PROGRESS,
        _KEYS.c.created_at == bindparam("started_at"),
    )
    .values(
        state=COMPLETED,
        response_status=bindparam("status"),
        response_body=bindparam("body"),
        response_headers=bindparam("headers"),
    )
)
"""Store the response of a held claim (built once; see :meth:`IdempotencyStore.complete`)."""


def _held(claim: Claim) -> tuple[ColumnElement[bool], ...]:
    return (
        IdempotencyRecord.id == claim.record_id,
        IdempotencyRecord.state == IN_PROGRESS,
        IdempotencyRecord.created_at == claim.started_at,
    )


def _in_progress() -> ApiProblem:
    return ApiProblem(
        409,
        "idempotency.in_progress",
        "Request in progress",
        f"a request with this {IDEMPOTENCY_HEADER} is still being processed; retry shortly "
        "to receive its response",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _encode_body(response: StoredResponse) -> tuple[str, dict[str, str]]:
    headers = dict(response.headers)
    try:
        return response.body.decode("utf-8"), headers
    except UnicodeDecodeError:
        headers[_BODY_ENCODING] = "base64"
        return base64.b64encode(response.body).decode("ascii"), headers


def _stored(record: IdempotencyRecord) -> StoredResponse:
    headers = dict(record.response_headers or {})
    text = record.response_body or ""
    if headers.pop(_BODY_ENCODING, None) == "base64":
        body = base64.b64decode(text)
    else:
        body = text.encode("utf-8")
    return StoredResponse(int(record.response_status or 500), headers, body)


# -- middleware -------------------------------------------------------------------------------


class IdempotencyMiddleware:
    """Applies the protocol above to ``methods`` under ``prefix`` (except ``exempt`` paths).

    Must sit inside the authentication gate: it reads the partner from the request state.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: IdempotencyStore,
        scope: IdempotencyScope | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.scope = scope or IdempotencyScope()

    def applies(self, scope: Scope) -> bool:
        return self.scope.applies(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.applies(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        partner = scope.get("state", {}).get("partner")
        if not isinstance(partner, PartnerContext):
            raise RuntimeError("idempotency runs after authentication: install_security(app)")
        body = await request.body()
        preclaimed = scope["state"].pop(PRECLAIM_KEY, None)
        if isinstance(preclaimed, Claim):  # the authentication gate claimed the key already
            await self._run(preclaimed, scope, replay_body(body, receive), send)
            return
        try:
            key = parse_key(request.headers.getlist(IDEMPOTENCY_HEADER))
            outcome = await run_in_threadpool(
                lambda: self.store.begin(
                    institution_id=partner.institution_id,
                    key=key,
                    method=request.method,
                    path=request_path(scope),
                    request_hash=fingerprint(body),
                )
            )
        except ApiProblem as refusal:
            await refusal.response(request)(scope, receive, send)
            return
        if isinstance(outcome, StoredResponse):
            await outcome.to_response()(scope, receive, send)
            return
        await self._run(outcome, scope, replay_body(body, receive), send)

    async def _run(self, claim: Claim, scope: Scope, receive: Receive, send: Send) -> None:
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, receive, capture)
        except Exception:
            stored = _assemble(messages)
            if stored is None:  # no response was produced: nothing to keep, free the key
                await run_in_threadpool(self.store.release, claim)
                raise
            # A full response went out before the failure (a background task): keep it.
            await run_in_threadpool(self.store.complete, claim, stored)
            for message in messages:
                await send(message)
            raise
        stored = _assemble(messages)
        if stored is None:
            await run_in_threadpool(self.store.release, claim)
        else:
            await run_in_threadpool(self.store.complete, claim, stored)
        for message in messages:
            await send(message)


def _assemble(messages: list[Message]) -> StoredResponse | None:
    """The complete response in ``messages``, or None if it never finished."""
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    if start is None or not bodies or bodies[-1].get("more_body", False):
        return None
    headers: dict[str, str] = {}
    for raw_name, raw_value in start.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        if name in _NOT_STORED:
            continue
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    body = b"".join(m.get("body", b"") for m in bodies)
    return StoredResponse(int(start["status"]), headers, body)
