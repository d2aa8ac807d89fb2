"""Create the schema, and add to existing databases the columns added since their creation.

There are no migrations: the schema is only ever added to.  ``create_all`` makes missing
tables but never alters an existing one, so each column added to a table after the first
release is listed in ``ADDED_COLUMNS`` and ``add_missing_columns`` adds it (nullable, no
default) where it is absent.  Idempotent, on SQLite and PostgreSQL, and safe when several
gateways start at once (PostgreSQL: ``IF NOT EXISTS``; SQLite: a lost race is re-checked).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import Column, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from ezspark_gateway.storage.models import Base

# (table, column) pairs added after their table first shipped, oldest first.
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trainings", "waiting_reason"),
    ("trainings", "handoff_id"),
)

log = structlog.get_logger(__name__)


def create_schema(engine: Engine) -> list[str]:
    """Create missing tables, then missing columns; return the ``table.column``s added."""
    Base.metadata.create_all(engine)
    return add_missing_columns(engine)


def _present(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def _add_column_sql(engine: Engine, table: str, column: Column[Any]) -> str:
    prep = engine.dialect.identifier_preparer
    kind = column.type.compile(dialect=engine.dialect)
    if_missing = "IF NOT EXISTS " if engine.dialect.name == "postgresql" else ""
    return (
        f"ALTER TABLE {prep.quote(table)} ADD COLUMN {if_missing}{prep.quote(column.name)} {kind}"
    )


def add_missing_columns(engine: Engine) -> list[str]:
    """Add every ``ADDED_COLUMNS`` entry its table lacks; return those added."""
    added = []
    for table, name in ADDED_COLUMNS:
        if name in _present(engine, table):
            continue
        column = Base.metadata.tables[table].c[name]
        try:
            with engine.begin() as conn:
                conn.execute(text(_add_column_sql(engine, table, column)))
        except DBAPIError:
            if name not in _present(engine, table):
                raise
            continue  # another process added it meanwhile
        log.info("column_added", table=table, column=name)
        added.append(f"{table}.{name}")
    return added
