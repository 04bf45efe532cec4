"""``puhui federated``: the CA commands, party.toml validation, and ``align`` end to end with
two real party processes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from puhui.cli import app
from puhui.federated.config import ConfigError, config_example, load_config
from puhui.federated.pki import PartyFiles
from puhui.federated.transport import HttpChannel

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    return result.output


def _pki(root: Path) -> tuple[PartyFiles, PartyFiles]:
    run("federated", "ca", "init", "--dir", str(root / "ca"))
    run(
        "federated",
        "ca",
        "issue",
        "--dir",
        str(root / "ca"),
        "--role",
        "guest",
        "--name",
        "示范银行",
        "--out",
        str(root / "guest" / "pki"),
    )
    run(
        "federated",
        "ca",
        "issue",
        "--dir",
        str(root / "ca"),
        "--role",
        "host",
        "--name",
        "数据伙伴",
        "--out",
        str(root / "host" / "pki"),
        "--host",
        "localhost",
        "--host",
        "127.0.0.1",
    )
    files = []
    for role in ("guest", "host"):
        pki = root / role / "pki"
        files.append(PartyFiles(pki / "ca.crt", pki / f"{role}.crt", pki / f"{role}.key"))
    return files[0], files[1]


def test_ca_commands_make_files_the_transport_accepts(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    guest_files, host_files = _pki(tmp_path)
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert guest_files.key.stat().st_mode & 0o777 == 0o600
    out = refused("federated", "ca", "init", "--dir", str(tmp_path / "ca"))
    assert "already exists" in out

    gp, hp = free_port(), free_port()
    with (
        HttpChannel(
            "guest", peer_url=f"https://localhost:{hp}", tls=guest_files, listen_port=gp
        ) as guest,
        HttpChannel(
            "host", peer_url=f"https://127.0.0.1:{gp}", tls=host_files, listen_port=hp
        ) as host,
    ):
        guest.connect(timeout=5)
        guest.send("hello", 2**4096 - 1)
        assert host.recv("hello", timeout=5) == 2**4096 - 1


def test_config_example_is_a_valid_config(tmp_path: Path) -> None:
    for role in ("guest", "host"):
        out = run("federated", "config-example", "--role", role)
        assert out == config_example(role)
        (tmp_path / f"{role}.toml").write_text(out, encoding="utf-8")
        cfg = load_config(tmp_path / f"{role}.toml", check_files=False)
        assert cfg.role == role and cfg.peer_role != role
        assert cfg.tls.cert == tmp_path / "pki" / f"{role}.crt"  # relative to the file
        assert cfg.network.message_timeout == 600 and cfg.network.retries == 6
        assert (cfg.data.label_column is not None) == (role == "guest")


def test_config_errors_name_the_field_and_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "party.toml"
    path.write_text(
        """
role = "host"
run_id = "bad id!"
[listen]
port = 70000
[peer]
url = "http://partner.example:9443"
[tls]
ca_cert = "missing/ca.crt"
cert = "missing/host.crt"
[data]
file = "host.csv"
id_column = "uscc"
label_column = "bad"
[timeouts]
mesage = 5
connect = -1
[retry]
attempts = 0
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    label = str(path)
    problems = caught.value.problems
    for expected in (
        f"{label}: peer.url: must start with https://",
        f"{label}: listen.port: must be a whole number from 1 to 65535",
        f"{label}: run_id: must be 1-128 letters",
        f"{label}: tls.ca_cert: file not found: {tmp_path / 'missing' / 'ca.crt'}",
        f"{label}: tls.key: required",
        f"{label}: data.file: file not found",
        f"{label}: data.label_column: only the guest holds labels",
        f"{label}: timeouts.mesage: unknown setting",
        f"{label}: timeouts.connect: must be greater than 0",
        f"{label}: retry.attempts: must be a whole number of at least 1",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)

    out = refused("federated", "align", "--role", "host", "--config", str(path))
    assert "peer.url: must start with https://" in out and "tls.key: required" in out

    path.write_text("role = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_align_refuses_a_config_for_the_other_role(tmp_path: Path) -> None:
    (tmp_path / "guest.toml").write_text(config_example("guest"), encoding="utf-8")
    cfg = load_config(tmp_path / "guest.toml", check_files=False)
    for path in (cfg.tls.ca_cert, cfg.tls.cert, cfg.tls.key, cfg.data.file):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    out = refused("federated", "align", "--role", "host", "--config", str(tmp_path / "guest.toml"))
    assert "role: is 'guest', but the command was given --role host" in out


def _party_toml(role: str, port: int, peer_port: int) -> str:
    text = config_example(role)
    for old, new in (
        (f"port = {9443 if role == 'guest' else 9444}", f"port = {port}"),
        (f"localhost:{9444 if role == 'guest' else 9443}", f"localhost:{peer_port}"),
        ('host = "0.0.0.0"', 'host = "127.0.0.1"'),
        ("message = 600", "message = 30"),
        ("startup = 300", "startup = 30"),
    ):
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.mark.libsodium
def test_align_end_to_end_with_two_processes(tmp_path: Path, free_port: Callable[[], int]) -> None:
    _pki(tmp_path)
    gp, hp = free_port(), free_port()
    (tmp_path / "guest" / "party.toml").write_text(_party_toml("guest", gp, hp), encoding="utf-8")
    (tmp_path / "host" / "party.toml").write_text(_party_toml("host", hp, gp), encoding="utf-8")
    shared = [f"9133{k:014d}" for k in range(40)]
    guest_only = [f"9144{k:014d}" for k in range(25)]
    host_only = [f"9155{k:014d}" for k in range(30)]
    with (tmp_path / "guest" / "guest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uscc", "revenue", "bad"])
        for k, uscc in enumerate(guest_only + shared[::-1]):
            writer.writerow([uscc, k * 10, k % 2])
    with (tmp_path / "host" / "host.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uscc", "invoices"])
        for k, uscc in enumerate(shared[::2] + host_only + shared[1::2]):
            writer.writerow([uscc, k])

    # The `puhui federated` group itself (registered in puhui.cli, as the CliRunner tests
    # above show), without importing the whole platform: each party starts in half a second.
    command = "from puhui.federated_cli import federated_app; federated_app()"
    env = {**os.environ, "COLUMNS": "120"}
    parties = {
        role: subprocess.Popen(
            [
                sys.executable,
                "-c",
                command,
                "align",
                "--role",
                role,
                "--config",
                str(tmp_path / role / "party.toml"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for role in ("host", "guest")
    }
    outputs = {}
    try:
        for role, process in parties.items():
            outputs[role], _ = process.communicate(timeout=60)
            assert process.returncode == 0, outputs[role]
    finally:
        for process in parties.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    def aligned(role: str) -> list[str]:
        with (tmp_path / role / f"{role}.aligned.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        data = list(csv.DictReader((tmp_path / role / f"{role}.csv").open(newline="")))
        assert all(data[int(r["row"])]["uscc"] == r["uscc"] for r in rows)  # row indexes right
        return [r["uscc"] for r in rows]

    guest_rows, host_rows = aligned("guest"), aligned("host")
    assert guest_rows == host_rows  # line k is the same business on both sides
    assert sorted(guest_rows) == sorted(shared)
    for role, own in (("guest", 65), ("host", 70)):
        assert "shared rows" in outputs[role] and "40" in outputs[role]
        assert f"{role}: {own} ids from" in outputs[role]
        assert "bytes sent" in outputs[role] and f"wrote {tmp_path / role}" in outputs[role]
