"""Spread keep-alive connections over the API processes: every Nth answer closes its connection.

``puhui serve --workers N`` hands one listening socket to N processes, and a connection stays
with the process that accepted it for as long as the client keeps it alive. Partner clients
keep a few connections and reuse the most recently freed first (urllib3's pool is a LIFO
queue; the benchmark's generator does the same), so most requests ride a handful of
connections — and those can all belong to one process. Measured with two workers and eight
clients: one process at 90 % of a core, the other at 0.2 %, and the saturation 99/s instead
of 117-133/s (BENCHMARKS.md, issue 3, session 7).

So each process answers every ``every``-th request with ``Connection: close`` (RFC 9112 §9.6:
the client opens a new connection for its next request; partners' HTTP clients do this on
their own). The new connection goes to whichever process accepts it first, which is more
often the idle one, since the busy one is busy. Busier processes close more connections, so
the load drifts toward balance; a connection costs a TCP handshake every ``every`` requests.
Nothing is lost: the answer is complete before the connection closes. With one process there
is nothing to balance, and ``puhui serve`` leaves this off.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ReconnectEvery:
    """Plain ASGI middleware: ``Connection: close`` on every ``every``-th HTTP response."""

    def __init__(self, app: ASGIApp, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.app = app
        self.every = every
        self._served = 0  # one event loop per process: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self._served += 1
        if self._served % self.every:
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, receive, send_closing)
