"""Per-client rate limits counted in the database, on both databases."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from puhui.api import ratelimit
from puhui.api.app import create_app
from puhui.api.auth import install_security
from puhui.bootstrap import Platform
from puhui.settings import Settings
from puhui.store.models import IdempotencyRecord, RateCounter
from tests.api.security_harness import harness, make_test_router
from tests.conftest import Database

WHOAMI = "/v1/test/whoami"
COUNTER = "/v1/test/counter"


def test_over_the_limit_is_429_with_retry_after(database: Database, tmp_path: Path) -> None:
    with harness(database, tmp_path, rate_limit_per_minute=4) as h:
        start = ratelimit.window_start(h.now())
        h.advance(start + 60 - h.now() + 1)  # one second into a fresh window
        client = h.partner()
        client.token()  # the token request counts too: 3 left
        remaining = [client.get(WHOAMI).headers["ratelimit-remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        r = client.get(WHOAMI)
        assert r.status_code == 429
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["ratelimit-limit"] == "4"
        assert r.headers["ratelimit-remaining"] == "0"
        # The next window starts afresh.
        h.advance(int(r.headers["retry-after"]))
        ok = client.get(WHOAMI)
        assert ok.status_code == 200
        assert ok.headers["ratelimit-remaining"] == "3"


def test_a_refused_post_holds_no_idempotency_key_and_its_retry_runs(
    database: Database, tmp_path: Path
) -> None:
    with harness(database, tmp_path, rate_limit_per_minute=2) as h:
        h.advance(ratelimit.window_start(h.now()) + 60 - h.now() + 1)
        client = h.partner()
        body = {"amount": "1.00"}
        assert client.post(COUNTER, json=body, idempotency_key="k-1").status_code == 201
        refused = client.post(COUNTER, json=body, idempotency_key="k-2")
        assert refused.status_code == 429
        with h.platform.sessions() as s:  # the claim made beside the count was undone
            keys = s.scalars(select(IdempotencyRecord.key).order_by(IdempotencyRecord.key))
            assert list(keys) == ["k-1"]
        h.advance(int(refused.headers["retry-after"]))
        retried = client.post(COUNTER, json=body, idempotency_key="k-2")
        assert retried.status_code == 201  # run afresh, not the stored 429
        assert h.calls["counter"] == 2


def test_each_client_has_its_own_budget(database: Database, tmp_path: Path) -> None:
    with harness(database, tmp_path, rate_limit_per_minute=2) as h:
        h.advance(ratelimit.window_start(h.now()) + 60 - h.now() + 1)
        other = h.new_partner("另一家银行", "OTHER_BANK", rate_limit_per_minute=2)
        a, b = h.partner(), h.partner(other)
        assert a.get(WHOAMI).status_code == 200  # token + one call
        assert a.get(WHOAMI).status_code == 429
        assert b.get(WHOAMI).status_code == 200


def test_workers_share_the_count(database: Database, tmp_path: Path) -> None:
    """Two app instances (two workers) on one database draw from one budget."""
    with harness(database, tmp_path, rate_limit_per_minute=5) as h:
        h.advance(ratelimit.window_start(h.now()) + 60 - h.now() + 1)
        settings = Settings(database_url=database.url, key_dir=tmp_path / "keys", var_dir=tmp_path)
        second = Platform(settings)
        app2 = create_app(second)
        install_security(app2).clock = h.now
        app2.include_router(make_test_router(h.calls, threading.Lock()))
        with TestClient(app2) as http2:
            worker1 = h.partner()
            worker2 = h.partner()
            worker2.http = http2
            assert worker1.get(WHOAMI).status_code == 200  # 2 used (token + call)
            assert worker2.get(WHOAMI).status_code == 200  # 4 used
            assert worker2.get(WHOAMI).status_code == 200  # 5 used
            assert worker1.get(WHOAMI).status_code == 429
            assert worker2.get(WHOAMI).status_code == 429
        second.close()


def test_concurrent_counting_is_exact(database: Database) -> None:
    now = 1_800_000_030.0
    barrier = threading.Barrier(20)

    def bump() -> None:
        barrier.wait()
        for _ in range(5):
            with database.sessions() as s:
                ratelimit.consume(s, "pk_concurrent", 1000, now)
                s.commit()

    threads = [threading.Thread(target=bump) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with database.sessions() as s:
        decision = ratelimit.consume(s, "pk_concurrent", 1000, now)
        s.commit()
    assert decision.count == 101
    assert decision.reset_after == 30


def test_old_windows_are_purged(database: Database) -> None:
    now = 1_800_000_000.0
    with database.sessions() as s:
        for minutes_ago in (0, 1, 2, 10):
            ratelimit.consume(s, "pk_x", 10, now - 60 * minutes_ago)
        s.commit()
        ratelimit.purge(s, now)
        s.commit()
        left = s.scalar(select(func.count()).select_from(RateCounter))
    assert left == 2  # the current window and the one just before
