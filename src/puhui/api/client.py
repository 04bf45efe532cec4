"""The partner side of the protocol: sign requests, keep a token, send idempotency keys.

Partners, the simulator and the tests all call the API through :class:`PartnerClient`, so the
protocol has one client implementation that is tested against the server. Partners in other
languages follow docs/api.md; :func:`sign_request` is the whole signing recipe.
"""

from __future__ import annotations

import base64
import json as jsonlib
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx2

from puhui.api.auth import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOKEN_PATH,
    canonical_request,
    compute_signature,
)
from puhui.api.idempotency import IDEMPOTENCY_HEADER

_RETRY_ON = frozenset({"auth.token_expired", "auth.invalid_token"})


def sign_request(
    method: str,
    path_with_query: str,
    body: bytes,
    secret: str,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The three signature headers for one request.

    ``path_with_query`` is the request target exactly as sent (``/v1/loans?state=active``),
    ``body`` the exact bytes sent (``b""`` for none). A fresh nonce and the current time are
    used unless given.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_urlsafe(24)
    canonical = canonical_request(method, path_with_query, ts, nonce, body)
    return {
        TIMESTAMP_HEADER: ts,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: compute_signature(secret, canonical),
    }


class PartnerApiError(Exception):
    """The token endpoint refused the credentials (or another call failed unrecoverably)."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        try:
            body = response.json()
        except ValueError:
            body = {}
        self.code = str(body.get("code", "")) if isinstance(body, dict) else ""
        super().__init__(f"HTTP {response.status_code} {self.code}".strip())


class PartnerClient:
    """A synchronous client of the open API for one partner API client.

    It fetches a token with the client credentials and renews it ``token_margin`` seconds
    before expiry (or when the server says it expired), signs every request, and sends an
    ``Idempotency-Key`` on every POST and PATCH (a fresh UUID unless the caller passes one —
    pass your own to make a retry of the same operation safe).

    ``http`` may be any ``httpx2.Client`` (e.g. FastAPI's ``TestClient``); otherwise one is
    made for ``base_url`` and closed with this client.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        base_url: str = "http://127.0.0.1:8000",
        http: httpx2.Client | None = None,
        timeout: float = 10.0,
        token_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret
        self._owns_http = http is None
        self.http = http if http is not None else httpx2.Client(base_url=base_url, timeout=timeout)
        self._margin = token_margin
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0

    def __repr__(self) -> str:
        return f"PartnerClient(client_id={self.client_id!r}, base_url={str(self.http.base_url)!r})"

    # -- tokens -------------------------------------------------------------------------------

    def token(self, *, refresh: bool = False) -> str:
        """A valid access token, fetched when missing, near expiry or ``refresh``."""
        if refresh or self._token is None or self._clock() >= self._token_expires - self._margin:
            basic = f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}"
            response = self.http.post(
                TOKEN_PATH,
                content=b"grant_type=client_credentials",
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Authorization": "Basic " + base64.b64encode(basic.encode()).decode("ascii"),
                },
            )
            if response.status_code != 200:
                raise PartnerApiError(response)
            payload = response.json()
            self._token = str(payload["access_token"])
            self._token_expires = self._clock() + float(payload["expires_in"])
        return self._token

    # -- requests -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx2.Response:
        """Send one signed request; JSON bodies are encoded with amounts as strings."""
        method = method.upper()
        extra = dict(headers or {})
        if json is not None:
            content = encode_json(json)
            extra.setdefault("Content-Type", "application/json")
        body = content or b""
        if method in ("POST", "PATCH"):
            extra.setdefault(IDEMPOTENCY_HEADER, idempotency_key or str(uuid.uuid4()))
        response = self._send(method, path, body, params, extra, refresh=False)
        if response.status_code == 401 and _problem_code(response) in _RETRY_ON:
            response = self._send(method, path, body, params, extra, refresh=True)
        return response

    def _send(
        self,
        method: str,
        path: str,
        body: bytes,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
        *,
        refresh: bool,
    ) -> httpx2.Response:
        token = self.token(refresh=refresh)
        request = self.http.build_request(
            method, path, content=body, params=dict(params) if params else None, headers=headers
        )
        target = request.url.raw_path.decode("ascii")
        signed = sign_request(method, target, body, self._secret, timestamp=int(self._clock()))
        request.headers.update(signed)
        request.headers["Authorization"] = f"Bearer {token}"
        return self.http.send(request)

    def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("DELETE", path, **kwargs)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON; ``Decimal`` as a string (amounts), dates in ISO 8601."""
    return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default).encode(
        "utf-8"
    )


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _problem_code(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""
