"""Bring a database to the current schema with the Alembic migrations in ``migrations/``.

A new database gets every migration.  A database made before migrations existed (by
``create_all``, no ``alembic_version`` table) first gets the columns that were added to
it in place (``ADDED_COLUMNS``), which makes it the baseline revision; it is then stamped
with that revision and upgraded like any other.  On PostgreSQL an advisory lock makes
gateways that start at once migrate one after the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from ezspark_gateway.storage.models import Base

# (table, column) pairs added after their table first shipped, oldest first.
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trainings", "waiting_reason"),
    ("trainings", "handoff_id"),
)

BASELINE = "0001"
MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: the key of the PostgreSQL advisory lock that serialises migrations.
_LOCK_KEY = 0x657A7370

log = structlog.get_logger(__name__)


def _alembic(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def revision(engine: Engine) -> str | None:
    """The database's Alembic revision (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def create_schema(engine: Engine) -> list[str]:
    """Migrate the database to the newest revision; return the legacy ``table.column``s
    added to a pre-migration database on the way (usually none)."""
    added: list[str] = []
    tables = set(inspect(engine).get_table_names())
    if "users" in tables and "alembic_version" not in tables:
        added = add_missing_columns(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        config = _alembic(conn)
        current = MigrationContext.configure(conn).get_current_revision()
        if current is None and "users" in set(inspect(conn).get_table_names()):
            command.stamp(config, BASELINE)
            log.info("schema_stamped", revision=BASELINE)
        command.upgrade(config, "head")
    return added


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
