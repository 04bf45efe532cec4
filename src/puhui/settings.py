"""Configuration from the environment (prefix ``PUHUI_``) with embedded defaults.

The defaults make ``make run`` work on a fresh machine: an SQLite database and local key
files under ``var/``. Production sets ``PUHUI_DATABASE_URL`` to PostgreSQL
(``postgresql+pg8000://user@host/db``) and points ``PUHUI_KEY_DIR`` at a protected volume
(or, later, a KMS).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_var_dir() -> Path:
    return Path.cwd() / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PUHUI_", env_file=".env", extra="ignore")

    var_dir: Path = Field(default_factory=_default_var_dir)
    """Where the embedded database and local keys live by default."""

    database_url: str = ""
    """SQLAlchemy URL. Empty means ``sqlite:///<var_dir>/puhui.db``."""

    key_dir: Path | None = None
    """Directory of the master and blind-index key files. Empty means ``<var_dir>/keys``."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    """API processes ``puhui serve`` starts (uvicorn workers). No request state lives in a
    process, so several can share one PostgreSQL; SQLite serialises writers, so one is best."""

    api_reconnect_every: int = Field(default=50, ge=0)
    """With several workers, each answers every Nth request with ``Connection: close``, so that
    clients' keep-alive connections — and their requests — spread over the processes instead
    of piling on the one that happened to accept them (``api.rebalance``). 0: never."""

    api_threads: int = Field(default=3, ge=1, le=256)
    """Requests one API process works on at once. Handlers block on the database, so they run
    in a thread pool, and those threads share one interpreter lock: with anyio's default of 40,
    a burst put dozens of requests in flight in each process, each waiting for the lock after
    every database answer, and at 100 applications/s on PostgreSQL the p99 grew from tens of
    milliseconds to over a second with the CPU only three-quarters busy. With three per process
    it was 45-139 ms in the same hour, side by side (BENCHMARKS.md, issue 3); queued requests
    wait their turn in order instead. Raise it if handlers wait on slow outside services."""

    log_level: str = "INFO"

    api_token_ttl_seconds: int = 900
    api_token_issuer: str = "puhui"
    api_signature_window_seconds: int = 300
    api_max_body_bytes: int = 1024 * 1024
    api_idempotency_ttl_hours: int = 24
    api_idempotency_lease_seconds: int = 300
    """After this, a key left "in progress" by a crashed worker may be taken over."""
    api_client_cache_seconds: float = 5.0
    """How long an API server keeps a client and its decrypted secrets in memory
    (``api.client_cache``): a revocation or rotation made in another process reaches this one
    within this many seconds. 0 reads them from the database on every request."""

    webhook_allow_loopback: bool = False
    """Let partners register http://127.0.0.1 / localhost endpoints (development and tests
    only: in production it would let a partner make the server call its own services)."""

    webhook_dispatcher: bool = True
    """Run the webhook dispatcher inside ``puhui serve`` (the embedded default); turn it off
    when dispatchers run as their own processes (``puhui webhooks dispatch``)."""

    audit_sealing: Literal["inline", "deferred"] = "inline"
    """How this process's transactions put their audit records into the hash chain
    (``privacy.audit``). inline: in the transaction itself, which holds the chain's head
    locked until its commit is on disk, so concurrent writers queue there. deferred: committed
    with the change, then chained by a sealer within about half a second. ``puhui serve`` on
    PostgreSQL runs a sealer and defers, for itself and its workers, unless ``audit_sealer``
    is off."""

    audit_sealer: bool = True
    """Run the audit sealer inside ``puhui serve`` and, on PostgreSQL, defer the API's sealing
    to it (on SQLite, which serialises writers anyway, inline is as fast and never waits on a
    sealer's batch). Turn it off to chain inline in every request, or when the sealer runs as
    its own process (``puhui audit seal --follow``, with ``PUHUI_AUDIT_SEALING=deferred`` for
    the servers)."""

    audit_seal_interval_seconds: float = Field(default=0.5, gt=0)
    """How long ``puhui serve``'s sealer rests after a round that found nothing to seal: with
    the default a record waits at most about half a second outside the chain."""

    federated_config: Path | None = None
    """The bank's (guest's) ``party.toml``: when set, a federated champion model asks this data
    partner for its half of each score (``puhui federated serve`` on the partner's side)."""

    federated_timeout_seconds: float = 0.5
    """How long a decision waits for the data partner before using the fallback model."""

    federated_cooldown_seconds: float = Field(default=5.0, ge=0)
    """After the partner fails to answer in time, decisions use the fallback without asking it
    for this long, rather than each waiting out the timeout while it is down."""

    simulation: bool = False
    """Honour X-Puhui-Simulated-Time (``puhui simulate`` only; never in production)."""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'puhui.db'}"

    @property
    def resolved_key_dir(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.var_dir / "keys"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
