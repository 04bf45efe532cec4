"""A real app with the protocol layer installed, a protected test router and a movable clock.

Shared by the tests of authentication, idempotency, rate limits and body limits. The app is
built exactly as production builds it (``create_app`` + ``install_security``) on the test
database of each kind; only the router under ``/v1/test`` is made up.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient

from puhui.api.app import create_app
from puhui.api.auth import ApiSecurity, authenticate, install_security
from puhui.api.client import PartnerClient, sign_request
from puhui.api.context import PartnerContext, current_partner
from puhui.api.partners import PartnerCredentials, create_partner
from puhui.api.schemas import DecimalString, StrictModel
from puhui.bootstrap import Platform
from puhui.domain.errors import ValidationError
from puhui.settings import Settings
from tests.conftest import Database

Partner = Annotated[PartnerContext, Depends(current_partner)]


class CounterIn(StrictModel):
    amount: DecimalString
    sleep: float = 0.0


def make_test_router(calls: Counter[str], lock: threading.Lock) -> APIRouter:
    router = APIRouter(prefix="/v1/test", dependencies=[Depends(authenticate)])

    @router.get("/whoami")
    def whoami(request: Request, partner: Partner) -> dict[str, Any]:
        return {
            "institution_id": partner.institution_id,
            "institution_code": partner.institution_code,
            "client_id": partner.client_id,
            "query": dict(request.query_params),
        }

    @router.post("/counter", status_code=201)
    def counter(body: CounterIn, partner: Partner) -> dict[str, Any]:
        with lock:
            calls["counter"] += 1
            n = calls["counter"]
        if body.sleep:
            time.sleep(body.sleep)
        return {"n": n, "amount": format(body.amount, "f"), "institution": partner.institution_code}

    @router.post("/fail")
    def fail() -> None:
        with lock:
            calls["fail"] += 1
        raise RuntimeError("boom")

    @router.post("/invalid")
    def invalid() -> None:
        with lock:
            calls["invalid"] += 1
        raise ValidationError.single("amount", "money.positive", "must be more than zero")

    return router


@dataclass
class Harness:
    platform: Platform
    app: FastAPI
    security: ApiSecurity
    http: TestClient
    creds: PartnerCredentials
    calls: Counter[str] = field(default_factory=Counter)
    offset: float = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def partner(self, creds: PartnerCredentials | None = None) -> PartnerClient:
        c = creds or self.creds
        return PartnerClient(c.client_id, c.client_secret, http=self.http, clock=self.now)

    def new_partner(self, name: str, code: str, **kwargs: Any) -> PartnerCredentials:
        return create_partner(
            self.platform.uow(), self.platform.vault, name=name, code=code, **kwargs
        )

    def token(self, creds: PartnerCredentials | None = None) -> str:
        return self.partner(creds).token()

    def signed(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        token: str | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """A request signed by hand, for tests that break one part of the protocol."""
        signed = sign_request(
            method,
            target,
            body,
            secret or self.creds.client_secret,
            timestamp=int(self.now()) if timestamp is None else timestamp,
            nonce=nonce,
        )
        all_headers = {
            "Authorization": f"Bearer {token or self.token()}",
            "Content-Type": "application/json",
            **signed,
            **(headers or {}),
        }
        return self.http.request(method, target, content=body, headers=all_headers)


@contextmanager
def harness(
    database: Database,
    tmp_path: Path,
    *,
    rate_limit_per_minute: int = 600,
    raise_server_exceptions: bool = True,
) -> Iterator[Harness]:
    settings = Settings(database_url=database.url, key_dir=tmp_path / "keys", var_dir=tmp_path)
    platform = Platform(settings)
    app = create_app(platform)
    security = install_security(app)
    calls: Counter[str] = Counter()
    app.include_router(make_test_router(calls, threading.Lock()))
    creds = create_partner(
        platform.uow(),
        platform.vault,
        name="示范银行",
        code="DEMO_BANK",
        rate_limit_per_minute=rate_limit_per_minute,
    )
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as http:
        h = Harness(platform, app, security, http, creds, calls)
        security.clock = h.now
        yield h
    platform.close()
