"""Schemathesis against the real app's ``/openapi.json``, on SQLite and on PostgreSQL.

Every operation the app publishes is fuzzed in-process through schemathesis' ASGI transport
(no network), with schema-conforming (positive) and schema-breaking (negative) requests. They
are made the way a partner makes them (docs/api.md): an access token from
``POST /v1/oauth/token``, then on every other ``/v1`` call the bearer token, a fresh
``Idempotency-Key`` on POST/PATCH and the three signature headers from ``sign_request`` over the
final method, path-with-query and body bytes. The signature is computed on the prepared request,
after schemathesis has serialised it, so what is signed is exactly what is sent: the requests
get past authentication and the handlers themselves are exercised. The token endpoint is fuzzed
unsigned, as partners call it.

Random ids only ever find nothing, so the partner first makes real resources through the API
(applications approved, referred and declined, an accepted offer, an active loan, a webhook
endpoint) and schemathesis dictionaries put their ids into half of the generated path
parameters and ``loan_id`` body fields: the success paths and their response schemas are
exercised too, not only the 404s.

Checks on every response: no 5xx (``not_a_server_error``) and a documented response matches its
schema (``response_schema_conformance``). The run is bounded and reproducible: a fixed number of
examples per operation, derandomized generation, no example database. Each operation is a
subtest, so one failing operation does not hide the others.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from puhui.api.app import create_app
from puhui.api.auth import TOKEN_PATH
from puhui.api.client import PartnerClient, sign_request
from puhui.api.idempotency import IDEMPOTENCY_HEADER
from puhui.api.partners import MAX_RATE_LIMIT, PartnerCredentials, create_partner
from puhui.bootstrap import Platform
from puhui.settings import Settings
from tests import factories
from tests.conftest import Database

MAX_EXAMPLES = 30
EXTRA: dict = {}
"""Per operation, positive and negative cases together."""

KNOWN_ID_PROBABILITY = 0.5
"""How often a generated id parameter is replaced by the id of a resource that exists."""

CHECKS = [not_a_server_error, response_schema_conformance]


class PartnerSigning(requests.auth.AuthBase):
    """Authenticates a prepared request the way a partner does (docs/api.md §3, §4).

    ``requests`` applies auth after preparing the URL and the body, so ``request.path_url`` and
    ``request.body`` are the target and the bytes that go out.
    """

    def __init__(self, credentials: PartnerCredentials, token: str) -> None:
        self.credentials = credentials
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        method = (request.method or "GET").upper()
        body = request.body
        sent = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        request.headers["Authorization"] = f"Bearer {self.token}"
        if method in ("POST", "PATCH"):
            request.headers[IDEMPOTENCY_HEADER] = str(uuid.uuid4())
        request.headers.update(
            sign_request(method, request.path_url, sent, self.credentials.client_secret)
        )
        return request


def basic_auth(credentials: PartnerCredentials) -> str:
    pair = f"{quote(credentials.client_id, safe='')}:{quote(credentials.client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def application(external_ref: str, **overrides: Any) -> dict[str, Any]:
    person = {
        "id_number": factories.id_number("19800101"),
        **overrides.pop("legal_representative", {}),
    }
    body = factories.application(
        external_ref=external_ref, legal_representative=person, **overrides
    )
    del body["institution_code"], body["submitted_at"]
    return body


def make_resources(client: PartnerClient) -> dict[str, list[str]]:
    """Real resources of every kind the API has ids for, made through the API itself."""

    def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = client.post(path, json=body)
        assert response.status_code in (200, 201, 202), (path, response.text)
        result: dict[str, Any] = response.json()
        return result

    approved = post("/v1/applications", application("FUZZ-A"))
    pending = post("/v1/applications", application("FUZZ-B", enterprise={"uscc": factories.USCC}))
    referred = post(
        "/v1/applications",
        application("FUZZ-R", enterprise={"uscc": "91350100M0001TGQXM"}),
    )
    declined = post(
        "/v1/applications",
        application(
            "FUZZ-D",
            enterprise={"tax_grade": "D", "uscc": "91110000600037341L"},
            legal_representative={"id_number": factories.id_number("19810101")},
        ),
    )
    assert (approved["state"], referred["state"], declined["state"]) == (
        "approved",
        "referred",
        "declined",
    )
    loan = post(f"/v1/offers/{approved['offer']['id']}/accept")["loan_id"]
    post(f"/v1/loans/{loan}/disburse", {"disbursement_ref": "FUZZ-PAY-1"})
    endpoint = post(
        "/v1/webhooks",
        {"url": "https://partner.example.com/puhui/webhooks", "event_types": ["*"]},
    )["id"]
    return {
        "application_id": [approved["id"], pending["id"], referred["id"], declined["id"]],
        "offer_id": [approved["offer"]["id"], pending["offer"]["id"]],
        "loan_id": [loan],
        "task_id": [referred["review_task_id"]],
        "endpoint_id": [endpoint],
    }


def fuzzing_config(known: dict[str, list[str]]) -> schemathesis.Config:
    """Generation as schemathesis does it, with the known ids as dictionaries.

    Built explicitly, so no ``schemathesis.toml`` lying around changes the run.
    """
    parameters: dict[str, Any] = {}
    for name in known:
        for location in ("path", "query", "body"):
            binding = {"dictionary": name, "probability": KNOWN_ID_PROBABILITY}
            parameters[f"{location}.{name}"] = binding
    return schemathesis.Config.from_dict(
        {
            "dictionaries": {name: {"values": ids} for name, ids in known.items()},
            "parameters": parameters,
        }
    )


class Fuzzed:
    """The app under test and the partner calling it."""

    def __init__(
        self,
        app: FastAPI,
        credentials: PartnerCredentials,
        token: str,
        known: dict[str, list[str]],
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.signing = PartnerSigning(credentials, token)
        self.known = known

    def send(self, case: schemathesis.Case) -> schemathesis.Response:
        if case.path == TOKEN_PATH:
            # Unsigned, as partners call it: the real credentials by HTTP Basic, unless the
            # generated form carries credentials of its own (sending both is an error, §2).
            form = case.body if isinstance(case.body, dict) else {}
            own = {"client_id", "client_secret"} & set(form)
            headers = {} if own else {"Authorization": basic_auth(self.credentials)}
            return case.call(headers=headers)
        return case.call(auth=self.signing)


@pytest.fixture
def fuzzed(database: Database, tmp_path: Path) -> Iterator[Fuzzed]:
    platform = Platform(
        Settings(database_url=database.url, key_dir=tmp_path / "keys", var_dir=tmp_path)
    )
    # A partner like any other, with a limit high enough that the run is never rate limited
    # (a 429 would stop the requests before the handlers).
    credentials = create_partner(
        platform.uow(),
        platform.vault,
        name="模糊测试银行",
        code="FUZZ_BANK",
        rate_limit_per_minute=MAX_RATE_LIMIT,
    )
    app = create_app(platform)
    with TestClient(app) as http:
        client = PartnerClient(credentials.client_id, credentials.client_secret, http=http)
        known = make_resources(client)
        yield Fuzzed(app, credentials, client.token(), known)
    platform.close()


def test_every_operation_conforms_to_the_schema(
    fuzzed: Fuzzed, subtests: pytest.Subtests
) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", fuzzed.app, config=fuzzing_config(fuzzed.known)
    )
    labels = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            with subtests.test(msg="schema"):
                raise result.err()
            continue
        operation = result.ok()
        labels.append(operation.label)
        cases = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @given(case=cases)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def run(case: schemathesis.Case) -> None:
            response = fuzzed.send(case)
            case.validate_response(response, checks=CHECKS)
            from schemathesis.specs.openapi import checks as oc
            for chk in (oc.status_code_conformance, oc.content_type_conformance, oc.response_headers_conformance, oc.negative_data_rejection, oc.positive_data_acceptance):
                try:
                    case.validate_response(response, checks=[chk])
                except BaseException as exc:
                    key = (case.operation.label, chk.__name__, response.status_code, response.headers.get("content-type"))
                    if key not in EXTRA:
                        EXTRA[key] = str(exc)[:600]

        with subtests.test(msg=operation.label):
            run()
    for k, v in EXTRA.items():
        print(k)
    import json; json.dump({" | ".join(map(str,k)): v for k, v in EXTRA.items()}, open("/tmp/extra.json","w"), indent=1, ensure_ascii=False)
    assert f"POST {TOKEN_PATH}" in labels and len(labels) >= 20, labels
