"""The data version behind the hot read's kept pages, on SQLite and PostgreSQL: the
trigger of migration 0004 bumps ``users.data_version`` on every insert, update and
delete of a user's trainings, whoever writes (ORM, Core, plain SQL), and a gateway
keeping a page answers fresh data on its very next read after another gateway (or any
other writer) changed it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, delete, text, update

from ezspark_gateway.storage import Database, Repository
from ezspark_gateway.storage.models import Training
from tests.integration.gateway.test_gateway_manage_db import _seed
from tests.integration.gateway.test_gateway_reads_db import _bearer, _two_gateways

OWNED = "00000001-0000-4000-8000-000000000000"


def _versions(database: Database) -> dict[str, int]:
    with database.engine.connect() as conn:
        rows = conn.execute(text("SELECT username, data_version FROM users")).all()
    return {name: int(version) for name, version in rows}


def _insert(conn: Connection, owner: int) -> None:
    conn.execute(
        text(
            "INSERT INTO trainings (id, owner_id, status, config, created_at, updated_at,"
            " generations) VALUES ('00000008-0000-4000-8000-000000000000', :o, 'queued',"
            " '{}', 9000, 9000, 0)"
        ),
        {"o": owner},
    )


WRITES: dict[str, Callable[[Connection, int], Any]] = {
    "sql insert": _insert,
    "sql update": lambda conn, _o: conn.execute(
        text("UPDATE trainings SET notes = 'n' WHERE id = :i"), {"i": OWNED}
    ),
    "core update": lambda conn, _o: conn.execute(
        update(Training).where(Training.id == OWNED).values(generations=7)
    ),
    "core delete": lambda conn, _o: conn.execute(delete(Training).where(Training.id == OWNED)),
}


def test_every_kind_of_write_bumps_only_its_owner(database: Database) -> None:
    """Plain SQL and Core inserts, updates and deletes of one user's trainings bump that
    user's data_version, in the writing transaction, and nobody else's."""
    with database.sessions() as session:
        owner, _other = _seed(Repository(session))
        session.commit()
    for write in WRITES.values():
        before = _versions(database)
        with database.engine.begin() as conn:
            write(conn, owner)
        after = _versions(database)
        assert after["owner"] > before["owner"]
        assert after["other"] == before["other"]


def test_orm_writes_bump_the_version(database: Database) -> None:
    """The ORM's insert (seeding) and attribute update bump the owner's version."""
    assert _versions(database) == {}
    with database.sessions() as session:
        _seed(Repository(session))
        session.commit()
    seeded = _versions(database)
    assert seeded["owner"] >= 4
    assert seeded["other"] >= 1
    with database.sessions() as session:
        row = Repository(session).training(OWNED)
        assert row is not None
        row.name = "renamed"
        session.commit()
    assert _versions(database)["owner"] == seeded["owner"] + 1


def test_kept_page_is_fresh_after_another_gateway_writes(database: Database) -> None:
    """Gateway B keeps a user's page; a training inserted, then changed, by plain SQL
    on another connection (as another process would) shows in B's very next read."""
    with _two_gateways(database) as (a, b):
        auth = _bearer(a)
        for _ in range(2):  # the second read is served from B's kept page
            assert b.get("/api/trainings", headers=auth).json()["total"] == 0
        with database.engine.begin() as conn:
            uid = conn.execute(text("SELECT id FROM users")).scalar_one()
            _insert(conn, uid)
        fresh = b.get("/api/trainings", headers=auth).json()
        assert [item["status"] for item in fresh["items"]] == ["queued"]
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE trainings SET status = 'failed'"))
        again = b.get("/api/trainings", headers=auth).json()
        assert [item["status"] for item in again["items"]] == ["failed"]
