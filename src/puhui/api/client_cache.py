"""A short-lived, in-process cache of API clients and their decrypted secrets.

Why: checking a request's signature needs the client (institution, limit, revoked or not) and
its valid secrets in the clear. Reading them costs three queries and a decryption on every
request — about a tenth of a request's work on the hot path — for data that changes a few
times a year.

How long a change can take to be seen:

* **In this process, at once.** ``partners.create_partner``, ``rotate_secret`` and ``revoke``
  call :func:`credentials_changed` after they commit, which empties every cache in the process.
* **In another process, within ``ttl_seconds``** (``PUHUI_API_CLIENT_CACHE_SECONDS``, 5 s by
  default; 0 turns the cache off). A revocation or a rotation with ``--overlap-hours 0`` done by
  ``puhui partners`` in another process therefore stops a client on every API server within a
  few seconds, not instantly. An entry is reloaded from the database once it is older than that.
* **Secret expiry is exact**: each cached secret keeps its ``expires_at`` and is checked against
  the request time on every use, so the end of a rotation overlap needs no reload.

The cache holds at most ``max_entries`` clients (an operator has a handful of partners); when
full it is emptied rather than managed, which is simple and still bounded. Secrets live only in
memory, as they do for the instant a request is checked; nothing here logs or represents them
(:class:`CachedClient`'s ``repr`` leaves them out).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_TTL_SECONDS = 5.0
DEFAULT_MAX_ENTRIES = 1024

_generation = 0
_generation_lock = threading.Lock()


def credentials_changed() -> None:
    """Invalidate every client cache in this process (a client was created, rotated, revoked)."""
    global _generation
    with _generation_lock:
        _generation += 1


def _current_generation() -> int:
    return _generation


@dataclass(frozen=True)
class CachedClient:
    """What authentication needs to know about one API client."""

    client_id: str
    institution_id: str
    institution_code: str
    rate_limit_per_minute: int
    revoked: bool
    secrets: tuple[tuple[str, datetime | None], ...] = field(repr=False)
    """(secret, expires_at) for every secret that was unexpired when loaded."""

    def valid_secrets(self, at: datetime) -> list[str]:
        """The secrets a signature made at ``at`` may use."""
        return [s for s, expires_at in self.secrets if expires_at is None or expires_at > at]


class ClientCache:
    """``client_id`` → :class:`CachedClient`, each entry kept at most ``ttl_seconds``."""

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[CachedClient, float]] = {}
        self._generation = _current_generation()
        self._lock = threading.Lock()

    def get(self, client_id: str) -> CachedClient | None:
        if self.ttl_seconds <= 0:
            return None
        with self._lock:
            self._check_generation()
            found = self._entries.get(client_id)
            if found is None:
                return None
            client, loaded_at = found
            if self._clock() - loaded_at >= self.ttl_seconds:
                del self._entries[client_id]
                return None
            return client

    def put(self, client: CachedClient, *, generation: int) -> None:
        """Keep ``client``, loaded when the process-wide generation was ``generation``.

        Dropped if credentials changed meanwhile: what was loaded may already be stale.
        """
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            self._check_generation()
            if generation != self._generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[client.client_id] = (client, self._clock())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _check_generation(self) -> None:
        current = _current_generation()
        if current != self._generation:
            self._entries.clear()
            self._generation = current


def generation() -> int:
    """The process-wide credentials generation; read it *before* loading a client to cache."""
    return _current_generation()
