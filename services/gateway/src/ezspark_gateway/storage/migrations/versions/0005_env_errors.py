"""generations: the environment's failures and the safeness re-checks, per generation.

``errors`` counts the genomes whose environment raised or returned bad values (they get the
floor fitness); ``first_error`` is the first one's message, so the training's owner sees
why.  ``safeness_checks`` counts the genomes evaluated twice, ``safeness_mismatches`` those
whose two answers differed (a non-deterministic environment, or a lying evaluator).  All
nullable: rows written before this revision, and by older evolvers, lack them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

COLUMNS: tuple[tuple[str, Any], ...] = (
    ("errors", sa.Integer()),
    ("first_error", sa.Text()),
    ("safeness_checks", sa.Integer()),
    ("safeness_mismatches", sa.Integer()),
)


def upgrade() -> None:
    """Add the nullable columns (a database made by this build's create_all has them)."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("generations")}
    with op.batch_alter_table("generations") as batch:
        for name, kind in COLUMNS:
            if name not in present:
                batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    """Drop them again (the recorded errors and counts are lost)."""
    with op.batch_alter_table("generations") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
