"""Endpoint use cases: validation, sealed secrets, tenant scope, disabling and rotation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from puhui.bootstrap import Platform
from puhui.domain.errors import ValidationError
from puhui.store import models as m
from puhui.webhooks.endpoints import (
    EVENT_CATALOGUE,
    MAX_ACTIVE_ENDPOINTS,
    EndpointNotFound,
    SigningSecrets,
    delivery_log,
    disable_endpoint,
    list_endpoints,
    open_secrets,
    register_endpoint,
    rotate_endpoint_secret,
    subscribes,
)
from tests.conftest import Database

URL = "https://partner.example.com/hooks"


def _register(platform: Platform, institution: str, **kw: object) -> tuple[str, str]:
    args: dict[str, object] = {"url": URL, "event_types": ["*"]} | kw
    info, secret = register_endpoint(
        platform.uow(),
        platform.vault,
        institution_id=institution,
        **args,  # type: ignore[arg-type]
    )
    return info.id, secret


def _rules(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str]]:
    return [(e.field, e.rule) for e in exc.value.errors]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://partner.example.com/hooks", "webhook.url_scheme"),
        ("ftp://partner.example.com/hooks", "webhook.url_scheme"),
        ("https://user:pw@partner.example.com/hooks", "webhook.url_credentials"),
        ("https://10.0.0.8/hooks", "webhook.url_host"),
        ("https://169.254.169.254/latest/meta-data", "webhook.url_host"),
        ("https://[fd00::1]/hooks", "webhook.url_host"),
        ("/relative/path", "webhook.url"),
        ("https://partner.example.com:99999/hooks", "webhook.url"),
        ("https://partner.example.com/hooks#frag", "webhook.url"),
        ("https://partner.example.com/" + "a" * 2000, "webhook.url"),
        ("", "webhook.url"),
    ],
)
def test_urls_must_be_public_https(platform: Platform, bank_a: str, url: str, rule: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _register(platform, bank_a, url=url)
    assert ("url", rule) in _rules(exc)


def test_loopback_http_is_for_development_only(platform: Platform, bank_a: str) -> None:
    for url in ("http://127.0.0.1:8080/hooks", "http://localhost/hooks", "https://[::1]/h"):
        _register(platform, bank_a, url=url)
    with pytest.raises(ValidationError) as exc:
        _register(platform, bank_a, url="http://127.0.0.1:8080/hooks", allow_loopback=False)
    assert _rules(exc) == [("url", "webhook.url_scheme")]
    with pytest.raises(ValidationError) as exc:
        _register(platform, bank_a, url="https://localhost/hooks", allow_loopback=False)
    assert _rules(exc) == [("url", "webhook.url_host")]


def test_every_error_is_reported_at_once_and_nothing_is_written(
    platform: Platform, bank_a: str, database: Database
) -> None:
    with pytest.raises(ValidationError) as exc:
        _register(
            platform,
            bank_a,
            url="http://partner.example.com",
            event_types=["application.submitted", "loan.exploded", 7],
        )
    assert _rules(exc) == [
        ("url", "webhook.url_scheme"),
        ("event_types[1]", "webhook.event_type"),
        ("event_types[2]", "type.string"),
    ]
    with pytest.raises(ValidationError) as exc:
        _register(platform, bank_a, event_types=[])
    assert _rules(exc) == [("event_types", "webhook.event_types")]
    with database.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.WebhookEndpoint)) == 0


def test_unknown_institution_is_refused(platform: Platform, bank_a: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _register(platform, "ins_nope")
    assert _rules(exc) == [("institution_id", "institution.unknown")]


def test_event_types_are_normalised(platform: Platform, bank_a: str) -> None:
    _register(platform, bank_a, event_types=["loan.disbursed", "application.submitted"] * 2)
    _register(platform, bank_a, event_types=["loan.disbursed", "*"])
    assert [e.event_types for e in list_endpoints(platform.uow(), institution_id=bank_a)] == [
        ("application.submitted", "loan.disbursed"),
        ("*",),
    ]


def test_subscriptions_never_include_events_outside_the_catalogue() -> None:
    assert subscribes(["*"], "application.submitted")
    assert subscribes(["loan.disbursed"], "loan.disbursed")
    assert not subscribes(["loan.disbursed"], "application.submitted")
    for internal in ("subject.erased", "consent.withdrawn", "institution.registered"):
        assert internal not in EVENT_CATALOGUE
        assert not subscribes(["*"], internal)
        assert not subscribes([internal], internal)


def test_the_secret_is_sealed_under_its_own_data_key(
    platform: Platform, bank_a: str, database: Database
) -> None:
    endpoint_id, secret = _register(platform, bank_a)
    assert secret.startswith("whsec_")
    with database.sessions() as s:
        row = s.get(m.WebhookEndpoint, endpoint_id)
        assert row is not None
        assert secret not in row.secret_enc and secret[6:20] not in row.secret_enc
        assert row.secret_enc.startswith(f"v1.{row.data_key_id}.")
        assert s.get(m.DataKey, row.data_key_id) is not None
    with platform.uow() as uow:
        row = uow.session.get(m.WebhookEndpoint, endpoint_id)
        assert row is not None
        assert open_secrets(uow, platform.vault, row) == SigningSecrets(secret)


def test_registering_is_an_audited_event(
    platform: Platform, bank_a: str, database: Database
) -> None:
    endpoint_id, secret = _register(platform, bank_a)
    with database.sessions() as s:
        event = s.scalar(select(m.Event).where(m.Event.aggregate_id == endpoint_id))
        assert event is not None and event.event_type == "webhook.endpoint_registered"
        assert event.institution_id == bank_a and secret not in str(event.payload)
        audit = s.scalar(select(m.AuditRecord).where(m.AuditRecord.subject_id == endpoint_id))
        assert audit is not None and audit.actor == "system"


def test_active_endpoints_are_limited(platform: Platform, bank_a: str) -> None:
    ids = [_register(platform, bank_a)[0] for _ in range(MAX_ACTIVE_ENDPOINTS)]
    with pytest.raises(ValidationError) as exc:
        _register(platform, bank_a)
    assert _rules(exc) == [("url", "webhook.endpoint_limit")]
    disable_endpoint(platform.uow(), institution_id=bank_a, endpoint_id=ids[0])
    _register(platform, bank_a)


def test_another_tenants_endpoint_is_not_found(
    platform: Platform, bank_a: str, bank_b: str
) -> None:
    endpoint_id, _ = _register(platform, bank_a)
    assert list_endpoints(platform.uow(), institution_id=bank_b) == []
    with pytest.raises(EndpointNotFound):
        disable_endpoint(platform.uow(), institution_id=bank_b, endpoint_id=endpoint_id)
    with pytest.raises(EndpointNotFound):
        rotate_endpoint_secret(
            platform.uow(), platform.vault, institution_id=bank_b, endpoint_id=endpoint_id
        )
    with pytest.raises(EndpointNotFound) as exc:
        delivery_log(platform.uow(), institution_id=bank_b, endpoint_id=endpoint_id)
    assert exc.value.rules == ("webhook.not_found",)
    assert [e.active for e in list_endpoints(platform.uow(), institution_id=bank_a)] == [True]


def test_disabling_cancels_pending_deliveries_and_is_idempotent(
    platform: Platform, bank_a: str, database: Database
) -> None:
    endpoint_id, _ = _register(platform, bank_a)
    with database.sessions.begin() as s:
        s.add(m.WebhookDelivery(endpoint_id=endpoint_id, event_id="evt_x", status="pending"))
        s.add(m.WebhookDelivery(endpoint_id=endpoint_id, event_id="evt_y", status="delivered"))
    info = disable_endpoint(platform.uow(), institution_id=bank_a, endpoint_id=endpoint_id)
    assert not info.active
    assert not disable_endpoint(
        platform.uow(), institution_id=bank_a, endpoint_id=endpoint_id
    ).active
    log = delivery_log(platform.uow(), institution_id=bank_a)
    assert sorted((d.event_id, d.status) for d in log) == [
        ("evt_x", "cancelled"),
        ("evt_y", "delivered"),
    ]
    with database.sessions() as s:
        events = s.scalars(
            select(m.Event.event_type).where(m.Event.aggregate_id == endpoint_id)
        ).all()
        assert list(events).count("webhook.endpoint_disabled") == 1


def test_rotation_overlaps_then_drops_the_old_secret(platform: Platform, bank_a: str) -> None:
    endpoint_id, first = _register(platform, bank_a)
    t = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    rotated = rotate_endpoint_secret(
        platform.uow(),
        platform.vault,
        institution_id=bank_a,
        endpoint_id=endpoint_id,
        overlap=timedelta(hours=2),
        now=t,
    )
    assert rotated.secret != first and rotated.previous_valid_until == t + timedelta(hours=2)
    with platform.uow() as uow:
        row = uow.session.get(m.WebhookEndpoint, endpoint_id)
        assert row is not None
        held = open_secrets(uow, platform.vault, row)
    assert held.valid_at(t + timedelta(hours=1)) == [rotated.secret, first]
    assert held.valid_at(t + timedelta(hours=2)) == [rotated.secret]

    again = rotate_endpoint_secret(
        platform.uow(),
        platform.vault,
        institution_id=bank_a,
        endpoint_id=endpoint_id,
        overlap=timedelta(0),
        now=t,
    )
    assert again.previous_valid_until is None
    with platform.uow() as uow:
        row = uow.session.get(m.WebhookEndpoint, endpoint_id)
        assert row is not None
        assert open_secrets(uow, platform.vault, row).valid_at(t) == [again.secret]


def test_rotation_overlap_is_bounded(platform: Platform, bank_a: str) -> None:
    endpoint_id, _ = _register(platform, bank_a)
    with pytest.raises(ValidationError) as exc:
        rotate_endpoint_secret(
            platform.uow(),
            platform.vault,
            institution_id=bank_a,
            endpoint_id=endpoint_id,
            overlap=timedelta(days=8),
        )
    assert _rules(exc) == [("overlap", "webhook.overlap")]


@pytest.mark.parametrize(
    ("kw", "rule"),
    [
        ({"limit": 0}, "webhook.limit"),
        ({"limit": 501}, "webhook.limit"),
        ({"status": "x"}, "webhook.delivery_status"),
    ],
)
def test_delivery_log_arguments_are_validated(
    platform: Platform, bank_a: str, kw: dict[str, object], rule: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        delivery_log(platform.uow(), institution_id=bank_a, **kw)  # type: ignore[arg-type]
    assert exc.value.rules == (rule,)


def test_the_documented_catalogue_is_the_code_catalogue() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text("utf-8")
    table = docs[docs.index("## Event catalogue") : docs.index("## Managing endpoints")]
    documented = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", table, flags=re.MULTILINE)
    assert documented == list(EVENT_CATALOGUE)
