"""Bounds every API request is held to, and how the protocol layer refuses a request.

* **Body size.** A request body over ``api_max_body_bytes`` (1 MiB) is refused with 413
  ``request_too_large`` before any handler, authentication or database work sees it. The
  declared ``Content-Length`` is checked first, so a large upload is refused without reading
  it; a body without one (chunked) is read up to the cap and refused as soon as it passes it.
  The body is buffered here (at most the cap) and handed on unchanged: the signature check and
  the idempotency fingerprint both need the exact bytes anyway.
* **ApiProblem.** Authentication, idempotency and rate limiting refuse requests with status
  codes and headers of their own (``WWW-Authenticate``, ``Retry-After``); they raise
  :class:`ApiProblem`, which :func:`install_problem_handler` renders as RFC 9457
  ``application/problem+json`` through :func:`puhui.api.problems.problem`, like every other
  error of the platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from puhui.api.problems import problem

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""1 MiB: far above any API payload (an application is a few KiB), far below a memory risk."""


class ApiProblem(Exception):
    """A refusal by the protocol layer, rendered as problem+json with extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self, request: Request) -> JSONResponse:
        resp = problem(self.status, self.code, self.title, self.detail, request, **self.extra)
        for name, value in self.headers.items():
            resp.headers[name] = value
        return resp


def install_problem_handler(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return exc.response(request)


def request_too_large(limit: int) -> ApiProblem:
    return ApiProblem(
        413,
        "request_too_large",
        "Request body too large",
        f"the request body exceeds the limit of {limit} bytes",
        max_body_bytes=limit,
    )


class BodySizeLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413, buffer the rest."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to serve
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay_body(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = request_too_large(self.max_bytes).response(Request(scope))
        response.headers["Connection"] = "close"  # the rest of the body is not worth reading
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields an already-read body once, then defers to the server's.

    Middleware that must see the body (size cap, signature, idempotency fingerprint) reads
    it and hands the app this, so the handler still gets every byte.
    """
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
