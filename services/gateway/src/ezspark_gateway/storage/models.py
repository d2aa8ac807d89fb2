"""ORM models.  Times are UNIX seconds (float) so SQLite and PostgreSQL agree exactly."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every gateway table."""


class User(Base):
    """An account; ``username`` is stored lower-cased so look-ups are case-insensitive."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float)
    # Bumped by a trigger on every write to the user's trainings (migration 0004): the
    # hot read serves its kept page only while this is unchanged (``api.page_cache``).
    data_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ApiToken(Base):
    """A bearer credential: an API token or a browser session.  Only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "api" or "session"
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, so a user can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Training(Base):
    """A training a user asked for, and what the workers reported about it."""

    __tablename__ = "trainings"
    # Serves "my trainings, newest first" without a sort.
    __table_args__ = (Index("ix_trainings_owner_created", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    generations: Mapped[int] = mapped_column(Integer, default=0)
    best_fitness: Mapped[float | None] = mapped_column(Float, nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Why an active training waits (e.g. "no evaluator serves X"); NULL while it runs.
    # Added after the first release: ``storage.schema`` adds it to older databases.
    waiting_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The id ``ezspark train --gateway`` gave its hand-over, so a retried request after a
    # lost answer finds this training instead of starting a second one.  Added later too.
    handoff_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # none_as_null: "no genome yet" must be SQL NULL, not the JSON value null.
    best_genome: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    # Added by migration 0003 (the training page).  What the user calls the run:
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tags: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    archived_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Run health: "local" (``alone_training_iterations``) or "distributed"; when the last
    # event of the evolver arrived; when the run ended; tasks done of the current
    # generation's total, and how many evaluators returned them.
    phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_event_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    progress_done: Mapped[int | None] = mapped_column(Integer, nullable=True)
    progress_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    progress_evaluators: Mapped[int | None] = mapped_column(Integer, nullable=True)


class GenerationRow(Base):
    """One GenerationReport; the primary key makes a redelivered report a no-op."""

    __tablename__ = "generations"
    training_id: Mapped[str] = mapped_column(
        ForeignKey("trainings.id", ondelete="CASCADE"), primary_key=True
    )
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    best_fitness: Mapped[float] = mapped_column(Float)
    mean_fitness: Mapped[float] = mapped_column(Float)
    species: Mapped[int] = mapped_column(Integer)
    population: Mapped[int] = mapped_column(Integer)
    evaluations_per_s: Mapped[float] = mapped_column(Float)
    best_genome_key: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[float] = mapped_column(Float)
    # Added by migration 0003: members per species (largest first), genome sizes, phase.
    species_sizes: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    mean_nodes: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_connections: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_nodes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    best_connections: Mapped[int | None] = mapped_column(Integer, nullable=True)
    phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Added by migration 0005: genomes whose environment failed, the first one's why, and
    # the safeness re-checks and how many of them disagreed.
    errors: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    safeness_checks: Mapped[int | None] = mapped_column(Integer, nullable=True)
    safeness_mismatches: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SavedGenomeRow(Base):
    """The genomes a GenerationReport carried (every ``saving`` generations and at the end),
    for ``ezspark train --gateway`` to save locally; the key makes redelivery a no-op."""

    __tablename__ = "saved_genomes"
    training_id: Mapped[str] = mapped_column(
        ForeignKey("trainings.id", ondelete="CASCADE"), primary_key=True
    )
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    # ``messages.SavedGenome`` documents; none_as_null keeps "absent" SQL NULL.
    generation_best: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    best_so_far: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    received_at: Mapped[float] = mapped_column(Float)


class AuthBucket(Base):
    """Log-in / sign-up attempts of one (action, client[, username]) key in a fixed window;
    in the database so every worker process and replica brakes the same budget."""

    __tablename__ = "auth_buckets"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[float] = mapped_column(Float, index=True)
    count: Mapped[int] = mapped_column(Integer)
