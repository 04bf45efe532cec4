"""FastAPI app factory: the open platform's ``/v1`` API for partner institutions.

Every ``/v1`` call is authenticated (OAuth2 client-credentials token and a request signature,
``api.auth``), rate limited, size limited and idempotent on POST (``api.idempotency``); every
response carries a correlation id; every error is an RFC 9457 problem (``api.problems``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from sqlalchemy import text
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from puhui import __version__
from puhui.api import applications, loans, offers, problems, repayments, reviews, webhooks
from puhui.api.auth import authenticate, install_security
from puhui.api.rebalance import ReconnectEvery
from puhui.api.schemas import contains_nul
from puhui.bootstrap import Platform
from puhui.domain.errors import FieldError, ValidationError
from puhui.store import migrate

CORRELATION_HEADER = "X-Correlation-ID"

ROUTERS = (
    applications.router,
    offers.router,
    loans.router,
    repayments.router,
    reviews.router,
    webhooks.router,
)
"""The ``/v1`` routers; every one sits behind partner authentication (token + signature)."""


async def no_nul_in_parameters(request: Request) -> None:
    """PostgreSQL text cannot hold U+0000: refuse it in path and query parameters (422)."""
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    errors = [
        FieldError(name, "string_nul", "text must not contain NUL (U+0000)")
        for name, value in params
        if contains_nul(value)
    ]
    if errors:
        raise ValidationError(errors)


class CorrelationId:
    """Echo the caller's ``X-Correlation-ID`` (or a new one) on every response, refusals too.

    Plain ASGI rather than ``BaseHTTPMiddleware``: it wraps ``send`` instead of buffering the
    response through a second task, which costs nothing per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(CORRELATION_HEADER, "")
        cid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = cid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = cid
            await send(message)

        await self.app(scope, receive, send_with_id)


def nodelay_on_passed_sockets() -> None:
    """Make asyncio turn Nagle's algorithm off on every accepted TCP connection of this process.

    With ``--workers N`` uvicorn binds the listening socket in the supervisor and hands it to
    each worker; that socket, and so every connection accepted from it, reports protocol 0
    instead of TCP, and asyncio sets ``TCP_NODELAY`` only on sockets that say TCP (uvicorn
    issue #3149). A response then leaves in two writes (head, body) and the second waits for
    the client's delayed ACK: measured, every keep-alive request after the first took 44 ms
    instead of 1-2. The single-process server is not affected (asyncio binds that socket
    itself). The family and type of the socket are what matter, so that is all this checks.
    """
    import asyncio.base_events
    import socket

    if not hasattr(socket, "TCP_NODELAY") or not hasattr(asyncio.base_events, "_set_nodelay"):
        return  # nothing to fix where asyncio never sets it

    def set_nodelay(sock: socket.socket) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    asyncio.base_events._set_nodelay = set_nodelay


def create_app(platform: Platform) -> FastAPI:
    threads = platform.settings.api_threads

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Per event loop, so here (the server's loop) rather than at import.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="Puhui open platform",
        version=__version__,
        summary="Digital lending for small and micro enterprises (普惠金融).",
        openapi_url="/openapi.json",
        docs_url="/docs",
    )
    app.state.platform = platform
    problems.install(app)
    install_security(app)  # before the correlation id, so refusals carry it too
    for router in ROUTERS:
        app.include_router(
            router,
            dependencies=[Depends(authenticate), Depends(no_nul_in_parameters)],
            responses=problems.PROBLEM_RESPONSES,
        )
    schema_head = migrate.head_revision(platform.settings.resolved_database_url)

    app.add_middleware(CorrelationId)
    if platform.settings.workers > 1 and platform.settings.api_reconnect_every:
        app.add_middleware(ReconnectEvery, every=platform.settings.api_reconnect_every)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, Any]:
        """Liveness and readiness: the database answers, the schema is current, keys loaded."""
        with platform.engine.connect() as conn:
            conn.execute(text("select 1"))
        current = migrate.current_revision(platform.engine)
        return {
            "status": "ok" if current == schema_head else "migration_pending",
            "version": __version__,
            "database": platform.engine.dialect.name,
            "schema_revision": current,
            "active_master_key": platform.keyring.active_master_id,
        }

    return app


def app_from_settings() -> FastAPI:
    """App factory for ``puhui serve --workers N``: each worker process builds the platform
    from the ``PUHUI_*`` environment, exactly as a single-process ``puhui serve`` does."""
    import logging

    from puhui.bootstrap import platform
    from puhui.privacy.masking import install_log_masking

    nodelay_on_passed_sockets()
    p = platform()
    logging.basicConfig(level=p.settings.log_level)
    install_log_masking()
    return create_app(p)
