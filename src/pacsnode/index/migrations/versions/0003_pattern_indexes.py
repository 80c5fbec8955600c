"""PostgreSQL: indexes for LIKE-prefix matching whatever the database's collation

Wildcard matching (PS3.4 C.2.2.2.4) compiles to ``LIKE 'prefix%'``. PostgreSQL uses a plain
b-tree index for that only under the C collation; ``text_pattern_ops`` indexes serve it
under any collation. SQLite (with ``case_sensitive_like``) uses the ordinary indexes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (table, column): the columns matched with wildcards by name or identifier prefix
PATTERN_COLUMNS = (
    ("patient", "patient_name_norm"),
    ("patient", "patient_id"),
    ("study", "accession_number"),
    ("study", "referring_physician_name_norm"),
    ("study", "study_id"),
)


def _name(table: str, column: str) -> str:
    return f"ix_{table}_{column}_pattern"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in PATTERN_COLUMNS:
        op.execute(f"CREATE INDEX {_name(table, column)} ON {table} "
                   f"({column} text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in PATTERN_COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS {_name(table, column)}")
