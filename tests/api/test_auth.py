"""Partner authentication through the real app, on both databases: tokens, signatures, every
way a request can fail, tenant context, secret and master-key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from puhui.api import auth
from puhui.api.client import PartnerApiError, PartnerClient, sign_request
from puhui.api.partners import revoke, rotate_secret
from puhui.store.models import RequestNonce
from tests.api.security_harness import Harness, harness
from tests.conftest import Database

WHOAMI = "/v1/test/whoami"


@pytest.fixture
def h(database: Database, tmp_path: Path) -> Iterator[Harness]:
    with harness(database, tmp_path) as built:
        yield built


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    return body


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# -- token endpoint ---------------------------------------------------------------------------


def test_token_with_basic_credentials(h: Harness) -> None:
    r = h.http.post(
        auth.TOKEN_PATH,
        content=b"grant_type=client_credentials",
        headers={**FORM, "Authorization": basic(h.creds.client_id, h.creds.client_secret)},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert r.headers["cache-control"] == "no-store"
    header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
    assert header["alg"] == "HS256"
    assert header["kid"] == h.platform.keyring.active_master_id
    claims = auth.verify_token(h.security, body["access_token"])
    assert claims.client_id == h.creds.client_id
    assert claims.expires_at - claims.issued_at == 900


def test_token_with_form_credentials(h: Harness) -> None:
    form = (
        f"grant_type=client_credentials&client_id={h.creds.client_id}"
        f"&client_secret={h.creds.client_secret}"
    )
    r = h.http.post(auth.TOKEN_PATH, content=form.encode(), headers=FORM)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("form", "use_basic", "status", "error"),
    [
        ("grant_type=client_credentials", False, 401, "invalid_client"),
        ("grant_type=password", True, 400, "unsupported_grant_type"),
        ("", True, 400, "invalid_request"),
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            True,
            400,
            "invalid_request",
        ),
        ("grant_type=client_credentials&client_id=x&client_secret=y", True, 400, "invalid_request"),
    ],
)
def test_token_errors_follow_rfc_6749(
    h: Harness, form: str, use_basic: bool, status: int, error: str
) -> None:
    headers = dict(FORM)
    if use_basic:
        headers["Authorization"] = basic(h.creds.client_id, h.creds.client_secret)
    r = h.http.post(auth.TOKEN_PATH, content=form.encode(), headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == error
    assert r.json()["code"] == f"oauth.{error}"


def test_token_refused_for_wrong_secret_unknown_client_and_wrong_media_type(h: Harness) -> None:
    for client_id, secret in (
        (h.creds.client_id, "sk_" + "A" * 43),
        ("pk_" + "0" * 32, h.creds.client_secret),
    ):
        r = h.http.post(
            auth.TOKEN_PATH,
            content=b"grant_type=client_credentials",
            headers={**FORM, "Authorization": basic(client_id, secret)},
        )
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"
        assert r.headers["www-authenticate"].startswith("Basic")
    r = h.http.post(auth.TOKEN_PATH, json={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


# -- the happy path and tenant context --------------------------------------------------------


def test_signed_request_sets_the_partner_context(h: Harness) -> None:
    other = h.new_partner("杭州示范农商银行", "HZ_DEMO")
    for creds, code in ((h.creds, "DEMO_BANK"), (other, "HZ_DEMO")):
        r = h.partner(creds).get(WHOAMI)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["client_id"] == creds.client_id
        assert body["institution_code"] == code
        with h.platform.uow() as uow:
            inst = uow.institutions.by_code(code)
            assert inst is not None and body["institution_id"] == inst.id


def test_query_string_is_signed_as_sent(h: Harness) -> None:
    r = h.partner().get(WHOAMI, params={"state": "active", "q": "张 三&x"})
    assert r.status_code == 200, r.text
    assert r.json()["query"] == {"state": "active", "q": "张 三&x"}


def test_a_partner_can_sign_with_the_standard_library_alone(h: Harness) -> None:
    """The recipe of docs/api.md, written without any Puhui code, is accepted."""
    token = h.token()
    body = json.dumps({"amount": "12.50"}).encode()
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    digest = hashlib.sha256(body).hexdigest()
    canonical = f"POST\n/v1/test/counter?x=1\n{ts}\n{nonce}\n{digest}".encode()
    mac = hmac.new(h.creds.client_secret.encode(), canonical, hashlib.sha256).digest()
    r = h.http.post(
        "/v1/test/counter?x=1",
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": "recipe-1",
            "X-Puhui-Timestamp": ts,
            "X-Puhui-Nonce": nonce,
            "X-Puhui-Signature": "v1=" + base64.b64encode(mac).decode(),
        },
    )
    assert r.status_code == 201, r.text
    assert sign_request(
        "POST", "/v1/test/counter?x=1", body, h.creds.client_secret, timestamp=int(ts), nonce=nonce
    )["X-Puhui-Signature"] == ("v1=" + base64.b64encode(mac).decode())


def test_unauthenticated_requests_get_401_before_routing_or_parsing(h: Harness) -> None:
    assert_problem(h.http.get("/v1/no/such/thing"), 401, "auth.missing_token")
    assert_problem(
        h.http.post("/v1/test/counter", content=b"{not json", headers={"Idempotency-Key": "k"}),
        401,
        "auth.missing_token",
    )


# -- each failure -----------------------------------------------------------------------------


def test_missing_token(h: Harness) -> None:
    signed = sign_request("GET", WHOAMI, b"", h.creds.client_secret)
    r = h.http.get(WHOAMI, headers=signed)
    body = assert_problem(r, 401, "auth.missing_token")
    assert r.headers["www-authenticate"] == 'Bearer realm="puhui"'
    assert body["instance"] == WHOAMI


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "x" * 40 + ".." + "y"],
)
def test_garbage_token(h: Harness, token: str) -> None:
    r = h.signed("GET", WHOAMI, token=token)
    assert_problem(r, 401, "auth.invalid_token")
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_forged_token_claims_are_refused(h: Harness) -> None:
    other = h.new_partner("另一家银行", "OTHER_BANK")
    header, _, mac = h.token().split(".")
    claims = auth.verify_token(h.security, h.token())
    forged = {
        "iss": "puhui",
        "sub": other.client_id,
        "iat": claims.issued_at,
        "exp": claims.expires_at,
        "jti": "x",
    }
    payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    r = h.signed("GET", WHOAMI, token=f"{header}.{payload}.{mac}", secret=other.client_secret)
    assert_problem(r, 401, "auth.invalid_token")


def test_expired_token(h: Harness) -> None:
    token = h.token()
    h.advance(901)
    assert_problem(h.signed("GET", WHOAMI, token=token), 401, "auth.token_expired")
    # The client notices the expiry itself and fetches a new token.
    client = h.partner()
    client._token, client._token_expires = token, h.now() + 3600  # pretend it looks fresh
    assert client.get(WHOAMI).status_code == 200


def test_missing_signature_headers(h: Harness) -> None:
    token = h.token()
    full = sign_request("GET", WHOAMI, b"", h.creds.client_secret)
    for dropped in full:
        headers = {k: v for k, v in full.items() if k != dropped}
        r = h.http.get(WHOAMI, headers={"Authorization": f"Bearer {token}", **headers})
        assert_problem(r, 401, "auth.missing_signature")


def test_bad_signature_wrong_secret(h: Harness) -> None:
    r = h.signed("GET", WHOAMI, secret="sk_" + "B" * 43)
    assert_problem(r, 401, "auth.bad_signature")


def test_body_tampered_after_signing(h: Harness) -> None:
    token = h.token()
    signed = sign_request("POST", "/v1/test/counter", b'{"amount":"1.00"}', h.creds.client_secret)
    r = h.http.post(
        "/v1/test/counter",
        content=b'{"amount":"9999.00"}',
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": "t-1",
            "Content-Type": "application/json",
            **signed,
        },
    )
    assert_problem(r, 401, "auth.bad_signature")
    assert h.calls["counter"] == 0


def test_path_and_query_tampered_after_signing(h: Harness) -> None:
    token = h.token()
    signed = sign_request("GET", f"{WHOAMI}?limit=1", b"", h.creds.client_secret)
    headers = {"Authorization": f"Bearer {token}", **signed}
    assert_problem(h.http.get(f"{WHOAMI}?limit=100", headers=headers), 401, "auth.bad_signature")
    signed = sign_request("GET", WHOAMI, b"", h.creds.client_secret)
    headers = {"Authorization": f"Bearer {token}", **signed}
    assert_problem(h.http.delete(WHOAMI, headers=headers), 401, "auth.bad_signature")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Puhui-Nonce", "short"),
        ("X-Puhui-Nonce", "has space in it 0123456"),
        ("X-Puhui-Timestamp", "12.5"),
        ("X-Puhui-Signature", "v2=abc"),
    ],
)
def test_malformed_signature_headers(h: Harness, header: str, value: str) -> None:
    r = h.signed("GET", WHOAMI, headers={header: value})
    assert_problem(r, 401, "auth.bad_signature")


@pytest.mark.parametrize("skew", [-301, 301, -3600, 86400])
def test_stale_timestamp_either_direction(h: Harness, skew: int) -> None:
    # The token first and the timestamp rounded away from now: a slow token request, or the
    # truncated fraction of a second, must not pull a 301 s skew back inside the 300 s window.
    token = h.token()
    now = h.now()
    stamp = math.ceil(now) + skew if skew > 0 else math.floor(now) + skew
    r = h.signed("GET", WHOAMI, token=token, timestamp=stamp)
    assert_problem(r, 401, "auth.stale_timestamp")


@pytest.mark.parametrize("skew", [-290, 290])
def test_timestamp_inside_the_window_is_accepted(h: Harness, skew: int) -> None:
    assert h.signed("GET", WHOAMI, timestamp=int(h.now()) + skew).status_code == 200


def test_replayed_nonce(h: Harness) -> None:
    token = h.token()
    signed = sign_request("GET", WHOAMI, b"", h.creds.client_secret)
    headers = {"Authorization": f"Bearer {token}", **signed}
    assert h.http.get(WHOAMI, headers=headers).status_code == 200
    assert_problem(h.http.get(WHOAMI, headers=headers), 401, "auth.replayed_nonce")
    # The same nonce on a different, freshly signed request is refused too.
    again = h.signed("GET", f"{WHOAMI}?x=1", token=token, nonce=signed["X-Puhui-Nonce"])
    assert_problem(again, 401, "auth.replayed_nonce")


def test_a_bad_signature_does_not_burn_the_nonce(h: Harness) -> None:
    nonce = secrets.token_hex(16)
    r = h.signed("GET", WHOAMI, nonce=nonce, secret="sk_" + "C" * 43)
    assert_problem(r, 401, "auth.bad_signature")
    assert h.signed("GET", WHOAMI, nonce=nonce).status_code == 200


def test_nonces_are_purged_once_outside_the_window(h: Harness, database: Database) -> None:
    for _ in range(3):
        assert h.partner().get(WHOAMI).status_code == 200
    h.advance(h.security.window_seconds + 5)
    h.security._last_run.clear()  # housekeeping is due
    assert h.partner().get(WHOAMI).status_code == 200
    with database.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RequestNonce)) == 1


def test_revoked_client(h: Harness) -> None:
    token = h.token()
    assert h.signed("GET", WHOAMI, token=token).status_code == 200
    revoke(h.platform.uow(), client_id=h.creds.client_id)
    assert_problem(h.signed("GET", WHOAMI, token=token), 401, "auth.client_revoked")
    with pytest.raises(PartnerApiError) as refused:
        h.partner().token()
    assert refused.value.response.json()["error"] == "invalid_client"


def test_rotated_secret_overlaps_then_expires(h: Harness) -> None:
    old = h.creds.client_secret
    new = rotate_secret(
        h.platform.uow(), h.platform.vault, client_id=h.creds.client_id, overlap=timedelta(hours=1)
    )
    old_client = PartnerClient(h.creds.client_id, old, http=h.http, clock=h.now)
    new_client = PartnerClient(h.creds.client_id, new, http=h.http, clock=h.now)
    assert old_client.get(WHOAMI).status_code == 200
    assert new_client.get(WHOAMI).status_code == 200

    h.advance(3601)
    token = new_client.token(refresh=True)
    assert_problem(h.signed("GET", WHOAMI, token=token, secret=old), 401, "auth.bad_signature")
    with pytest.raises(PartnerApiError):
        old_client.token(refresh=True)
    assert h.signed("GET", WHOAMI, token=token, secret=new).status_code == 200


def test_tokens_survive_master_key_rotation(h: Harness) -> None:
    before = h.token()
    old_kid = h.platform.keyring.active_master_id
    new_kid = h.platform.keyring.rotate_master()
    assert h.signed("GET", WHOAMI, token=before).status_code == 200
    after = h.partner().token(refresh=True)
    assert auth.verify_token(h.security, after).key_id == new_kid != old_kid
    assert h.signed("GET", WHOAMI, token=after).status_code == 200


def test_token_from_another_keyring_is_refused(h: Harness, tmp_path: Path) -> None:
    from puhui.bootstrap import Platform
    from puhui.settings import Settings

    stranger = Platform(Settings(key_dir=tmp_path / "other-keys", var_dir=tmp_path / "other"))
    foreign = auth.ApiSecurity(platform=stranger)
    token, _ = auth.issue_token(foreign, h.creds.client_id)
    assert_problem(h.signed("GET", WHOAMI, token=token), 401, "auth.invalid_token")


def test_concurrent_replays_of_one_signed_request_succeed_once(h: Harness) -> None:
    token = h.token()
    headers = {
        "Authorization": f"Bearer {token}",
        **sign_request("GET", WHOAMI, b"", h.creds.client_secret, timestamp=int(h.now())),
    }
    barrier = threading.Barrier(20)

    def fire(_: int) -> int:
        barrier.wait()
        r = h.http.get(WHOAMI, headers=headers)
        if r.status_code != 200:
            assert_problem(r, 401, "auth.replayed_nonce")
        return r.status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(fire, range(20)))
    assert statuses.count(200) == 1


def test_only_v1_is_gated_and_installing_twice_changes_nothing(h: Harness) -> None:
    assert auth.install_security(h.app) is h.security
    assert h.http.get("/healthz").status_code == 200
    assert h.http.get("/openapi.json").status_code == 200
    assert "/v1/oauth/token" in h.http.get("/openapi.json").json()["paths"]
