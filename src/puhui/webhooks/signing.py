"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec v1.0.0, symmetric).

Why this scheme rather than a home-grown one: partners can verify with any Standard Webhooks
library or with ten lines of stdlib code, and the scheme signs the message id and the attempt
time together with the body, so a captured request cannot be replayed later or under another
id. What the spec fixes, and this module does:

* headers ``webhook-id`` (the event id, which the receiver uses to de-duplicate),
  ``webhook-timestamp`` (integer unix seconds of the attempt) and ``webhook-signature``;
* the signed content is ``{id}.{timestamp}.{body}`` — the raw body bytes, exactly as sent;
* the signature is ``v1,`` + base64 (standard alphabet, padded) of HMAC-SHA256 over it;
* a secret is shown as ``whsec_`` + base64 of random bytes, and the HMAC key is the decoded
  bytes — not the text (we make 32 bytes; the spec asks for 24 to 64);
* ``webhook-signature`` may hold several space-separated signatures, so during a secret
  rotation the sender signs with the old and the new secret and the receiver accepts either;
* receivers compare in constant time and refuse timestamps outside a tolerance (default
  5 minutes, either side), which bounds replays; the id bounds duplicates.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
DEFAULT_TOLERANCE = 300
"""Seconds a receiver accepts between the signed timestamp and its own clock."""

_MIN_KEY_BYTES = 24
_MAX_KEY_BYTES = 64


class WebhookVerificationError(Exception):
    """A received webhook is not authentic or not fresh; the message says which check failed."""


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_…`` secret stands for (the prefix is optional).

    Raises ``ValueError`` for a secret that is not base64 or decodes to fewer than 24 or more
    than 64 bytes — a configuration mistake, so it is not a verification failure.
    """
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not whsec_ followed by base64") from None
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise ValueError(
            f"webhook secret decodes to {len(key)} bytes; {_MIN_KEY_BYTES}-{_MAX_KEY_BYTES} needed"
        )
    return key


def _signed_content(msg_id: str, timestamp: int, payload: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + payload


def _digest(key: bytes, msg_id: str, timestamp: int, payload: bytes) -> bytes:
    return hmac.new(key, _signed_content(msg_id, timestamp, payload), hashlib.sha256).digest()


def compute_signature(secret: str, *, msg_id: str, timestamp: int, payload: bytes) -> str:
    """One signature, ``v1,<base64>``, of ``payload`` under ``secret``."""
    digest = _digest(secret_key(secret), msg_id, timestamp, payload)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign(
    payload: bytes, *, msg_id: str, timestamp: int, secret: str | Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for sending ``payload``.

    ``secret`` is the endpoint's secret, or several (newest first) while a rotation overlaps:
    each adds one signature to ``webhook-signature``.
    """
    if not msg_id or any(c in msg_id for c in ". \t\r\n"):
        # The spec: ids must not contain "." (it delimits the signed content).
        raise ValueError("webhook id must be non-empty, without '.' or whitespace")
    if timestamp < 0:
        raise ValueError("webhook timestamp must be unix seconds (>= 0)")
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("at least one secret is needed to sign")
    signatures = [
        compute_signature(s, msg_id=msg_id, timestamp=timestamp, payload=payload) for s in keys
    ]
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: " ".join(signatures),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    raise WebhookVerificationError(f"missing header {name}")


def _offered_digests(header: str) -> Iterable[bytes]:
    for item in header.split():
        version, sep, encoded = item.partition(",")
        if not sep or version != SIGNATURE_VERSION:
            continue  # another scheme (v1a: ed25519) or noise: not ours to judge
        try:
            yield base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue


def verify(
    payload: bytes,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a received webhook; returns its ``webhook-id`` (the de-duplication key).

    ``payload`` is the raw request body — never a re-serialised parse of it. ``headers`` is
    any mapping of header names (any case) to values. ``secret`` is the endpoint's
    ``whsec_…`` secret, or several while the receiver is switching secrets. ``now`` is unix
    seconds (default: the system clock). Raises :class:`WebhookVerificationError` naming the
    failed check: a missing header, a malformed, stale or future timestamp, or no matching
    signature.
    """
    msg_id = _header(headers, HEADER_ID)
    raw_timestamp = _header(headers, HEADER_TIMESTAMP)
    signature_header = _header(headers, HEADER_SIGNATURE)
    if not msg_id:
        raise WebhookVerificationError(f"empty header {HEADER_ID}")
    if not raw_timestamp.isascii() or not raw_timestamp.isdigit():
        raise WebhookVerificationError(f"{HEADER_TIMESTAMP} is not integer unix seconds")
    timestamp = int(raw_timestamp)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError(
            f"{HEADER_TIMESTAMP} is older than the {tolerance} s tolerance (a replay?)"
        )
    if timestamp > current + tolerance:
        raise WebhookVerificationError(
            f"{HEADER_TIMESTAMP} is more than {tolerance} s in the future (clock skew?)"
        )
    keys = [secret_key(s) for s in ([secret] if isinstance(secret, str) else secret)]
    if not keys:
        raise ValueError("at least one secret is needed to verify")
    expected = [_digest(k, msg_id, timestamp, payload) for k in keys]
    matched = False
    for offered in _offered_digests(signature_header):
        for digest in expected:
            # No early exit: every comparison is constant-time and all of them run.
            matched |= hmac.compare_digest(offered, digest)
    if not matched:
        raise WebhookVerificationError(
            f"no valid {SIGNATURE_VERSION} signature in {HEADER_SIGNATURE}"
        )
    return msg_id
