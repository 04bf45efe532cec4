"""Request size cap and strict request bodies (unknown fields, amounts as decimal strings)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from puhui.api.limits import DEFAULT_MAX_BODY_BYTES
from puhui.api.schemas import DecimalString, StrictModel
from tests.api.security_harness import Harness, harness
from tests.conftest import Database

COUNTER = "/v1/test/counter"


@pytest.fixture
def h(database: Database, tmp_path: Path) -> Iterator[Harness]:
    with harness(database, tmp_path) as built:
        yield built


def assert_413(response: Any) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "request_too_large"


def test_declared_length_over_1_mib_is_413_before_anything_else(h: Harness) -> None:
    body = b"x" * (DEFAULT_MAX_BODY_BYTES + 1)
    assert_413(h.http.post(COUNTER, content=body))  # not even authenticated: size comes first
    assert_413(h.partner().post(COUNTER, content=body, headers={"Content-Type": "text/plain"}))


def test_streamed_body_without_length_is_capped(h: Harness) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * (64 * 1024)  # 1.25 MiB in all, no Content-Length

    r = h.http.post(COUNTER, content=chunks())
    assert "content-length" not in r.request.headers
    assert_413(r)


def test_a_body_at_the_limit_goes_through(h: Harness) -> None:
    padding = " " * (DEFAULT_MAX_BODY_BYTES - len(b'{"amount":"1.00"}'))
    body = ('{"amount":"1.00"}' + padding).encode()
    assert len(body) == DEFAULT_MAX_BODY_BYTES
    r = h.partner().post(COUNTER, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_unknown_fields_are_rejected(h: Harness) -> None:
    r = h.partner().post(COUNTER, json={"amount": "1.00", "amout": "2.00"})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [
        ("amout", "schema.extra_forbidden")
    ]


@pytest.mark.parametrize("amount", [12.5, 12, "12.345", "1e3", "01.00", " ", "NaN", True])
def test_amounts_must_be_decimal_strings(h: Harness, amount: Any) -> None:
    r = h.partner().post(COUNTER, json={"amount": amount})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["rule"] == "schema.decimal_string"
    assert h.calls["counter"] == 0


def test_amount_comes_back_as_the_same_string(h: Harness) -> None:
    r = h.partner().post(COUNTER, json={"amount": "1234.50"})
    assert r.status_code == 201 and r.json()["amount"] == "1234.50"


class Amounts(StrictModel):
    amount: DecimalString
    note: str = ""


def test_decimal_string_model() -> None:
    m = Amounts.model_validate_json('{"amount": "0.10", "note": "  hi  "}')
    assert m.amount == Decimal("0.10") and m.note == "hi"
    assert m.model_dump_json() == '{"amount":"0.10","note":"hi"}'
    assert Amounts(amount=Decimal("-3.5")).amount == Decimal("-3.5")
    with pytest.raises(PydanticValidationError):
        Amounts(amount=Decimal("0.001"))
    with pytest.raises(PydanticValidationError):
        Amounts.model_validate_json('{"amount": 0.1}')
    schema = Amounts.model_json_schema()["properties"]["amount"]
    assert schema["type"] == "string" and "pattern" in schema
