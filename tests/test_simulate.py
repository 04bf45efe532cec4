"""The simulator drives the real HTTP API end to end (a real server on a loopback port)."""

from __future__ import annotations

from pathlib import Path

from puhui.bootstrap import Platform
from puhui.settings import Settings
from puhui.simulation.driver import simulate
from puhui.store import models as m
from tests.conftest import Database


def test_simulation_plays_applications_loans_and_repayments(
    database: Database, tmp_path: Path
) -> None:
    platform = Platform(
        Settings(
            database_url=database.url,
            key_dir=tmp_path / "keys",
            var_dir=tmp_path,
            simulation=True,
            webhook_dispatcher=False,
        )
    )
    phases: set[str] = set()
    summary = simulate(
        platform,
        n=40,
        seed=11,
        fraud_rate=0.1,
        months=6,
        on_progress=lambda phase, done, total: phases.add(phase),
    )
    platform.close()
    assert not summary.errors, summary.errors
    assert summary.applications == 40
    assert sum(summary.decisions.values()) == 40
    assert summary.decisions["approved"] == summary.loans > 0
    assert summary.repayments > summary.loans  # several instalments each within six months
    assert summary.fraud_total > 0 and summary.fraud_stopped > 0
    assert summary.latency_ms["p50"] > 0
    assert phases == {"applications", "repayments", "loan status"}
    with database.sessions() as s:
        assert s.query(m.Repayment).count() == summary.repayments
        assert s.query(m.Loan).filter(m.Loan.disbursed_at.is_not(None)).count() == summary.loans
