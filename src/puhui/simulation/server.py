"""A platform server on a free loopback port, in a background thread, for the simulator.

The simulator talks to it over real HTTP exactly as a partner would; only the server's clock
is the simulator's (``simulation=True`` honours ``X-Puhui-Simulated-Time``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from puhui.api.app import create_app
from puhui.bootstrap import Platform


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(platform: Platform) -> Iterator[str]:
    """Serve ``platform`` until the block ends; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(platform), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="simulated-platform")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the simulation server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
