"""The filtered, sorted list of a user's trainings, and what it can be filtered by.

Portable SQL only: the same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, String, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from ezspark_gateway.storage.models import GenerationRow, SavedGenomeRow, Training

Archived = Literal["hide", "only", "include"]
Sort = Literal["newest", "oldest", "best", "name"]
ARCHIVED_CHOICES: tuple[Archived, ...] = ("hide", "only", "include")
SORT_CHOICES: tuple[Sort, ...] = ("newest", "oldest", "best", "name")


@dataclass(frozen=True)
class TrainingFilter:
    """What to show: every field is optional and they combine with AND.

    ``text`` matches the name (case-insensitive substring) or the start of the id;
    ``tag`` one whole tag; ``archived`` hides archived runs by default.
    """

    statuses: tuple[str, ...] = ()
    env: str | None = None
    tag: str | None = None
    text: str | None = None
    archived: Archived = "hide"
    sort: Sort = "newest"


def _like_escape(text: str) -> str:
    """``text`` with LIKE's wildcards and the escape character escaped by ``\\``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def env_column() -> ColumnElement[str]:
    """The environment id inside the stored config (JSON), as text."""
    column: ColumnElement[str] = Training.config["gym_game_name"].as_string()
    return column


def _conditions(owner_id: int, flt: TrainingFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [Training.owner_id == owner_id]
    if flt.statuses:
        conds.append(Training.status.in_(list(flt.statuses)))
    if flt.env:
        conds.append(env_column() == flt.env)
    if flt.tag:
        # Tags are a JSON list of strings from a charset without quotes or backslashes,
        # so the quoted tag appears in the serialised list exactly when it is an element.
        pattern = f'%"{_like_escape(flt.tag)}"%'
        conds.append(cast(Training.tags, String).like(pattern, escape="\\"))
    if flt.text:
        pattern = f"%{_like_escape(flt.text.lower())}%"
        conds.append(
            or_(
                func.lower(Training.name).like(pattern, escape="\\"),
                Training.id.like(f"{_like_escape(flt.text.lower())}%", escape="\\"),
            )
        )
    if flt.archived == "hide":
        conds.append(Training.archived_at.is_(None))
    elif flt.archived == "only":
        conds.append(Training.archived_at.is_not(None))
    return conds


def _order(sort: Sort) -> list[Any]:
    newest = [Training.created_at.desc(), Training.id]
    if sort == "oldest":
        return [Training.created_at.asc(), Training.id]
    if sort == "best":  # runs without a fitness yet last
        return [Training.best_fitness.is_(None), Training.best_fitness.desc(), *newest]
    if sort == "name":  # unnamed runs last
        return [Training.name.is_(None), func.lower(Training.name), *newest]
    return newest


def filtered_page(
    session: Session, owner_id: int, flt: TrainingFilter, limit: int, offset: int
) -> tuple[Sequence[Training], int]:
    """A page of the matching trainings and how many match (a window count)."""
    if any("\x00" in (v or "") for v in (flt.env, flt.tag, flt.text)):
        # Nothing stored holds a NUL, and PostgreSQL refuses one in a query with an error.
        return [], 0
    conds = _conditions(owner_id, flt)
    total = func.count().over().label("total")
    stmt = select(Training, total).where(*conds).order_by(*_order(flt.sort))
    rows = session.execute(stmt.limit(limit).offset(offset)).all()
    if rows:
        return [row[0] for row in rows], int(rows[0][1])
    if not offset:
        return [], 0
    count = select(func.count()).select_from(Training).where(*conds)
    return [], int(session.scalar(count) or 0)


@dataclass(frozen=True)
class Facets:
    """The environments and tags a user's trainings use, for the list's filter choices."""

    envs: list[str]
    tags: list[str]


def facets(session: Session, owner_id: int) -> Facets:
    """Every environment and tag among the user's trainings, sorted."""
    envs = session.scalars(
        select(env_column()).where(Training.owner_id == owner_id).distinct()
    ).all()
    tag_lists = session.scalars(
        select(Training.tags).where(Training.owner_id == owner_id, Training.tags.is_not(None))
    ).all()
    tags = {t for lst in tag_lists if lst for t in lst if isinstance(t, str)}
    return Facets(envs=sorted(e for e in envs if e), tags=sorted(tags))


def delete_training(session: Session, training_id: str, statuses: Collection[str]) -> bool:
    """Delete a training whose status is in ``statuses``, with its history and saved
    genomes; False (nothing deleted) when it is gone or in another status."""
    found = session.scalar(
        select(Training.id).where(Training.id == training_id, Training.status.in_(list(statuses)))
    )
    if found is None:
        return False
    for table in (GenerationRow, SavedGenomeRow):
        session.execute(
            delete(table)
            .where(table.training_id == training_id)
            .execution_options(synchronize_session=False)
        )
    result = session.execute(
        delete(Training)
        .where(Training.id == training_id, Training.status.in_(list(statuses)))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
