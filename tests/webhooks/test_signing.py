"""Standard Webhooks signing: known answers, round trips, and every way verification fails."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from puhui.webhooks.signing import (
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    WebhookVerificationError,
    compute_signature,
    generate_secret,
    secret_key,
    sign,
    verify,
)

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
MSG_ID = "evt_0123456789abcdef"
TS = 1_764_300_000
BODY = b'{"id":"evt_0123456789abcdef","type":"application.submitted","data":{"amount":"1.00"}}'


def test_known_answer_computed_from_the_spec_definition() -> None:
    # The spec: HMAC-SHA256, keyed with the base64-decoded secret, over "{id}.{timestamp}.{body}",
    # sent as "v1," + standard base64.
    content = MSG_ID.encode() + b"." + str(TS).encode() + b"." + BODY
    expected = "v1," + base64.b64encode(hmac.new(KEY, content, hashlib.sha256).digest()).decode()
    headers = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET)
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": "1764300000",
        "webhook-signature": expected,
    }


def test_interoperates_with_the_reference_library_vector() -> None:
    # The Standard Webhooks reference libraries' sign test: a 24-byte secret, unpadded id.
    signature = compute_signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        payload=b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_generated_secrets_are_whsec_and_32_random_bytes() -> None:
    a, b = generate_secret(), generate_secret()
    assert a.startswith("whsec_") and a != b
    assert len(secret_key(a)) == 32
    assert secret_key(a) == base64.b64decode(a.removeprefix("whsec_"))


def test_round_trip_returns_the_id() -> None:
    headers = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET)
    assert verify(BODY, headers, SECRET, now=TS + 10) == MSG_ID


def test_header_names_are_case_insensitive() -> None:
    headers = {
        k.title(): v for k, v in sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET).items()
    }
    assert "Webhook-Signature" in headers
    assert verify(BODY, headers, SECRET, now=TS) == MSG_ID


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", BODY.replace(b"1.00", b"9.00")),
        ("body", BODY + b" "),
        (HEADER_ID, "evt_somethingelse"),
        (HEADER_TIMESTAMP, str(TS + 1)),
    ],
)
def test_tampering_is_detected(field: str, value: object) -> None:
    headers = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET)
    body = BODY
    if field == "body":
        assert isinstance(value, bytes)
        body = value
    else:
        assert isinstance(value, str)
        headers[field] = value
    with pytest.raises(WebhookVerificationError, match="no valid v1 signature"):
        verify(body, headers, SECRET, now=TS)


def test_wrong_secret_is_refused() -> None:
    headers = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET)
    with pytest.raises(WebhookVerificationError):
        verify(BODY, headers, generate_secret(), now=TS)


def test_stale_and_future_timestamps_are_refused_at_the_tolerance() -> None:
    headers = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET)
    assert verify(BODY, headers, SECRET, now=TS + 300) == MSG_ID
    assert verify(BODY, headers, SECRET, now=TS - 300) == MSG_ID
    with pytest.raises(WebhookVerificationError, match="older"):
        verify(BODY, headers, SECRET, now=TS + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify(BODY, headers, SECRET, now=TS - 301)
    assert verify(BODY, headers, SECRET, now=TS + 3000, tolerance=3600) == MSG_ID


def test_the_default_clock_refuses_an_old_message() -> None:
    headers = sign(BODY, msg_id=MSG_ID, timestamp=1_000_000_000, secret=SECRET)
    with pytest.raises(WebhookVerificationError, match="older"):
        verify(BODY, headers, SECRET)


@pytest.mark.parametrize("missing", [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE])
def test_missing_headers_are_named(missing: str) -> None:
    headers = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET)
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match=missing):
        verify(BODY, headers, SECRET, now=TS)


@pytest.mark.parametrize("bad", ["hello", "1764300000.5", "-5", ""])
def test_malformed_timestamps_are_refused(bad: str) -> None:
    headers = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET)
    headers[HEADER_TIMESTAMP] = bad
    with pytest.raises(WebhookVerificationError, match="timestamp"):
        verify(BODY, headers, SECRET, now=TS)


def test_any_of_several_signatures_may_match() -> None:
    old, new = generate_secret(), SECRET
    headers = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=[new, old])
    assert len(headers[HEADER_SIGNATURE].split(" ")) == 2
    # A receiver still on the old secret, one already on the new, one holding both.
    assert verify(BODY, headers, old, now=TS) == MSG_ID
    assert verify(BODY, headers, new, now=TS) == MSG_ID
    assert verify(BODY, headers, [generate_secret(), new], now=TS) == MSG_ID


def test_unknown_versions_and_garbage_signatures_are_skipped() -> None:
    good = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET)[HEADER_SIGNATURE]
    noisy = f"v1a,AAAA v2,{good[3:]} v1,!!notbase64!! nocomma {good}"
    headers = {HEADER_ID: MSG_ID, HEADER_TIMESTAMP: str(TS), HEADER_SIGNATURE: noisy}
    assert verify(BODY, headers, SECRET, now=TS) == MSG_ID
    headers[HEADER_SIGNATURE] = f"v1a,AAAA v2,{good[3:]}"
    with pytest.raises(WebhookVerificationError):
        verify(BODY, headers, SECRET, now=TS)


def test_secret_prefix_is_optional_and_padding_may_be_dropped() -> None:
    bare = SECRET.removeprefix("whsec_").rstrip("=")
    headers = sign(BODY, msg_id=MSG_ID, timestamp=TS, secret=SECRET)
    assert verify(BODY, headers, bare, now=TS) == MSG_ID


@pytest.mark.parametrize(
    "bad", ["whsec_", "whsec_***", "whsec_" + base64.b64encode(b"short").decode()]
)
def test_malformed_secrets_are_configuration_errors(bad: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        secret_key(bad)


@pytest.mark.parametrize("msg_id", ["", "evt.1", "evt 1"])
def test_ids_that_would_break_the_signed_content_are_refused(msg_id: str) -> None:
    with pytest.raises(ValueError, match="webhook id"):
        sign(BODY, msg_id=msg_id, timestamp=TS, secret=SECRET)


# -- the receiver recipe in docs/webhooks.md -------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _documented_verifier() -> Callable[[bytes, dict[str, str], str], str]:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("# receiver.py")
    code = text[start : text.index("```", start)]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    verifier = namespace["verify_webhook"]
    assert callable(verifier)
    return cast(Callable[[bytes, dict[str, str], str], str], verifier)


def test_the_documented_stdlib_recipe_agrees_with_the_signer() -> None:
    check = _documented_verifier()
    now = int(time.time())
    old = generate_secret()
    headers = sign(BODY, msg_id=MSG_ID, timestamp=now, secret=[SECRET, old])
    assert check(BODY, headers, SECRET) == MSG_ID
    assert check(BODY, headers, old) == MSG_ID
    with pytest.raises(ValueError, match="signature"):
        check(BODY + b" ", headers, SECRET)
    with pytest.raises(ValueError, match="signature"):
        check(BODY, headers, generate_secret())
    stale = sign(BODY, msg_id=MSG_ID, timestamp=now - 301, secret=SECRET)
    with pytest.raises(ValueError, match="timestamp"):
        check(BODY, stale, SECRET)
    with pytest.raises(ValueError, match="missing"):
        check(BODY, {HEADER_ID: MSG_ID}, SECRET)
