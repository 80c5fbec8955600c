"""The index's own state (pacsnode.core.index_flush): when ingest commits were last flushed
to disk, and whether the last server stopped cleanly.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "index_state",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_index_state")),
    )
    # Every commit before this one was flushed (synchronous=FULL): nothing to recover.
    op.bulk_insert(table, [{"name": "flushed_at", "value": 0.0},
                           {"name": "clean", "value": 1.0}])


def downgrade() -> None:
    op.drop_table("index_state")
