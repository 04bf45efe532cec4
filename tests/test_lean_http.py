"""benchmarks/lean_http.py, the load generator's HTTP/1.1 client, against real local servers.

A scripted ``asyncio.start_server`` server gives exact control of what goes over the wire
(chunk boundaries, closes at awkward moments, answers that never come); a tiny Starlette app
under uvicorn checks the client against the server the benchmark actually drives.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load_lean_http() -> ModuleType:
    """The module is a script-side helper in benchmarks/ (not a package): load it by path."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lean_http.py"
    spec = importlib.util.spec_from_file_location("lean_http", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lean_http", module)
    spec.loader.exec_module(module)
    return module


lean_http = _load_lean_http()
LeanClient = lean_http.LeanClient
LeanConnectionError = lean_http.LeanConnectionError
LeanHTTPError = lean_http.LeanHTTPError


# -- a scripted server ------------------------------------------------------------------------


class Script:
    """What the scripted server saw: connections accepted, requests per connection."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[int, int, str, bytes, dict[str, str]]] = []


Handler = Callable[[asyncio.StreamWriter, int, int, str, bytes], Awaitable[bool]]
"""(writer, connection number, request number on it, path, body) → keep the connection?"""


def _answer(status: int, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _echo(conn: int, req: int, path: str, body: bytes) -> bytes:
    payload = {"conn": conn, "req": req, "path": path, "body": body.decode()}
    return _answer(200, json.dumps(payload).encode(), "Content-Type: application/json")


@asynccontextmanager
async def scripted_server(handler: Handler) -> AsyncIterator[tuple[str, Script]]:
    script = Script()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script.connections += 1
        conn, req = script.connections, 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                req += 1
                script.requests.append((conn, req, path, body, headers))
                if not await handler(writer, conn, req, path, body):
                    return
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", script
    finally:
        server.close()


async def echo_handler(
    writer: asyncio.StreamWriter, conn: int, req: int, path: str, body: bytes
) -> bool:
    if path.startswith("/slow"):
        await asyncio.sleep(float(path.partition("=")[2] or "2"))
    writer.write(_echo(conn, req, path, body))
    return True


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 4))


# -- keep-alive, headers, pool ----------------------------------------------------------------


def test_keep_alive_connection_is_reused_and_request_is_as_given() -> None:
    async def scenario() -> None:
        async with scripted_server(echo_handler) as (url, script), LeanClient(url) as client:
            for i in range(5):
                r = await client.request(
                    "POST",
                    f"/v1/x?i={i}",
                    [(b"X-Test", b"v%d" % i)],
                    b'{"n": %d}' % i,
                    timeout=2,
                )
                assert r.status == 200
                assert r.headers["content-type"] == "application/json"
                expected = {
                    "conn": 1,
                    "req": i + 1,
                    "path": f"/v1/x?i={i}",
                    "body": f'{{"n": {i}}}',
                }
                assert r.json() == expected
            assert client.connections_opened == 1
            assert script.connections == 1
            _, _, _, body, headers = script.requests[-1]
            assert body == b'{"n": 4}'
            assert headers["x-test"] == "v4"
            assert headers["content-length"] == "8"
            assert headers["host"] == url.removeprefix("http://")

    run(scenario())


def test_dict_headers_and_bad_header_values_are_refused() -> None:
    async def scenario() -> None:
        async with scripted_server(echo_handler) as (url, script), LeanClient(url) as client:
            r = await client.request("GET", "/", {"Authorization": "Bearer t"}, b"", timeout=2)
            assert r.status == 200
            assert script.requests[0][4]["authorization"] == "Bearer t"
            with pytest.raises(ValueError):
                await client.request("GET", "/", {"X": "a\r\nInjected: 1"}, b"", timeout=2)

    run(scenario())


def test_pool_never_opens_more_than_limit_connections() -> None:
    async def scenario() -> None:
        async with scripted_server(echo_handler) as (url, script), LeanClient(url, limit=2) as c:
            answers = await asyncio.gather(
                *(c.request("GET", "/slow=0.05", (), b"", timeout=2) for _ in range(6))
            )
            assert [a.status for a in answers] == [200] * 6
            assert c.connections_opened == 2
            assert script.connections == 2

    run(scenario())


def test_waiting_for_a_free_connection_counts_against_the_timeout() -> None:
    async def scenario() -> None:
        async with scripted_server(echo_handler) as (url, _), LeanClient(url, limit=1) as c:
            slow = asyncio.ensure_future(c.request("GET", "/slow=0.5", (), b"", timeout=2))
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            with pytest.raises(TimeoutError):
                await c.request("GET", "/", (), b"", timeout=0.1)
            assert time.perf_counter() - started < 0.4
            assert (await slow).status == 200
            assert (await c.request("GET", "/", (), b"", timeout=2)).status == 200

    run(scenario())


# -- body framing -----------------------------------------------------------------------------


def test_chunked_answer_split_anywhere_is_read_and_connection_reused() -> None:
    async def handler(
        writer: asyncio.StreamWriter, conn: int, req: int, path: str, body: bytes
    ) -> bool:
        if path != "/chunked":
            writer.write(_echo(conn, req, path, body))
            return True
        wire = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
            b"5;ext=1\r\nhello\r\n1A\r\n, chunked world and more!!\r\n0\r\nX-Trailer: y\r\n\r\n"
        )
        for cut in range(0, len(wire), 7):  # pieces that split sizes, data and CRLFs
            writer.write(wire[cut : cut + 7])
            await writer.drain()
            await asyncio.sleep(0.001)
        return True

    async def scenario() -> None:
        async with scripted_server(handler) as (url, script), LeanClient(url) as client:
            r = await client.request("GET", "/chunked", (), b"", timeout=2)
            assert r.status == 200
            assert r.body == b"hello, chunked world and more!!"
            assert "content-length" not in r.headers
            r2 = await client.request("GET", "/after", (), b"", timeout=2)
            assert r2.json()["req"] == 2  # same connection, parser state reset
            assert script.connections == 1

    run(scenario())


def test_no_body_statuses_and_body_until_close() -> None:
    async def handler(
        writer: asyncio.StreamWriter, conn: int, req: int, path: str, body: bytes
    ) -> bool:
        if path == "/204":
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            return True
        if path == "/100":  # an interim answer first, then the real one
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + _echo(conn, req, path, body))
            return True
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it until the close")
        await writer.drain()
        return False

    async def scenario() -> None:
        async with scripted_server(handler) as (url, script), LeanClient(url) as client:
            r = await client.request("GET", "/204", (), b"", timeout=2)
            assert (r.status, r.body) == (204, b"")
            r = await client.request("GET", "/100", (), b"", timeout=2)
            assert (r.status, r.json()["req"]) == (200, 2)
            r = await client.request("GET", "/until-close", (), b"", timeout=2)
            assert r.body == b"all of it until the close"
            r = await client.request("GET", "/204", (), b"", timeout=2)
            assert r.status == 204
            assert script.connections == 2  # the close was honoured

    run(scenario())


def test_connection_close_answer_drops_the_connection() -> None:
    async def handler(
        writer: asyncio.StreamWriter, conn: int, req: int, path: str, body: bytes
    ) -> bool:
        writer.write(_answer(200, b"bye", "Connection: close"))
        return True  # the server would keep it open: the client must not reuse it anyway

    async def scenario() -> None:
        async with scripted_server(handler) as (url, script), LeanClient(url) as client:
            for _ in range(3):
                r = await client.request("GET", "/", (), b"", timeout=2)
                assert r.body == b"bye"
            assert client.connections_opened == script.connections == 3
            assert client.retries == 0

    run(scenario())


# -- closes, retries, timeouts ----------------------------------------------------------------


def test_idle_connection_closed_by_server_is_noticed_and_replaced() -> None:
    async def handler(
        writer: asyncio.StreamWriter, conn: int, req: int, path: str, body: bytes
    ) -> bool:
        writer.write(_echo(conn, req, path, body))
        await writer.drain()
        await asyncio.sleep(0.02)
        return False  # close once idle, as uvicorn does after its keep-alive timeout

    async def scenario() -> None:
        async with scripted_server(handler) as (url, script), LeanClient(url) as client:
            assert (await client.request("GET", "/a", (), b"", timeout=2)).json()["conn"] == 1
            await asyncio.sleep(0.1)
            assert (await client.request("GET", "/b", (), b"", timeout=2)).json()["conn"] == 2
            assert client.retries == 0
            assert script.connections == 2

    run(scenario())


def test_reused_connection_closed_before_any_answer_byte_is_retried_once_fresh() -> None:
    async def handler(
        writer: asyncio.StreamWriter, conn: int, req: int, path: str, body: bytes
    ) -> bool:
        if req >= 2:  # the race: the server closed just as the client reused the connection
            return False
        writer.write(_echo(conn, req, path, body))
        return True

    async def scenario() -> None:
        async with scripted_server(handler) as (url, script), LeanClient(url) as client:
            assert (await client.request("POST", "/a", (), b"1", timeout=2)).json()["conn"] == 1
            r = await client.request("POST", "/b", (), b"2", timeout=2)
            assert (r.json()["conn"], r.json()["req"], r.json()["body"]) == (2, 1, "2")
            assert client.retries == 1
            assert [(c, p) for c, _, p, _, _ in script.requests] == [
                (1, "/a"),
                (1, "/b"),
                (2, "/b"),
            ]

    run(scenario())


def test_fresh_connection_closed_before_answering_is_not_retried() -> None:
    async def handler(
        writer: asyncio.StreamWriter, conn: int, req: int, path: str, body: bytes
    ) -> bool:
        return False

    async def scenario() -> None:
        async with scripted_server(handler) as (url, script), LeanClient(url) as client:
            with pytest.raises(LeanConnectionError):
                await client.request("POST", "/", (), b"x", timeout=2)
            assert len(script.requests) == 1
            assert client.retries == 0

    run(scenario())


def test_answer_cut_off_midway_is_an_error_and_not_retried() -> None:
    async def handler(
        writer: asyncio.StreamWriter, conn: int, req: int, path: str, body: bytes
    ) -> bool:
        if req == 1:
            writer.write(_echo(conn, req, path, body))
            return True
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        return False

    async def scenario() -> None:
        async with scripted_server(handler) as (url, script), LeanClient(url) as client:
            await client.request("GET", "/a", (), b"", timeout=2)
            with pytest.raises(LeanConnectionError) as caught:
                await client.request("GET", "/b", (), b"", timeout=2)
            assert caught.value.answer_started
            assert client.retries == 0
            assert len(script.requests) == 2

    run(scenario())


def test_timeout_raises_timeout_error_and_discards_the_connection() -> None:
    async def scenario() -> None:
        async with scripted_server(echo_handler) as (url, script), LeanClient(url) as client:
            started = time.perf_counter()
            with pytest.raises(TimeoutError):
                await client.request("GET", "/slow=2", (), b"", timeout=0.2)
            assert time.perf_counter() - started < 1.0
            r = await client.request("GET", "/next", (), b"", timeout=2)
            assert r.json()["conn"] == 2  # the late answer can never be taken for this one
            assert client.connections_opened == script.connections == 2

    run(scenario())


def test_cancelled_request_frees_its_slot() -> None:
    async def scenario() -> None:
        async with scripted_server(echo_handler) as (url, _), LeanClient(url, limit=1) as c:
            task = asyncio.ensure_future(c.request("GET", "/slow=2", (), b"", timeout=3))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await c.request("GET", "/", (), b"", timeout=1)).status == 200

    run(scenario())


def test_unreachable_server_and_garbage_answers_raise_lean_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there

    async def garbage(
        writer: asyncio.StreamWriter, conn: int, req: int, path: str, body: bytes
    ) -> bool:
        writer.write(b"SMTP ready\r\n\r\n")
        return True

    async def scenario() -> None:
        async with LeanClient(f"http://127.0.0.1:{port}") as client:
            with pytest.raises(LeanConnectionError):
                await client.request("GET", "/", (), b"", timeout=2)
        async with scripted_server(garbage) as (url, _), LeanClient(url) as client:
            with pytest.raises(LeanHTTPError):
                await client.request("GET", "/", (), b"", timeout=2)

    run(scenario())


# -- against uvicorn --------------------------------------------------------------------------


@pytest.fixture
def uvicorn_url() -> Iterator[str]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"n": len(body), "sig": request.headers.get("x-sig")}, status_code=201)

    async def stream(request: Request) -> Response:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"part{i};".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/stream", stream)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 3
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=3)
        sock.close()


def test_against_uvicorn_keep_alive_json_and_chunked(uvicorn_url: str) -> None:
    async def scenario() -> None:
        async with LeanClient(uvicorn_url, limit=4) as client:
            answers: list[Any] = []
            for i in range(5):
                headers = {"Content-Type": "application/json", "X-Sig": f"s{i}"}
                r = await client.request("POST", "/echo", headers, b"x" * i, timeout=2)
                answers.append((r.status, r.json()))
            assert answers == [(201, {"n": i, "sig": f"s{i}"}) for i in range(5)]
            r = await client.request("GET", "/stream", (), b"", timeout=2)
            assert r.headers.get("transfer-encoding") == "chunked"
            assert r.body == b"part0;part1;part2;part3;part4;"
            assert client.connections_opened == 1

    run(scenario())
