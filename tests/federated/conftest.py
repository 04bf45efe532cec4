"""Shared pieces of the federated tests, and the libsodium gate.

The PSI hashes ids with the system libsodium (ristretto255). Tests that use it — everything in
``test_psi.py``, and any test marked ``@pytest.mark.libsodium`` — are skipped with the reason
shown where it is missing, unless ``PUHUI_REQUIRE_LIBSODIUM=1`` (CI sets it) makes that a
failure. The other federated tests (transport, certificates, configuration, the codec) do not
need it and always run.

Fixtures: ``federation`` issues a CA with guest and host certificates, and a foreign CA with
its own pair, once per session; ``free_port`` gives a loopback port nobody listens on.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from puhui.federated.channel import local_pair
from puhui.federated.pki import PartyFiles, create_ca, issue_party_certificate
from puhui.federated.psi import PsiError, PsiParty
from puhui.federated.runner import read_party_csv, run_guest, run_host
from puhui.federated.secureboost.model import GuestModel, HostModel
from puhui.federated.secureboost.params import SecureBoostParams
from puhui.federated.sme_data import write_training_files
from puhui.synthetic import generate
from puhui.synthetic.model import SyntheticApplication

_PSI_MODULES = ("test_psi.py",)  # whole modules that need libsodium without a marker


def _libsodium_missing() -> str | None:
    try:
        PsiParty.from_seed(1).blind(["probe"])
    except PsiError as exc:
        return str(exc)
    return None


_MISSING = _libsodium_missing()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "libsodium: the test runs the PSI (system libsodium)")


def _needs_libsodium(item: pytest.Item) -> bool:
    path = Path(str(item.fspath))
    if "federated" not in path.parts:
        return False
    return path.name in _PSI_MODULES or item.get_closest_marker("libsodium") is not None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _MISSING is None:
        return
    needing = [item for item in items if _needs_libsodium(item)]
    if not needing:
        return
    if os.environ.get("PUHUI_REQUIRE_LIBSODIUM") == "1":
        raise pytest.UsageError(f"libsodium required but unusable: {_MISSING}")
    skip = pytest.mark.skip(reason=f"system libsodium (ristretto255) unavailable: {_MISSING}")
    for item in needing:
        item.add_marker(skip)


@dataclass(frozen=True)
class Federation:
    """Certificates for the tests: the operators' CA, a foreign CA, and parties of each."""

    ca_dir: Path
    guest: PartyFiles
    host: PartyFiles
    foreign_guest: PartyFiles  # a guest certificate from another CA
    foreign_host: PartyFiles


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    root = tmp_path_factory.mktemp("federation")
    create_ca(root / "ca")
    create_ca(root / "other-ca", name="Somebody else's CA")
    return Federation(
        ca_dir=root / "ca",
        guest=issue_party_certificate(root / "ca", "guest", "示范银行", root / "guest"),
        host=issue_party_certificate(root / "ca", "host", "数据伙伴", root / "host"),
        foreign_guest=issue_party_certificate(
            root / "other-ca", "guest", "intruder", root / "foreign-guest"
        ),
        foreign_host=issue_party_certificate(
            root / "other-ca", "host", "intruder", root / "foreign-host"
        ),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    return _free_port


@dataclass
class Trained:
    """A small SecureBoost model on the platform's own split (synthetic), both halves."""

    guest: GuestModel
    host: HostModel
    host_csv: Path
    applications: dict[str, SyntheticApplication]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("sme")
    population = generate(2500, seed=11, fraud_rate=0.0, start=date(2024, 1, 2), days=120)
    write_training_files(population.applications, root / "guest.csv", root / "host.csv")
    guest_data = read_party_csv(root / "guest.csv", "uscc", "defaulted")
    host_data = read_party_csv(root / "host.csv", "uscc")
    guest_end, host_end = local_pair(timeout=120)
    params = SecureBoostParams(n_trees=3, max_depth=3, workers=1)
    box: dict[str, HostModel] = {}

    def host() -> None:
        model, _ = run_host(host_end, host_data)
        assert isinstance(model, HostModel)
        box["host"] = model

    thread = threading.Thread(target=host)
    thread.start()
    guest, report = run_guest(guest_end, guest_data, "secureboost", params)
    thread.join(timeout=120)
    assert isinstance(guest, GuestModel) and report.aligned == len(guest_data.ids)
    firsts: dict[str, SyntheticApplication] = {}
    for app in population.applications:
        firsts.setdefault(app.enterprise.uscc, app)
    return Trained(guest, box["host"], root / "host.csv", firsts)
