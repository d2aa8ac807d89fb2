"""The hot reads: a credential with its owner, and a page of trainings as plain rows.

No ORM session, no identity map, no unit of work: one round trip each.  The two reads
every list request makes are compiled once per dialect to plain SQL and run on the
DBAPI cursor (``RawQuery``): SQLAlchemy's execution path cost ten times the query itself
(about 170 of 190 µs for the credential on SQLite).  ``Repository`` keeps the ORM
versions for everything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    Select,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine.interfaces import DBAPIConnection

from ezspark_gateway.storage import listing
from ezspark_gateway.storage.listing import TrainingFilter
from ezspark_gateway.storage.models import ApiToken, Training, User

_MARK = "__ezspark_param_{}__"
_MARKS = re.compile(r"__ezspark_param_(\w+?)__")


def _param(name: str) -> Any:
    """A placeholder for ``name``, swapped for the driver's own by ``RawQuery``."""
    return literal_column(_MARK.format(name))


# The credential and its owner, every column of both (the principal carries them).
_CREDENTIAL_COLUMNS = (
    ApiToken.id.label("token_id"),
    ApiToken.user_id,
    ApiToken.kind,
    ApiToken.name,
    ApiToken.token_hash,
    ApiToken.prefix,
    ApiToken.created_at.label("token_created_at"),
    ApiToken.expires_at,
    ApiToken.revoked_at,
    ApiToken.last_used_at,
    User.username,
    User.password_hash,
    User.created_at.label("user_created_at"),
    User.data_version,
)


def _credential_query(token_hash: Any) -> Any:
    query: Any = (
        select(*_CREDENTIAL_COLUMNS)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash)
    )
    return query


_TOUCH = (
    update(ApiToken)
    .where(ApiToken.id == bindparam("token_id"))
    .values(last_used_at=bindparam("now"))
)

# What the list view shows of a training: never the config or the champion genome,
# which can be large and would be decoded for nothing (only the environment id is
# needed, extracted by the database).
_SUMMARY = (
    Training.id,
    Training.status,
    listing.env_column().label("gym_game_name"),
    Training.created_at,
    Training.updated_at,
    Training.generations,
    Training.best_fitness,
    Training.waiting_reason.label("waiting"),
    Training.name,
    Training.tags,
    Training.notes,
    Training.archived_at,
)


def _page(owner_id: Any, flt: TrainingFilter) -> Any:
    """The page query of ``listing.filtered_page`` over the list view's columns."""
    total = func.count().over().label("total")
    conds = listing._conditions(owner_id, flt)
    return select(*_SUMMARY, total).where(*conds).order_by(*listing._order(flt.sort))


# The list as most callers ask for it (no filter, newest first), with its parameters
# bound per request: building a statement costs more than running it.
_DEFAULT_FILTER = DEFAULT_FILTER = TrainingFilter()


def _default_page_query(owner_id: Any, limit: Any, offset: Any) -> Select[Any]:
    """The unfiltered page without its total: the window count made SQLite materialise
    and sort the owner's rows (30 against 22 us for three rows); most pages are the last
    one, and their total is known from the rows (``page_raw``)."""
    conds = listing._conditions(owner_id, _DEFAULT_FILTER)
    query: Any = select(*_SUMMARY).where(*conds)
    page: Select[Any] = query.order_by(*listing._order(_DEFAULT_FILTER.sort))
    return page.limit(limit).offset(offset)


def _default_count_query(owner_id: Any) -> Select[Any]:
    conds = listing._conditions(owner_id, _DEFAULT_FILTER)
    query: Select[Any] = select(func.count()).select_from(Training).where(*conds)
    return query


@dataclass(frozen=True)
class RawQuery:
    """A statement compiled once for one dialect, run on a DBAPI cursor.

    Its constants are rendered into the SQL; its parameters are the driver's own
    placeholders.  Only for statements whose parameters need no conversion (integers,
    strings) and whose columns are read as the driver returns them.
    """

    sql: str
    order: tuple[str, ...]  # parameter names in placeholder order; () for named styles

    @classmethod
    def compile(
        cls, build: Callable[..., Select[Any]], names: Sequence[str], dialect: Dialect
    ) -> RawQuery:
        """Compile ``build(*placeholders)`` for ``dialect``."""
        text = str(
            build(*(_param(n) for n in names)).compile(
                dialect=dialect, compile_kwargs={"literal_binds": True}
            )
        )
        style = dialect.paramstyle
        if style in ("qmark", "format"):
            mark = "?" if style == "qmark" else "%s"
            order = tuple(m.group(1) for m in _MARKS.finditer(text))
            return cls(_MARKS.sub(lambda _: mark, text), order)
        if style == "pyformat":
            return cls(_MARKS.sub(lambda m: f"%({m.group(1)})s", text), ())
        if style == "named":
            return cls(_MARKS.sub(lambda m: f":{m.group(1)}", text), ())
        raise ValueError(f"unsupported paramstyle {style}")

    def rows(self, conn: DBAPIConnection, params: dict[str, Any]) -> list[Any]:
        """Every row, read to the end (so no statement stays open holding a snapshot)."""
        args: Any = tuple(params[n] for n in self.order) if self.order else params
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, args)
            return list(cursor.fetchall())
        finally:
            cursor.close()


_COMPILED: dict[tuple[str, str], RawQuery] = {}


def _raw(
    key: str, build: Callable[..., Select[Any]], names: Sequence[str], dialect: Dialect
) -> RawQuery:
    found = _COMPILED.get((key, dialect.name))
    if found is None:
        found = _COMPILED[(key, dialect.name)] = RawQuery.compile(build, names, dialect)
    return found


def _new(cls: type[Any], values: dict[str, Any]) -> Any:
    """A detached instance of a mapped class holding ``values``, without the mapped
    constructor's attribute events (a read-only snapshot: nobody adds it to a session)."""
    obj = cls._sa_class_manager.new_instance()
    obj.__dict__.update(values)
    return obj


# Where each value sits in the credential's row.
CRED = {str(c.key): i for i, c in enumerate(select(*_CREDENTIAL_COLUMNS).selected_columns)}


def credential_row(conn: DBAPIConnection, dialect: Dialect, token_hash: str) -> Any | None:
    """The row of the credential whose SHA-256 is ``token_hash`` (revoked or not) with
    its owner, values at ``CRED``'s positions; None when unknown.  One query, no
    objects: the hot read judges the row as it is (``accounts.is_live``)."""
    query = _raw("credential", _credential_query, ("token_hash",), dialect)
    rows = query.rows(conn, {"token_hash": token_hash})
    return rows[0] if rows else None


def credential_objects(row: Any) -> tuple[ApiToken, User]:
    """The token and its owner of a ``credential_row``, as detached objects."""
    (tid, uid, kind, name, thash, prefix, tcreated, expires, revoked, used, *user) = row
    token = _new(
        ApiToken,
        {
            "id": tid,
            "user_id": uid,
            "kind": kind,
            "name": name,
            "token_hash": thash,
            "prefix": prefix,
            "created_at": tcreated,
            "expires_at": expires,
            "revoked_at": revoked,
            "last_used_at": used,
        },
    )
    username, password_hash, ucreated, version = user
    owner = _new(
        User,
        {
            "id": uid,
            "username": username,
            "password_hash": password_hash,
            "created_at": ucreated,
            "data_version": version,
        },
    )
    return token, owner


def credential_raw(
    conn: DBAPIConnection, dialect: Dialect, token_hash: str
) -> tuple[ApiToken, User] | None:
    """The credential whose SHA-256 is ``token_hash`` (revoked or not) and its owner
    (with the owner's ``data_version``), as detached objects, in one query; None when
    unknown."""
    row = credential_row(conn, dialect, token_hash)
    return None if row is None else credential_objects(row)


_SUMMARY_NAMES = tuple(str(c.key) for c in _default_page_query(0, 1, 0).selected_columns)


def page_raw(
    conn: DBAPIConnection,
    dialect: Dialect,
    owner_id: int,
    flt: TrainingFilter,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int] | None:
    """``summaries_page`` on a DBAPI connection for the unfiltered list (newest first);
    None for any other filter, or an empty page past the end (``summaries_page`` then).
    The total is counted by a second query only for a full page."""
    if flt != _DEFAULT_FILTER:
        return None
    query = _raw("default_page", _default_page_query, ("owner_id", "limit", "offset"), dialect)
    rows = query.rows(conn, {"owner_id": owner_id, "limit": limit, "offset": offset})
    if not rows and offset:
        return None
    out = [dict(zip(_SUMMARY_NAMES, row, strict=True)) for row in rows]
    for row in out:
        if isinstance(row["tags"], str | bytes):  # SQLite hands JSON back as text
            row["tags"] = json.loads(row["tags"])
    if len(out) < limit:  # the last page: nothing after it
        return out, offset + len(out)
    count = _raw("default_count", _default_count_query, ("owner_id",), dialect)
    return out, int(count.rows(conn, {"owner_id": owner_id})[0][0])


def touch_token(conn: Connection, token_id: int, now: float) -> None:
    """Record that the credential was used at ``now`` (committed)."""
    conn.execute(_TOUCH, {"token_id": token_id, "now": now})
    conn.commit()


def summaries_page(
    conn: Connection, owner_id: int, flt: TrainingFilter, limit: int, offset: int
) -> tuple[Sequence[Any], int]:
    """A page of the owner's trainings matching ``flt`` (the list view's columns), in
    its order, and how many match: the same rows as ``listing.filtered_page``."""
    if any("\x00" in (v or "") for v in (flt.env, flt.tag, flt.text)):
        return [], 0  # as listing.filtered_page: nothing stored holds a NUL
    rows = conn.execute(_page(owner_id, flt).limit(limit).offset(offset)).mappings().all()
    if rows:
        return rows, int(rows[0]["total"])
    if not offset:
        return [], 0
    conds = listing._conditions(owner_id, flt)
    count = select(func.count()).select_from(Training).where(*conds)
    return [], int(conn.scalar(count) or 0)
