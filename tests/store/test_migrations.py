"""Migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from puhui.origination.submit import submit_application
from puhui.privacy.blind_index import BlindIndexer
from puhui.privacy.vault import Vault
from puhui.store import migrate
from puhui.store.models import Base
from puhui.store.unit_of_work import UnitOfWork
from tests import factories
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


def test_upgrade_links_existing_applications_from_their_blind_indexes(
    database: Database, institution: str, vault: Vault, indexer: BlindIndexer
) -> None:
    app_id = submit_application(
        UnitOfWork(database.sessions), vault, indexer, factories.application()
    ).application_id
    with database.engine.connect() as conn:
        written = {
            (k, v)
            for k, v in conn.execute(
                text("SELECT kind, key FROM fraud_links WHERE application_id = :a"), {"a": app_id}
            )
        }
    migrate.downgrade(database.url, "0004")  # as if the application predates the link table
    migrate.upgrade(database.url)
    with database.engine.connect() as conn:
        backfilled = {
            (k, v)
            for k, v in conn.execute(
                text("SELECT kind, key FROM fraud_links WHERE application_id = :a"), {"a": app_id}
            )
        }
    # every link but the address (never blind-indexed before) comes back, with the same keys
    assert backfilled == {(k, v) for k, v in written if k != "address"}
    assert {k for k, _ in backfilled} == {
        "device",
        "ip",
        "mobile",
        "bank_account",
        "id_number",
        "uscc",
    }
