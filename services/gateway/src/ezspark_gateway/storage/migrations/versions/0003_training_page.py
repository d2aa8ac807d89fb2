"""Training page: run names, tags, notes and archiving; run health; richer reports.

trainings: ``name``, ``tags``, ``notes``, ``archived_at`` (runs you can manage);
``phase``, ``last_event_at``, ``finished_at``, ``progress_done``, ``progress_total``,
``progress_evaluators`` (run health).  generations: ``species_sizes``, ``mean_nodes``,
``mean_connections``, ``best_nodes``, ``best_connections``, ``phase`` (charts).
Every new column is nullable: rows written before this revision simply lack the values.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

TRAINING_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("name", sa.String(100)),
    ("tags", sa.JSON(none_as_null=True)),
    ("notes", sa.Text()),
    ("archived_at", sa.Float()),
    ("phase", sa.String(16)),
    ("last_event_at", sa.Float()),
    ("finished_at", sa.Float()),
    ("progress_done", sa.Integer()),
    ("progress_total", sa.Integer()),
    ("progress_evaluators", sa.Integer()),
)
GENERATION_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("species_sizes", sa.JSON(none_as_null=True)),
    ("mean_nodes", sa.Float()),
    ("mean_connections", sa.Float()),
    ("best_nodes", sa.Integer()),
    ("best_connections", sa.Integer()),
    ("phase", sa.String(16)),
)


def _add(table: str, columns: tuple[tuple[str, Any], ...]) -> None:
    # A development database made by ``create_all`` of this build has them already.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    with op.batch_alter_table(table) as batch:
        for name, kind in columns:
            if name not in present:
                batch.add_column(sa.Column(name, kind, nullable=True))


def upgrade() -> None:
    """Add the nullable columns of the training page."""
    _add("trainings", TRAINING_COLUMNS)
    _add("generations", GENERATION_COLUMNS)


def downgrade() -> None:
    """Drop them again (names, tags, notes and run-health values are lost)."""
    for table, columns in (("generations", GENERATION_COLUMNS), ("trainings", TRAINING_COLUMNS)):
        with op.batch_alter_table(table) as batch:
            for name, _ in reversed(columns):
                batch.drop_column(name)
