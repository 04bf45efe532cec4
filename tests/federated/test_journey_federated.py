"""A federated champion deciding real applications: the partner runs `puhui federated serve`
as its own process; the decision reveals the USCC only under joint-modelling consent (audited),
and falls back — saying why — without consent or when the partner is gone."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from puhui.federated.artifact import FederatedArtifact
from puhui.federated.live_model import FederatedCreditModel
from puhui.federated.partner import forget_partner_clients
from puhui.origination.decide import decide_application
from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.partner_key import NO_CONSENT
from puhui.privacy.vault import Vault
from puhui.risk import bundled
from puhui.risk.registry import promote, register
from puhui.risk.serving import forget_live_models
from puhui.settings import get_settings
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
from tests.conftest import Database

from .conftest import Federation, Trained

AT = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
JOINT = {
    "purpose": "joint_modelling",
    "scope": ["enterprise"],
    "text_version": "2026.1",
    "channel": "app",
}


def _party_toml(role: str, port: int, peer_port: int, files_dir: Path, data: Path) -> str:
    return (
        f'role = "{role}"\n[listen]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[peer]\nurl = "https://localhost:{peer_port}"\n'
        f'[tls]\nca_cert = "{files_dir / "ca.crt"}"\ncert = "{files_dir / f"{role}.crt"}"\n'
        f'key = "{files_dir / f"{role}.key"}"\n'
        f'[data]\nfile = "{data}"\nid_column = "uscc"\n'
        + ('label_column = "defaulted"\n' if role == "guest" else "")
    )


@pytest.fixture
def partner(
    trained: Trained, federation: Federation, tmp_path: Path, free_port: Any
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """The host's scoring process, knowing the test application's business too."""
    rows = list(csv.reader(trained.host_csv.open(newline="")))
    rows.append([factories.USCC, *rows[1][1:]])
    host_csv = tmp_path / "host.csv"
    with host_csv.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    (tmp_path / "host_model.json").write_text(json.dumps(trained.host.to_dict()))
    host_port, guest_port = free_port(), free_port()
    host_toml, guest_toml = tmp_path / "host.toml", tmp_path / "guest.toml"
    host_toml.write_text(
        _party_toml("host", host_port, guest_port, federation.host.cert.parent, host_csv)
    )
    guest_toml.write_text(
        _party_toml("guest", guest_port, host_port, federation.guest.cert.parent, host_csv)
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from puhui.federated_cli import federated_app; federated_app()",
            "serve",
            "--role",
            "host",
            "--config",
            str(host_toml),
            "--model",
            str(tmp_path / "host_model.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "scoring on https://" in line:
            break
    try:
        yield process, guest_toml
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture
def federated_champion(
    database: Database,
    trained: Trained,
    institution: str,
    monkeypatch: pytest.MonkeyPatch,
    partner: tuple[subprocess.Popen[str], Path],
) -> Iterator[str]:
    artifact = FederatedArtifact(
        FederatedCreditModel("secureboost", trained.guest), bundled.load(), {"name": "joint"}
    )
    model_id = register(
        UnitOfWork(database.sessions),
        artifact,
        name="sme-credit",
        created_by="t",
    ).id
    promote(UnitOfWork(database.sessions), model_id, role="champion", by="t", reason="r", at=AT)
    monkeypatch.setenv("PUHUI_FEDERATED_CONFIG", str(partner[1]))
    monkeypatch.setenv("PUHUI_FEDERATED_TIMEOUT_SECONDS", "2")
    get_settings.cache_clear()
    forget_live_models()
    forget_partner_clients()
    yield model_id
    get_settings.cache_clear()
    forget_live_models()
    forget_partner_clients()


def _decide(
    database: Database, vault: Vault, indexer: BlindIndexer, ref: str, consents: list[Any]
) -> dict[str, Any]:
    """Submit and decide one application; each ``ref`` is a different legal representative
    (consents belong to the person), all for the business the partner knows."""
    raw = factories.application(
        external_ref=ref,
        legal_representative={"id_number": factories.id_number("19800101", seq=ref[-3:])},
        consents=consents,
    )
    app_id = submit_application(UnitOfWork(database.sessions), vault, indexer, raw).application_id
    with database.sessions() as s:
        inst = s.scalar(select(m.Institution.id).where(m.Institution.code == "DEMO_BANK"))
    decide_application(
        UnitOfWork(database.sessions),
        institution_id=str(inst),
        application_id=app_id,
        at=AT,
        vault=vault,
    )
    with database.sessions() as s:
        decision = s.scalar(select(m.Decision).where(m.Decision.application_id == app_id))
        assert decision is not None
        return dict(decision.details["model"]["champion"])


def test_federated_champion_asks_the_partner_under_consent(
    database: Database,
    vault: Vault,
    indexer: BlindIndexer,
    federated_champion: str,
    partner: tuple[subprocess.Popen[str], Path],
) -> None:
    base = factories.application()["consents"]
    champion = _decide(database, vault, indexer, "J-101", [*base, JOINT])
    assert champion["id"] == federated_champion
    assert champion["federated"]["scored_by"] == "federated", champion
    with database.sessions() as s:
        reads = s.scalars(
            select(m.AuditRecord).where(m.AuditRecord.purpose == "joint_modelling")
        ).all()
    assert [r.subject_type for r in reads] == ["enterprise"]
    assert factories.USCC not in json.dumps([r.details for r in reads])

    champion = _decide(database, vault, indexer, "J-102", base)
    assert champion["federated"] == {
        "scored_by": "fallback",
        "model_id": champion["federated"]["model_id"],
        "fallback_reason": NO_CONSENT,
        "fallback_model": bundled.load().metadata.get("name", "scorecard"),
    }

    process, _ = partner
    process.kill()
    process.wait()
    started = time.monotonic()
    champion = _decide(database, vault, indexer, "J-103", [*base, JOINT])
    assert champion["federated"]["scored_by"] == "fallback"
    assert "did not answer" in champion["federated"]["fallback_reason"]
    assert time.monotonic() - started < 10


def test_a_broken_partner_configuration_falls_back_instead_of_failing(
    database: Database,
    vault: Vault,
    indexer: BlindIndexer,
    federated_champion: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PUHUI_FEDERATED_CONFIG", str(tmp_path / "missing.toml"))
    get_settings.cache_clear()
    forget_partner_clients()
    base = factories.application()["consents"]
    champion = _decide(database, vault, indexer, "J-104", [*base, JOINT])
    assert champion["federated"]["scored_by"] == "fallback"
    assert "the partner configuration is unusable" in champion["federated"]["fallback_reason"]
