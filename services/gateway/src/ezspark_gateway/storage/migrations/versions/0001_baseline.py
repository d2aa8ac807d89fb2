"""Baseline: the schema as ``create_all`` made it before migrations (users, tokens,
trainings with waiting_reason and handoff_id, generations, saved genomes).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def _users_and_tokens() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("last_used_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])


def _trainings() -> None:
    op.create_table(
        "trainings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("generations", sa.Integer(), nullable=False),
        sa.Column("best_fitness", sa.Float(), nullable=True),
        sa.Column("finish_reason", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("waiting_reason", sa.Text(), nullable=True),
        sa.Column("handoff_id", sa.String(64), nullable=True),
        sa.Column("best_genome", sa.JSON(none_as_null=True), nullable=True),
    )
    op.create_index("ix_trainings_owner_created", "trainings", ["owner_id", "created_at"])


def _history() -> None:
    training = sa.ForeignKey("trainings.id", ondelete="CASCADE")
    op.create_table(
        "generations",
        sa.Column("training_id", sa.String(36), training, primary_key=True),
        sa.Column("generation", sa.Integer(), primary_key=True),
        sa.Column("best_fitness", sa.Float(), nullable=False),
        sa.Column("mean_fitness", sa.Float(), nullable=False),
        sa.Column("species", sa.Integer(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("evaluations_per_s", sa.Float(), nullable=False),
        sa.Column("best_genome_key", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "saved_genomes",
        sa.Column(
            "training_id",
            sa.String(36),
            sa.ForeignKey("trainings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("generation", sa.Integer(), primary_key=True),
        sa.Column("generation_best", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("best_so_far", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
    )


def upgrade() -> None:
    """Create the baseline tables."""
    _users_and_tokens()
    _trainings()
    _history()


def downgrade() -> None:
    """Drop every baseline table."""
    for table in ("saved_genomes", "generations", "trainings", "api_tokens", "users"):
        op.drop_table(table)
