"""Anti-fraud: identifier links (blind indexes), black/confirmed-fraud lists, fraud reviews,
versioned rule sets.

Existing applications are linked from the blind indexes they already carry (device and IP on
the application; ID number, mobile and bank account on the applicant; USCC on the enterprise),
so the fraud features see the history from the first decision after the upgrade. Addresses
were never blind-indexed before, so old applications have no address link.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fraud_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.String(length=40), nullable=False),
        sa.Column("institution_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_fraud_links_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fraud_links")),
    )
    with op.batch_alter_table("fraud_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fraud_links_application_id"), ["application_id"], unique=False
        )
        batch_op.create_index(
            "ix_fraud_links_kind_key", ["kind", "key", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_fraud_links_identity", ["identity", "occurred_at"], unique=False)
    op.create_table(
        "fraud_list_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("list_name", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("added_by", sa.String(length=120), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fraud_list_entries")),
        sa.UniqueConstraint(
            "list_name", "kind", "key", name=op.f("uq_fraud_list_entries_list_name")
        ),
    )
    with op.batch_alter_table("fraud_list_entries", schema=None) as batch_op:
        batch_op.create_index("ix_fraud_list_entries_kind_key", ["kind", "key"], unique=False)
    op.create_table(
        "fraud_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reviewed_by", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_fraud_reviews_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fraud_reviews")),
    )
    with op.batch_alter_table("fraud_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fraud_reviews_application_id"), ["application_id"], unique=False
        )
    op.create_table(
        "fraud_rule_sets",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_fraud_rule_sets")),
    )
    with op.batch_alter_table("fraud_rule_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fraud_rule_sets_active"), ["active"], unique=False)
    _backfill()


_BACKFILL = [
    ("device", "a.device_bidx"),
    ("ip", "a.ip_bidx"),
    ("mobile", "p.mobile_bidx"),
    ("bank_account", "p.bank_account_bidx"),
    ("id_number", "p.id_number_bidx"),
    ("uscc", "e.uscc_bidx"),
]


def _backfill() -> None:
    for kind, column in _BACKFILL:
        op.execute(
            sa.text(
                "INSERT INTO fraud_links "
                "(application_id, institution_id, kind, key, identity, occurred_at) "
                f"SELECT a.id, a.institution_id, '{kind}', {column}, p.id_number_bidx, "
                "a.submitted_at FROM applications a "
                "JOIN applicants p ON p.id = a.applicant_id "
                "JOIN enterprises e ON e.id = a.enterprise_id "
                f"WHERE {column} IS NOT NULL AND p.id_number_bidx IS NOT NULL"
            )
        )


def downgrade() -> None:
    op.drop_table("fraud_rule_sets")
    op.drop_table("fraud_reviews")
    op.drop_table("fraud_list_entries")
    op.drop_table("fraud_links")
