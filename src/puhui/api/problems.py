"""RFC 9457 problem details for every error the platform returns.

A ``ValidationError`` becomes 422 with every field error listed; other domain errors keep
their stable ``code``. Clients switch on ``code``, never on the human ``detail`` text.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from puhui.domain.errors import DomainError, InvalidTransition, ValidationError
from puhui.privacy.errors import ConsentRequired, PersonalDataErased

PROBLEM_JSON = "application/problem+json"

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
