"""``puhui serve`` as operators run it: a real process (and, on PostgreSQL, two workers) with
the audit sealer inside it. On PostgreSQL the API's transactions leave their audit records
waiting and the sealer chains them, at the latest when the server stops; on SQLite they are
chained inline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from sqlalchemy import func, select

from puhui.api.client import PartnerClient
from puhui.api.partners import create_partner
from puhui.bootstrap import Platform
from puhui.privacy import audit
from puhui.settings import Settings
from puhui.simulation.server import free_port
from puhui.store.models import AuditPending, AuditRecord
from tests.api.test_journey_api import body
from tests.conftest import Database


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    with httpx2.Client(base_url=base_url, timeout=2.0) as http:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if http.get("/healthz").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"server did not come up:\n{log.read_text(errors='replace')[-3000:]}")


def _records_of(database: Database, application_id: str) -> tuple[int, int]:
    """(waiting, chained) audit records about the application."""
    with database.sessions() as s:
        waiting = s.scalar(select(func.count()).where(AuditPending.subject_id == application_id))
        chained = s.scalar(select(func.count()).where(AuditRecord.subject_id == application_id))
    return int(waiting or 0), int(chained or 0)


def test_serve_leaves_audit_records_to_its_sealer_which_chains_them_by_shutdown(
    database: Database, tmp_path: Path
) -> None:
    settings = Settings(database_url=database.url, key_dir=tmp_path / "keys", var_dir=tmp_path)
    platform = Platform(settings)
    creds = create_partner(platform.uow(), platform.vault, name="Serve test", code="SERVE_BANK")
    platform.close()
    port = free_port()
    workers = "2" if database.kind == "postgresql" else "1"
    env = {
        **os.environ,
        "PUHUI_DATABASE_URL": database.url,
        "PUHUI_KEY_DIR": str(tmp_path / "keys"),
        "PUHUI_VAR_DIR": str(tmp_path),
        "PUHUI_LOG_LEVEL": "WARNING",
        # After its first (idle) round the sealer rests until the server stops.
        "PUHUI_AUDIT_SEAL_INTERVAL_SECONDS": "3600",
    }
    env.pop("PUHUI_AUDIT_SEALING", None)
    log = tmp_path / "server.log"
    command = [sys.executable, "-c", "from puhui.cli import app; app()", "serve"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--workers", workers],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=out,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(base_url, process, log)
        time.sleep(0.5)  # the sealer's first round is behind it
        with PartnerClient(creds.client_id, creds.client_secret, base_url=base_url) as bank:
            r = bank.post("/v1/applications", json=body())
        assert r.status_code == 201, r.text
        application_id = r.json()["id"]
        waiting, chained = _records_of(database, application_id)
        if database.kind == "postgresql":  # submitted and decided: committed, not chained
            assert waiting >= 2 and chained == 0
        else:  # SQLite: chained inline, nothing waits
            assert waiting == 0 and chained >= 2
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert _records_of(database, application_id) == (0, waiting + chained)
    with database.sessions() as s:
        report = audit.verify(s)
    assert report.ok, report.problems
    assert report.waiting == 0
