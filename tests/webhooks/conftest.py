"""Fixtures for webhook tests: a platform on the test database, and real HTTP receivers.

A :class:`Receiver` is an ``http.server`` on 127.0.0.1 (ephemeral port) in a thread. It checks
every request with :func:`puhui.webhooks.signing.verify`, as a partner would, and can be told
to fail the first N verified requests — so retries are exercised over real sockets.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from puhui.bootstrap import Platform
from puhui.origination.institutions import register_institution
from puhui.settings import Settings
from puhui.store import models as m
from puhui.store.unit_of_work import UnitOfWork
from puhui.webhooks.endpoints import register_endpoint
from puhui.webhooks.signing import WebhookVerificationError, verify
from tests.conftest import Database


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    error: str | None
    """Why verification failed; None for an authentic request."""

    @property
    def message(self) -> dict[str, Any]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


@dataclass
class Receiver:
    """A partner's webhook receiver. Set ``secrets`` once the endpoint is registered."""

    secrets: list[str] = field(default_factory=list)
    fail_first: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    now: float | None = None
    """The receiver's clock for the timestamp check (None: the system clock)."""
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            try:
                verify(body, headers, self.secrets, now=self.now)
            except WebhookVerificationError as exc:
                self.received.append(Received(headers, body, str(exc)))
                return 400, {}
            self.received.append(Received(headers, body, None))
            if self.fail_first > 0:
                self.fail_first -= 1
                extra = {"Retry-After": self.retry_after} if self.retry_after else {}
                return self.fail_status, extra
            return 204, {}

    @property
    def authentic(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.error is None]

    @property
    def event_ids(self) -> list[str]:
        return [r.message["id"] for r in self.authentic]


def _serve(receiver: Receiver) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra = receiver.answer(headers, body)
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return server, thread


@pytest.fixture
def make_receiver() -> Iterator[Callable[[], Receiver]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def make() -> Receiver:
        receiver = Receiver()
        servers.append(_serve(receiver))
        return receiver

    yield make
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def receiver(make_receiver: Callable[[], Receiver]) -> Receiver:
    return make_receiver()


@pytest.fixture
def platform(database: Database, tmp_path: Path) -> Iterator[Platform]:
    """The platform on the test database, with the same key directory as ``vault``."""
    p = Platform(
        Settings(
            database_url=database.url,
            key_dir=tmp_path / "keys",
            var_dir=tmp_path,
            webhook_allow_loopback=True,  # the test receiver listens on 127.0.0.1
        )
    )
    yield p
    p.close()


def institution_id(database: Database, code: str) -> str:
    with UnitOfWork(database.sessions) as uow:
        row = uow.institutions.by_code(code)
        assert row is not None
        return row.id


@pytest.fixture
def bank_a(database: Database, institution: str) -> str:
    """DEMO_BANK's institution id."""
    return institution_id(database, institution)


@pytest.fixture
def bank_b(database: Database) -> str:
    """A second tenant, OTHER_BANK; its institution id."""
    info = register_institution(
        UnitOfWork(database.sessions), code="OTHER_BANK", name="另一银行", institution_type="bank"
    )
    return info.id


def subscribe(
    platform: Platform, institution: str, receiver: Receiver, event_types: list[str] | None = None
) -> str:
    """Register ``receiver`` for ``institution``; hands it the secret; returns the endpoint id."""
    info, secret = register_endpoint(
        platform.uow("test"),
        platform.vault,
        institution_id=institution,
        url=receiver.url,
        event_types=event_types or ["*"],
    )
    receiver.secrets = [secret]
    return info.id


def record(
    database: Database,
    institution: str | None,
    event_type: str = "application.submitted",
    payload: dict[str, Any] | None = None,
) -> str:
    """Write one outbox event as a use case would; returns its event id."""
    with UnitOfWork(database.sessions, actor="test") as uow:
        event = uow.record_event(
            aggregate_type="application",
            aggregate_id=m.new_id("app"),
            event_type=event_type,
            institution_id=institution,
            payload=payload or {"amount": "1000.00"},
        )
        uow.commit()
        return event.event_id


def at(receiver: Receiver, moment: datetime) -> datetime:
    """Set the receiver's clock to ``moment`` (the dispatcher's injected now); returns it."""
    receiver.now = moment.timestamp()
    return moment
