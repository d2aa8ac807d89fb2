"""The hot reads (``storage.reads``: plain SQL on the driver) on each database give what
the ORM gives, and a credential revoked or expired through one gateway is refused by
another on its very next request (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from ezspark_gateway.api.routes_trainings import summary
from ezspark_gateway.app import create_app
from ezspark_gateway.core import accounts
from ezspark_gateway.core.security import Passwords, hash_token
from ezspark_gateway.settings import GatewaySettings
from ezspark_gateway.storage import Database, Repository, reads
from ezspark_gateway.storage.listing import TrainingFilter
from ezspark_gateway.storage.models import ApiToken, Base, Training, User
from tests.integration.gateway.test_gateway_manage_db import _seed

TOKEN_COLUMNS = [c.key for c in ApiToken.__table__.columns]
USER_COLUMNS = [c.key for c in User.__table__.columns]


def _row(obj: Any, columns: list[str]) -> dict[str, Any]:
    return {c: getattr(obj, c) for c in columns}


def test_credential_matches_the_orm(database: Database) -> None:
    """credential_raw returns the same token and user as the ORM query, revoked or
    expired ones included (the caller judges them), and None for an unknown hash."""
    with database.sessions() as session:
        repo = Repository(session)
        user = repo.add_user("ada", "hash", 1.0)
        assert user is not None
        live = accounts.issue_token(repo, user, kind="api", name="cli", now=2.0, ttl_s=50.0)
        gone = accounts.issue_token(repo, user, kind="session", name="web", now=3.0)
        accounts.revoke_session(repo, user, gone.row.id, 4.0)
        for issued in (live, gone):
            digest = hash_token(issued.plain)
            orm = repo.token_and_user(digest)
            raw = database.read_raw(partial(reads.credential_raw, token_hash=digest))
            assert orm is not None
            assert raw is not None
            assert _row(raw[0], TOKEN_COLUMNS) == _row(orm[0], TOKEN_COLUMNS)
            assert _row(raw[1], USER_COLUMNS) == _row(orm[1], USER_COLUMNS)
        assert database.read_raw(partial(reads.credential_raw, token_hash="0" * 64)) is None


def _raw_page(database: Database, owner: int, limit: int, offset: int) -> Any:
    page = partial(reads.page_raw, owner_id=owner, flt=TrainingFilter(), limit=limit)
    return database.read_raw(partial(page, offset=offset))


def test_unfiltered_page_matches_the_orm(database: Database) -> None:
    """page_raw gives the ORM list's rows (the list view's fields, tags decoded, newest
    first, archived hidden) and total, page by page; it declines other filters and an
    empty page past the end, which the Core query answers."""
    with database.sessions() as session:
        repo = Repository(session)
        owner, other = _seed(repo)
        for who, limit, offset in ((owner, 100, 0), (owner, 2, 1), (owner, 1, 3), (other, 5, 0)):
            items, total = repo.trainings_filtered(who, TrainingFilter(), limit, offset)
            found = _raw_page(database, who, limit, offset)
            assert found is not None
            rows, raw_total = found
            assert raw_total == total
            expected = [summary(t).model_dump() for t in items]
            assert [{k: v for k, v in r.items() if k != "total"} for r in rows] == expected
        assert _raw_page(database, owner, 2, 10) is None
        flt = TrainingFilter(tag="x")
        declined = partial(reads.page_raw, owner_id=owner, flt=flt, limit=5, offset=0)
        assert database.read_raw(declined) is None
        core = partial(reads.summaries_page, owner_id=owner, flt=TrainingFilter(), limit=2)
        assert database.read(partial(core, offset=10)) == ([], 4)


def _app(database: Database) -> FastAPI:
    """A gateway over ``database``: two of them are two processes sharing one database."""
    app: FastAPI = create_app(
        GatewaySettings(database_url=database.url),
        publisher=_Publisher(),
        broker_ping=lambda: None,
        database=database,
        passwords=Passwords(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)),
    )
    return app


class _Publisher:
    def publish(self, _msg: object) -> None:
        """Commands go nowhere: only reads are tested."""


ADA = {"username": "ada", "password": "pw-12345-long"}


def _bearer(gateway: TestClient) -> dict[str, str]:
    """ada logs in on ``gateway``: a bearer header for her new session (no cookie kept)."""
    token = gateway.post("/api/auth/login", json=ADA).json()["token"]["token"]
    gateway.cookies.clear()
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def _two_gateways(database: Database) -> Iterator[tuple[TestClient, TestClient]]:
    """Gateways A and B over ``database``, each with its own engine and connections (two
    processes sharing one database), and ada signed up."""
    other = Database(database.url)
    try:
        with TestClient(_app(database)) as a, TestClient(_app(other)) as b:
            a.post("/api/auth/signup", json=ADA)
            yield a, b
    finally:
        other.dispose()


def test_revocation_seen_by_another_gateway_at_once(database: Database) -> None:
    """Gateway B reads with a token (its own connection warmed), gateway A revokes it:
    B's very next read is 401; the same for a token once its expiry has passed."""
    with _two_gateways(database) as (a, b):
        auth = _bearer(a)
        assert b.get("/api/trainings", headers=auth).status_code == 200
        assert a.post("/api/auth/logout", headers=auth).status_code == 204
        assert b.get("/api/trainings", headers=auth).status_code == 401
        later = _bearer(a)
        assert b.get("/api/trainings", headers=later).status_code == 200
        expiring = later["Authorization"].removeprefix("Bearer ")
        with database.sessions() as session:  # its session expires in a second
            row = Repository(session).token_and_user(hash_token(expiring))
            assert row is not None
            row[0].expires_at = 1.0  # the session's own object: committed below
            session.commit()
        assert b.get("/api/trainings", headers=later).status_code == 401


def test_list_parameters_refused_by_field(database: Database) -> None:
    """The list's parameters are checked as FastAPI did: 422 naming each bad one
    (limit, each bad status), unknown parameters ignored, repeated statuses combined."""
    with TestClient(_app(database)) as client:
        body = {"username": "ada", "password": "pw-12345-long"}
        client.post("/api/auth/signup", json=body)
        token = client.post("/api/auth/login", json=body).json()["token"]["token"]
        client.cookies.clear()
        auth = {"Authorization": f"Bearer {token}"}
        bad = client.get("/api/trainings?limit=0&status=running&status=bogus", headers=auth)
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == ["limit", "status.1"]
        ok = client.get(
            "/api/trainings?status=running&status=queued&whatever=1&limit=7", headers=auth
        )
        assert ok.status_code == 200
        assert (ok.json()["total"], ok.json()["limit"]) == (0, 7)
        assert client.get("/api/trainings?limit=7").status_code == 401


def test_list_answers_as_the_model(database: Database) -> None:
    """GET /api/trainings answers each run as the detail view summarises it."""
    with database.sessions() as session:
        owner_id, _ = _seed(Repository(session))
    with database.sessions() as session:
        owner = session.get(User, owner_id)
        assert owner is not None
        issued = accounts.issue_token(Repository(session), owner, kind="api", name="t", now=1.0)
        runs = session.query(Training).filter(Training.owner_id == owner_id).all()
        want = {t.id: summary(t).model_dump(mode="json") for t in runs if t.archived_at is None}
    with TestClient(_app(database)) as client:
        got = client.get("/api/trainings", headers={"Authorization": f"Bearer {issued.plain}"})
    assert got.status_code == 200
    assert {item["id"]: item for item in got.json()["items"]} == want


def test_hot_read_survives_dropped_connections(pg_url: str) -> None:
    """PostgreSQL: the hot pool's connections are not pinged; when the server has
    dropped them all (as a restart does), the next read is retried on a new connection
    and answers, and later reads do too."""
    database = Database(pg_url)
    Base.metadata.drop_all(database.engine)  # empty and unmigrated, as the fixture does
    with database.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    database.create_schema()
    with database.sessions() as session:
        user = Repository(session).add_user("ada", "hash", 1.0)
        assert user is not None
        issued = accounts.issue_token(Repository(session), user, kind="api", name="t", now=1.0)
    lookup = partial(reads.credential_raw, token_hash=hash_token(issued.plain))
    try:
        assert database.read_raw(lookup) is not None  # a pooled connection now
        with database.engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        for _ in range(3):
            found = database.read_raw(lookup)
            assert found is not None
            assert found[1].username == "ada"
    finally:
        database.dispose()
