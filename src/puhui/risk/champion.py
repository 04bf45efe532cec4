"""Champion/challenger assignment by a deterministic hash of the application id.

The same application always lands in the same arm — on a retry, on another worker, after a
restart — which a fresh random draw per request could not promise, and which keeps the
comparison honest (no application is scored by the challenger "sometimes").
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(application_id: str, salt: str = "champion-challenger/1") -> int:
    """A stable bucket in [0, 10 000) from SHA-256 of salt and id."""
    digest = hashlib.sha256(f"{salt}:{application_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_challenger_arm(
    application_id: str, share: float, salt: str = "champion-challenger/1"
) -> bool:
    if not 0.0 <= share <= 1.0:
        raise ValueError("share must be between 0 and 1")
    return bucket(application_id, salt) < round(share * BUCKETS)
