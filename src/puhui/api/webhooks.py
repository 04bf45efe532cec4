"""``/v1/webhooks``: a partner manages its own endpoints and reads its delivery log.

Thin by design: the schema rejects unknown fields and wrong types, the use cases in
``puhui.webhooks.endpoints`` apply the rules and the tenant scope (the institution comes from
the authenticated partner, never from the request). An endpoint id of another institution is
answered 404, exactly like one that does not exist. Responses that carry a signing secret are
marked ``Cache-Control: no-store``: the secret is shown once and must not linger in caches.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from puhui.api.context import Partner, platform_of
from puhui.api.problems import problem
from puhui.api.schemas import StrictModel
from puhui.webhooks.endpoints import (
    DEFAULT_OVERLAP,
    MAX_OVERLAP,
    DeliveryInfo,
    EndpointInfo,
    EndpointNotFound,
    delivery_log,
    disable_endpoint,
    list_endpoints,
    register_endpoint,
    rotate_endpoint_secret,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class _Strict(StrictModel):
    pass


class EndpointIn(_Strict):
    url: str = Field(
        max_length=2000,
        description="https URL that receives POSTed events",
        examples=["https://partner.example.com/puhui/webhooks"],
    )
    event_types: list[str] = Field(
        max_length=50,
        description='Event types from the catalogue (docs/webhooks.md), or ["*"] for all',
        examples=[["application.approved", "application.declined", "loan.disbursed"]],
    )


class EndpointOut(_Strict):
    id: str
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(description="whsec_… signing secret; shown in this response only")


class EndpointList(_Strict):
    data: list[EndpointOut]


class RotateIn(_Strict):
    overlap_seconds: int = Field(
        default=int(DEFAULT_OVERLAP.total_seconds()),
        ge=0,
        le=int(MAX_OVERLAP.total_seconds()),
        strict=True,
        description="How long deliveries also carry a signature under the old secret "
        "(0 to 604800; 0 drops it at once, e.g. after a leak)",
    )


class RotatedOut(_Strict):
    endpoint: EndpointOut
    secret: str = Field(description="The new whsec_… secret; shown in this response only")
    previous_secret_valid_until: datetime | None


class DeliveryOut(_Strict):
    id: int
    endpoint_id: str
    endpoint_url: str
    event_id: str = Field(description="The webhook-id header: de-duplicate on it")
    event_type: str | None
    status: str = Field(description="pending, delivered, failed or cancelled")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryList(_Strict):
    data: list[DeliveryOut]


def _endpoint(info: EndpointInfo) -> EndpointOut:
    return EndpointOut(
        id=info.id,
        url=info.url,
        event_types=list(info.event_types),
        active=info.active,
        created_at=info.created_at,
    )


def _delivery(d: DeliveryInfo) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        endpoint_id=d.endpoint_id,
        endpoint_url=d.endpoint_url,
        event_id=d.event_id,
        event_type=d.event_type,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        delivered_at=d.delivered_at,
        created_at=d.created_at,
    )


def _not_found(request: Request, exc: EndpointNotFound) -> JSONResponse:
    return problem(404, "not_found", "Not Found", str(exc), request)


@router.post("", status_code=201, response_model=EndpointCreatedOut)
def create_endpoint(
    body: EndpointIn, request: Request, response: Response, partner: Partner
) -> EndpointCreatedOut:
    """Register an endpoint; the response holds its signing secret, shown this once."""
    p = platform_of(request)
    info, secret = register_endpoint(
        p.uow(partner.actor),
        p.vault,
        institution_id=partner.institution_id,
        url=body.url,
        event_types=body.event_types,
        allow_loopback=p.settings.webhook_allow_loopback,
    )
    response.headers["Cache-Control"] = "no-store"
    return EndpointCreatedOut(**_endpoint(info).model_dump(), secret=secret)


@router.get("", response_model=EndpointList)
def get_endpoints(request: Request, partner: Partner) -> EndpointList:
    """The caller's endpoints, active and disabled (secrets are never listed)."""
    p = platform_of(request)
    infos = list_endpoints(p.uow(partner.actor), institution_id=partner.institution_id)
    return EndpointList(data=[_endpoint(i) for i in infos])


@router.get("/deliveries", response_model=DeliveryList)
def get_deliveries(
    request: Request,
    partner: Partner,
    endpoint_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query()] = 50,
) -> DeliveryList | JSONResponse:
    """The delivery log, newest first: each event sent to each endpoint, attempts, outcome."""
    p = platform_of(request)
    try:
        rows = delivery_log(
            p.uow(partner.actor),
            institution_id=partner.institution_id,
            endpoint_id=endpoint_id,
            status=status,
            limit=limit,
        )
    except EndpointNotFound as exc:
        return _not_found(request, exc)
    return DeliveryList(data=[_delivery(d) for d in rows])


@router.delete("/{endpoint_id}", response_model=EndpointOut)
def delete_endpoint(
    endpoint_id: str, request: Request, partner: Partner
) -> EndpointOut | JSONResponse:
    """Disable an endpoint: nothing more is sent to it and its pending deliveries are cancelled.

    The endpoint stays in the list (inactive) so its delivery log remains readable.
    """
    p = platform_of(request)
    try:
        info = disable_endpoint(
            p.uow(partner.actor), institution_id=partner.institution_id, endpoint_id=endpoint_id
        )
    except EndpointNotFound as exc:
        return _not_found(request, exc)
    return _endpoint(info)


@router.post("/{endpoint_id}/rotate-secret", response_model=RotatedOut)
def rotate_secret(
    endpoint_id: str,
    request: Request,
    response: Response,
    partner: Partner,
    body: RotateIn | None = None,
) -> RotatedOut | JSONResponse:
    """Replace the signing secret; the old one keeps signing too for the overlap."""
    p = platform_of(request)
    overlap = timedelta(seconds=(body or RotateIn()).overlap_seconds)
    try:
        rotated = rotate_endpoint_secret(
            p.uow(partner.actor),
            p.vault,
            institution_id=partner.institution_id,
            endpoint_id=endpoint_id,
            overlap=overlap,
        )
    except EndpointNotFound as exc:
        return _not_found(request, exc)
    response.headers["Cache-Control"] = "no-store"
    return RotatedOut(
        endpoint=_endpoint(rotated.endpoint),
        secret=rotated.secret,
        previous_secret_valid_until=rotated.previous_valid_until,
    )
