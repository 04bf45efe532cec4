"""The command line end to end, on both databases: migrate, load, verify, rotate, export, erase."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from puhui.cli import app
from puhui.settings import get_settings
from tests import factories
from tests.conftest import Database

runner = CliRunner()


@pytest.fixture
def env(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PUHUI_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUHUI_DATABASE_URL", database.url)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_migrate_creates_keys_with_private_modes(env: Path) -> None:
    out = run("migrate")
    assert "revision" in out
    keys = env / "var" / "keys"
    assert (keys.stat().st_mode & 0o777) == 0o700
    for f in keys.glob("*.json"):
        assert (f.stat().st_mode & 0o777) == 0o600


def test_load_verify_rotate_export_erase(env: Path, database: Database) -> None:
    run("migrate")
    out = run("synthetic", "load", "-n", "30", "--seed", "5")
    assert "submitted 30" in out
    assert "audit chain intact" in run("audit", "verify")

    run("keys", "rotate", "--batch-size", "7")
    status = run("keys", "status")
    assert "retired" in status and "active" in status

    run("institutions", "create", "DEMO_BANK", "--name", "示范银行")
    from puhui.bootstrap import platform
    from puhui.origination.submit import submit_application

    p = platform()
    submit_application(p.uow(), p.vault, p.indexer, factories.application())
    p.close()
    export = env / "me.json"
    run(
        "subjects",
        "export",
        "--institution",
        "DEMO_BANK",
        "--id-number",
        factories.ID_NUMBER,
        "--out",
        str(export),
    )
    data = json.loads(export.read_text(encoding="utf-8"))
    assert data["person"]["mobile"] == factories.MOBILE
    assert (export.stat().st_mode & 0o777) == 0o600
    assert "shredded" in run(
        "subjects", "erase", "--institution", "DEMO_BANK", "--id-number", factories.ID_NUMBER
    )
    assert "audit chain intact" in run("audit", "verify")

    with database.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET actor = 'mallory' WHERE seq = 3"))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "record 3" in result.output and "edited" in result.output


def test_bad_institution_input_names_the_rule(env: Path) -> None:
    run("migrate")
    result = runner.invoke(app, ["institutions", "create", "x", "--name", "X", "--type", "casino"])
    assert result.exit_code == 1
    assert "institution.code" in result.output and "institution.type" in result.output


def test_synthetic_generate_writes_csv(env: Path) -> None:
    out = env / "s.csv"
    run("synthetic", "generate", "-n", "50", "--seed", "9", "--out", str(out))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 51


def test_audit_seal_chains_what_deferred_transactions_left_waiting(
    env: Path, database: Database
) -> None:
    from puhui.store.unit_of_work import UnitOfWork

    run("migrate")
    with UnitOfWork(database.sessions, audit_sealing="deferred") as uow:
        for subject in ("s1", "s2"):
            uow.audit(action="test.read", subject_type="thing", subject_id=subject)
        uow.commit()
    out = run("audit", "verify")
    assert "2 records wait to be sealed" in out and "intact" in out
    assert "sealed 2 waiting audit records" in run("audit", "seal")
    out = run("audit", "verify")
    assert "wait to be sealed" not in out
    assert "audit chain intact: 2 records" in " ".join(out.split())
