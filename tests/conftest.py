"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is taken from ``PUHUI_TEST_POSTGRES_URL`` (default: the local server on
127.0.0.1:5432, trust auth, database ``test``). Each test session creates a scratch database on
that server, migrates it once with Alembic, and empties it between tests. Where PostgreSQL is
unreachable its tests are skipped — unless ``PUHUI_REQUIRE_POSTGRES=1`` (set by CI), which
turns the skip into a failure so a green CI run always means both databases were tested.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.keys import KeyRing
from puhui.privacy.vault import Vault
from puhui.store import migrate
from puhui.store.db import make_engine, make_session_factory, normalise_url
from puhui.store.models import Base
from puhui.store.unit_of_work import UnitOfWork

DEFAULT_PG = "postgresql+pg8000://postgres@127.0.0.1:5432/test"


@dataclass
class Database:
    kind: str
    url: str
    engine: Engine
    sessions: sessionmaker[Session]


def _postgres_admin_url() -> str:
    return normalise_url(os.environ.get("PUHUI_TEST_POSTGRES_URL", DEFAULT_PG))


def _require_postgres() -> bool:
    return os.environ.get("PUHUI_REQUIRE_POSTGRES", "") in ("1", "true", "yes")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_url() -> Iterator[str | None]:
    admin_url = _postgres_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # unreachable server: skip, or fail in CI
        admin.dispose()
        if _require_postgres():
            pytest.fail(f"PostgreSQL required but unreachable at {admin_url}: {exc}")
        yield None
        return
    name = f"puhui_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_postgres(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": "0" * 64}
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path
) -> Iterator[Database]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "puhui.db"
        shutil.copyfile(_sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        pg_url = request.getfixturevalue("_postgres_url")
        if pg_url is None:
            pytest.skip("PostgreSQL not reachable (set PUHUI_REQUIRE_POSTGRES=1 to fail instead)")
        url = pg_url
    engine = make_engine(url)
    if request.param == "postgresql":
        _empty_postgres(engine)
    from puhui.risk.serving import forget_live_models

    forget_live_models()  # the registry is empty again: no cached champion may survive
    from puhui.fraud.rule_store import ACTIVE_RULES

    ACTIVE_RULES.forget()
    try:
        yield Database(request.param, url, engine, make_session_factory(engine))
    finally:
        engine.dispose()


# --- platform parts -------------------------------------------------------------------------


@pytest.fixture
def keyring(tmp_path: Path) -> KeyRing:
    return KeyRing.load_or_create(tmp_path / "keys")


@pytest.fixture
def vault(keyring: KeyRing) -> Vault:
    return Vault(keyring)


@pytest.fixture
def indexer(keyring: KeyRing) -> BlindIndexer:
    return BlindIndexer.from_keyring(keyring)


@pytest.fixture
def uow(database: Database) -> UnitOfWork:
    return UnitOfWork(database.sessions, actor="test")


@pytest.fixture
def institution(database: Database) -> str:
    """A registered bank with code DEMO_BANK; returns its code."""
    from puhui.origination.institutions import register_institution

    register_institution(
        UnitOfWork(database.sessions), code="DEMO_BANK", name="示范银行", institution_type="bank"
    )
    return "DEMO_BANK"
