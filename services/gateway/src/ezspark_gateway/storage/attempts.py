"""The database-backed ``AttemptStore``: one atomic upsert per attempt."""

from __future__ import annotations

import itertools

from sqlalchemy import Table, case, delete
from sqlalchemy.dialects import postgresql, sqlite

from ezspark_gateway.storage.db import Database
from ezspark_gateway.storage.models import AuthBucket

# Expired buckets are deleted every this many attempts (per process), which bounds the
# table however many made-up names an attacker tries.
_PURGE_EVERY = 256


class DbAttempts:
    """Fixed-window counters in ``auth_buckets`` (SQLite and PostgreSQL: INSERT … ON CONFLICT)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._hits = itertools.count(1)

    def hit(self, key: str, now: float, window_s: float) -> tuple[int, float]:
        """Count one attempt in ``key``'s window; return (count, window start)."""
        table = AuthBucket.__table__
        assert isinstance(table, Table)
        dialect = postgresql if self._db.engine.dialect.name == "postgresql" else sqlite
        expired = table.c.window_start <= now - window_s
        stmt = (
            dialect.insert(table)
            .values(key=key, window_start=now, count=1)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "count": case((expired, 1), else_=table.c.count + 1),
                    "window_start": case((expired, now), else_=table.c.window_start),
                },
            )
            .returning(table.c.count, table.c.window_start)
        )
        with self._db.engine.begin() as conn:
            count, start = conn.execute(stmt).one()
            if next(self._hits) % _PURGE_EVERY == 0:
                conn.execute(delete(table).where(table.c.window_start <= now - window_s))
        return int(count), float(start)
