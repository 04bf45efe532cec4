"""Rings over the platform's own history: links from the link table, labels from reviews."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from puhui.bootstrap import Platform
from puhui.cli import app
from puhui.fraud.history import platform_links
from puhui.fraud.lists import record_fraud_review
from puhui.fraud.rings import find_rings
from puhui.origination.institutions import register_institution
from puhui.origination.submit import submit_application
from puhui.settings import Settings, get_settings
from tests import factories
from tests.conftest import Database
from tests.fraud.test_app_time import card, mobile, uscc

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


@pytest.fixture
def env(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    monkeypatch.setenv("PUHUI_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUHUI_DATABASE_URL", database.url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    p = Platform(Settings())
    register_institution(p.uow(), code="DEMO_BANK", name="示范银行", institution_type="bank")
    yield p
    p.close()
    get_settings.cache_clear()


def _submit(p: Platform, n: int, device: str) -> str:
    raw = factories.application(
        external_ref=f"R{n}",
        submitted_at=T0 + timedelta(minutes=n),
        device_id=device,
        ip=f"198.51.100.{n}",
        legal_representative={
            "id_number": factories.id_number("19800101", seq=f"{n:03d}"),
            "mobile": mobile(n),
            "bank_account": card(n),
            "address": f"杭州市西湖区文三路{n}号",
        },
    )
    raw["enterprise"]["uscc"] = uscc(n)
    return submit_application(p.uow(), p.vault, p.indexer, raw).application_id


def test_history_rings_use_the_link_table_and_review_labels(env: Platform) -> None:
    ring = [_submit(env, n, "dev-ring") for n in range(4)]
    honest = [_submit(env, n, f"dev-{n}") for n in range(10, 16)]
    record_fraud_review(
        env.uow(),
        application_id=ring[0],
        verdict="confirmed",
        reviewed_by="审核员",
        reason="r",
        at=T0,
    )
    table, meta = platform_links(env)
    assert set(meta.ids) == set(ring + honest)
    assert meta.labels is not None and meta.institutions is not None
    assert meta.labels[meta.ids.index(ring[0])] == 1
    assert set(meta.institutions) == {"DEMO_BANK"}
    result = find_rings(table, meta)
    groups = {result.group[meta.ids.index(a)] for a in ring}
    assert len(groups) == 1 and -1 not in groups
    assert all(result.group[meta.ids.index(a)] == -1 for a in honest)
    assert result.rings[0].evidence  # scored with its evidence

    out = env.settings.var_dir / "groups.csv"
    cli = CliRunner().invoke(app, ["fraud", "rings", "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    frame = pd.read_csv(out)
    in_ring = frame[frame["id"].isin(ring)]
    assert in_ring["group_size"].eq(4).all() and in_ring["group"].nunique() == 1
