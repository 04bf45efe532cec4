"""``puhui federated demo``: a whole federation on one machine, as two real processes.

It prepares what two operators would: a CA and a certificate per party, each party's
``party.toml`` on loopback ports, and each party's own data file — the guest's file (ids,
label, its columns) and the host's (ids, its columns) from ``data/federated/`` or from the
synthetic generator, with a few rows dropped on each side so that alignment has something to
do. Then it starts ``puhui federated train`` twice, streams both outputs with the role as
prefix, and returns the two parties' reports.
"""

from __future__ import annotations

import csv
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from puhui.federated.errors import FederatedError
from puhui.federated.pki import create_ca, issue_party_certificate

DATA_DIR = Path(__file__).resolve().parents[3] / "data" / "federated"
DATASETS = {
    "default_credit": (
        "default_credit_hetero_guest.csv",
        "default_credit_hetero_host.csv",
        "id",
        "y",
    ),
    "give_credit": ("give_credit_guest.csv", "give_credit_host.csv", "id", "y"),
    "breast": ("breast_hetero_guest.csv", "breast_hetero_host.csv", "id", "y"),
}
DROP_SHARE = 0.05
"""Share of rows each side drops (different rows), so each holds businesses the other lacks."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _copy_dropping(source: Path, target: Path, drop: float, seed: int) -> int:
    rng = random.Random(seed)
    with (
        source.open(newline="", encoding="utf-8") as src,
        target.open("w", newline="", encoding="utf-8") as dst,
    ):
        reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
        writer.writerow(next(reader))
        kept = 0
        for row in reader:
            if rng.random() >= drop:
                writer.writerow(row)
                kept += 1
    return kept


def _party_toml(role: str, port: int, peer_port: int, data: str, id_column: str, label: str) -> str:
    label_line = f'label_column = "{label}"\n' if role == "guest" else ""
    return (
        f'role = "{role}"\nname = "demo {role}"\n\n'
        f'[listen]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f'[peer]\nurl = "https://localhost:{peer_port}"\n\n'
        f'[tls]\nca_cert = "pki/ca.crt"\ncert = "pki/{role}.crt"\nkey = "pki/{role}.key"\n\n'
        f'[data]\nfile = "{data}"\nid_column = "{id_column}"\n{label_line}\n'
        "[timeouts]\nmessage = 900\nstartup = 60\n"
    )


def prepare(root: Path, dataset: str, seed: int = 2026) -> dict[str, Path]:
    """Write the CA, certificates, data files and party.toml of both parties under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    if dataset == "sme":
        from datetime import date

        from puhui.federated.sme_data import write_training_files
        from puhui.synthetic import generate

        population = generate(20_000, seed=seed, fraud_rate=0.02, start=date(2024, 1, 2), days=250)
        source = root / "source"
        write_training_files(population.applications, source / "guest.csv", source / "host.csv")
        files = (source / "guest.csv", source / "host.csv", "uscc", "defaulted")
    elif dataset in DATASETS:
        guest_name, host_name, id_column, label = DATASETS[dataset]
        if not DATA_DIR.is_dir():
            raise FederatedError(
                f"the demo data folder {DATA_DIR} is missing (a source checkout has it)"
            )
        files = (DATA_DIR / guest_name, DATA_DIR / host_name, id_column, label)
    else:
        raise FederatedError(f"--data: one of {', '.join([*DATASETS, 'sme'])} (got {dataset!r})")
    guest_src, host_src, id_column, label = files
    create_ca(root / "ca")
    ports = {"guest": _free_port(), "host": _free_port()}
    configs: dict[str, Path] = {}
    for k, (role, source) in enumerate((("guest", guest_src), ("host", host_src))):
        home = root / role
        issue_party_certificate(root / "ca", role, f"demo {role}", home / "pki")
        _copy_dropping(source, home / f"{role}.csv", DROP_SHARE, seed + k)
        peer = "host" if role == "guest" else "guest"
        configs[role] = home / "party.toml"
        configs[role].write_text(
            _party_toml(role, ports[role], ports[peer], f"{role}.csv", id_column, label),
            encoding="utf-8",
        )
    return configs


def run_demo(
    dataset: str,
    protocol: str,
    *,
    trees: int = 5,
    epochs: int = 3,
    directory: Path | None = None,
    echo: Callable[[str], Any] = print,
) -> dict[str, dict[str, Any]]:
    """Prepare, run both parties as processes, and return their reports (guest, host)."""
    root = directory or Path(tempfile.mkdtemp(prefix="puhui-federated-demo-"))
    echo(f"demo: preparing {dataset} in {root}")
    configs = prepare(root, dataset)
    command = "from puhui.federated_cli import federated_app; federated_app()"
    processes: dict[str, subprocess.Popen[str]] = {}
    for role in ("host", "guest"):
        processes[role] = subprocess.Popen(
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
                str(root / role / "out"),
                "--protocol",
                protocol,
                "--trees",
                str(trees),
                "--epochs",
                str(epochs),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "100"},
        )
    outputs: dict[str, list[str]] = {"guest": [], "host": []}

    def pump(role: str) -> None:
        stream = processes[role].stdout
        assert stream is not None
        for line in stream:
            outputs[role].append(line)
            echo(f"[{role}] {line.rstrip()}")

    threads = [threading.Thread(target=pump, args=(r,), daemon=True) for r in processes]
    for thread in threads:
        thread.start()
    try:
        for process in processes.values():
            process.wait(timeout=3600)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
        for thread in threads:
            thread.join(timeout=5)
    failed = [role for role, p in processes.items() if p.returncode != 0]
    if failed:
        raise FederatedError(
            f"the {' and '.join(failed)} process failed: {''.join(outputs[failed[0]][-5:]).strip()}"
        )
    return {
        role: json.loads((root / role / "out" / f"{role}_report.json").read_text(encoding="utf-8"))
        for role in ("guest", "host")
    }
