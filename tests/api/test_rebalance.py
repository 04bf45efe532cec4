"""``api.rebalance``: with several workers, every Nth answer closes its keep-alive connection,
so clients reconnect and their requests spread over the processes. Against a real uvicorn."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path
from typing import Any

import pytest

from puhui.api.app import create_app
from puhui.api.rebalance import ReconnectEvery
from puhui.bootstrap import Platform
from puhui.settings import Settings
from puhui.simulation.server import running_server
from tests.conftest import Database


def _platform(database: Database, tmp_path: Path, **settings: object) -> Platform:
    return Platform(
        Settings(
            database_url=database.url,
            key_dir=tmp_path / "keys",
            var_dir=tmp_path,
            **settings,  # type: ignore[arg-type]
        )
    )


def _exchange(stream: Any, sock: socket.socket) -> dict[str, str]:
    """One GET /healthz on an open connection; the answer's headers (body read and checked)."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert stream.readline().startswith(b"HTTP/1.1 200")
    headers = {}
    while (line := stream.readline().rstrip(b"\r\n")) != b"":
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    assert len(stream.read(int(headers["content-length"]))) == int(headers["content-length"])
    return headers


def test_every_third_answer_closes_the_connection_and_the_server_hangs_up(
    database: Database, tmp_path: Path
) -> None:
    platform = _platform(database, tmp_path, workers=2, api_reconnect_every=3)
    with running_server(platform) as base_url:
        host, port = base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            stream = sock.makefile("rb")
            seen = [_exchange(stream, sock).get("connection") for _ in range(3)]
            assert seen == [None, None, "close"]
            assert stream.read() == b""  # end of stream: the server closed the connection
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            assert _exchange(sock.makefile("rb"), sock).get("connection") is None  # counts on
    platform.close()


def test_one_process_has_nothing_to_balance(database: Database, tmp_path: Path) -> None:
    platform = _platform(database, tmp_path, workers=1, api_reconnect_every=1)
    with running_server(platform) as base_url:
        host, port = base_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        for _ in range(3):
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            assert response.getheader("connection") is None
        conn.close()
    platform.close()


def test_the_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ReconnectEvery(create_app, every=0)  # type: ignore[arg-type]
