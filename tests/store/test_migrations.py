"""Migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from puhui.store import migrate
from puhui.store.models import Base
from tests.conftest import Database


def test_migrations_match_models(database: Database) -> None:
    with database.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []


def test_database_is_at_head(database: Database) -> None:
    assert migrate.current_revision(database.engine) == migrate.head_revision(database.url)


def test_every_required_table_exists(database: Database) -> None:
    names = set(inspect(database.engine).get_table_names())
    required = {
        "institutions",
        "enterprises",
        "applicants",
        "applications",
        "decisions",
        "offers",
        "loans",
        "schedule_lines",
        "repayments",
        "consents",
        "events",
        "audit_records",
        "data_keys",
    }
    assert required <= names


def test_downgrade_to_nothing_and_upgrade_again(database: Database) -> None:
    migrate.downgrade(database.url, "base")
    assert "applications" not in inspect(database.engine).get_table_names()
    migrate.upgrade(database.url)
    assert migrate.current_revision(database.engine) == migrate.head_revision(database.url)
    with database.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
