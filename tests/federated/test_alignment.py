"""Sample alignment over a channel: both sides get the same businesses in the same order."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from puhui.federated.alignment import (
    PSI_VERSION,
    align_as_guest,
    align_as_host,
    psi_backend,
    read_ids,
)
from puhui.federated.channel import Channel, MessageLog, local_pair
from puhui.federated.config import NetworkSettings
from puhui.federated.errors import FederatedError, ProtocolMismatch
from puhui.federated.transport import HttpChannel
from tests.federated.conftest import Federation

pytestmark = pytest.mark.libsodium


def _ids(seed: int, n_guest: int, n_host: int, overlap: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    pool = [f"91{rng.randrange(10**16):016d}" for _ in range(n_guest + n_host)]
    guest = pool[:overlap] + pool[overlap:n_guest]
    host = pool[:overlap] + pool[n_guest : n_guest + n_host - overlap]
    rng.shuffle(guest)
    rng.shuffle(host)
    return guest, host


def _both(
    guest: Callable[[], list[int]], host: Callable[[], list[int]]
) -> tuple[list[int], list[int]]:
    """Run the host in a thread and the guest here; re-raise whichever side failed."""
    result: dict[str, Any] = {}

    def run_host() -> None:
        try:
            result["host"] = host()
        except BaseException as exc:
            result["host_error"] = exc

    thread = threading.Thread(target=run_host)
    thread.start()
    try:
        guest_rows = guest()
    finally:
        thread.join(30)
    if "host_error" in result:
        raise result["host_error"]
    return guest_rows, result["host"]


def _check_aligned(
    guest_ids: Sequence[str], host_ids: Sequence[str], g: list[int], h: list[int]
) -> None:
    assert len(g) == len(h)
    assert [guest_ids[i] for i in g] == [host_ids[j] for j in h]  # row k is the same business
    assert {guest_ids[i] for i in g} == set(guest_ids) & set(host_ids)


def test_both_sides_get_the_intersection_in_one_order() -> None:
    guest_ids, host_ids = _ids(1, 600, 450, 170)
    log = MessageLog()
    guest, host = local_pair(log=log, timeout=30)
    g, h = _both(lambda: align_as_guest(guest, guest_ids), lambda: align_as_host(host, host_ids))
    _check_aligned(guest_ids, host_ids, g, h)
    assert g != sorted(g)  # the common order is the guest's shuffled one, not its file order
    assert [m.tag for m in log.messages] == ["psi/1", "psi/2", "psi/3"]
    wire = b"".join(m.data for m in log.messages)
    assert not any(identifier.encode() in wire for identifier in guest_ids[:50] + host_ids[:50])


def test_a_seed_makes_the_run_reproducible() -> None:
    guest_ids, host_ids = _ids(2, 80, 90, 30)
    runs = []
    for _ in range(2):
        guest, host = local_pair(timeout=30)
        runs.append(
            _both(
                lambda: align_as_guest(guest, guest_ids, seed=5),  # noqa: B023
                lambda: align_as_host(host, host_ids, seed=5),  # noqa: B023
            )
        )
    assert runs[0] == runs[1]
    _check_aligned(guest_ids, host_ids, *runs[0])


def test_no_overlap_gives_empty_alignments() -> None:
    guest, host = local_pair(timeout=30)
    assert _both(lambda: align_as_guest(guest, ["a", "b"]), lambda: align_as_host(host, ["c"])) == (
        [],
        [],
    )


def test_over_mutual_tls(federation: Federation, free_port: Callable[[], int]) -> None:
    guest_ids, host_ids = _ids(3, 2000, 1500, 640)
    network = NetworkSettings(connect_timeout=2, message_timeout=20, startup_timeout=5)
    gp, hp = free_port(), free_port()
    with (
        HttpChannel(
            "guest",
            peer_url=f"https://localhost:{hp}",
            tls=federation.guest,
            listen_port=gp,
            network=network,
        ) as guest,
        HttpChannel(
            "host",
            peer_url=f"https://127.0.0.1:{gp}",
            tls=federation.host,
            listen_port=hp,
            network=network,
        ) as host,
    ):
        g, h = _both(
            lambda: align_as_guest(guest, guest_ids), lambda: align_as_host(host, host_ids)
        )
    _check_aligned(guest_ids, host_ids, g, h)
    assert len(g) == 640


def test_duplicate_ids_are_refused_by_row() -> None:
    guest, _ = local_pair(timeout=1)
    with pytest.raises(FederatedError, match="rows 0 and 2 hold the same id"):
        align_as_guest(guest, ["A", "B", "A"])
    with pytest.raises(FederatedError, match="row 1 is empty"):
        align_as_guest(guest, ["A", ""])


def test_a_peer_speaking_another_version_is_refused() -> None:
    guest, host = local_pair(timeout=5)
    guest.send("psi/1", {"v": 1, "points": b""})  # version 1: ristretto255 encodings
    with pytest.raises(ProtocolMismatch, match="PSI version 1"):
        align_as_host(host, ["A"])


def test_an_unknown_psi_backend_is_named_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guest, _ = local_pair(timeout=1)
    monkeypatch.setenv("PUHUI_PSI_BACKEND", "fastest")
    with pytest.raises(FederatedError, match="cannot start: PUHUI_PSI_BACKEND must be one of"):
        align_as_guest(guest, ["A"])
    with pytest.raises(FederatedError, match="cannot start: PUHUI_PSI_BACKEND must be one of"):
        psi_backend()  # what the party runner asks before it prints its progress line


def test_a_malformed_reply_is_refused() -> None:
    guest, host = local_pair(timeout=5)
    host.send("psi/2", {"v": PSI_VERSION, "reblinded": b"\x00" * 31, "points": b""})
    with pytest.raises(FederatedError, match="not a whole number of points"):
        align_as_guest(guest, ["A"])

    guest, host = local_pair(timeout=5)
    host.send("psi/2", {"v": PSI_VERSION, "reblinded": b"\x00" * 32, "points": b"\x00" * 32})
    with pytest.raises(
        FederatedError, match=r"alignment failed: peer point at position 0 has small order"
    ):
        align_as_guest(guest, ["A"])


def test_the_host_checks_the_positions_it_is_sent() -> None:
    guest, host = local_pair(timeout=5)

    def lying_guest(channel: Channel) -> list[int]:
        channel.recv("psi/2")
        channel.send("psi/3", {"v": PSI_VERSION, "matches": [0, 0]})
        return []

    def fake_first(channel: Channel) -> list[int]:
        from puhui.federated.psi import PsiParty

        channel.send("psi/1", {"v": PSI_VERSION, "points": b"".join(PsiParty().blind(["A", "B"]))})
        return lying_guest(channel)

    with pytest.raises(FederatedError, match="invalid or repeated position"):
        _both(lambda: fake_first(guest), lambda: align_as_host(host, ["A", "B"]))


def test_read_ids(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("\ufeffuscc, amount\n0123 ,5\n91X,6\n\n", encoding="utf-8")
    assert read_ids(path, "uscc") == ["0123", "91X"]  # text kept as written, BOM ignored
    with pytest.raises(FederatedError, match=r"no column 'id' \(columns: uscc, amount\)"):
        read_ids(path, "id")
    path.write_text("uscc\nA\n\nB\n ,\n", encoding="utf-8")
    with pytest.raises(FederatedError, match="line 5: 'uscc' is empty"):
        read_ids(path, "uscc")
    with pytest.raises(FederatedError, match="file not found"):
        read_ids(tmp_path / "missing.csv", "uscc")
