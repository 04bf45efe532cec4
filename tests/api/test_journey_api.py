"""The whole journey through the real app and the real protocol layer, on both databases."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from puhui.api.app import create_app
from puhui.api.client import PartnerClient
from puhui.api.partners import PartnerCredentials, create_partner
from puhui.bootstrap import Platform
from puhui.settings import Settings
from puhui.store import models as m
from tests import factories
from tests.conftest import Database


def body(**overrides: Any) -> dict[str, Any]:
    person = {
        "id_number": factories.id_number("19800101"),
        **overrides.pop("legal_representative", {}),
    }
    raw = factories.application(legal_representative=person, **overrides)
    raw.pop("institution_code")
    raw.pop("submitted_at")
    return raw


class Api:
    def __init__(self, platform: Platform, http: TestClient) -> None:
        self.platform, self.http = platform, http

    def partner(self, name: str, code: str) -> PartnerClient:
        creds: PartnerCredentials = create_partner(
            self.platform.uow(), self.platform.vault, name=name, code=code
        )
        return PartnerClient(creds.client_id, creds.client_secret, http=self.http)


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[Api]:
    platform = Platform(
        Settings(database_url=database.url, key_dir=tmp_path / "keys", var_dir=tmp_path)
    )
    with TestClient(create_app(platform)) as http:
        yield Api(platform, http)
    platform.close()


def test_journey_submit_decide_accept_disburse(api: Api) -> None:
    bank = api.partner("杭州示范农商银行", "HZ_BANK")
    r = bank.post("/v1/applications", json=body())
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["state"] == "approved" and app["decision"]["automated"]
    person = app["applicant"]
    assert person["mobile"] == "138****5678" and person["name"] == "张**"
    assert (
        person["id_number"]
        == factories.id_number("19800101")[:3] + "*" * 11 + factories.id_number("19800101")[-4:]
    )
    offer = app["offer"]
    assert next(iter(offer)) == "apr" and offer["apr"].endswith("%")
    assert "APR" in offer["disclosure"] and len(offer["schedule"]) == 12
    assert isinstance(offer["amount"], str) and offer["amount"] == "300000.00"
    assert r.headers["X-Correlation-ID"]

    r = bank.get(f"/v1/offers/{offer['id']}")
    assert r.status_code == 200 and r.json()["apr"] == offer["apr"]
    r = bank.post(f"/v1/offers/{offer['id']}/accept")
    assert r.status_code == 200, r.text
    loan_id = r.json()["loan_id"]
    r = bank.post(f"/v1/loans/{loan_id}/disburse", json={"disbursement_ref": "PAY-001"})
    assert r.status_code == 200, r.text
    assert r.json()["net_amount"] == "298500.00"
    r = bank.get(f"/v1/loans/{loan_id}")
    loan = r.json()
    assert loan["state"] == "active" and len(loan["schedule"]) == 12
    assert next(iter(loan)) == "apr"
    assert bank.get(f"/v1/applications/{app['id']}").json()["state"] == "contracted"

    first = loan["schedule"][0]
    due = first["due_date"]
    status = bank.get(f"/v1/loans/{loan_id}/status", params={"as_of": due}).json()
    assert status["days_past_due"] == 0 and status["bucket"] == "current"
    payment = str(Decimal(first["principal"]) + Decimal(first["interest"]))
    r = bank.post(
        "/v1/repayments",
        json={
            "loan_id": loan_id,
            "external_ref": "RP-1",
            "amount": payment,
            "received_at": f"{due}T10:00:00+08:00",
        },
    )
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["allocation"][0]["number"] == 1
    assert receipt["allocation"][0]["interest"] == first["interest"]
    assert Decimal(receipt["outstanding_principal"]) == Decimal("300000.00") - Decimal(
        first["principal"]
    )
    second_due = date.fromisoformat(loan["schedule"][1]["due_date"])
    late = bank.get(
        f"/v1/loans/{loan_id}/status",
        params={"as_of": (second_due + timedelta(days=10)).isoformat()},
    ).json()
    assert late["days_past_due"] == 10 and late["bucket"] == "M1"
    quote = bank.get(f"/v1/loans/{loan_id}/payoff", params={"as_of": due}).json()
    assert Decimal(quote["total"]) >= Decimal(receipt["outstanding_principal"])


def test_another_partner_gets_404_not_403(api: Api) -> None:
    a = api.partner("甲银行", "BANK_A")
    b = api.partner("乙银行", "BANK_B")
    app = a.post("/v1/applications", json=body()).json()
    loan_id = a.post(f"/v1/offers/{app['offer']['id']}/accept").json()["loan_id"]
    for path in (
        f"/v1/applications/{app['id']}",
        f"/v1/offers/{app['offer']['id']}",
        f"/v1/loans/{loan_id}",
        f"/v1/applications/{app['id']}/explanation",
    ):
        r = b.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = b.post(f"/v1/loans/{loan_id}/disburse", json={"disbursement_ref": "X"})
    assert r.status_code == 404


def test_problem_json_lists_every_field_error(api: Api) -> None:
    bank = api.partner("丙银行", "BANK_C")
    bad = body(amount="12.345", term_months=0, legal_representative={"mobile": "12345"})
    r = bank.post("/v1/applications", json=bad)
    assert r.status_code == 422
    errors = {(e["field"], e["rule"]) for e in r.json()["errors"]}
    assert ("amount", "schema.decimal_string") in errors
    r = bank.post("/v1/applications", json=body(term_months=0, surprise="field"))
    errors = {(e["field"], e["rule"]) for e in r.json()["errors"]}
    assert ("surprise", "schema.extra_forbidden") in errors
    r = bank.post(
        "/v1/applications", json=body(term_months=0, legal_representative={"mobile": "12345"})
    )
    errors = {(e["field"], e["rule"]) for e in r.json()["errors"]}
    assert {
        ("term_months", "application.term_range"),
        ("legal_representative.mobile", "mobile.format"),
    } <= errors


def test_fifty_concurrent_identical_posts_make_one_application_and_one_disbursement(
    api: Api, database: Database
) -> None:
    bank = api.partner("丁银行", "BANK_D")
    key = str(uuid.uuid4())
    statuses: list[int] = []
    lock = threading.Lock()

    def submit() -> None:
        r = bank.post("/v1/applications", json=body(), idempotency_key=key)
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=submit) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {201, 409} and 201 in statuses
    replay = bank.post("/v1/applications", json=body(), idempotency_key=key)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    app = replay.json()
    loan_id = bank.post(f"/v1/offers/{app['offer']['id']}/accept").json()["loan_id"]

    key = str(uuid.uuid4())
    outcomes: list[int] = []

    def pay_out() -> None:
        r = bank.post(
            f"/v1/loans/{loan_id}/disburse", json={"disbursement_ref": "PAY-9"}, idempotency_key=key
        )
        with lock:
            outcomes.append(r.status_code)

    threads = [threading.Thread(target=pay_out) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(outcomes) <= {200, 409} and 200 in outcomes
    with database.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.Application)) == 1
        assert (
            s.scalar(
                select(func.count())
                .select_from(m.Event)
                .where(m.Event.event_type == "loan.disbursed")
            )
            == 1
        )


def test_referral_review_explanation_and_human_review_through_the_api(api: Api) -> None:
    bank = api.partner("戊银行", "BANK_E")
    referred = bank.post(
        "/v1/applications", json=body(enterprise={"uscc": "91350100M0001TGQXM"})
    ).json()
    assert referred["state"] == "referred" and referred["review_task_id"]
    queue = bank.get("/v1/reviews").json()
    assert [t["id"] for t in queue] == [referred["review_task_id"]]
    r = bank.post(
        f"/v1/reviews/{referred['review_task_id']}/decision",
        json={"reviewer": "li.si", "outcome": "approve", "note": "registry ok"},
    )
    assert r.status_code == 200 and r.json()["offer_id"]

    declined = bank.post(
        "/v1/applications",
        json=body(
            external_ref="REF-D",
            enterprise={"tax_grade": "D", "uscc": "91110000600037341L"},
            legal_representative={"id_number": factories.id_number("19810101")},
        ),
    ).json()
    assert declined["state"] == "declined"
    why = bank.get(f"/v1/applications/{declined['id']}/explanation").json()
    assert why["reasons"][0]["code"] == "KO_TAX_D" and why["how_to_request_human_review"]
    r = bank.post(
        f"/v1/applications/{declined['id']}/human-review", json={"reason": "our grade was restored"}
    )
    assert r.status_code == 202
    assert bank.get(f"/v1/applications/{declined['id']}").json()["state"] == "referred"


def test_openapi_lists_the_v1_routes(api: Api) -> None:
    paths = api.http.get("/openapi.json").json()["paths"]
    for p in (
        "/v1/applications",
        "/v1/offers/{offer_id}",
        "/v1/loans/{loan_id}/disburse",
        "/v1/reviews",
        "/v1/webhooks",
        "/v1/oauth/token",
    ):
        assert p in paths


def test_a_submitted_but_undecided_application_is_decided_on_retry(
    api: Api, database: Database
) -> None:
    from puhui.origination.submit import submit_application

    bank = api.partner("己银行", "BANK_F")
    raw = body(external_ref="REF-UNDECIDED")
    submit_application(
        api.platform.uow(),
        api.platform.vault,
        api.platform.indexer,
        {**raw, "institution_code": "BANK_F", "submitted_at": datetime.now(UTC)},
    )  # a first attempt that died here
    r = bank.post("/v1/applications", json=raw)
    assert r.status_code == 201 and r.json()["state"] == "approved"
    again = bank.post("/v1/applications", json=raw)  # new key, same reference: no second decision
    assert again.json()["id"] == r.json()["id"]
    with database.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.Decision)) == 1
