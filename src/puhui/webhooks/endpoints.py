"""Use cases for partners' webhook endpoints, and the catalogue of events they can receive.

Each use case opens one unit of work and is scoped to one institution: an endpoint id of
another institution is reported as not found (never "forbidden", which would confirm that it
exists). Input is validated before anything is written, with every field error at once.

Signing secrets are sealed like personal data — one vault data key per endpoint, so rotating
the master key re-wraps them and erasing the key makes the secret unreadable. The sealed value
holds the current secret and, for an overlap after a rotation, the previous one: while both are
valid the dispatcher signs with both, so a partner can switch its receivers without losing a
delivery (the Standard Webhooks rotation scheme).

The catalogue is the contract with partners: only its event types are ever delivered, even to
a ``"*"`` subscription, so internal events (data-subject requests, key operations) never leave.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, Select, func, select, update

from puhui.domain.clock import now_utc, require_aware
from puhui.domain.errors import ErrorCollector, FieldError, ValidationError
from puhui.privacy.personal_data import new_subject_key, seal, wrapped_key
from puhui.privacy.vault import Vault
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from puhui.webhooks.signing import generate_secret

# -- the catalogue ---------------------------------------------------------------------------

EVENT_CATALOGUE: Mapping[str, str] = {
    # origination (emitted by puhui.origination)
    "application.submitted": "An application was received; it is in state submitted.",
    "application.approved": "The application was approved (automatically or by a reviewer); "
    "an offer.created event follows.",
    "application.declined": "The application was declined, with reason codes.",
    "application.referred": "The decision was referred to a person; a review task is open.",
    "application.human_review_requested": "The applicant asked a person to look at an "
    "automated decline (PIPL Art. 24).",
    "application.cancelled": "The applicant withdrew the application before the contract.",
    "application.expired": "The offer lapsed without being accepted.",
    "offer.created": "Terms (amount, APR, term) were offered.",
    "offer.accepted": "The applicant accepted the offer; loan.contracted follows.",
    "loan.contracted": "The loan contract was signed (its digest is in the payload).",
    "loan.disbursed": "The principal was paid out; the loan is active.",
    # servicing (emitted by puhui.servicing)
    "repayment.received": "A repayment was posted and allocated.",
    "loan.prepaid": "A prepayment (part or full) was posted and the schedule re-cut.",
    "loan.overdue": "An instalment fell past due.",
    "loan.cured": "Everything past due was repaid; the loan is active again.",
    "loan.settled": "The loan was repaid in full and closed.",
    # reserved: subscribable now, recorded once write-offs are implemented
    "loan.written_off": "An overdue loan was written off.",
}
"""Event types a partner can subscribe to, with what each means (docs/webhooks.md)."""

ALL_EVENTS = "*"
MAX_ACTIVE_ENDPOINTS = 10
MAX_URL_LENGTH = 2000
MAX_LOG_LIMIT = 500
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)

_SECRET_TABLE, _SECRET_FIELD = "webhook_endpoints", "secret"
_LOOPBACK_NAMES = frozenset({"localhost"})


def is_deliverable(event_type: str) -> bool:
    """Whether partners may receive this event type at all."""
    return event_type in EVENT_CATALOGUE


def subscribes(event_types: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``event_types`` gets ``event_type``."""
    return is_deliverable(event_type) and (ALL_EVENTS in event_types or event_type in event_types)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    """Waiting for its first or next attempt (``next_attempt_at``)."""
    DELIVERED = "delivered"
    """The endpoint answered 2xx."""
    FAILED = "failed"
    """Every attempt failed, or the endpoint answered 410 Gone."""
    CANCELLED = "cancelled"
    """The endpoint was disabled before the delivery succeeded."""


class EndpointNotFound(ValidationError):
    """No endpoint with this id belongs to the caller's institution.

    A ``ValidationError`` whose rule ends in ``.not_found``: the API answers 404, the same for
    another tenant's endpoint as for one that never existed.
    """

    code = "not_found"

    def __init__(self, endpoint_id: str) -> None:
        self.endpoint_id = endpoint_id
        super().__init__(
            [FieldError("endpoint_id", "webhook.not_found", "no such webhook endpoint")]
        )


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointInfo:
    id: str
    url: str
    event_types: tuple[str, ...]
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, row: m.WebhookEndpoint) -> EndpointInfo:
        return cls(row.id, row.url, tuple(row.event_types), row.active, row.created_at)


@dataclass(frozen=True)
class RotatedSecret:
    endpoint: EndpointInfo
    secret: str
    """The new secret; shown once, like the first."""
    previous_valid_until: datetime | None
    """Until when deliveries also carry a signature under the old secret (None: not at all)."""


@dataclass(frozen=True)
class DeliveryInfo:
    id: int
    endpoint_id: str
    endpoint_url: str
    event_id: str
    event_type: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


# -- the sealed secrets ----------------------------------------------------------------------


@dataclass(frozen=True)
class SigningSecrets:
    """What ``secret_enc`` holds once opened: the current secret and, during an overlap, the
    previous one."""

    current: str
    previous: str | None = None
    previous_until: datetime | None = None

    def valid_at(self, at: datetime) -> list[str]:
        """The secrets to sign with at ``at``, newest first."""
        keys = [self.current]
        if self.previous and self.previous_until is not None and at < self.previous_until:
            keys.append(self.previous)
        return keys

    def to_text(self) -> str:
        until = None if self.previous_until is None else self.previous_until.isoformat()
        return json.dumps(
            {"v": 1, "current": self.current, "previous": self.previous, "previous_until": until}
        )

    @classmethod
    def from_text(cls, text: str) -> SigningSecrets:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("sealed webhook secret is not in format v1")
        until = data.get("previous_until")
        return cls(
            str(data["current"]),
            data.get("previous"),
            None if until is None else datetime.fromisoformat(until),
        )


def _seal_secrets(uow: UnitOfWork, vault: Vault, row: m.WebhookEndpoint, s: SigningSecrets) -> str:
    key = wrapped_key(uow.data_keys.get(row.data_key_id))
    if key is None:
        raise ValueError(f"the data key of webhook endpoint {row.id} is gone")
    return seal(vault, key, _SECRET_TABLE, _SECRET_FIELD, s.to_text())


def open_secrets(uow: UnitOfWork, vault: Vault, row: m.WebhookEndpoint) -> SigningSecrets:
    """Decrypt an endpoint's signing secrets (for the dispatcher; never shown again)."""
    key = wrapped_key(uow.data_keys.get(row.data_key_id))
    text = vault.decrypt(key, row.secret_enc, f"{_SECRET_TABLE}.{_SECRET_FIELD}")
    return SigningSecrets.from_text(text)


# -- validation ------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _internal_address(host: str) -> bool:
    """An IP literal no partner's public endpoint can have (a request forgery target)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not ip.is_global or ip.is_multicast


def _check_url(raw: object, errors: ErrorCollector, *, allow_loopback: bool) -> str:
    field = "url"
    if not isinstance(raw, str) or not raw.strip():
        errors.add(field, "webhook.url", "must be an absolute https URL")
        return ""
    url = raw.strip()
    if len(url) > MAX_URL_LENGTH or not url.isprintable() or " " in url:
        errors.add(field, "webhook.url", f"must be at most {MAX_URL_LENGTH} printable characters")
        return url
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number in range
    except ValueError:
        errors.add(field, "webhook.url", "is not a valid URL")
        return url
    host = (parts.hostname or "").lower()
    if not host:
        errors.add(field, "webhook.url", "must be an absolute URL with a host")
        return url
    if parts.username is not None or parts.password is not None:
        errors.add(field, "webhook.url_credentials", "must not carry a user name or password")
    if parts.fragment:
        errors.add(field, "webhook.url", "must not have a #fragment")
    scheme = parts.scheme.lower()
    loopback = _is_loopback(host)
    if scheme == "http" and not (loopback and allow_loopback):
        errors.add(
            field,
            "webhook.url_scheme",
            "must use https (plain http only to 127.0.0.1 or localhost, in development)",
        )
    elif scheme not in ("http", "https"):
        errors.add(field, "webhook.url_scheme", "must use https")
    elif (loopback and not allow_loopback) or (not loopback and _internal_address(host)):
        errors.add(field, "webhook.url_host", "must be a public address, not an internal one")
    return url


def _check_event_types(raw: object, errors: ErrorCollector) -> tuple[str, ...]:
    field = "event_types"
    if not isinstance(raw, list | tuple) or not raw:
        errors.add(
            field, "webhook.event_types", f'must list at least one event type, or "{ALL_EVENTS}"'
        )
        return ()
    chosen: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            errors.add(f"{field}[{i}]", "type.string", "must be a string")
        elif item != ALL_EVENTS and item not in EVENT_CATALOGUE:
            errors.add(
                f"{field}[{i}]",
                "webhook.event_type",
                f'unknown event type {item!r}: one of the catalogue (docs/webhooks.md) or "*"',
            )
        elif item not in chosen:
            chosen.append(item)
    return (ALL_EVENTS,) if ALL_EVENTS in chosen else tuple(sorted(chosen))


def _check_overlap(overlap: timedelta, errors: ErrorCollector) -> None:
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        errors.add("overlap", "webhook.overlap", f"must be between 0 and {MAX_OVERLAP.days} days")


def _check_limit(limit: int, errors: ErrorCollector) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LOG_LIMIT:
        errors.add("limit", "webhook.limit", f"must be a whole number from 1 to {MAX_LOG_LIMIT}")


def _check_status(status: str | None, errors: ErrorCollector) -> None:
    if status is not None and status not in {s.value for s in DeliveryStatus}:
        errors.add(
            "status",
            "webhook.delivery_status",
            f"must be one of {', '.join(s.value for s in DeliveryStatus)}",
        )


def _owned(uow: UnitOfWork, institution_id: str, endpoint_id: str) -> m.WebhookEndpoint:
    row = uow.session.scalar(
        select(m.WebhookEndpoint).where(
            m.WebhookEndpoint.id == endpoint_id,
            m.WebhookEndpoint.institution_id == institution_id,
        )
    )
    if row is None:
        raise EndpointNotFound(endpoint_id)
    return row


# -- use cases -------------------------------------------------------------------------------


def register_endpoint(
    uow: UnitOfWork,
    vault: Vault,
    *,
    institution_id: str,
    url: str,
    event_types: Sequence[str],
    allow_loopback: bool = True,
) -> tuple[EndpointInfo, str]:
    """Register a URL for an institution's events; returns the endpoint and its new secret.

    The secret is returned here only: it is stored sealed and never shown again (rotate it if
    it is lost). ``allow_loopback`` admits ``http://127.0.0.1`` and ``localhost`` for tests
    and development; production deployments should pass False (a partner must not make the
    platform call its own loopback services).
    """
    errors = ErrorCollector()
    clean_url = _check_url(url, errors, allow_loopback=allow_loopback)
    types = _check_event_types(event_types, errors)
    errors.raise_if_any()
    secret = generate_secret()
    with uow:
        if uow.institutions.get(institution_id) is None:
            raise ValidationError.single(
                "institution_id", "institution.unknown", "no institution with this id"
            )
        active = uow.session.scalar(
            select(func.count()).where(
                m.WebhookEndpoint.institution_id == institution_id,
                m.WebhookEndpoint.active.is_(True),
            )
        )
        if (active or 0) >= MAX_ACTIVE_ENDPOINTS:
            raise ValidationError.single(
                "url",
                "webhook.endpoint_limit",
                f"at most {MAX_ACTIVE_ENDPOINTS} active endpoints; disable one first",
            )
        key = new_subject_key(uow, vault)
        row = m.WebhookEndpoint(
            id=m.new_id("whe"),
            institution_id=institution_id,
            url=clean_url,
            data_key_id=key.key_id,
            event_types=list(types),
            active=True,
            created_at=now_utc(),
        )
        row.secret_enc = seal(
            vault, key, _SECRET_TABLE, _SECRET_FIELD, SigningSecrets(secret).to_text()
        )
        uow.session.add(row)
        uow.flush()
        uow.record_event(
            aggregate_type="webhook_endpoint",
            aggregate_id=row.id,
            event_type="webhook.endpoint_registered",
            institution_id=institution_id,
            payload={"url": clean_url, "event_types": list(types)},
        )
        uow.commit()
        return EndpointInfo.of(row), secret


def list_endpoints(uow: UnitOfWork, *, institution_id: str) -> list[EndpointInfo]:
    """The institution's endpoints, active and disabled, oldest first."""
    with uow:
        rows = uow.session.scalars(
            select(m.WebhookEndpoint)
            .where(m.WebhookEndpoint.institution_id == institution_id)
            .order_by(m.WebhookEndpoint.created_at, m.WebhookEndpoint.id)
        ).all()
        return [EndpointInfo.of(r) for r in rows]


def disable_endpoint(
    uow: UnitOfWork,
    *,
    institution_id: str,
    endpoint_id: str,
    reason: str = "disabled by the institution",
) -> EndpointInfo:
    """Stop sending to an endpoint; its pending deliveries are cancelled. Idempotent.

    Raises :class:`EndpointNotFound` for an id the institution does not own.
    """
    with uow:
        row = _owned(uow, institution_id, endpoint_id)
        if not row.active:
            return EndpointInfo.of(row)
        row.active = False
        cancelled = cast(
            CursorResult[Any],
            uow.session.execute(
                update(m.WebhookDelivery)
                .where(
                    m.WebhookDelivery.endpoint_id == row.id,
                    m.WebhookDelivery.status == DeliveryStatus.PENDING.value,
                )
                .values(
                    status=DeliveryStatus.CANCELLED.value,
                    next_attempt_at=None,
                    last_error="endpoint disabled",
                )
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        uow.record_event(
            aggregate_type="webhook_endpoint",
            aggregate_id=row.id,
            event_type="webhook.endpoint_disabled",
            institution_id=institution_id,
            payload={"reason": reason[:200], "cancelled_deliveries": int(cancelled or 0)},
        )
        uow.commit()
        return EndpointInfo.of(row)


def rotate_endpoint_secret(
    uow: UnitOfWork,
    vault: Vault,
    *,
    institution_id: str,
    endpoint_id: str,
    overlap: timedelta = DEFAULT_OVERLAP,
    now: datetime | None = None,
) -> RotatedSecret:
    """Replace the endpoint's secret; returns the new one (shown once).

    For ``overlap`` after now, deliveries carry signatures under both the new and the old
    secret, so receivers can switch at their own pace; ``overlap=timedelta(0)`` drops the old
    secret at once (after a leak).
    """
    errors = ErrorCollector()
    _check_overlap(overlap, errors)
    errors.raise_if_any()
    at = now_utc() if now is None else require_aware(now, "now")
    secret = generate_secret()
    with uow:
        row = _owned(uow, institution_id, endpoint_id)
        old = open_secrets(uow, vault, row)
        until = at + overlap if overlap > timedelta(0) else None
        fresh = SigningSecrets(secret, old.current if until else None, until)
        row.secret_enc = _seal_secrets(uow, vault, row, fresh)
        uow.record_event(
            aggregate_type="webhook_endpoint",
            aggregate_id=row.id,
            event_type="webhook.endpoint_secret_rotated",
            institution_id=institution_id,
            payload={"previous_valid_until": None if until is None else until.isoformat()},
        )
        uow.commit()
        return RotatedSecret(EndpointInfo.of(row), secret, until)


_LogQuery = Select[tuple[m.WebhookDelivery, str, str | None]]
"""A delivery, its endpoint's URL and its event's type (None if the event row is gone)."""


def _log_query(institution_id: str | None) -> _LogQuery:
    q = (
        select(m.WebhookDelivery, m.WebhookEndpoint.url, m.Event.event_type)
        .join(m.WebhookEndpoint, m.WebhookEndpoint.id == m.WebhookDelivery.endpoint_id)
        .outerjoin(m.Event, m.Event.event_id == m.WebhookDelivery.event_id)
    )
    if institution_id is not None:
        q = q.where(m.WebhookEndpoint.institution_id == institution_id)
    return cast(_LogQuery, q)  # the outer join makes the event type nullable


def _run_log(
    uow: UnitOfWork,
    q: _LogQuery,
    *,
    endpoint_id: str | None,
    status: str | None,
    limit: int,
) -> list[DeliveryInfo]:
    if endpoint_id is not None:
        q = q.where(m.WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        q = q.where(m.WebhookDelivery.status == status)
    rows = uow.session.execute(q.order_by(m.WebhookDelivery.id.desc()).limit(limit)).all()
    return [
        DeliveryInfo(
            d.id,
            d.endpoint_id,
            url,
            d.event_id,
            event_type,
            d.status,
            d.attempts,
            d.next_attempt_at,
            d.last_status_code,
            d.last_error,
            d.delivered_at,
            d.created_at,
        )
        for d, url, event_type in rows
    ]


def delivery_log(
    uow: UnitOfWork,
    *,
    institution_id: str,
    endpoint_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[DeliveryInfo]:
    """The institution's deliveries, newest first: what was sent where, and how it went."""
    errors = ErrorCollector()
    _check_limit(limit, errors)
    _check_status(status, errors)
    errors.raise_if_any()
    with uow:
        if endpoint_id is not None:
            _owned(uow, institution_id, endpoint_id)
        return _run_log(
            uow, _log_query(institution_id), endpoint_id=endpoint_id, status=status, limit=limit
        )


def operator_delivery_log(
    uow: UnitOfWork, *, status: str | None = None, limit: int = 50
) -> list[DeliveryInfo]:
    """Every institution's deliveries, newest first — for the operator's command line only."""
    errors = ErrorCollector()
    _check_limit(limit, errors)
    _check_status(status, errors)
    errors.raise_if_any()
    with uow:
        return _run_log(uow, _log_query(None), endpoint_id=None, status=status, limit=limit)
