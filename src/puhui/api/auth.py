"""Partner authentication on the open API: short-lived bearer tokens *and* signed requests.

Every ``/v1`` call except the token endpoint carries both, and :func:`authenticate` checks both:

1. **OAuth2 client credentials** (RFC 6749 §4.4). ``POST /v1/oauth/token`` with
   ``grant_type=client_credentials`` and the client id and secret (HTTP Basic or form) returns
   a bearer token valid ``api_token_ttl_seconds`` (15 min). The token is a compact HS256 JWT
   (header ``kid`` = a master key id; claims ``iss``, ``sub`` = client id, ``iat``, ``exp``,
   ``jti``) made with ``hmac`` from the standard library. Its key is derived with HKDF-SHA256
   from a keyring master key (info ``puhui/api-token/v1``); a token names the master key it was
   made under, so after ``puhui keys rotate`` tokens made under the retired key still verify
   while the keyring holds it, and new ones use the active key. Verifying needs no database.
2. **A signature over the request** (like Alipay RSA2 and WeChat Pay v3, with HMAC). Headers
   ``X-Puhui-Timestamp`` (unix seconds), ``X-Puhui-Nonce`` (16-64 of ``A-Za-z0-9_-``) and
   ``X-Puhui-Signature: v1=<base64 HMAC-SHA256>`` keyed by the client secret over::

       METHOD \\n PATH?QUERY \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

   Why both: a bearer token alone is replayable by whoever sees it (a log, a proxy) and says
   nothing about the body; the signature binds method, path, query, body and time to the
   secret, and the nonce makes each signed request usable once. The token keeps the secret off
   the wire on every call but the token request.

Checks, in order, each failure a 401 problem with a stable ``code`` and ``WWW-Authenticate:
Bearer``: bearer token present (``auth.missing_token``), genuine (``auth.invalid_token``) and
unexpired (``auth.token_expired``); signature headers present (``auth.missing_signature``) and
well-formed; timestamp within ±``api_signature_window_seconds`` (300) of the server clock
(``auth.stale_timestamp``); client not revoked (``auth.client_revoked``); signature made with
one of the client's currently valid secrets — two during a rotation overlap — compared in
constant time (``auth.bad_signature``); nonce never seen for this client in the window
(``auth.replayed_nonce``). The nonce check is an ``INSERT`` into ``request_nonces`` whose primary
key (client, nonce) decides between concurrent workers; only requests with a valid signature
reach it, so nobody can burn a partner's nonces. Then the request is counted against the
client's rate limit (``api.ratelimit``) in the same transaction, and a
:class:`~puhui.api.context.PartnerContext` is left on ``request.state.partner``.

The checks run in :class:`PartnerAuthentication`, a gate in front of every ``/v1`` path, so
they come before routing and body parsing; the :func:`authenticate` dependency on the routers
returns the gate's result. :func:`install_security` wires it all into the app.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from puhui.api import client_cache, ratelimit
from puhui.api.client_cache import CachedClient, ClientCache
from puhui.api.context import PartnerContext
from puhui.api.idempotency import (
    PRECLAIM_KEY,
    Claim,
    ClaimRequest,
    IdempotencyMiddleware,
    IdempotencyScope,
    IdempotencyStore,
    claim_from,
)
from puhui.api.limits import (
    DEFAULT_MAX_BODY_BYTES,
    ApiProblem,
    BodySizeLimit,
    install_problem_handler,
    replay_body,
)
from puhui.api.partners import load_client, valid_secrets
from puhui.api.problems import PROBLEM_JSON, PROBLEM_SCHEMA, problem
from puhui.bootstrap import Platform
from puhui.privacy.errors import UnknownKeyError
from puhui.store import direct
from puhui.store.models import ApiClient, RequestNonce, table

TOKEN_PATH = "/v1/oauth/token"
TIMESTAMP_HEADER = "X-Puhui-Timestamp"
NONCE_HEADER = "X-Puhui-Nonce"
SIGNATURE_HEADER = "X-Puhui-Signature"
SIGNATURE_VERSION = "v1"
TOKEN_KDF_INFO = b"puhui/api-token/v1"

DEFAULT_TOKEN_TTL_SECONDS = 900
DEFAULT_SIGNATURE_WINDOW_SECONDS = 300

NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v1=([A-Za-z0-9+/]{43}=)")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_REALM = 'Bearer realm="puhui"'


# -- configuration ----------------------------------------------------------------------------


@dataclass
class ApiSecurity:
    """The protocol layer's settings and clock, one per app (``app.state.api_security``).

    ``clock`` returns unix seconds; tests replace it to move time.
    """

    platform: Platform
    token_ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS
    issuer: str = "puhui"
    window_seconds: int = DEFAULT_SIGNATURE_WINDOW_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    idempotency_ttl: timedelta = timedelta(hours=24)
    idempotency_lease_seconds: int = 300
    housekeeping_seconds: float = 60.0
    clock: Callable[[], float] = time.time
    clients: ClientCache = field(default_factory=ClientCache, repr=False)
    """API clients and their decrypted secrets, kept a few seconds (``api.client_cache``)."""
    idempotency: IdempotencyStore | None = field(default=None, repr=False)
    """Set by :func:`install_security`: the gate claims idempotency keys in its transaction."""
    _last_run: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_platform(cls, platform: Platform) -> ApiSecurity:
        s = platform.settings
        return cls(
            platform=platform,
            token_ttl_seconds=int(getattr(s, "api_token_ttl_seconds", DEFAULT_TOKEN_TTL_SECONDS)),
            issuer=str(getattr(s, "api_token_issuer", "puhui")),
            window_seconds=int(
                getattr(s, "api_signature_window_seconds", DEFAULT_SIGNATURE_WINDOW_SECONDS)
            ),
            max_body_bytes=int(getattr(s, "api_max_body_bytes", DEFAULT_MAX_BODY_BYTES)),
            idempotency_ttl=timedelta(hours=float(getattr(s, "api_idempotency_ttl_hours", 24))),
            idempotency_lease_seconds=int(getattr(s, "api_idempotency_lease_seconds", 300)),
            clients=ClientCache(
                float(getattr(s, "api_client_cache_seconds", client_cache.DEFAULT_TTL_SECONDS))
            ),
        )

    def now(self) -> float:
        return self.clock()

    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def due(self, task: str) -> bool:
        """True at most once per ``housekeeping_seconds`` per task in this process: purges of
        expired nonces, counters and idempotency records ride along on ordinary requests."""
        mark = time.monotonic()
        with self._lock:
            last = self._last_run.get(task)
            if last is not None and mark - last < self.housekeeping_seconds:
                return False
            self._last_run[task] = mark
            return True


def security_of(request: Request) -> ApiSecurity:
    security = getattr(request.app.state, "api_security", None)
    if not isinstance(security, ApiSecurity):
        raise RuntimeError("install_security(app) was not called on this app")
    return security


# -- tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenClaims:
    client_id: str
    issued_at: int
    expires_at: int
    token_id: str
    key_id: str


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def token_signing_key(platform: Platform, key_id: str) -> bytes:
    """The HMAC key for tokens under master key ``key_id`` (HKDF-SHA256, 32 bytes).

    Derived, not the master key itself: the master key wraps data keys with AES-GCM, and a key
    should serve one purpose. Raises ``UnknownKeyError`` for a key the keyring lacks.
    """
    master = platform.keyring.master_key(key_id)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=TOKEN_KDF_INFO).derive(master)


def issue_token(security: ApiSecurity, client_id: str) -> tuple[str, int]:
    """A signed access token for ``client_id`` and its lifetime in seconds."""
    keyring = security.platform.keyring
    if security.due("keyring"):
        keyring.reload_if_changed()  # sign with the newest active key another process made
    kid = keyring.active_master_id
    now = int(security.now())
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    claims = {
        "iss": security.issuer,
        "sub": client_id,
        "iat": now,
        "exp": now + security.token_ttl_seconds,
        "jti": secrets.token_hex(16),
    }
    signing_input = f"{_b64url(_json(header))}.{_b64url(_json(claims))}".encode("ascii")
    mac = hmac.new(token_signing_key(security.platform, kid), signing_input, hashlib.sha256)
    return f"{signing_input.decode('ascii')}.{_b64url(mac.digest())}", security.token_ttl_seconds


def verify_token(security: ApiSecurity, token: str) -> TokenClaims:
    """Check a token's signature, issuer and lifetime; raise a 401 ApiProblem if it fails."""
    parts = token.split(".")
    if len(parts) != 3:
        raise auth_problem("auth.invalid_token", "the bearer token is not a Puhui access token")
    try:
        header = json.loads(_unb64url(parts[0]))
        mac = _unb64url(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise auth_problem("auth.invalid_token", "the bearer token is malformed") from None
    kid = header.get("kid") if isinstance(header, dict) else None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(kid, str):
        raise auth_problem("auth.invalid_token", "the bearer token is not an HS256 Puhui token")
    key = _token_key(security, kid)
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise auth_problem("auth.invalid_token", "the bearer token's signature is not valid")
    try:
        claims = json.loads(_unb64url(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise auth_problem("auth.invalid_token", "the bearer token is malformed") from None
    if not (
        isinstance(claims, dict)
        and claims.get("iss") == security.issuer
        and isinstance(claims.get("sub"), str)
        and all(isinstance(claims.get(k), int) for k in ("iat", "exp"))
        and isinstance(claims.get("jti"), str)
    ):
        raise auth_problem("auth.invalid_token", "the bearer token's claims are not valid")
    now = security.now()
    if claims["exp"] <= now:
        raise auth_problem("auth.token_expired", "the bearer token has expired; request a new one")
    if claims["iat"] > now + security.window_seconds:
        raise auth_problem("auth.invalid_token", "the bearer token was issued in the future")
    return TokenClaims(claims["sub"], claims["iat"], claims["exp"], claims["jti"], kid)


def _token_key(security: ApiSecurity, kid: str) -> bytes:
    try:
        return token_signing_key(security.platform, kid)
    except UnknownKeyError:
        pass
    if security.platform.keyring.reload_if_changed():  # rotated by another process
        try:
            return token_signing_key(security.platform, kid)
        except UnknownKeyError:
            pass
    # Unknown key: compare against a random key so the failure takes the usual path.
    return secrets.token_bytes(32)


# -- request signatures -----------------------------------------------------------------------


def canonical_request(
    method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    """The string a request signature covers: five lines, UTF-8, no trailing newline."""
    return "\n".join(
        (method.upper(), path_with_query, timestamp, nonce, hashlib.sha256(body).hexdigest())
    ).encode("utf-8")


def compute_signature(secret: str, canonical: bytes) -> str:
    """``v1=`` + base64 HMAC-SHA256 of ``canonical`` keyed by the secret's UTF-8 bytes."""
    mac = hmac.new(secret.encode("utf-8"), canonical, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION}={base64.b64encode(mac).decode('ascii')}"


def request_target(request: Request) -> str:
    """PATH?QUERY exactly as the client sent it (percent-encoding untouched)."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    path = raw.decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


# -- errors -----------------------------------------------------------------------------------

_TITLES = {
    "auth.missing_token": "Bearer token required",
    "auth.invalid_token": "Invalid bearer token",
    "auth.token_expired": "Bearer token expired",
    "auth.missing_signature": "Request signature required",
    "auth.bad_signature": "Request signature does not match",
    "auth.stale_timestamp": "Request timestamp outside the allowed window",
    "auth.replayed_nonce": "Nonce already used",
    "auth.client_revoked": "Client revoked",
}


def auth_problem(code: str, detail: str) -> ApiProblem:
    challenge = _REALM if code == "auth.missing_token" else f'{_REALM}, error="invalid_token"'
    return ApiProblem(401, code, _TITLES[code], detail, headers={"WWW-Authenticate": challenge})


# -- the dependency ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _SignedRequest:
    client_id: str
    timestamp: int
    nonce: str
    signature: str
    canonical: bytes = field(repr=False)


async def authenticate(request: Request) -> PartnerContext:
    """Verify token and signature, count the request, set ``request.state.partner``.

    A FastAPI dependency: put it on every ``/v1`` router,
    ``APIRouter(dependencies=[Depends(authenticate)])``. The :class:`PartnerAuthentication`
    gate installed by :func:`install_security` has already run it for every ``/v1`` path, so
    here it normally returns the gate's result; it checks afresh only where the gate did not
    run (a route outside ``/v1``). A request is never checked twice: the nonce would refuse it.
    """
    known = getattr(request.state, "partner", None)
    if isinstance(known, PartnerContext):
        return known
    return await _authenticate(request, None)


async def _authenticate(request: Request, claim: ClaimRequest | None) -> PartnerContext:
    security = security_of(request)
    claims = verify_token(security, _bearer_token(request))
    timestamp, nonce, signature = _signature_headers(request)
    now = int(security.now())
    if abs(now - timestamp) > security.window_seconds:
        raise auth_problem(
            "auth.stale_timestamp",
            f"{TIMESTAMP_HEADER} must be within {security.window_seconds} s of the server "
            f"clock (server time {now})",
        )
    canonical = canonical_request(
        request.method, request_target(request), str(timestamp), nonce, await request.body()
    )
    signed = _SignedRequest(claims.client_id, timestamp, nonce, signature, canonical)
    partner, decision, claimed = await run_in_threadpool(_check_signed, security, signed, claim)
    ratelimit.remember_headers(request.scope, decision)
    if not decision.allowed:
        raise decision.problem()
    request.state.partner = partner
    if claimed is not None:
        request.scope.setdefault("state", {})[PRECLAIM_KEY] = claimed
    return partner


def _bearer_token(request: Request) -> str:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise auth_problem(
            "auth.missing_token",
            f"send Authorization: Bearer <token>; get a token from POST {TOKEN_PATH}",
        )
    return token


def _signature_headers(request: Request) -> tuple[int, str, str]:
    values = {h: request.headers.get(h) for h in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)}
    missing = [h for h, v in values.items() if not v]
    if missing:
        raise auth_problem(
            "auth.missing_signature",
            f"every /v1 request must be signed; missing {', '.join(missing)}",
        )
    ts, nonce, sig = (str(values[h]).strip() for h in values)
    if not _TIMESTAMP.fullmatch(ts):
        raise auth_problem("auth.bad_signature", f"{TIMESTAMP_HEADER} must be unix seconds")
    if not NONCE_PATTERN.fullmatch(nonce):
        raise auth_problem(
            "auth.bad_signature", f"{NONCE_HEADER} must be 16-64 characters of A-Z a-z 0-9 - _"
        )
    if not _SIGNATURE.fullmatch(sig):
        raise auth_problem(
            "auth.bad_signature", f"{SIGNATURE_HEADER} must be v1=<base64 HMAC-SHA256>"
        )
    return int(ts), nonce, sig


def _check_signed(
    security: ApiSecurity, signed: _SignedRequest, claim: ClaimRequest | None = None
) -> tuple[PartnerContext, ratelimit.RateDecision, Claim | None]:
    """The database part, in one short transaction: nonce, rate counter and — for a request
    the idempotency middleware will handle — its idempotency claim.

    The client and its secrets come from the in-process cache (``api.client_cache``) when it
    holds them, so a request normally reads nothing here and writes three rows, sent together
    (one round trip on PostgreSQL). A claim made for a request the rate limit then refuses is
    undone in the same transaction, so only an allowed request holds its key; when the key is
    already taken nothing is claimed and the middleware takes its usual path (replay, 409 or
    422) in transactions of its own.
    """
    client = _client(security, signed.client_id)
    if client.revoked:
        raise auth_problem("auth.client_revoked", "this API client has been revoked")
    matched = False
    for secret in client.valid_secrets(security.now_utc()):
        # every candidate, so timing does not say which matched
        expected = compute_signature(secret, signed.canonical).encode("ascii")
        matched |= hmac.compare_digest(expected, signed.signature.encode("ascii"))
    if not matched:
        raise auth_problem(
            "auth.bad_signature",
            "the signature does not match the request; sign METHOD, PATH?QUERY, "
            "TIMESTAMP, NONCE and hex SHA-256 of the exact body bytes",
        )
    now = security.now()
    claimed: Claim | None = None
    store = security.idempotency if claim is not None else None
    with security.platform.sessions() as session:
        conn = session.connection()
        seen_at = datetime.fromtimestamp(signed.timestamp, UTC)
        statements = [
            (
                _INSERT_NONCE,
                {"client_id": client.client_id, "nonce": signed.nonce, "seen_at": seen_at},
            ),
            ratelimit.bump(conn, client.client_id, now),
        ]
        if store is not None and claim is not None:
            claim_statement, claim_params, claim_at = store.claim_statement(
                client.institution_id, claim
            )
            statements.append((claim_statement, claim_params))
        try:
            # one round trip on PostgreSQL: a replayed nonce fails the first statement, and
            # the transaction with it
            answers = direct.execute_together(conn, statements)
        except IntegrityError as exc:
            if direct.failed_statement(exc) != 0:
                raise
            raise auth_problem(
                "auth.replayed_nonce", "this nonce was already used; sign each request afresh"
            ) from None
        decision = ratelimit.decision(int(answers[1].scalar()), client.rate_limit_per_minute, now)
        if store is not None:
            claimed = claim_from(answers[2], claim_at)
            if claimed is not None and not decision.allowed:  # a refused request holds no key
                store.unclaim_in(session, claimed)
                claimed = None
        session.commit()
    partner = PartnerContext(client.institution_id, client.institution_code, client.client_id)
    _housekeeping(security, now)
    return partner, decision, claimed


_NONCES = table(RequestNonce)
_INSERT_NONCE = insert(_NONCES).values(
    {c.key: bindparam(c.key, type_=c.type) for c in _NONCES.columns}
)


def _client(security: ApiSecurity, client_id: str) -> CachedClient:
    """The client from the cache, or from the database (then cached); 401 if unknown."""
    cached = security.clients.get(client_id)
    if cached is not None:
        return cached
    generation = client_cache.generation()
    with security.platform.sessions() as session:
        loaded = load_client(session, security.platform.vault, client_id, security.now_utc())
    if loaded is None:
        raise auth_problem("auth.invalid_token", "the token names an unknown client")
    security.clients.put(loaded, generation=generation)
    return loaded


def _housekeeping(security: ApiSecurity, now: float) -> None:
    """Purge nonces that can no longer be replayed (their timestamp is outside the window,
    so the timestamp check refuses them first) and finished rate windows."""
    if security.due("nonces"):
        cutoff = datetime.fromtimestamp(now - security.window_seconds - 1, UTC)
        with security.platform.sessions() as session:
            session.execute(delete(RequestNonce).where(RequestNonce.seen_at < cutoff))
            session.commit()
    if security.due("rate_counters"):
        with security.platform.sessions() as session:
            ratelimit.purge(session, now)
            session.commit()
    if security.idempotency is not None and security.due("idempotency"):
        security.idempotency.purge()


# -- the token endpoint -----------------------------------------------------------------------


async def token_endpoint(request: Request) -> JSONResponse:
    """OAuth2 token endpoint, client-credentials grant only (RFC 6749 §4.4, errors §5.2)."""
    security = security_of(request)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return _oauth_error(
            request, 400, "invalid_request", "send the form as application/x-www-form-urlencoded"
        )
    try:
        pairs = parse_qsl(
            (await request.body()).decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=16,
        )
    except (UnicodeDecodeError, ValueError):
        return _oauth_error(request, 400, "invalid_request", "the form cannot be parsed")
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            return _oauth_error(request, 400, "invalid_request", f"parameter {name} repeated")
        form[name] = value
    grant_type = form.get("grant_type")
    if not grant_type:
        return _oauth_error(request, 400, "invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        return _oauth_error(
            request, 400, "unsupported_grant_type", "only client_credentials is supported"
        )
    basic = _basic_credentials(request)
    in_form = "client_id" in form or "client_secret" in form
    if basic is not None and in_form:
        return _oauth_error(
            request, 400, "invalid_request", "use HTTP Basic or the form for credentials, not both"
        )
    client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    if not client_id or not client_secret:
        return _oauth_error(
            request, 401, "invalid_client", "client authentication failed", basic=basic is not None
        )
    outcome = await run_in_threadpool(_check_client_secret, security, client_id, client_secret)
    if outcome is None:
        return _oauth_error(
            request, 401, "invalid_client", "client authentication failed", basic=basic is not None
        )
    ratelimit.remember_headers(request.scope, outcome)
    if not outcome.allowed:
        return outcome.problem().response(request)
    token, ttl = issue_token(security, client_id)
    return JSONResponse(
        {"access_token": token, "token_type": "Bearer", "expires_in": ttl},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    user, sep, password = decoded.partition(":")
    if not sep:
        return ("", "")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))


def _check_client_secret(
    security: ApiSecurity, client_id: str, client_secret: str
) -> ratelimit.RateDecision | None:
    platform = security.platform
    with platform.sessions() as session:
        row = session.execute(
            select(ApiClient).where(ApiClient.client_id == client_id)
        ).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        matched = False
        presented = client_secret.encode("utf-8")
        for secret in valid_secrets(session, platform.vault, row, security.now_utc()):
            matched |= hmac.compare_digest(secret.encode("utf-8"), presented)
        if not matched:
            return None
        decision = ratelimit.consume(
            session, row.client_id, row.rate_limit_per_minute, security.now()
        )
        session.commit()
        return decision


_OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    **PROBLEM_SCHEMA,
    "required": [*PROBLEM_SCHEMA["required"], "error", "error_description"],
    "properties": {
        **PROBLEM_SCHEMA["properties"],
        "error": {"type": "string"},
        "error_description": {"type": "string"},
    },
}


def _oauth_error(
    request: Request, status: int, error: str, description: str, *, basic: bool = False
) -> JSONResponse:
    """RFC 6749 §5.2 error body (``error``, ``error_description``), with the problem-details
    members too; served as ``application/json`` as OAuth clients expect."""
    response = problem(
        status,
        f"oauth.{error}",
        "Token request refused",
        description,
        request,
        error=error,
        error_description=description,
    )
    response.headers["content-type"] = "application/json"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    if status == 401:
        response.headers["WWW-Authenticate"] = (
            'Basic realm="puhui"' if basic else 'Bearer realm="puhui"'
        )
    return response


class PartnerAuthentication:
    """ASGI gate: authenticate every request under ``/v1`` except the token endpoint.

    Why a gate as well as the dependency: it runs before routing and body parsing, so an
    unauthenticated caller gets 401 rather than a 404 that maps the API or a 422 that parses
    its JSON, and a router that forgot the dependency is still protected.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str = "/v1",
        exempt: tuple[str, ...] = (),
        idempotent: IdempotencyScope | None = None,
    ):
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.exempt = frozenset((TOKEN_PATH, *exempt))
        self.idempotent = idempotent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not (path == self.prefix or path.startswith(self.prefix + "/"))
            or path in self.exempt
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        claim = None
        if self.idempotent is not None:
            claim = self.idempotent.claim_request(scope, await request.body())
        try:
            await _authenticate(request, claim)
        except ApiProblem as refusal:
            await refusal.response(request)(scope, receive, send)
            return
        await self.app(scope, replay_body(await request.body(), receive), send)


# -- installation -----------------------------------------------------------------------------


def install_security(app: FastAPI) -> ApiSecurity:
    """Add the protocol layer to an app made by ``create_app``. Idempotent.

    Middleware, outermost first: body cap (413), rate-limit headers, the authentication gate
    for ``/v1`` (401, 429), idempotency of ``/v1`` POST and PATCH (400, 409, 422, replay);
    then the ApiProblem renderer and ``POST /v1/oauth/token``. Call it before the
    correlation-id middleware is added, so that refusals carry ``X-Correlation-ID`` too.
    """
    existing = getattr(app.state, "api_security", None)
    if isinstance(existing, ApiSecurity):
        return existing
    security = ApiSecurity.from_platform(platform_of_app(app))
    app.state.api_security = security
    install_problem_handler(app)
    store = IdempotencyStore(
        security.platform.sessions,
        ttl=security.idempotency_ttl,
        lease=timedelta(seconds=security.idempotency_lease_seconds),
        now=security.now_utc,
        due=security.due,
    )
    security.idempotency = store
    idempotent = IdempotencyScope(exempt=frozenset({TOKEN_PATH}))
    # add_middleware puts each one outside those added before it.
    app.add_middleware(IdempotencyMiddleware, store=store, scope=idempotent)
    app.add_middleware(PartnerAuthentication, idempotent=idempotent)
    app.add_middleware(ratelimit.RateLimitHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=security.max_body_bytes)
    app.add_api_route(
        TOKEN_PATH,
        token_endpoint,
        methods=["POST"],
        tags=["authentication"],
        summary="Get an access token (OAuth2 client credentials)",
        response_model=None,
        responses={
            400: {
                "description": "invalid_request or unsupported_grant_type (RFC 6749 §5.2)",
                "content": {"application/json": {"schema": _OAUTH_ERROR_SCHEMA}},
            },
            401: {
                "description": "invalid_client (RFC 6749 §5.2)",
                "content": {"application/json": {"schema": _OAUTH_ERROR_SCHEMA}},
            },
            413: {
                "description": "request_too_large",
                "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
            },
            429: {
                "description": "rate_limited",
                "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
            },
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["grant_type"],
                            "properties": {
                                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string", "format": "password"},
                            },
                        }
                    }
                },
            }
        },
    )
    return security


def platform_of_app(app: FastAPI) -> Platform:
    platform = getattr(app.state, "platform", None)
    if not isinstance(platform, Platform):
        raise RuntimeError("app.state.platform is not set: build the app with create_app()")
    return platform
