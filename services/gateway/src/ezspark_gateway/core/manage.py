"""Managing runs: name, tags and notes; archive; delete; clone; the filtered list.

Every function is scoped to the owner, like ``core.trainings``: another user's run is a
NotFoundError, never a "forbidden" that would tell it exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ezspark_gateway.core.errors import ConflictError, InvalidInputError, NotFoundError
from ezspark_gateway.core.trainings import ACTIVE, TERMINAL, get_training
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.listing import Facets, TrainingFilter
from ezspark_gateway.storage.models import Training, User

MAX_NAME = 100
MAX_NOTES = 10_000
MAX_TAGS = 10
MAX_TAG = 32
TAG_RE = re.compile(rf"[a-z0-9][a-z0-9_.:-]{{0,{MAX_TAG - 1}}}")
TAG_RULE = (
    f"up to {MAX_TAG} characters: letters, digits, '_', '.', ':' or '-', "
    "starting with a letter or digit"
)
# Tags typed in one text box may be separated by commas and/or spaces.
_TAG_SPLIT = re.compile(r"[,\s]+")

log = structlog.get_logger(__name__)


class _Unset:
    """Marks a field the caller did not send (distinct from None: clear it)."""


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Meta:
    """Validated name, tags and notes; None clears a field."""

    name: str | None
    tags: list[str] | None
    notes: str | None


def split_tags(text: str) -> list[str]:
    """The tags of one text box (``"cartpole, baseline seed-1"``)."""
    return [t for t in _TAG_SPLIT.split(text) if t]


def _clean_name(raw: str | None, errors: list[tuple[str, str]]) -> str | None:
    name = (raw or "").strip()
    if len(name) > MAX_NAME:
        errors.append(("name", f"must be at most {MAX_NAME} characters"))
    elif not name.isprintable():
        errors.append(("name", "must be one line of printable characters"))
    return name or None


def _clean_tags(raw: Iterable[str] | None, errors: list[tuple[str, str]]) -> list[str] | None:
    tags: list[str] = []
    for tag in raw or ():
        norm = tag.strip().lower()
        if not TAG_RE.fullmatch(norm):
            errors.append(("tags", f"{tag[:40]!r} is not a tag: {TAG_RULE}"))
        elif norm not in tags:
            tags.append(norm)
    if len(tags) > MAX_TAGS:
        errors.append(("tags", f"at most {MAX_TAGS} tags, got {len(tags)}"))
    return tags or None


def _clean_notes(raw: str | None, errors: list[tuple[str, str]]) -> str | None:
    notes = (raw or "").replace("\r\n", "\n").strip()
    if len(notes) > MAX_NOTES:
        errors.append(("notes", f"must be at most {MAX_NOTES} characters"))
    elif any(not (ch.isprintable() or ch in "\n\t") for ch in notes):
        errors.append(("notes", "must be printable text (line breaks and tabs allowed)"))
    return notes or None


def check_meta(name: str | None, tags: Iterable[str] | None, notes: str | None) -> Meta:
    """Normalise (strip, lower-case tags, drop duplicates) and check the user's labels;
    InvalidInputError names every field that breaks a rule.  Empty means "none"."""
    errors: list[tuple[str, str]] = []
    meta = Meta(
        name=_clean_name(name, errors),
        tags=_clean_tags(tags, errors),
        notes=_clean_notes(notes, errors),
    )
    if errors:
        raise InvalidInputError(errors)
    return meta


def update_meta(
    repo: Repository,
    owner: User,
    training_id: str,
    now: float,
    *,
    name: str | None = UNSET,
    tags: Iterable[str] | None = UNSET,
    notes: str | None = UNSET,
    archived: bool | None = None,
) -> Training:
    """Set the labels given (UNSET: keep) and archive or restore (None: keep), all or
    nothing: every rule is checked before anything changes."""
    training = get_training(repo, owner, training_id)
    meta = check_meta(
        training.name if name is UNSET else name,
        training.tags if tags is UNSET else tags,
        training.notes if notes is UNSET else notes,
    )
    if archived and training.status in ACTIVE:
        # It would keep using the owner's quota of active trainings out of sight.
        raise ConflictError(
            f"training is {training.status}: stop it and wait until it has ended to archive it"
        )
    training.name, training.tags, training.notes = meta.name, meta.tags, meta.notes
    if archived is not None and archived != (training.archived_at is not None):
        training.archived_at = now if archived else None
    training.updated_at = now
    repo.commit()
    log.info("training_updated", training_id=training.id)
    return training


def set_archived(
    repo: Repository, owner: User, training_id: str, archived: bool, now: float
) -> Training:
    """Archive (hide from the default list) or restore an ended run; an active one is a
    ConflictError (stop it first)."""
    return update_meta(repo, owner, training_id, now, archived=archived)


def delete_training(repo: Repository, owner: User, training_id: str) -> None:
    """Delete an ended run with its history; an active one is a ConflictError (stop it
    first: the evolver would otherwise keep working for a run nobody can see)."""
    training = get_training(repo, owner, training_id)
    status = training.status
    if status in ACTIVE or not repo.delete_training(training.id, TERMINAL):
        repo.rollback()
        raise ConflictError(
            f"training is {status}: stop it and wait until it has ended to delete it"
        )
    repo.commit()
    log.info("training_deleted", training_id=training_id)


def list_filtered(
    repo: Repository, owner: User, flt: TrainingFilter, limit: int, offset: int
) -> tuple[Sequence[Training], int]:
    """A page of the owner's trainings matching ``flt``, and how many match."""
    return repo.trainings_filtered(owner.id, flt, limit, offset)


def facets(repo: Repository, owner: User) -> Facets:
    """The environments and tags the owner's trainings use."""
    return repo.training_facets(owner.id)


def clone_source(repo: Repository, owner: User, training_id: str) -> Training | None:
    """The owner's run to clone, or None when there is no such run (the form then
    starts from its defaults instead of failing)."""
    try:
        return get_training(repo, owner, training_id)
    except NotFoundError:
        return None
