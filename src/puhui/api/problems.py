"""RFC 9457 problem details for every error the platform returns.

A ``ValidationError`` becomes 422 with every field error listed; other domain errors keep
their stable ``code``. Clients switch on ``code``, never on the human ``detail`` text.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from puhui.domain.errors import DomainError, InvalidTransition, ValidationError
from puhui.privacy.errors import ConsentRequired, PersonalDataErased

PROBLEM_JSON = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "rule", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
"""RFC 9457 problem details as :func:`problem` writes them; further members may follow."""

_COMMON_PROBLEMS = {
    400: "Idempotency-Key missing or malformed (idempotency.*), or a body that cannot be read",
    401: "Token or signature missing, invalid or expired (auth.*)",
    404: "No such resource for this partner (not_found)",
    409: "Not allowed in the resource's state (invalid_transition), or idempotency.in_progress",
    413: "Request body over the size limit (request_too_large)",
    422: "The body broke the schema or a business rule (validation_failed, errors lists "
    "each field and rule), or idempotency.key_reused",
    429: "Rate limit exceeded (rate_limited); retry after Retry-After seconds",
}

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}
    for status, text in _COMMON_PROBLEMS.items()
}
"""The problem responses every authenticated ``/v1`` operation may give (docs/api.md §5)."""

_STATUS: dict[type[DomainError], int] = {
    ValidationError: 422,
    InvalidTransition: 409,
    ConsentRequired: 403,
    PersonalDataErased: 410,
}


def problem(
    status: int, code: str, title: str, detail: str, request: Request, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://puhui.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), 400)
        extra: dict[str, Any] = {}
        if isinstance(exc, ValidationError) and all(r.endswith(".not_found") for r in exc.rules):
            # Another tenant's resource and a missing one look the same: 404, never 403.
            return problem(404, "not_found", "Not Found", str(exc), request)
        if isinstance(exc, ValidationError):
            extra["errors"] = [
                {"field": e.field, "rule": e.rule, "message": e.message} for e in exc.errors
            ]
        return problem(status, exc.code, type(exc).__name__, str(exc), request, **extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body that is not UTF-8, an unknown path, a wrong method).
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        title = HTTPStatus(exc.status_code).phrase
        response = problem(exc.status_code, code, title, str(exc.detail), request)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err["loc"] if p != "body"),
                "rule": f"schema.{err['type']}",
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        return problem(
            422,
            "validation_failed",
            "ValidationError",
            "the request does not match the schema",
            request,
            errors=errors,
        )
