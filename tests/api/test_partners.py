"""Partner API clients: creation, rotation, revocation, secrets never stored or logged in the
clear, and the ``partners`` command line — on both databases."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from puhui.api.app import create_app
from puhui.api.auth import TOKEN_PATH, install_security
from puhui.api.partners import (
    create_partner,
    list_partners,
    revoke,
    rotate_secret,
    valid_secrets,
)
from puhui.api.partners_cli import partners_app
from puhui.bootstrap import Platform
from puhui.domain.errors import ValidationError
from puhui.privacy.vault import Vault
from puhui.settings import get_settings
from puhui.store.models import ApiClient, ApiSecret, Base, Event
from puhui.store.unit_of_work import UnitOfWork
from tests.conftest import Database


def everything_stored(database: Database) -> str:
    """Every row of every table as text: where a secret must not appear."""
    out: list[str] = []
    with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            out.extend(repr(tuple(row)) for row in conn.execute(table.select()))
    return "\n".join(out)


def test_create_partner_returns_credentials_and_stores_only_ciphertext(
    uow: UnitOfWork, vault: Vault, database: Database
) -> None:
    creds = create_partner(uow, vault, name="示范银行", code="demo_bank", rate_limit_per_minute=60)
    assert re.fullmatch(r"pk_[0-9a-f]{32}", creds.client_id)
    assert creds.client_secret.startswith("sk_")
    raw = base64.urlsafe_b64decode(creds.client_secret[3:] + "=")
    assert len(raw) * 8 >= 256
    assert creds.institution_code == "DEMO_BANK"
    assert creds.client_secret not in repr(creds)

    stored = everything_stored(database)
    assert creds.client_secret not in stored
    assert creds.client_secret[3:] not in stored
    with database.sessions() as s:
        client = s.scalars(select(ApiClient)).one()
        assert client.rate_limit_per_minute == 60 and client.revoked_at is None
        secret = s.scalars(select(ApiSecret)).one()
        assert secret.secret_enc.startswith("v1.dk-") and secret.expires_at is None
        assert valid_secrets(s, vault, client, datetime.now(UTC)) == [creds.client_secret]
        events = [e.event_type for e in s.scalars(select(Event))]
    assert events == ["institution.registered", "api_client.created"]


def test_create_partner_generates_a_code_and_reuses_an_institution(
    uow: UnitOfWork, vault: Vault
) -> None:
    first = create_partner(uow, vault, name="Generated Bank")
    assert re.fullmatch(r"P[0-9A-F]{8}", first.institution_code)
    a = create_partner(uow, vault, name="示范银行", code="DEMO_BANK")
    b = create_partner(uow, vault, name="示范银行", code="DEMO_BANK")
    assert a.client_id != b.client_id and a.institution_code == b.institution_code


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute", "partner.rate_limit"),
        ({"rate_limit_per_minute": 10**6}, "rate_limit_per_minute", "partner.rate_limit"),
        ({"code": "no spaces"}, "code", "institution.code"),
        ({"institution_type": "casino"}, "institution_type", "institution.type"),
        ({"name": " "}, "name", "institution.name"),
    ],
)
def test_create_partner_validation_names_field_and_rule(
    uow: UnitOfWork, vault: Vault, kwargs: dict[str, object], field: str, rule: str
) -> None:
    args: dict[str, object] = {"name": "示范银行", "code": "DEMO_BANK", **kwargs}
    with pytest.raises(ValidationError) as err:
        create_partner(uow, vault, **args)  # type: ignore[arg-type]
    assert (field, rule) in zip(err.value.fields, err.value.rules, strict=True)


def test_rotation_keeps_the_old_secret_for_the_overlap(
    uow: UnitOfWork, vault: Vault, database: Database
) -> None:
    creds = create_partner(uow, vault, name="示范银行", code="DEMO_BANK")
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    new = rotate_secret(uow, vault, client_id=creds.client_id, overlap=timedelta(hours=2), now=now)
    assert new != creds.client_secret and new.startswith("sk_")
    with database.sessions() as s:
        client = s.scalars(select(ApiClient)).one()
        inside = valid_secrets(s, vault, client, now + timedelta(hours=1))
        after = valid_secrets(s, vault, client, now + timedelta(hours=2, seconds=1))
        events = s.scalars(select(Event).where(Event.event_type == "api_client.secret_rotated"))
        payload = events.one().payload
    assert set(inside) == {creds.client_secret, new}
    assert after == [new]
    assert new not in str(payload) and creds.client_secret not in str(payload)
    assert new not in everything_stored(database)

    # A second rotation never extends the first secret's life.
    rotate_secret(uow, vault, client_id=creds.client_id, overlap=timedelta(days=7), now=now)
    with database.sessions() as s:
        client = s.scalars(select(ApiClient)).one()
        later = valid_secrets(s, vault, client, now + timedelta(hours=3))
    assert creds.client_secret not in later and new in later


def test_rotation_and_revocation_refusals(uow: UnitOfWork, vault: Vault) -> None:
    creds = create_partner(uow, vault, name="示范银行", code="DEMO_BANK")
    cases = [
        ({"client_id": "pk_" + "0" * 32, "overlap": timedelta(0)}, "partner.unknown_client"),
        ({"client_id": "nope", "overlap": timedelta(0)}, "partner.client_id"),
        ({"client_id": creds.client_id, "overlap": timedelta(hours=-1)}, "partner.overlap"),
        ({"client_id": creds.client_id, "overlap": timedelta(days=31)}, "partner.overlap"),
    ]
    for kwargs, rule in cases:
        with pytest.raises(ValidationError) as err:
            rotate_secret(uow, vault, **kwargs)  # type: ignore[arg-type]
        assert rule in err.value.rules
    revoke(uow, client_id=creds.client_id)
    revoke(uow, client_id=creds.client_id)  # again: a no-op
    with pytest.raises(ValidationError) as err:
        rotate_secret(uow, vault, client_id=creds.client_id, overlap=timedelta(0))
    assert err.value.rules == ("partner.revoked",)
    (info,) = list_partners(uow)
    assert info.revoked_at is not None and info.valid_secrets == 0
    with uow:
        revoked = uow.events.for_aggregate(
            "api_client", uow.session.scalars(select(ApiClient.id)).one()
        )
        assert [e.event_type for e in revoked].count("api_client.revoked") == 1


# -- command line -----------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_env(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PUHUI_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUHUI_DATABASE_URL", database.url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def cli(*args: str) -> str:
    app = typer.Typer()
    app.add_typer(partners_app, name="partners")
    result = runner.invoke(app, ["partners", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_create_prints_the_secret_once_and_it_works(cli_env: Path, database: Database) -> None:
    out = cli("create", "杭州示范农商银行", "--code", "HZ_DEMO", "--rate-limit", "120")
    client_id = re.search(r"client_id\s+(pk_[0-9a-f]{32})", out)
    secret = re.search(r"client_secret\s+(sk_[A-Za-z0-9_-]{43})", out)
    assert client_id and secret, out
    assert out.count(secret.group(1)) == 1
    assert "shown only this once" in out
    assert secret.group(1) not in everything_stored(database)

    listing = cli("list")
    assert client_id.group(1) in listing and "HZ_DEMO" in listing and "120" in listing
    assert "sk_" not in listing

    # The printed credentials get a token from the API.
    platform = Platform(get_settings())
    app = create_app(platform)
    install_security(app)
    with TestClient(app) as http:
        r = http.post(
            TOKEN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id.group(1),
                "client_secret": secret.group(1),
            },
        )
    platform.close()
    assert r.status_code == 200, r.text


def test_cli_rotate_and_revoke(cli_env: Path, database: Database) -> None:
    out = cli("create", "示范银行", "--code", "DEMO_BANK")
    client_id = re.search(r"pk_[0-9a-f]{32}", out)
    assert client_id
    rotated = cli("rotate", client_id.group(0), "--overlap-hours", "1")
    new_secret = re.search(r"client_secret\s+(sk_[A-Za-z0-9_-]{43})", rotated)
    assert new_secret and "stops working at" in rotated
    assert "revoked" in cli("revoke", client_id.group(0))
    assert "revoked" in cli("list")
    with database.engine.connect() as conn:
        assert (
            conn.execute(
                text("select count(*) from api_clients where revoked_at is not null")
            ).scalar()
            == 1
        )


def test_cli_reports_validation_errors(cli_env: Path) -> None:
    app = typer.Typer()
    app.add_typer(partners_app, name="partners")
    result = runner.invoke(app, ["partners", "create", "示范银行", "--rate-limit", "0"])
    assert result.exit_code == 1
    assert "partner.rate_limit" in result.output
