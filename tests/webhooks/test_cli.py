"""``puhui webhooks dispatch --once`` and ``puhui webhooks log`` against a real receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from puhui.bootstrap import platform
from puhui.settings import get_settings
from puhui.webhooks.cli import webhooks_app
from tests.conftest import Database
from tests.webhooks.conftest import Receiver, record, subscribe

runner = CliRunner()


@pytest.fixture
def env(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PUHUI_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUHUI_DATABASE_URL", database.url)
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_dispatch_once_then_read_the_log(
    env: None, database: Database, bank_a: str, bank_b: str, receiver: Receiver
) -> None:
    p = platform()
    subscribe(p, bank_a, receiver)
    p.close()
    event_id = record(database, bank_a)

    result = runner.invoke(webhooks_app, ["dispatch", "--once"])
    assert result.exit_code == 0, result.output
    assert "delivered 1" in result.output
    assert receiver.event_ids == [event_id]

    result = runner.invoke(webhooks_app, ["log", "--institution", "demo_bank"])
    assert result.exit_code == 0, result.output
    assert event_id in result.output and "delivered" in result.output
    assert "1 deliveries" in result.output

    result = runner.invoke(webhooks_app, ["log", "--institution", "OTHER_BANK"])
    assert result.exit_code == 0 and "0 deliveries" in result.output

    result = runner.invoke(webhooks_app, ["log"])
    assert result.exit_code == 0 and event_id in result.output


def test_log_refuses_unknown_institutions_and_bad_filters(env: None, bank_a: str) -> None:
    result = runner.invoke(webhooks_app, ["log", "--institution", "NOPE"])
    assert result.exit_code == 1 and "institution.unknown" in result.output
    result = runner.invoke(webhooks_app, ["log", "--status", "lost"])
    assert result.exit_code == 1 and "webhook.delivery_status" in result.output
