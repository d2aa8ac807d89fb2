"""Storage fixtures: each test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from ``EZSPARK_TEST_PG_URL`` (default: the local server, user postgres).
A database named ``ezspark_test_gw_<random>`` is created for the session and dropped at
the end.  If PostgreSQL is unreachable the tests FAIL (they never skip): a storage layer
that was never run on its production database is not tested.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

from ezspark_gateway.storage import Database
from ezspark_gateway.storage.models import Base

with warnings.catch_warnings():
    # Starlette nags about its httpx-based TestClient; irrelevant to these tests.
    warnings.simplefilter("ignore")
    import fastapi.testclient  # noqa: F401

PG_ADMIN_URL = os.environ.get(
    "EZSPARK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL unreachable at {PG_ADMIN_URL!r}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, dedicated PostgreSQL database, dropped after the session."""
    name = f"ezspark_test_gw_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty gateway schema on SQLite (tmp file) or on the test PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/gateway.db"
    else:
        url = request.getfixturevalue("pg_url")
    db = Database(url)
    Base.metadata.drop_all(db.engine)  # each test starts from empty tables
    with db.engine.begin() as conn:  # ... and an unmigrated database
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.create_schema()
    yield db
    db.dispose()
