"""The start-up step that adds newer columns to pre-migration databases, on SQLite and on
a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect, text

from ezspark_common.wire.messages import TrainingWaiting
from ezspark_gateway.core.events import EventApplier
from ezspark_gateway.storage import Database, Repository
from ezspark_gateway.storage import schema as schema_module
from ezspark_gateway.storage.models import Training


def _columns(db: Database) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns("trainings")}


def _old_database_with_a_training(db: Database) -> str:
    """Store one training, then drop the column as if the database predates it."""
    with db.session() as session:
        repo = Repository(session)
        user = repo.add_user("ada", "hash", 1.0)
        assert user is not None
        repo.add_training(
            Training(
                id="00000000-0000-4000-8000-000000000001",
                owner_id=user.id,
                status="queued",
                config={},
                created_at=1.0,
                updated_at=1.0,
                generations=0,
            )
        )
        repo.commit()
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE trainings DROP COLUMN waiting_reason"))
        conn.execute(text("DROP TABLE alembic_version"))  # made before migrations, too
    db.dispose()  # forget cached metadata of pooled connections
    assert "waiting_reason" not in _columns(db)
    return "00000000-0000-4000-8000-000000000001"


def test_missing_column_is_added_once_and_usable(database: Database) -> None:
    """create_schema adds waiting_reason to an old table, keeps its rows, and is idempotent."""
    tid = _old_database_with_a_training(database)
    assert database.create_schema() == ["trainings.waiting_reason"]
    assert database.create_schema() == []
    sink = EventApplier(database.sessions)
    assert sink.handle(TrainingWaiting(training_id=tid, waiting=True, reason="r")) == "applied"
    with database.session() as session:
        row = Repository(session).training(tid)
        assert row is not None
        assert row.waiting_reason == "r"


def test_losing_the_race_to_another_gateway_is_harmless(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If another process adds the column between the check and the ALTER, start-up goes on."""
    database.create_schema()  # the "other gateway" already added it
    real = schema_module._present
    calls: list[Any] = []

    def stale_then_real(engine: Any, table: str) -> set[str]:
        calls.append(table)
        return set() if len(calls) == 1 else real(engine, table)

    monkeypatch.setattr(schema_module, "_present", stale_then_real)
    # PostgreSQL: ADD COLUMN IF NOT EXISTS is a no-op; SQLite: the duplicate-column error is
    # re-checked and ignored.  Either way the call succeeds.
    added = schema_module.add_missing_columns(database.engine)
    assert added in ([], ["trainings.waiting_reason"])
    assert "waiting_reason" in _columns(database)
