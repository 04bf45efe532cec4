"""``/v1/webhooks`` over HTTP through the real protocol layer (token, signature, idempotency).

Each test names its tenant with an ``X-Test-Institution`` header, which ``SignedClient`` turns
into that institution's own signed partner client; the header itself is never sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from puhui.api.app import create_app
from puhui.api.client import PartnerClient
from puhui.api.partners import create_partner
from puhui.bootstrap import Platform
from puhui.webhooks.dispatcher import dispatch_once
from tests.conftest import Database
from tests.webhooks.conftest import Receiver, record

URL = "https://partner.example.com/puhui/hooks"


class SignedClient:
    """Routes each call to the signed client of the institution named in its headers."""

    def __init__(self, http: TestClient, partners: dict[str, PartnerClient]) -> None:
        self.http, self.partners = http, partners

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx2.Response:
        code = (headers or {}).get("X-Test-Institution")
        if code is None:
            return self.http.request(method, path, **kwargs)
        return self.partners[code].request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def client(platform: Platform, bank_a: str, bank_b: str) -> Iterator[SignedClient]:
    names = {"DEMO_BANK": "示范银行", "OTHER_BANK": "另一银行"}
    with TestClient(create_app(platform)) as http:
        partners = {}
        for code, name in names.items():
            creds = create_partner(platform.uow(), platform.vault, name=name, code=code)
            partners[code] = PartnerClient(creds.client_id, creds.client_secret, http=http)
        yield SignedClient(http, partners)


A = {"X-Test-Institution": "DEMO_BANK"}
B = {"X-Test-Institution": "OTHER_BANK"}


def _create(client: SignedClient, headers: dict[str, str], **body: object) -> dict[str, object]:
    r = client.post("/v1/webhooks", json={"url": URL, "event_types": ["*"]} | body, headers=headers)
    assert r.status_code == 201, r.text
    data = r.json()
    assert isinstance(data, dict)
    return data


def test_register_shows_the_secret_once(client: SignedClient) -> None:
    r = client.post(
        "/v1/webhooks",
        json={"url": URL, "event_types": ["application.approved", "loan.disbursed"]},
        headers=A,
    )
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["secret"].startswith("whsec_")
    assert body["id"].startswith("whe_") and body["active"] is True
    assert body["event_types"] == ["application.approved", "loan.disbursed"]
    listed = client.get("/v1/webhooks", headers=A).json()["data"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert body["secret"] not in client.get("/v1/webhooks", headers=A).text


def test_rules_come_back_as_problem_json_with_every_field(client: SignedClient) -> None:
    r = client.post(
        "/v1/webhooks",
        json={"url": "http://partner.example.com/h", "event_types": ["loan.nope"]},
        headers=A,
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [
        ("url", "webhook.url_scheme"),
        ("event_types[0]", "webhook.event_type"),
    ]


def test_unknown_fields_are_refused(client: SignedClient) -> None:
    r = client.post(
        "/v1/webhooks",
        json={"url": URL, "event_types": ["*"], "institution_id": "ins_other"},
        headers=A,
    )
    assert r.status_code == 422
    assert [e["rule"] for e in r.json()["errors"]] == ["schema.extra_forbidden"]


def test_another_tenants_endpoint_is_404_not_403(client: SignedClient) -> None:
    created = _create(client, A)
    endpoint_id = created["id"]
    assert client.get("/v1/webhooks", headers=B).json() == {"data": []}
    for method, path in [
        ("DELETE", f"/v1/webhooks/{endpoint_id}"),
        ("POST", f"/v1/webhooks/{endpoint_id}/rotate-secret"),
        ("GET", f"/v1/webhooks/deliveries?endpoint_id={endpoint_id}"),
    ]:
        r = client.request(method, path, headers=B)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "not_found"
    missing = client.delete("/v1/webhooks/whe_doesnotexist", headers=A)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert client.get("/v1/webhooks", headers=A).json()["data"][0]["active"] is True


def test_delete_disables_and_keeps_the_endpoint_listed(client: SignedClient) -> None:
    endpoint_id = _create(client, A)["id"]
    r = client.delete(f"/v1/webhooks/{endpoint_id}", headers=A)
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.delete(f"/v1/webhooks/{endpoint_id}", headers=A).status_code == 200
    assert [e["active"] for e in client.get("/v1/webhooks", headers=A).json()["data"]] == [False]


def test_rotate_secret(client: SignedClient) -> None:
    created = _create(client, A)
    r = client.post(f"/v1/webhooks/{created['id']}/rotate-secret", headers=A)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    assert body["previous_secret_valid_until"] is not None
    r = client.post(
        f"/v1/webhooks/{created['id']}/rotate-secret", json={"overlap_seconds": 0}, headers=A
    )
    assert r.status_code == 200 and r.json()["previous_secret_valid_until"] is None
    r = client.post(
        f"/v1/webhooks/{created['id']}/rotate-secret",
        json={"overlap_seconds": 10**7},
        headers=A,
    )
    assert r.status_code == 422


def test_delivery_log_is_the_callers_own(
    client: SignedClient,
    platform: Platform,
    database: Database,
    bank_a: str,
    bank_b: str,
    receiver: Receiver,
) -> None:
    created = client.post(
        "/v1/webhooks", json={"url": receiver.url, "event_types": ["*"]}, headers=A
    ).json()
    receiver.secrets = [created["secret"]]
    event_id = record(database, bank_a)
    record(database, bank_b)
    dispatch_once(platform)
    log = client.get("/v1/webhooks/deliveries", headers=A).json()["data"]
    assert [(d["event_id"], d["status"], d["attempts"]) for d in log] == [
        (event_id, "delivered", 1)
    ]
    assert log[0]["event_type"] == "application.submitted"
    assert log[0]["endpoint_id"] == created["id"] and log[0]["last_status_code"] == 204
    assert client.get("/v1/webhooks/deliveries", headers=B).json() == {"data": []}
    only = client.get(
        "/v1/webhooks/deliveries",
        params={"endpoint_id": created["id"], "status": "delivered", "limit": 1},
        headers=A,
    )
    assert [d["event_id"] for d in only.json()["data"]] == [event_id]
    bad = client.get("/v1/webhooks/deliveries", params={"limit": 0}, headers=A)
    assert bad.status_code == 422
    assert [e["rule"] for e in bad.json()["errors"]] == ["webhook.limit"]


def test_the_routes_are_in_the_openapi_document(client: SignedClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/webhooks"]) == {"get", "post"}
    assert "delete" in paths["/v1/webhooks/{endpoint_id}"]
    assert "post" in paths["/v1/webhooks/{endpoint_id}/rotate-secret"]
    assert "get" in paths["/v1/webhooks/deliveries"]
