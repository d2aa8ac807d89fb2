"""All queries in one place; use cases never build SQL themselves."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ezspark_gateway.storage import listing
from ezspark_gateway.storage.listing import Facets, TrainingFilter
from ezspark_gateway.storage.models import (
    ApiToken,
    GenerationRow,
    SavedGenomeRow,
    Training,
    User,
)


class Repository:
    """Typed data access over one SQLAlchemy session (one unit of work)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def commit(self) -> None:
        """Make every change of this unit of work durable."""
        self.session.commit()

    def rollback(self) -> None:
        """Forget every uncommitted change."""
        self.session.rollback()

    # -- users ------------------------------------------------------------------------------

    def add_user(self, username: str, password_hash: str, now: float) -> User | None:
        """Insert and commit a user; None when the name is taken (the unique index decides)."""
        user = User(username=username, password_hash=password_hash, created_at=now)
        self.session.add(user)
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            return None
        return user

    def user_by_name(self, username: str) -> User | None:
        """The user with this (already normalised) name."""
        return self.session.scalars(select(User).where(User.username == username)).first()

    def user(self, user_id: int) -> User | None:
        """The user with this id."""
        return self.session.get(User, user_id)

    # -- tokens -----------------------------------------------------------------------------

    def add_token(self, token: ApiToken) -> ApiToken:
        """Stage a new credential row."""
        self.session.add(token)
        self.session.flush()
        return token

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The credential whose SHA-256 is ``token_hash``, revoked or not."""
        stmt = select(ApiToken).where(ApiToken.token_hash == token_hash)
        return self.session.scalars(stmt).first()

    def token_and_user(self, token_hash: str) -> tuple[ApiToken, User] | None:
        """The credential whose SHA-256 is ``token_hash`` and its owner, in one query."""
        stmt = (
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == token_hash)
        )
        row = self.session.execute(stmt).first()
        return None if row is None else (row[0], row[1])

    def live_token_ids(self, ids: Collection[int], now: float) -> set[int]:
        """Those of ``ids`` that name an unrevoked, unexpired credential."""
        stmt = (
            select(ApiToken.id)
            .where(ApiToken.id.in_(list(ids)), ApiToken.revoked_at.is_(None))
            .where(or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))
        )
        return set(self.session.scalars(stmt).all())

    def tokens_of(self, user_id: int, kind: str) -> Sequence[ApiToken]:
        """A user's live (unrevoked) credentials of one kind, newest first."""
        stmt = (
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.kind == kind)
            .where(ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.id.desc())
        )
        return self.session.scalars(stmt).all()

    def revoke_token(
        self, user_id: int, token_id: int, now: float, kind: str | None = None
    ) -> bool:
        """Revoke one of the user's live tokens (of ``kind`` if given); False when none."""
        stmt = (
            update(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.user_id == user_id)
            .where(ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if kind is not None:
            stmt = stmt.where(ApiToken.kind == kind)
        return bool(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    # -- trainings --------------------------------------------------------------------------

    def add_training(self, training: Training) -> Training:
        """Stage a new training row."""
        self.session.add(training)
        self.session.flush()
        return training

    def training(self, training_id: str, owner_id: int | None = None) -> Training | None:
        """A training by id, restricted to one owner when ``owner_id`` is given."""
        stmt = select(Training).where(Training.id == training_id)
        if owner_id is not None:
            stmt = stmt.where(Training.owner_id == owner_id)
        return self.session.scalars(stmt).first()

    def training_by_handoff(self, owner_id: int, handoff_id: str) -> Training | None:
        """The owner's newest training created by the hand-over ``handoff_id``."""
        stmt = (
            select(Training)
            .where(Training.owner_id == owner_id, Training.handoff_id == handoff_id)
            .order_by(Training.created_at.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def trainings_of(self, owner_id: int, limit: int, offset: int) -> Sequence[Training]:
        """A user's trainings, newest first."""
        stmt = (
            select(Training)
            .where(Training.owner_id == owner_id)
            .order_by(Training.created_at.desc(), Training.id)
            .limit(limit)
            .offset(offset)
        )
        return self.session.scalars(stmt).all()

    def trainings_page(
        self, owner_id: int, limit: int, offset: int
    ) -> tuple[Sequence[Training], int]:
        """A page of the user's trainings (newest first) and their total, in one query
        (a window count) unless the page is empty."""
        total = func.count().over().label("total")
        stmt = (
            select(Training, total)
            .where(Training.owner_id == owner_id)
            .order_by(Training.created_at.desc(), Training.id)
            .limit(limit)
            .offset(offset)
        )
        rows = self.session.execute(stmt).all()
        if rows:
            return [row[0] for row in rows], int(rows[0][1])
        return [], self.count_trainings_of(owner_id) if offset else 0

    def trainings_filtered(
        self, owner_id: int, flt: TrainingFilter, limit: int, offset: int
    ) -> tuple[Sequence[Training], int]:
        """A page of the user's trainings matching ``flt``, in its order, and their total."""
        return listing.filtered_page(self.session, owner_id, flt, limit, offset)

    def training_facets(self, owner_id: int) -> Facets:
        """The environments and tags the user's trainings use."""
        return listing.facets(self.session, owner_id)

    def delete_training(self, training_id: str, statuses: Collection[str]) -> bool:
        """Delete a training in one of ``statuses`` with everything stored about it."""
        return listing.delete_training(self.session, training_id, statuses)

    def count_trainings_of(self, owner_id: int, statuses: Collection[str] | None = None) -> int:
        """How many trainings a user has (only those in ``statuses`` when given)."""
        stmt = select(func.count()).select_from(Training).where(Training.owner_id == owner_id)
        if statuses is not None:
            stmt = stmt.where(Training.status.in_(list(statuses)))
        return int(self.session.scalar(stmt) or 0)

    def lock_user(self, user_id: int) -> None:
        """Lock the user's row until the transaction ends (PostgreSQL; SQLite has no
        row locks and serialises writers itself)."""
        self.session.execute(select(User.id).where(User.id == user_id).with_for_update())

    def set_waiting(
        self, training_id: str, allowed_from: Collection[str], reason: str | None, now: float
    ) -> bool:
        """Set (or clear, with None) why an active training waits; False when unchanged."""
        stmt = (
            update(Training)
            .where(Training.id == training_id, Training.status.in_(list(allowed_from)))
            .where(Training.waiting_reason.is_distinct_from(reason))
            .values(waiting_reason=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def transition(self, training_id: str, allowed_from: Collection[str], **values: Any) -> bool:
        """Update a training only while its status is in ``allowed_from``.

        One conditional UPDATE, so a stop request and an event racing on the same row can
        never both win or overwrite each other's status.
        """
        stmt = (
            update(Training)
            .where(Training.id == training_id, Training.status.in_(list(allowed_from)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def raise_progress(self, training_id: str, generation: int, best: float, now: float) -> None:
        """Move the training's counters forward; older reports never move them back."""
        t = Training
        self.session.execute(
            update(t)
            .where(t.id == training_id, t.generations < generation + 1)
            .values(generations=generation + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(
            update(t)
            .where(t.id == training_id)
            .where((t.best_fitness.is_(None)) | (t.best_fitness < best))
            .values(best_fitness=best)
            .execution_options(synchronize_session=False)
        )

    def set_progress(
        self, training_id: str, allowed_from: Collection[str], generation: int, **values: Any
    ) -> bool:
        """Record how far 0-based ``generation`` is, unless a later one was reported."""
        stmt = (
            update(Training)
            .where(Training.id == training_id, Training.status.in_(list(allowed_from)))
            .where(Training.generations <= generation)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def set_champion(
        self,
        training_id: str,
        allowed_from: Collection[str],
        genome: dict[str, Any],
        fitness: float,
    ) -> bool:
        """Store the best genome so far of a running training, unless a fitter one is
        stored (reports may be applied out of order)."""
        t = Training
        stmt = (
            update(t)
            .where(t.id == training_id, t.status.in_(list(allowed_from)))
            .where(t.best_genome.is_(None) | t.best_fitness.is_(None) | (t.best_fitness <= fitness))
            .values(best_genome=genome)
            .execution_options(synchronize_session=False)
        )
        return bool(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    # -- generations ------------------------------------------------------------------------

    def add_generation(self, row: GenerationRow) -> bool:
        """Insert a report; False (and nothing changed) when that generation is known."""
        key = (row.training_id, row.generation)
        if self.session.get(GenerationRow, key) is not None:
            return False
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError:
            # Another writer inserted it between the check and the flush; the caller's
            # transaction holds nothing else yet, so rolling it back loses nothing.
            self.session.rollback()
            return False
        return True

    def thin_generations(self, training_id: str, before: int, stride: int) -> int:
        """Delete the reports older than ``before`` whose generation is not a multiple of
        ``stride``; return how many went."""
        g = GenerationRow
        stmt = (
            delete(g)
            .where(g.training_id == training_id, g.generation < before)
            .where(g.generation % stride != 0)
            .execution_options(synchronize_session=False)
        )
        return int(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def generations(self, training_id: str, since: int, limit: int) -> Sequence[GenerationRow]:
        """Reports with ``generation >= since`` in order, at most ``limit``."""
        stmt = (
            select(GenerationRow)
            .where(GenerationRow.training_id == training_id, GenerationRow.generation >= since)
            .order_by(GenerationRow.generation)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def latest_generation(self, training_id: str) -> GenerationRow | None:
        """The report with the highest generation number."""
        stmt = (
            select(GenerationRow)
            .where(GenerationRow.training_id == training_id)
            .order_by(GenerationRow.generation.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    # -- saved genomes ------------------------------------------------------------------------

    def add_saved_genomes(self, row: SavedGenomeRow) -> bool:
        """Insert one generation's saved genomes; False when that generation is known."""
        if self.session.get(SavedGenomeRow, (row.training_id, row.generation)) is not None:
            return False
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()  # a concurrent redelivery won: same content
            return False
        return True

    def saved_genomes(self, training_id: str, since: int, limit: int) -> Sequence[SavedGenomeRow]:
        """Saved genomes of generations ``>= since`` in order, at most ``limit``."""
        stmt = (
            select(SavedGenomeRow)
            .where(SavedGenomeRow.training_id == training_id)
            .where(SavedGenomeRow.generation >= since)
            .order_by(SavedGenomeRow.generation)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()
