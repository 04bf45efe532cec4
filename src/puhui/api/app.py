"""FastAPI app factory.

The open-platform issue adds the ``/v1`` routers (applications, offers, loans, webhooks) with
partner authentication; this factory already gives every response a correlation id, maps
errors to RFC 9457 problems and reports health.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from sqlalchemy import text

from puhui import __version__
from puhui.api import problems
from puhui.bootstrap import Platform
from puhui.store import migrate

CORRELATION_HEADER = "X-Correlation-ID"


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="Puhui open platform",
        version=__version__,
        summary="Digital lending for small and micro enterprises (普惠金融).",
        openapi_url="/openapi.json",
        docs_url="/docs",
    )
    app.state.platform = platform
    problems.install(app)
    schema_head = migrate.head_revision(platform.settings.resolved_database_url)

    @app.middleware("http")
    async def correlation_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get(CORRELATION_HEADER, "")
        cid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        request.state.correlation_id = cid
        response = await call_next(request)
        response.headers[CORRELATION_HEADER] = cid
        return response

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
