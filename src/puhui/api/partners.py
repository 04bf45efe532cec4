"""Partner API credentials: create a client, rotate its secret, revoke it.

A partner institution calls the open API as an OAuth2 client: a public ``client_id``
(``pk_…``) and a 256-bit ``client_secret`` (``sk_…``). The secret signs every request (HMAC),
so the platform needs it back in the clear to verify — a one-way hash, as for passwords, would
not do. It is therefore stored the way personal data is: sealed by the vault under a data key
of the client's own (AES-256-GCM, ``api_secrets.secret_enc``), never in the clear, never in an
event or a log. The secret is returned once, at creation or rotation; nobody can read it back
later, so a lost secret is replaced by rotating.

Rotation keeps the old secret valid until ``now + overlap`` (``api_secrets.expires_at``) so a
partner can roll its servers over without an outage; revocation stops the client at once.
API servers keep clients and decrypted secrets a few seconds in memory (``api.client_cache``):
a change made here empties that cache in this process at once, and reaches other processes
within its lifetime.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from puhui.api.client_cache import CachedClient, credentials_changed
from puhui.domain.errors import ErrorCollector, ValidationError
from puhui.origination.institutions import register_institution
from puhui.privacy.personal_data import new_subject_key, seal, wrapped_key
from puhui.privacy.vault import Vault, WrappedDataKey
from puhui.store.models import ApiClient, ApiSecret, DataKey, Institution
from puhui.store.unit_of_work import UnitOfWork

CLIENT_ID_PREFIX = "pk_"
SECRET_PREFIX = "sk_"
SECRET_BYTES = 32
"""256 bits of entropy: no guessing, and a full-strength HMAC-SHA256 key."""

MAX_RATE_LIMIT = 100_000
MAX_OVERLAP = timedelta(days=30)

_CLIENT_ID = re.compile(r"pk_[0-9a-f]{32}")
_SECRET_TABLE, _SECRET_FIELD = "api_secrets", "secret"


@dataclass(frozen=True)
class PartnerCredentials:
    """What a partner needs to call the API. ``client_secret`` is shown once: store it now."""

    client_id: str
    client_secret: str
    institution_code: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return (
            f"PartnerCredentials(client_id={self.client_id!r}, client_secret='***', "
            f"institution_code={self.institution_code!r})"
        )


@dataclass(frozen=True)
class PartnerInfo:
    """A client as operators see it; never the secret."""

    client_id: str
    institution_code: str
    name: str
    rate_limit_per_minute: int
    created_at: datetime
    revoked_at: datetime | None
    valid_secrets: int


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_hex(16)


def new_secret() -> str:
    raw = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=")
    return SECRET_PREFIX + raw.decode("ascii")


def create_partner(
    uow: UnitOfWork,
    vault: Vault,
    *,
    name: str,
    code: str | None = None,
    institution_type: str = "bank",
    rate_limit_per_minute: int = 600,
) -> PartnerCredentials:
    """Register the institution (or reuse it, same details) and give it a new API client.

    Two transactions: ``register_institution`` commits its own (it is idempotent, so running
    this again with the same code and details is safe), then the client and its first secret
    are written together with their event.
    """
    errors = ErrorCollector()
    _check_rate_limit(errors, rate_limit_per_minute)
    errors.raise_if_any()
    institution = register_institution(
        uow,
        code=code if code is not None else f"P{secrets.token_hex(4).upper()}",
        name=name,
        institution_type=institution_type,
    )
    secret = new_secret()
    with uow:
        key = new_subject_key(uow, vault)
        client = ApiClient(
            client_id=new_client_id(),
            institution_id=institution.id,
            name=institution.name,
            data_key_id=key.key_id,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        uow.session.add(client)
        uow.flush()
        uow.session.add(
            ApiSecret(
                client_pk=client.id,
                secret_enc=seal(vault, key, _SECRET_TABLE, _SECRET_FIELD, secret),
            )
        )
        uow.record_event(
            aggregate_type="api_client",
            aggregate_id=client.id,
            event_type="api_client.created",
            institution_id=institution.id,
            payload={
                "client_id": client.client_id,
                "institution_code": institution.code,
                "rate_limit_per_minute": rate_limit_per_minute,
            },
        )
        uow.commit()
        credentials_changed()
        return PartnerCredentials(client.client_id, secret, institution.code)


def rotate_secret(
    uow: UnitOfWork,
    vault: Vault,
    *,
    client_id: str,
    overlap: timedelta,
    now: datetime | None = None,
) -> str:
    """Issue a new secret; every secret valid now stays valid until ``now + overlap``.

    ``overlap`` may be zero (the old secret stops at once, e.g. after a leak) and at most 30
    days. Returns the new secret — the only time it is shown.
    """
    now = now or datetime.now(UTC)
    errors = ErrorCollector()
    if not isinstance(overlap, timedelta) or not timedelta(0) <= overlap <= MAX_OVERLAP:
        errors.add("overlap", "partner.overlap", "overlap must be between 0 and 30 days")
    _check_client_id(errors, client_id)
    errors.raise_if_any()
    secret = new_secret()
    with uow:
        client = _client_for_update(uow.session, client_id)
        if client.revoked_at is not None:
            raise ValidationError.single(
                "client_id", "partner.revoked", f"client {client_id} is revoked"
            )
        until = now + overlap
        for old in _valid_secret_rows(uow.session, client, now):
            old.expires_at = until if old.expires_at is None else min(old.expires_at, until)
        key = wrapped_key(uow.data_keys.get(client.data_key_id))
        if key is None:  # cannot happen unless someone shredded a client's key by hand
            raise ValidationError.single(
                "client_id", "partner.key_missing", f"client {client_id} has no data key"
            )
        row = ApiSecret(
            client_pk=client.id, secret_enc=seal(vault, key, _SECRET_TABLE, _SECRET_FIELD, secret)
        )
        uow.session.add(row)
        uow.flush()
        uow.record_event(
            aggregate_type="api_client",
            aggregate_id=client.id,
            event_type="api_client.secret_rotated",
            institution_id=client.institution_id,
            payload={
                "client_id": client.client_id,
                "secret_id": row.id,
                "previous_valid_until": until.isoformat(),
            },
        )
        uow.commit()
    credentials_changed()
    return secret


def revoke(uow: UnitOfWork, *, client_id: str, now: datetime | None = None) -> None:
    """Stop a client at once: every request and token request fails from now on.

    Revoking a revoked client changes nothing (and records nothing).
    """
    now = now or datetime.now(UTC)
    errors = ErrorCollector()
    _check_client_id(errors, client_id)
    errors.raise_if_any()
    with uow:
        client = _client_for_update(uow.session, client_id)
        if client.revoked_at is not None:
            return
        client.revoked_at = now
        for old in _valid_secret_rows(uow.session, client, now):
            old.expires_at = now
        uow.record_event(
            aggregate_type="api_client",
            aggregate_id=client.id,
            event_type="api_client.revoked",
            institution_id=client.institution_id,
            payload={"client_id": client.client_id},
        )
        uow.commit()
    credentials_changed()


def list_partners(uow: UnitOfWork, *, now: datetime | None = None) -> list[PartnerInfo]:
    """Every API client with its institution and number of currently valid secrets."""
    now = now or datetime.now(UTC)
    valid = (
        select(func.count())
        .where(
            ApiSecret.client_pk == ApiClient.id,
            or_(ApiSecret.expires_at.is_(None), ApiSecret.expires_at > now),
        )
        .correlate(ApiClient)
        .scalar_subquery()
    )
    with uow:
        rows = uow.session.execute(
            select(ApiClient, Institution.code, valid)
            .join(Institution, Institution.id == ApiClient.institution_id)
            .order_by(Institution.code, ApiClient.created_at)
        ).all()
        return [
            PartnerInfo(
                client_id=c.client_id,
                institution_code=code,
                name=c.name,
                rate_limit_per_minute=c.rate_limit_per_minute,
                created_at=c.created_at,
                revoked_at=c.revoked_at,
                valid_secrets=int(n or 0),
            )
            for c, code, n in rows
        ]


def valid_secrets(session: Session, vault: Vault, client: ApiClient, at: datetime) -> list[str]:
    """The client's secrets valid at ``at``, decrypted: what a signature may be made with."""
    rows = _valid_secret_rows(session, client, at)
    if not rows:
        return []
    key = wrapped_key(session.get(DataKey, client.data_key_id))
    if key is None:
        return []
    return [vault.decrypt(key, row.secret_enc, f"{_SECRET_TABLE}.{_SECRET_FIELD}") for row in rows]


def load_client(
    session: Session, vault: Vault, client_id: str, at: datetime
) -> CachedClient | None:
    """The client as authentication sees it, with every secret unexpired at ``at`` decrypted
    (each with its expiry); None for an unknown client. Two queries."""
    row = session.execute(
        select(ApiClient, Institution.code)
        .join(Institution, Institution.id == ApiClient.institution_id)
        .where(ApiClient.client_id == client_id)
    ).first()
    if row is None:
        return None
    client, code = row
    secrets_: list[tuple[str, datetime | None]] = []
    if client.revoked_at is None:
        rows = session.execute(
            select(
                ApiSecret.secret_enc, ApiSecret.expires_at, DataKey.master_key_id, DataKey.wrapped
            )
            .join(DataKey, DataKey.id == client.data_key_id)
            .where(
                ApiSecret.client_pk == client.id,
                or_(ApiSecret.expires_at.is_(None), ApiSecret.expires_at > at),
            )
            .order_by(ApiSecret.created_at)
        ).all()
        context = f"{_SECRET_TABLE}.{_SECRET_FIELD}"
        for secret_enc, expires_at, master_key_id, wrapped in rows:
            if wrapped is None or master_key_id is None:
                continue  # the client's key was shredded: nothing can be decrypted
            key = WrappedDataKey(client.data_key_id, master_key_id, wrapped)
            secrets_.append((vault.decrypt(key, secret_enc, context), expires_at))
    return CachedClient(
        client_id=client.client_id,
        institution_id=client.institution_id,
        institution_code=code,
        rate_limit_per_minute=client.rate_limit_per_minute,
        revoked=client.revoked_at is not None,
        secrets=tuple(secrets_),
    )


# -- helpers --------------------------------------------------------------------------------


def _valid_secret_rows(session: Session, client: ApiClient, at: datetime) -> Sequence[ApiSecret]:
    return session.scalars(
        select(ApiSecret)
        .where(
            ApiSecret.client_pk == client.id,
            or_(ApiSecret.expires_at.is_(None), ApiSecret.expires_at > at),
        )
        .order_by(ApiSecret.created_at)
    ).all()


def _client_for_update(session: Session, client_id: str) -> ApiClient:
    # The row lock serialises concurrent rotations and revocations on PostgreSQL; SQLite's
    # BEGIN IMMEDIATE already does.
    client = session.scalar(
        select(ApiClient).where(ApiClient.client_id == client_id).with_for_update()
    )
    if client is None:
        raise ValidationError.single(
            "client_id", "partner.unknown_client", f"no API client {client_id}"
        )
    return client


def _check_client_id(errors: ErrorCollector, client_id: str) -> None:
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        errors.add("client_id", "partner.client_id", "client id must look like pk_<32 hex>")


def _check_rate_limit(errors: ErrorCollector, limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RATE_LIMIT:
        errors.add(
            "rate_limit_per_minute",
            "partner.rate_limit",
            f"rate limit must be a whole number of requests per minute, 1-{MAX_RATE_LIMIT}",
        )
