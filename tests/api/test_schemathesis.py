"""Schemathesis against the real app's ``/openapi.json``, on SQLite and on PostgreSQL.

Every operation the app publishes is fuzzed in-process through schemathesis' ASGI transport
(no network), with schema-conforming (positive) and schema-breaking (negative) requests. They
are made the way a partner makes them (docs/api.md): an access token from
``POST /v1/oauth/token``, then on every other ``/v1`` call the bearer token, a fresh
``Idempotency-Key`` on POST/PATCH and the three signature headers from ``sign_request`` over the
final method, path-with-query and body bytes. The signature is computed on the prepared request,
after schemathesis has serialised it, so what is signed is exactly what is sent: the requests
get past authentication (checked: a signed request is never refused with 401 or 429) and the
handlers themselves are exercised. The token endpoint is fuzzed unsigned, as partners call it.

Random ids only ever find nothing, so the partner first makes real resources through the API
(applications approved, referred and declined, offers, an active loan, a webhook endpoint) and
schemathesis dictionaries put their ids into about half of the generated ``*_id`` path, query
and body values: success paths and their response schemas are exercised, not only 404s.

Checks on every response: no 5xx (an exception escaping the app fails the case too), every
documented response matches its schema, no undocumented status (limited for now, see
``status_code_documented``), and no signed request refused by the protocol layer. The full
status-code and content-type conformance of error responses (every problem documented as
``application/problem+json``) is checked by ``test_error_responses_are_documented``.

The run is bounded and reproducible: a fixed number of examples per operation, derandomized
generation, no example database. Each operation is a subtest, so one failing operation does not
hide the others. (``schemathesis.pytest.from_fixture`` is not used: with pytest 9.2 it fails on
the removed ``Node._nodeid``; the loop below does what it does, with subtests.)
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
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
from schemathesis import APIOperation, Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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
"""Per operation, positive and negative cases together."""

KNOWN_ID_PROBABILITY = 0.5
"""How often a generated id is replaced by the id of a resource that exists."""

COMMON_PROBLEM_STATUSES = frozenset({400, 401, 404, 409, 413, 422, 429})
"""The refusals any ``/v1`` operation may answer with (docs/api.md §5)."""


# -- checks -----------------------------------------------------------------------------------


def partner_gets_through(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A correctly signed request within its rate limit is never refused by the protocol
    layer: otherwise the run would test the gate, not the handlers."""
    if case.path != TOKEN_PATH and case.path.startswith("/v1/"):
        assert response.status_code not in (401, 429), (
            f"a signed partner request was refused: {response.status_code} {response.text[:300]}"
        )
    return None


def status_code_documented(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """``status_code_conformance``, limited to statuses outside ``COMMON_PROBLEM_STATUSES``.

    LIMITED ON PURPOSE: the app's OpenAPI does not yet declare the common problem responses
    (it documents only FastAPI's default 422), so every 404 for an unknown id, 409 for a wrong
    state or 400 for a body that does not parse would be flagged. Any other undocumented
    status (403, 405, 410, 415, a 2xx other than the documented one…) still fails here, and
    ``test_error_responses_are_documented`` below holds the full check until the app declares
    its problem responses.
    """
    if response.status_code in COMMON_PROBLEM_STATUSES:
        return None
    return status_code_conformance(ctx, response, case)


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_documented,
    partner_gets_through,
]

ERROR_CONTRACT_CHECKS = [status_code_conformance, content_type_conformance]


# -- the partner ------------------------------------------------------------------------------


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
    pending = post("/v1/applications", application("FUZZ-B"))
    referred = post(
        "/v1/applications", application("FUZZ-R", enterprise={"uscc": "91350100M0001TGQXM"})
    )
    declined = post(
        "/v1/applications",
        application(
            "FUZZ-D",
            enterprise={"tax_grade": "D", "uscc": "91110000600037341L"},
            legal_representative={"id_number": factories.id_number("19810101")},
        ),
    )
    states = [a["state"] for a in (approved, pending, referred, declined)]
    assert states == ["approved", "approved", "referred", "declined"], states
    loan = post(f"/v1/offers/{approved['offer']['id']}/accept")["loan_id"]
    post(f"/v1/loans/{loan}/disburse", {"disbursement_ref": "FUZZ-PAY-1"})
    endpoint = post(
        "/v1/webhooks", {"url": "https://partner.example.com/puhui/webhooks", "event_types": ["*"]}
    )["id"]
    return {
        "application_id": [approved["id"], pending["id"], referred["id"], declined["id"]],
        "offer_id": [approved["offer"]["id"], pending["offer"]["id"]],
        "loan_id": [loan],
        "task_id": [referred["review_task_id"]],
        "endpoint_id": [endpoint],
    }


def fuzzing_config(known: dict[str, list[str]]) -> schemathesis.Config:
    """Schemathesis' defaults plus the known ids as dictionaries; built here, so that no
    ``schemathesis.toml`` lying around changes the run."""
    binding = {"probability": KNOWN_ID_PROBABILITY}
    return schemathesis.Config.from_dict(
        {
            "dictionaries": {name: {"values": ids} for name, ids in known.items()},
            "parameters": {
                f"{location}.{name}": {"dictionary": name, **binding}
                for name in known
                for location in ("path", "query", "body")
            },
        }
    )


class Fuzzed:
    """The app under test, the partner calling it, and what it made beforehand."""

    def __init__(
        self, app: FastAPI, credentials: PartnerCredentials, token: str, known: dict[str, list[str]]
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.signing = PartnerSigning(credentials, token)
        self.known = known

    def operations(self) -> Iterator[APIOperation]:
        schema = schemathesis.openapi.from_asgi(
            "/openapi.json", self.app, config=fuzzing_config(self.known)
        )
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                raise result.err()
            yield result.ok()

    def send(self, case: Case) -> Response:
        if case.path == TOKEN_PATH:
            # Unsigned, as partners call it: the real credentials by HTTP Basic, unless the
            # generated form carries credentials of its own (sending both is an error, §2).
            form = case.body if isinstance(case.body, dict) else {}
            own = {"client_id", "client_secret"} & set(form)
            headers = {} if own else {"Authorization": basic_auth(self.credentials)}
            return case.call(headers=headers)
        return case.call(auth=self.signing)


def fuzz(operation: APIOperation, test: Callable[[Case], None], max_examples: int) -> None:
    """Run ``test`` on positive and negative cases of ``operation``, reproducibly."""
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: Case) -> None:
        test(case)

    run()


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


# -- the runs ---------------------------------------------------------------------------------


def test_no_server_error_and_no_schema_break(fuzzed: Fuzzed, subtests: pytest.Subtests) -> None:
    answered_2xx: set[str] = set()

    def test(case: Case) -> None:
        response = fuzzed.send(case)
        if 200 <= response.status_code < 300:
            answered_2xx.add(case.operation.label)
        case.validate_response(response, checks=CHECKS)

    labels = []
    for operation in fuzzed.operations():
        labels.append(operation.label)
        with subtests.test(msg=operation.label):
            fuzz(operation, test, MAX_EXAMPLES)
    assert f"POST {TOKEN_PATH}" in labels and len(labels) >= 20, labels
    # The handlers were reached, not only the 404 and 422 paths.
    assert len(answered_2xx) >= len(labels) // 2, sorted(set(labels) - answered_2xx)


def test_error_responses_are_documented(fuzzed: Fuzzed) -> None:
    """The full ``status_code_conformance`` and ``content_type_conformance``.

    Violations are collected rather than raised, so that the run stays short (no shrinking)
    and the report lists every operation at once.
    """
    violations: dict[str, set[str]] = {}

    def test(case: Case) -> None:
        response = fuzzed.send(case)
        try:
            case.validate_response(response, checks=ERROR_CONTRACT_CHECKS)
        except* AssertionError as group:
            found = violations.setdefault(case.operation.label, set())
            for failure in group.exceptions:
                found.add(f"{response.status_code}: {str(failure).splitlines()[0]}")

    for operation in fuzzed.operations():
        fuzz(operation, test, MAX_EXAMPLES // 3)
    report = "\n".join(f"{op}: {sorted(found)}" for op, found in sorted(violations.items()))
    assert not violations, report
