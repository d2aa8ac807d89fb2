"""Alembic migrations: a database made by the schema before migrations is upgraded in
place, on SQLite and PostgreSQL, and a migrated database equals the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from ezspark_gateway.storage import Database, Repository
from ezspark_gateway.storage.attempts import DbAttempts
from ezspark_gateway.storage.models import Base
from ezspark_gateway.storage.schema import revision

DATA = Path(__file__).parent / "data"
TID = "00000000-0000-4000-8000-000000000001"


def _old_database(db: Database) -> None:
    """Empty the database, then build it with the pre-Alembic DDL and one user's training."""
    Base.metadata.drop_all(db.engine)
    ddl = (DATA / f"schema_before_alembic.{db.engine.dialect.name}.sql").read_text()
    lines = [line for line in ddl.splitlines() if not line.startswith("--")]
    statements = [s for s in "\n".join(lines).split(";") if s.strip()]
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        for statement in statements:
            conn.execute(text(statement))
        conn.execute(
            text("INSERT INTO users (username, password_hash, created_at) VALUES ('ada', 'h', 1)")
        )
        conn.execute(
            text(
                "INSERT INTO trainings (id, owner_id, status, config, created_at, updated_at,"
                " generations) VALUES (:id, 1, 'running', '{}', 1, 1, 3)"
            ),
            {"id": TID},
        )
    db.dispose()


def test_old_database_is_upgraded_in_place_and_keeps_its_rows(database: Database) -> None:
    """A database created before migrations is stamped, upgraded to head, keeps its rows
    and serves the new features (brute-force buckets); a second start changes nothing."""
    _old_database(database)
    assert revision(database.engine) is None
    assert "auth_buckets" not in inspect(database.engine).get_table_names()
    database.create_schema()
    assert revision(database.engine) == "0005"
    database.create_schema()
    assert revision(database.engine) == "0005"
    with database.session() as session:
        row = Repository(session).training(TID)
        assert row is not None
        assert row.generations == 3
    assert DbAttempts(database).hit("login:1.2.3.4", 10.0, 60.0) == (1, 10.0)
    assert DbAttempts(database).hit("login:1.2.3.4", 11.0, 60.0) == (2, 10.0)


def test_migrated_database_equals_the_models(database: Database) -> None:
    """Every migration applied to an empty database gives exactly the models' schema."""
    with database.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
