"""The HTTP app: health, OpenAPI, correlation ids, problem+json errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError as PydanticValidationError

from puhui.api.app import create_app
from puhui.bootstrap import Platform
from puhui.domain.errors import FieldError, ValidationError
from puhui.settings import Settings
from tests.conftest import Database


@pytest.fixture
def client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=database.url, key_dir=tmp_path / "keys", var_dir=tmp_path)
    platform = Platform(settings)
    app = create_app(platform)

    @app.get("/test/validation")
    def _fails() -> None:
        raise ValidationError(
            [
                FieldError("amount", "money.positive", "must be more than zero"),
                FieldError("term_months", "application.term_range", "1-360"),
            ]
        )

    with TestClient(app) as c:
        yield c
    platform.close()


def test_healthz_reports_database_schema_and_keys(client: TestClient, database: Database) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == database.kind
    assert body["active_master_key"].startswith("mk-")


def test_openapi_is_served(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.1")


def test_correlation_id_is_echoed_or_created(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Correlation-ID": "abc-123"}).headers["X-Correlation-ID"]
        == "abc-123"
    )
    assert len(client.get("/healthz").headers["X-Correlation-ID"]) == 32


def test_validation_errors_are_problem_json_listing_every_field(client: TestClient) -> None:
    r = client.get("/test/validation")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "validation_failed"
    assert [(e["field"], e["rule"]) for e in body["errors"]] == [
        ("amount", "money.positive"),
        ("term_months", "application.term_range"),
    ]


def test_the_thread_pool_is_sized_by_api_threads(database: Database, tmp_path: Path) -> None:
    """``PUHUI_API_THREADS`` caps how many blocking handlers one process runs at once."""
    settings = Settings(
        database_url=database.url, key_dir=tmp_path / "keys", var_dir=tmp_path, api_threads=2
    )
    platform = Platform(settings)
    app = create_app(platform)
    running: list[int] = []
    peak: list[int] = [0]
    lock = threading.Lock()

    @app.get("/test/tokens")
    async def _tokens() -> dict[str, float]:
        return {"tokens": anyio.to_thread.current_default_thread_limiter().total_tokens}

    @app.get("/test/slow")
    def _slow() -> None:
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.2)
        with lock:
            running.pop()

    try:
        with TestClient(app) as c:
            assert c.get("/test/tokens").json() == {"tokens": 2}
            with ThreadPoolExecutor(6) as pool:
                codes = list(pool.map(lambda _: c.get("/test/slow").status_code, range(6)))
        assert codes == [200] * 6
        assert peak[0] == 2  # six requests at once, never more than two in the handler
    finally:
        platform.close()


def test_api_threads_must_be_at_least_one() -> None:
    with pytest.raises(PydanticValidationError, match="api_threads"):
        Settings(api_threads=0)
