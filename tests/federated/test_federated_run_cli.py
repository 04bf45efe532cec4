"""``puhui federated demo | sample-data | register``: two real party processes, and a federated
model put in the registry the way an operator would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from puhui.cli import app
from puhui.federated.artifact import FederatedArtifact
from puhui.federated.channel import local_pair
from puhui.federated.demo import prepare
from puhui.federated.runner import read_party_csv, run_guest, run_host
from puhui.federated.secureboost.params import SecureBoostParams
from puhui.risk.serving import LiveModels
from puhui.settings import get_settings
from puhui.store.db import make_engine, make_session_factory
from tests.conftest import Database

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.libsodium
def test_demo_runs_both_parties_as_processes(tmp_path: Path) -> None:
    out = run("federated", "demo", "--data", "breast", "--trees", "2", "--dir", str(tmp_path))
    assert "Demo summary: secureboost" in out and "held-out AUC" in out
    assert "[guest] guest: align (PSI) done" in out and "[host] host: train done" in out
    guest = json.loads((tmp_path / "guest" / "out" / "guest_report.json").read_text())
    host = json.loads((tmp_path / "host" / "out" / "host_report.json").read_text())
    assert guest["aligned"] == host["aligned"] < min(guest["rows"], host["rows"])
    assert guest["metrics"]["federated_auc"] > 0.9
    assert "metrics" in host and not host["metrics"]  # the host never sees labels or scores
    host_model = json.loads((tmp_path / "host" / "out" / "host_model.json").read_text())
    guest_model = json.loads((tmp_path / "guest" / "out" / "guest_model.json").read_text())
    assert host_model["model_id"] == guest_model["model_id"]
    assert "splits" not in guest_model and "trees" not in host_model


def test_demo_refuses_an_unknown_data_set(tmp_path: Path) -> None:
    result = runner.invoke(app, ["federated", "demo", "--data", "nope", "--dir", str(tmp_path)])
    assert result.exit_code == 1 and "--data: one of" in result.output


@pytest.fixture
def env(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PUHUI_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUHUI_DATABASE_URL", database.url)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.libsodium
def test_sample_data_train_register_and_promote(env: Path, database: Database) -> None:
    out = run("federated", "sample-data", "--applications", "900", "--out", str(env / "sme"))
    assert "wrote" in out
    guest = read_party_csv(env / "sme" / "guest.csv", "uscc", "defaulted")
    host = read_party_csv(env / "sme" / "host.csv", "uscc")
    guest_end, host_end = local_pair(timeout=120)
    thread = threading.Thread(target=run_host, args=(host_end, host))
    thread.start()
    model, report = run_guest(guest_end, guest, "secureboost", SecureBoostParams(n_trees=2))
    thread.join(timeout=120)
    (env / "guest_model.json").write_text(json.dumps(model.to_dict()))  # type: ignore[union-attr]
    (env / "guest_report.json").write_text(json.dumps(report.as_dict()))

    run("migrate")
    out = run(
        "federated",
        "register",
        "--model",
        str(env / "guest_model.json"),
        "--report",
        str(env / "guest_report.json"),
    )
    model_id = out.split("(")[1].split(")")[0]
    assert "kind federated" in out
    listed = run("models", "list")
    assert "federated" in listed
    run("models", "promote", model_id, "--by", "test", "--reason", "joint model with a partner")
    engine = make_engine(database.url)
    try:
        with make_session_factory(engine)() as session:
            live = LiveModels().current(session).champion
        assert isinstance(live.artifact, FederatedArtifact)
        assert live.artifact.model.model_id == model.model_id
        assert 0 <= live.artifact.metadata["test_metrics"]["federated_auc"] <= 1
    finally:
        engine.dispose()

    refused = runner.invoke(
        app,
        [
            "models",
            "score",
            "--data",
            str(env / "sme" / "guest.csv"),
            "--out",
            str(env / "scored.csv"),
            "--model",
            model_id,
        ],
        env={"COLUMNS": "200"},
    )
    assert refused.exit_code == 1 and "only with its data partner" in refused.output

    other = env / "other.json"
    other.write_text(json.dumps({**model.to_dict(), "feature_names": ["a"] * 9}))  # type: ignore[union-attr]
    result = runner.invoke(app, ["federated", "register", "--model", str(other)])
    assert result.exit_code == 1 and "platform's guest features" in result.output


@pytest.mark.libsodium
def test_a_party_killed_mid_training_fails_the_other_clearly(tmp_path: Path) -> None:
    """SIGKILL the host while the trees grow: the guest stops with a message naming the host,
    within the heartbeat bound, and writes no model — never a silently different one."""
    configs = prepare(tmp_path, "breast")
    for role in ("guest", "host"):  # notice a dead peer in about 3 s instead of 5 × 6
        text = configs[role].read_text(encoding="utf-8")
        configs[role].write_text(
            text.replace("[timeouts]\n", "[timeouts]\nheartbeat = 0.5\n")
            + "\n[retry]\nattempts = 3\nbackoff = 0.1\nbackoff_max = 0.5\n",
            encoding="utf-8",
        )
    command = "from puhui.federated_cli import federated_app; federated_app()"
    env = {**os.environ, "COLUMNS": "200"}

    def start(role: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                command,
                "train",
                "--role",
                role,
                "--config",
                str(configs[role]),
                "--out",
                str(tmp_path / role / "out"),
                "--trees",
                "200",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )

    host, guest = start("host"), start("guest")
    try:
        assert host.stdout is not None
        for line in host.stdout:  # wait until training is under way
            if "host: train …" in line:
                break
        time.sleep(2.0)
        assert guest.poll() is None, "training should still be running"
        host.send_signal(signal.SIGKILL)
        started = time.monotonic()
        output, _ = guest.communicate(timeout=60)
        waited = time.monotonic() - started
    finally:
        for process in (host, guest):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert guest.returncode == 1, output
    # the guest finds out waiting for a message (heartbeats fail) or sending one (retries fail),
    # whichever it was doing when the host died; either way the message names the host
    assert re.search(r"error: (.* )?the host at https://localhost:\d+", output), output
    assert "start the run again" in output
    assert waited < 30
    assert not (tmp_path / "guest" / "out" / "guest_model.json").exists()


def test_demo_prepares_the_platforms_own_split(tmp_path: Path) -> None:
    configs = prepare(tmp_path, "sme")
    guest = (tmp_path / "guest" / "guest.csv").read_text().splitlines()
    host = (tmp_path / "host" / "host.csv").read_text().splitlines()
    assert guest[0].startswith("uscc,defaulted,") and host[0].startswith("uscc,invoice_")
    assert 15_000 < len(guest) < 20_001 and 15_000 < len(host) < 20_001
    assert 'label_column = "defaulted"' in configs["guest"].read_text()
    assert "label_column" not in configs["host"].read_text()
