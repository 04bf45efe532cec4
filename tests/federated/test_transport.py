"""HttpChannel over real TLS on loopback: payloads, retries, exactly-once delivery, refused
certificates and roles, and a peer process that is killed or restarted mid-conversation.

Everything here is real: sockets, TLS handshakes with certificates from a real CA, and peer
processes started with ``python -c`` and killed with SIGKILL. Timeouts are short so that the
failure paths finish in about a second each.
"""

from __future__ import annotations

import http.client
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from puhui.federated.channel import MessageLog, decode, encode
from puhui.federated.config import NetworkSettings
from puhui.federated.errors import FederatedError, PeerTimeout, ProtocolMismatch
from puhui.federated.pki import PartyFiles
from puhui.federated.transport import (
    HttpChannel,
    PeerClosed,
    PeerRejected,
    PeerRestarted,
    PeerUnreachable,
)
from tests.federated.conftest import Federation

FAST = NetworkSettings(
    connect_timeout=2.0,
    message_timeout=10.0,
    startup_timeout=5.0,
    heartbeat=0.2,
    retries=3,
    backoff=0.05,
    backoff_max=0.2,
)


def _channel(
    role: str,
    tls: PartyFiles,
    port: int,
    peer_port: int,
    network: NetworkSettings = FAST,
    **kwargs: Any,
) -> HttpChannel:
    return HttpChannel(
        role,
        peer_url=f"https://localhost:{peer_port}",
        tls=tls,
        listen_host="127.0.0.1",
        listen_port=port,
        network=network,
        **kwargs,
    )


@pytest.fixture
def ports(free_port: Callable[[], int]) -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def pair(
    federation: Federation, ports: tuple[int, int]
) -> Iterator[tuple[HttpChannel, HttpChannel]]:
    """A connected (guest, host) pair of channels in this process."""
    log = MessageLog()
    guest = _channel("guest", federation.guest, ports[0], ports[1], log=log).start()
    host = _channel("host", federation.host, ports[1], ports[0], log=log).start()
    try:
        guest.connect()
        host.connect()
        yield guest, host
    finally:
        guest.close()
        host.close()


def test_big_ints_arrays_and_20_mb_cross_exactly(pair: tuple[HttpChannel, HttpChannel]) -> None:
    guest, host = pair
    assert host.run_id == guest.run_id is not None  # the host adopted the guest's run
    ciphertexts = [(7**k) << 4000 for k in range(50)] + [-(2**3000)]
    guest.send("enc", {"c": ciphertexts, "n": 2**2048 + 1})
    got = host.recv("enc")
    assert got == {"c": ciphertexts, "n": 2**2048 + 1}

    grad = np.linspace(-1, 1, 1001, dtype=np.float64).reshape(7, 143)
    host.send("grad", [grad, np.arange(5, dtype=np.int32), np.array([True, False])])
    back = guest.recv("grad")
    np.testing.assert_array_equal(back[0], grad)
    assert back[1].dtype == np.int32 and back[2].dtype == np.bool_

    big = np.random.default_rng(0).integers(0, 255, 20 * 1024 * 1024, dtype=np.uint8).tobytes()
    started = time.perf_counter()
    guest.send("big", big)
    assert host.recv("big") == big
    assert time.perf_counter() - started < 5

    for i in range(50):  # many small round trips reuse one connection
        guest.send("ping", i)
        assert host.recv("ping") == i
        host.send("pong", -i)
        assert guest.recv("pong") == -i

    assert guest.stats.bytes_sent == host.stats.bytes_received > 20 * 1024 * 1024
    assert host.stats.bytes_sent == guest.stats.bytes_received
    log = guest._log
    assert log is not None
    big_logged = [m for m in log.messages if m.tag == "big"]
    assert len(big_logged) == 1 and big_logged[0].data == encode(big)  # once, exact bytes
    assert big_logged[0].sender == "guest"


def test_messages_under_one_tag_keep_their_order_across_threads(
    pair: tuple[HttpChannel, HttpChannel],
) -> None:
    guest, host = pair
    received: list[int] = []
    reader = threading.Thread(target=lambda: received.extend(host.recv("seq") for _ in range(200)))
    reader.start()
    for i in range(200):
        guest.send("seq", i)
        if i % 40 == 0:
            guest.send("other", i)
    reader.join(10)
    assert received == list(range(200))
    assert [host.recv("other") for _ in range(5)] == [0, 40, 80, 120, 160]


def test_send_retries_until_a_late_peer_starts(
    federation: Federation, ports: tuple[int, int]
) -> None:
    patient = replace(FAST, retries=10, backoff=0.05, backoff_max=0.3)
    guest = _channel("guest", federation.guest, ports[0], ports[1], patient).start()
    host = _channel("host", federation.host, ports[1], ports[0], patient)
    outcome: list[BaseException | None] = []

    def send() -> None:
        try:
            guest.send("early", "hello")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    try:
        sender.start()
        time.sleep(0.5)  # the guest meets "connection refused" a few times meanwhile
        assert not outcome
        host.start()
        sender.join(5)
        assert outcome == [None]
        assert host.recv("early") == "hello"
    finally:
        guest.close()
        host.close()


def test_send_gives_up_after_the_retry_budget(
    federation: Federation, ports: tuple[int, int]
) -> None:
    with _channel("guest", federation.guest, ports[0], ports[1]) as guest:
        started = time.perf_counter()
        with pytest.raises(PeerUnreachable) as caught:
            guest.send("psi/1", b"x")
        assert time.perf_counter() - started < 3
        message = str(caught.value)
        assert f"https://localhost:{ports[1]}" in message and "'psi/1'" in message
        assert "3 attempts" in message and "refused" in message.lower()
        with pytest.raises(PeerUnreachable):  # the run stays failed: no silent gap
            guest.send("psi/2", b"y")


def test_connect_waits_for_the_peer_then_says_who_is_missing(
    federation: Federation, ports: tuple[int, int]
) -> None:
    with (
        _channel("host", federation.host, ports[1], ports[0]) as host,
        pytest.raises(PeerUnreachable, match=r"the guest at https://localhost:\d+ did not"),
    ):
        host.connect(timeout=0.5)


def _raw_client(files: PartyFiles, port: int) -> http.client.HTTPSConnection:
    """A plain TLS client with the given certificate: what a retried or forged POST looks like."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(files.ca_cert)
    ctx.load_cert_chain(files.cert, files.key)
    return http.client.HTTPSConnection("localhost", port, context=ctx, timeout=5)


def _post(
    conn: http.client.HTTPSConnection, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, str]:
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read().decode()


def test_a_retried_post_is_delivered_once(federation: Federation, ports: tuple[int, int]) -> None:
    with _channel("host", federation.host, ports[1], ports[0], run_id="run-1") as host:
        conn = _raw_client(federation.guest, ports[1])
        headers = {
            "X-Puhui-Run": "run-1",
            "X-Puhui-Role": "guest",
            "X-Puhui-Epoch": "e" * 16,
            "X-Puhui-Tag": "psi%2F1",
            "X-Puhui-Seq": "1",
        }
        body = encode({"points": b"\x01" * 64})
        assert _post(conn, "/v1/message", headers, body) == (200, "ok")
        assert _post(conn, "/v1/message", headers, body) == (200, "duplicate")  # answer was "lost"
        assert host.recv("psi/1") == {"points": b"\x01" * 64}
        with pytest.raises(PeerTimeout):
            host.recv("psi/1", timeout=0.3)
        assert _post(conn, "/v1/message", {**headers, "X-Puhui-Seq": "2"}, encode(2)) == (200, "ok")
        assert host.recv("psi/1") == 2

        status, text = _post(conn, "/v1/message", {**headers, "X-Puhui-Run": "run-9"}, body)
        assert status == 409 and "run id mismatch" in text
        with pytest.raises(ProtocolMismatch, match="run 'run-1', the guest in run 'run-9'"):
            host.recv("psi/2")
        conn.close()


def test_run_ids_must_agree(federation: Federation, ports: tuple[int, int]) -> None:
    guest = _channel("guest", federation.guest, ports[0], ports[1], run_id="june").start()
    host = _channel("host", federation.host, ports[1], ports[0], run_id="july").start()
    try:
        with pytest.raises(ProtocolMismatch, match=r"set the same run_id in both party\.toml"):
            guest.connect()
        with pytest.raises(ProtocolMismatch, match="run id mismatch"):
            host.recv("anything", timeout=2)
    finally:
        guest.close()
        host.close()


def test_a_peer_from_another_ca_is_refused_both_ways(
    federation: Federation, ports: tuple[int, int]
) -> None:
    guest = _channel("guest", federation.guest, ports[0], ports[1]).start()
    intruder = _channel("host", federation.foreign_host, ports[1], ports[0]).start()
    try:
        started = time.perf_counter()
        with pytest.raises(PeerRejected, match="presented a certificate this host does not trust"):
            intruder.connect()
        # The intruder refused the guest's certificate during the TLS handshake with the
        # guest's server; the guest's recv says so at once instead of waiting for its 10 s
        # message timeout.
        with pytest.raises(PeerRejected, match=r"refused this guest's certificate \(.*UNKNOWN_CA"):
            guest.recv("psi/2")
        with pytest.raises(PeerRejected, match="presented a certificate this guest does not trust"):
            guest.connect()
        assert time.perf_counter() - started < 3
    finally:
        guest.close()
        intruder.close()


def test_the_server_refuses_a_foreign_client_in_the_tls_handshake(
    federation: Federation, ports: tuple[int, int]
) -> None:
    with _channel("host", federation.host, ports[1], ports[0]) as host:
        # A client that trusts our CA (so it accepts the server) but holds a foreign cert.
        mixed = PartyFiles(
            federation.host.ca_cert, federation.foreign_guest.cert, federation.foreign_guest.key
        )
        conn = _raw_client(mixed, ports[1])
        with pytest.raises(ssl.SSLError, match=r"(?i)unknown ca|alert"):
            _post(conn, "/v1/hello", {}, b"")  # with TLS 1.3 the alert comes on first read
        conn.close()
        with pytest.raises(PeerRejected, match=r"refused a connection from 127\.0\.0\.1:\d+: .*CA"):
            host.recv("psi/1", timeout=2)

        bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no client certificate at all
        bare.load_verify_locations(federation.host.ca_cert)
        anonymous = http.client.HTTPSConnection("localhost", ports[1], context=bare, timeout=5)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _post(anonymous, "/v1/hello", {}, b"")
        anonymous.close()


def test_a_peer_with_the_wrong_role_is_refused_both_ways(
    federation: Federation, ports: tuple[int, int]
) -> None:
    # The guest's peer.url points at another guest (a copied config, a wrong port).
    guest = _channel("guest", federation.guest, ports[0], ports[1]).start()
    other_guest = _channel("guest", federation.guest, ports[1], ports[0]).start()
    try:
        with pytest.raises(
            PeerRejected, match=r"certificate for the guest role .* expects the host"
        ):
            guest.connect()
    finally:
        guest.close()
        other_guest.close()

    # Server side: a client with a valid certificate for the wrong role gets a 403 and the
    # server's own side learns why.
    with _channel("host", federation.host, ports[1], ports[0]) as host:
        conn = _raw_client(federation.host, ports[1])  # a host calling a host
        status, text = _post(conn, "/v1/hello", {}, b"")
        conn.close()
        assert status == 403 and "accepts only the guest" in text
        with pytest.raises(PeerRejected, match="is for the host role, but this host accepts only"):
            host.recv("psi/1", timeout=2)


def test_a_closing_peer_ends_the_wait_at_once(pair: tuple[HttpChannel, HttpChannel]) -> None:
    guest, host = pair
    guest.send("last", 1)

    def fail_inside() -> None:
        with host:
            raise ValueError("local detail that must not cross")

    with pytest.raises(ValueError):
        fail_inside()
    started = time.perf_counter()
    with pytest.raises(PeerClosed, match=r"stopped with an error \(ValueError\)") as caught:
        guest.recv("reply")
    assert "local detail" not in str(caught.value)
    assert time.perf_counter() - started < 1
    with pytest.raises(PeerClosed):
        guest.send("more", 2)


def test_recv_times_out_with_the_tag(pair: tuple[HttpChannel, HttpChannel]) -> None:
    guest, _ = pair
    with pytest.raises(PeerTimeout, match="'nothing'"):
        guest.recv("nothing", timeout=0.3)


def test_a_message_over_the_receivers_limit_is_refused(
    federation: Federation, ports: tuple[int, int]
) -> None:
    small = replace(FAST, max_message_bytes=10_000)
    guest = _channel("guest", federation.guest, ports[0], ports[1]).start()
    host = _channel("host", federation.host, ports[1], ports[0], small).start()
    try:
        guest.connect()
        guest.send("fits", b"x" * 5_000)
        with pytest.raises(FederatedError, match="'huge' message is 50003 bytes, over the host's"):
            guest.send("huge", b"x" * 50_000)  # refused before uploading, from the hello
        assert host.recv("fits") == b"x" * 5_000
    finally:
        guest.close()
        host.close()

    with _channel("host", federation.host, ports[1], ports[0], small):
        conn = _raw_client(federation.guest, ports[1])  # a sender that ignores the limit
        status, text = _post(conn, "/v1/message", {"X-Puhui-Role": "guest"}, b"x" * 50_000)
        assert status == 413 and "over this party's limit of 10000" in text
        conn.close()


# --------------------------------------------------------------------- peer processes

_PEER = """
import json, sys
from pathlib import Path
from puhui.federated.config import NetworkSettings
from puhui.federated.errors import FederatedError
from puhui.federated.pki import PartyFiles
from puhui.federated.transport import HttpChannel

spec = json.loads(sys.argv[1])
tls = PartyFiles(*(Path(p) for p in spec["tls"]))
channel = HttpChannel(
    "host", peer_url=spec["peer_url"], tls=tls, listen_port=spec["port"],
    network=NetworkSettings(**spec["network"]),
)
try:
    channel.start()
    print("listening", flush=True)
    if spec["mode"] == "echo":
        channel.connect()
        for _ in range(spec["replies"]):
            channel.send("pong", channel.recv("ping"))
        channel.recv("never")  # silent from now on: the test kills us here
    else:  # "passive": listen only
        channel.recv("never", timeout=60)
except FederatedError as exc:
    print(f"error: {exc}", file=sys.stderr, flush=True)
    sys.exit(3)
"""


def _spawn_host(
    federation: Federation, port: int, guest_port: int, mode: str
) -> subprocess.Popen[str]:
    spec = {
        "tls": [
            str(p) for p in (federation.host.ca_cert, federation.host.cert, federation.host.key)
        ],
        "peer_url": f"https://localhost:{guest_port}",
        "port": port,
        "network": {**vars(FAST), "message_timeout": 30.0},
        "mode": mode,
        "replies": 3,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _PEER, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "listening"  # its server is up
    return process


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(5)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            _kill(process)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _converse(guest: HttpChannel, rounds: int) -> None:
    for i in range(rounds):
        guest.send("ping", {"round": i, "c": 2**1500 + i})
        assert guest.recv("pong") == {"round": i, "c": 2**1500 + i}


def test_a_peer_killed_mid_conversation_is_noticed_while_waiting(
    federation: Federation, ports: tuple[int, int], processes: list[subprocess.Popen[str]]
) -> None:
    with _channel("guest", federation.guest, ports[0], ports[1]) as guest:
        processes.append(_spawn_host(federation, ports[1], ports[0], "echo"))
        guest.connect()
        _converse(guest, 3)
        guest.send("ping", "are you there?")  # delivered; the host now stays silent
        _kill(processes[0])
        started = time.perf_counter()
        with pytest.raises(PeerUnreachable, match="stopped answering while this guest waited"):
            guest.recv("pong")  # message_timeout is 10 s; the heartbeat notices far sooner
        assert time.perf_counter() - started < 3


def test_a_peer_killed_mid_conversation_fails_the_next_send(
    federation: Federation, ports: tuple[int, int], processes: list[subprocess.Popen[str]]
) -> None:
    with _channel("guest", federation.guest, ports[0], ports[1]) as guest:
        processes.append(_spawn_host(federation, ports[1], ports[0], "echo"))
        guest.connect()
        _converse(guest, 2)
        _kill(processes[0])
        started = time.perf_counter()
        with pytest.raises(PeerUnreachable, match=r"could not send 'ping' to the host at https"):
            guest.send("ping", "again")
        assert time.perf_counter() - started < 3


def test_a_restarted_peer_is_detected_by_the_survivor(
    federation: Federation, ports: tuple[int, int], processes: list[subprocess.Popen[str]]
) -> None:
    with _channel("guest", federation.guest, ports[0], ports[1]) as guest:
        processes.append(_spawn_host(federation, ports[1], ports[0], "echo"))
        guest.connect()
        _converse(guest, 2)
        _kill(processes[0])
        # A new host process on the same address, which has not said hello yet: the guest's
        # next message is addressed to the old process and must not be taken by the new one.
        processes.append(_spawn_host(federation, ports[1], ports[0], "passive"))
        with pytest.raises(PeerRestarted, match="has restarted"):
            guest.send("ping", "round 3")
        with pytest.raises(PeerRestarted):
            guest.recv("pong")


def test_a_restarted_peer_that_reconnects_fails_on_both_sides(
    federation: Federation, ports: tuple[int, int], processes: list[subprocess.Popen[str]]
) -> None:
    with _channel("guest", federation.guest, ports[0], ports[1]) as guest:
        processes.append(_spawn_host(federation, ports[1], ports[0], "echo"))
        guest.connect()
        _converse(guest, 2)
        _kill(processes[0])
        restarted = _spawn_host(federation, ports[1], ports[0], "echo")
        processes.append(restarted)
        assert restarted.wait(10) == 3  # the new host is told the guest is mid-run ...
        assert restarted.stderr is not None
        assert "still in a run with an earlier process of this host" in restarted.stderr.read()
        with pytest.raises(PeerRestarted, match="the host restarted during the run"):
            guest.recv("pong")  # ... and the guest fails instead of waiting for a reply


def test_decode_refuses_garbage_from_a_peer() -> None:
    with pytest.raises(FederatedError, match="malformed"):
        decode(b"\xc1")


def test_settings_are_read_from_party_config(federation: Federation, tmp_path: Path) -> None:
    from puhui.federated.config import config_example, load_config

    text = config_example("host").replace('"pki/', '"' + str(federation.host.cert.parent) + "/")
    (tmp_path / "host.csv").write_text("uscc\nA\n")
    (tmp_path / "party.toml").write_text(text, encoding="utf-8")
    channel = HttpChannel.from_config(load_config(tmp_path / "party.toml"))
    assert channel.role == "host" and channel.peer == "guest"
    assert channel.peer_url == "https://localhost:9443" and channel.port == 9444
    assert channel.run_id is None  # the host waits for the guest to name the run
