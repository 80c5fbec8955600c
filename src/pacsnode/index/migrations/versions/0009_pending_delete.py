"""Files of deleted instances not yet removed (pacsnode.index.pending_deletes).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_delete",
        sa.Column("storage_key", sa.String(512), nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("storage_key", name=op.f("pk_pending_delete")),
    )


def downgrade() -> None:
    op.drop_table("pending_delete")
