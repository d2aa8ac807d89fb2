"""Engine and session factory: SQLite by default, PostgreSQL (psycopg 3) by URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ezspark_gateway.storage.schema import create_schema


def normalize_url(url: str) -> str:
    """Point bare ``postgres(ql)://`` URLs at psycopg 3, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # Foreign keys are off by default in SQLite; WAL lets the event consumer write while
    # HTTP requests read.
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class Database:
    """One engine plus its session factory, shared by HTTP handlers and the event consumer."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
        if make_url(self.url).get_backend_name() == "sqlite":
            # Handlers run on a thread pool, so a connection may change threads.
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs["connect_args"] = {"connect_timeout": 5}
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> list[str]:
        """Create missing tables and add columns newer than the database (see ``schema``);
        return the ``table.column``s added."""
        return create_schema(self.engine)

    def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def session(self) -> Session:
        """A new session; the caller closes it (``with db.session() as s``)."""
        return self.sessions()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
