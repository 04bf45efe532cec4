"""The in-process cache of API clients and secrets: how long a change takes to be seen.

A change made through ``api.partners`` in this process is seen at once; one made by another
process (here: written to the database directly, as another process would) is seen once the
cached entry is older than its lifetime; secret expiry is exact whatever the cache holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from puhui.api.client import PartnerClient
from puhui.api.client_cache import CachedClient, ClientCache, credentials_changed, generation
from puhui.api.partners import rotate_secret
from puhui.store.models import ApiClient, ApiSecret
from tests.api.security_harness import Harness, harness
from tests.api.test_auth import WHOAMI, assert_problem
from tests.conftest import Database


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def h(database: Database, tmp_path: Path, clock: FakeClock) -> Iterator[Harness]:
    with harness(database, tmp_path) as built:
        built.security.clients = ClientCache(5.0, clock=clock)
        yield built


def _elsewhere(h: Harness, **values: object) -> None:
    """Change the client in the database without telling this process (another process)."""
    with h.platform.sessions() as s:
        s.execute(update(ApiClient).where(ApiClient.client_id == h.creds.client_id).values(values))
        s.commit()


def test_revocation_by_another_process_is_seen_within_the_lifetime(
    h: Harness, clock: FakeClock
) -> None:
    token = h.token()
    assert h.signed("GET", WHOAMI, token=token).status_code == 200  # cached now
    _elsewhere(h, revoked_at=datetime.now(UTC))
    clock.now += 4.9
    assert h.signed("GET", WHOAMI, token=token).status_code == 200  # still within 5 s
    clock.now += 0.2
    assert_problem(h.signed("GET", WHOAMI, token=token), 401, "auth.client_revoked")


def test_rotation_without_overlap_elsewhere_stops_the_old_secret_within_the_lifetime(
    h: Harness, clock: FakeClock
) -> None:
    token = h.token()
    assert h.signed("GET", WHOAMI, token=token).status_code == 200
    with h.platform.sessions() as s:  # the old secret ends now, written by another process
        s.execute(update(ApiSecret).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()
    assert h.signed("GET", WHOAMI, token=token).status_code == 200
    clock.now += 5
    assert_problem(h.signed("GET", WHOAMI, token=token), 401, "auth.bad_signature")


def test_a_change_made_in_this_process_is_seen_at_once(h: Harness) -> None:
    token = h.token()
    old = h.creds.client_secret
    assert h.signed("GET", WHOAMI, token=token).status_code == 200
    new = rotate_secret(
        h.platform.uow(), h.platform.vault, client_id=h.creds.client_id, overlap=timedelta(0)
    )
    assert_problem(h.signed("GET", WHOAMI, token=token, secret=old), 401, "auth.bad_signature")
    assert h.signed("GET", WHOAMI, token=token, secret=new).status_code == 200


def test_secret_expiry_is_exact_while_cached(h: Harness) -> None:
    token = h.token()
    old = h.creds.client_secret
    new = rotate_secret(
        h.platform.uow(), h.platform.vault, client_id=h.creds.client_id, overlap=timedelta(hours=1)
    )
    assert h.signed("GET", WHOAMI, token=token, secret=old).status_code == 200  # cached
    h.advance(3601)  # request time past the overlap; the cache entry itself is still fresh
    token = PartnerClient(h.creds.client_id, new, http=h.http, clock=h.now).token()
    assert_problem(h.signed("GET", WHOAMI, token=token, secret=old), 401, "auth.bad_signature")
    assert h.signed("GET", WHOAMI, token=token, secret=new).status_code == 200


def _client(client_id: str = "pk_x") -> CachedClient:
    return CachedClient(client_id, "ins_1", "DEMO", 600, False, (("sk_secret", None),))


def test_cache_entries_expire_and_a_zero_lifetime_turns_it_off(clock: FakeClock) -> None:
    cache = ClientCache(5.0, clock=clock)
    cache.put(_client(), generation=generation())
    assert cache.get("pk_x") == _client()
    clock.now += 5
    assert cache.get("pk_x") is None

    off = ClientCache(0.0, clock=clock)
    off.put(_client(), generation=generation())
    assert off.get("pk_x") is None


def test_credentials_changed_empties_every_cache_and_refuses_stale_loads(
    clock: FakeClock,
) -> None:
    cache = ClientCache(5.0, clock=clock)
    cache.put(_client(), generation=generation())
    loaded_before = generation()
    credentials_changed()
    assert cache.get("pk_x") is None
    cache.put(_client(), generation=loaded_before)  # loaded before the change: not kept
    assert cache.get("pk_x") is None


def test_cache_is_bounded_and_never_shows_a_secret(clock: FakeClock) -> None:
    cache = ClientCache(5.0, max_entries=2, clock=clock)
    for name in ("pk_a", "pk_b", "pk_c"):
        cache.put(_client(name), generation=generation())
    assert cache.get("pk_c") is not None
    assert sum(cache.get(n) is not None for n in ("pk_a", "pk_b", "pk_c")) <= 2
    assert "sk_secret" not in repr(_client())
    assert _client().valid_secrets(datetime.now(UTC)) == ["sk_secret"]
