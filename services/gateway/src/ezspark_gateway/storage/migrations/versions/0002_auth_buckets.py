"""auth_buckets: log-in and sign-up attempt counters shared by every gateway process.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table of fixed-window attempt counters (unless ``create_all`` of a
    development build before migrations made it already)."""
    if sa.inspect(op.get_bind()).has_table("auth_buckets"):
        return
    op.create_table(
        "auth_buckets",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_auth_buckets_window_start", "auth_buckets", ["window_start"])


def downgrade() -> None:
    """Drop the attempt counters (the brake starts afresh)."""
    op.drop_table("auth_buckets")
