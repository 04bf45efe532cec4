"""Idempotency-Key through the real app, on both databases: replay, reuse, in progress,
failure, expiry, tenant scope, and fifty concurrent identical requests executed once."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from puhui.api.idempotency import REPLAYED_HEADER
from puhui.store.models import IdempotencyRecord
from tests.api.security_harness import Harness, harness
from tests.conftest import Database

COUNTER = "/v1/test/counter"


@pytest.fixture
def h(database: Database, tmp_path: Path) -> Iterator[Harness]:
    with harness(database, tmp_path) as built:
        yield built


def records(database: Database) -> int:
    with database.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0)


def problem_code(response: Any) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["code"])


def test_key_is_required_on_post(h: Harness) -> None:
    client = h.partner()
    r = client.post(COUNTER, json={"amount": "1.00"}, headers={"Idempotency-Key": ""})
    assert r.status_code == 400 and problem_code(r) == "idempotency.key_invalid"
    body = b'{"amount":"1.00"}'
    r = h.signed("POST", COUNTER, body=body)  # no Idempotency-Key at all
    assert r.status_code == 400 and problem_code(r) == "idempotency.key_required"
    assert h.calls["counter"] == 0


def test_key_length_limit(h: Harness) -> None:
    client = h.partner()
    r = client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="k" * 256)
    assert r.status_code == 400 and problem_code(r) == "idempotency.key_invalid"
    r = client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="k" * 255)
    assert r.status_code == 201


def test_get_needs_no_key(h: Harness) -> None:
    assert h.partner().get("/v1/test/whoami").status_code == 200


def test_same_key_same_body_replays_the_stored_response(h: Harness) -> None:
    client = h.partner()
    first = client.post(COUNTER, json={"amount": "10.50"}, idempotency_key="order-1")
    assert first.status_code == 201
    assert REPLAYED_HEADER not in first.headers
    again = client.post(COUNTER, json={"amount": "10.50"}, idempotency_key="order-1")
    assert again.status_code == 201
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert h.calls["counter"] == 1


def test_same_key_different_body_or_path_is_422(h: Harness) -> None:
    client = h.partner()
    assert client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="k1").status_code == 201
    r = client.post(COUNTER, json={"amount": "2.00"}, idempotency_key="k1")
    assert r.status_code == 422 and problem_code(r) == "idempotency.key_reused"
    r = client.post("/v1/test/invalid", json={"amount": "1.00"}, idempotency_key="k1")
    assert r.status_code == 422 and problem_code(r) == "idempotency.key_reused"
    assert h.calls["counter"] == 1 and h.calls["invalid"] == 0


def test_a_stored_error_response_is_replayed_too(h: Harness) -> None:
    client = h.partner()
    first = client.post("/v1/test/invalid", json={}, idempotency_key="bad-1")
    assert first.status_code == 422 and problem_code(first) == "validation_failed"
    again = client.post("/v1/test/invalid", json={}, idempotency_key="bad-1")
    assert again.status_code == 422 and again.headers[REPLAYED_HEADER] == "true"
    assert again.json() == first.json()
    assert h.calls["invalid"] == 1


def test_in_progress_is_409_with_retry_after(h: Harness, database: Database) -> None:
    results: dict[str, Any] = {}
    request = {"amount": "1.00", "sleep": 1.0}

    def slow() -> None:
        results["slow"] = h.partner().post(COUNTER, json=request, idempotency_key="slow-1")

    worker = threading.Thread(target=slow)
    worker.start()
    for _ in range(200):  # until the first request holds the key
        with database.sessions() as s:
            if s.scalar(select(IdempotencyRecord.state).where(IdempotencyRecord.key == "slow-1")):
                break
        time.sleep(0.01)
    r = h.partner().post(COUNTER, json=request, idempotency_key="slow-1")
    worker.join()
    assert r.status_code == 409, r.text
    assert problem_code(r) == "idempotency.in_progress"
    assert int(r.headers["retry-after"]) >= 1
    assert results["slow"].status_code == 201
    assert h.calls["counter"] == 1


def test_an_exception_releases_the_key(database: Database, tmp_path: Path) -> None:
    with harness(database, tmp_path, raise_server_exceptions=False) as h:
        client = h.partner()
        r = client.post("/v1/test/fail", json={}, idempotency_key="f-1")
        assert r.status_code == 500
        assert records(database) == 0
        assert client.post("/v1/test/fail", json={}, idempotency_key="f-1").status_code == 500
        assert h.calls["fail"] == 2


def test_records_expire_after_24_hours(h: Harness, database: Database) -> None:
    client = h.partner()
    assert client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="e-1").status_code == 201
    h.advance(24 * 3600 + 1)
    r = client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="e-1")
    assert r.status_code == 201 and REPLAYED_HEADER not in r.headers
    assert h.calls["counter"] == 2
    # Other expired records are purged along the way.
    assert client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="e-2").status_code == 201
    h.advance(24 * 3600 + 1)
    h.security._last_run.clear()
    assert client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="e-3").status_code == 201
    assert records(database) == 1


def test_keys_belong_to_one_institution(h: Harness) -> None:
    other = h.new_partner("另一家银行", "OTHER_BANK")
    a = h.partner().post(COUNTER, json={"amount": "1.00"}, idempotency_key="shared")
    b = h.partner(other).post(COUNTER, json={"amount": "1.00"}, idempotency_key="shared")
    assert a.status_code == b.status_code == 201
    assert REPLAYED_HEADER not in b.headers
    assert (a.json()["institution"], b.json()["institution"]) == ("DEMO_BANK", "OTHER_BANK")
    assert h.calls["counter"] == 2


def test_a_stale_in_progress_record_is_taken_over_after_the_lease(
    h: Harness, database: Database
) -> None:
    """A worker died holding a key: after the lease, a retry runs instead of a 409 forever."""
    client = h.partner()
    assert client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="x-0").status_code == 201
    with database.sessions() as s:
        rec = s.scalars(select(IdempotencyRecord)).one()
        s.add(
            IdempotencyRecord(
                institution_id=rec.institution_id,
                key="crashed",
                method="POST",
                path=COUNTER,
                request_hash=hashlib.sha256(b'{"amount":"1.00"}').hexdigest(),
                state="in_progress",
                created_at=h.security.now_utc(),
                expires_at=rec.expires_at,
            )
        )
        s.commit()
    r = client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="crashed")
    assert r.status_code == 409
    h.advance(h.security.idempotency_lease_seconds + 1)
    r = client.post(COUNTER, json={"amount": "1.00"}, idempotency_key="crashed")
    assert r.status_code == 201 and REPLAYED_HEADER not in r.headers


def test_fifty_concurrent_identical_posts_execute_once(h: Harness) -> None:
    clients = [h.partner() for _ in range(50)]
    for c in clients:
        c.token()  # fetch tokens first, so the burst is all POSTs
    barrier = threading.Barrier(50)

    def fire(i: int) -> Any:
        barrier.wait()
        return clients[i].post(
            COUNTER, json={"amount": "88.00", "sleep": 0.3}, idempotency_key="burst-1"
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(fire, range(50)))
    assert h.calls["counter"] == 1
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    winners = [r for r in responses if r.status_code == 201]
    assert sum(1 for r in winners if REPLAYED_HEADER not in r.headers) == 1
    assert all(r.json() == winners[0].json() for r in winners)
    assert all(
        problem_code(r) == "idempotency.in_progress" for r in responses if r.status_code == 409
    )
    # After the burst, the same request is a replay of the one execution.
    late = h.partner().post(
        COUNTER, json={"amount": "88.00", "sleep": 0.3}, idempotency_key="burst-1"
    )
    assert late.status_code == 201 and late.headers[REPLAYED_HEADER] == "true"
    assert h.calls["counter"] == 1
