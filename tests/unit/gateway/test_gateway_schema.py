"""Start-up adds columns newer than an existing database (``storage.schema``), on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text

from ezspark_common.wire.messages import TrainingWaiting
from ezspark_gateway.core.events import EventApplier
from ezspark_gateway.storage import Database


def _columns(db: Database) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns("trainings")}


def test_old_sqlite_database_gets_waiting_reason_and_keeps_its_rows(
    make_gateway: Any, tmp_path: Path
) -> None:
    """A database made before waiting_reason existed gains it at start-up, rows intact."""
    gw = make_gateway()
    token = gw.signup()
    tid = gw.create(token)
    with gw.db.engine.begin() as conn:  # back to the schema of the previous release
        conn.execute(text("ALTER TABLE trainings DROP COLUMN waiting_reason"))
        conn.execute(text("DROP TABLE alembic_version"))  # it predates migrations
    gw.db.dispose()
    old = Database(gw.db.url)
    assert "waiting_reason" not in _columns(old)
    assert old.create_schema() == ["trainings.waiting_reason"]
    assert old.create_schema() == []  # idempotent
    assert "waiting_reason" in _columns(old)
    assert (
        EventApplier(old.sessions).handle(
            TrainingWaiting(training_id=tid, waiting=True, reason="no evaluator serves X")
        )
        == "applied"
    )
    detail = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    assert (detail["status"], detail["waiting"]) == ("queued", "no evaluator serves X")
    old.dispose()
