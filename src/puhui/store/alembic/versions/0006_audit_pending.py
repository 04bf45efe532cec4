"""Deferred audit sealing: records committed with their change wait in ``audit_pending`` until
the sealer chains them (``privacy.audit``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_pending",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=48), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_pending")),
    )


def downgrade() -> None:
    waiting = op.get_bind().execute(sa.text("SELECT count(*) FROM audit_pending")).scalar()
    if waiting:  # dropping them would lose audit records
        raise RuntimeError(
            f"{waiting} audit records wait to be sealed: run `puhui audit seal` first"
        )
    op.drop_table("audit_pending")
