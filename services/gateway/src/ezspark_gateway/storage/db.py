"""Engine and session factory: SQLite by default, PostgreSQL (psycopg 3) by URL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

from ezspark_gateway.storage.schema import create_schema

T = TypeVar("T")
# Pooled connections per process: at least the request threads (40 by default), so
# requests never wait for one nor open and close overflow connections under load.
POOL_SIZE = 48
# PostgreSQL: the hot reads' own pool per worker process, fixed (no overflow), so a burst
# waits briefly for a connection instead of opening and closing backends (the default
# 5 + 10 overflow did that at 16 concurrent reads a worker: p99 over 100 ms).  Two
# workers and two replicas hold 32 of the server's default 100 connections this way.
HOT_POOL_SIZE = 8


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


def _autocommit(
    conn: PoolProxiedConnection, fn: Callable[[DBAPIConnection, Dialect], T], dialect: Dialect
) -> T:
    """``fn`` with the driver in autocommit when it has one (psycopg): a single-statement
    read needs no transaction, and the BEGIN and ROLLBACK round trips cost as much as
    the query (credential on PostgreSQL: 413 instead of 822 µs).  The connection goes
    back to the pool as it came, outside autocommit."""
    driver: Any = conn.driver_connection
    if not hasattr(driver, "autocommit"):
        return fn(conn, dialect)
    driver.autocommit = True
    try:
        return fn(conn, dialect)
    finally:
        driver.autocommit = False


class Database:
    """One engine plus its session factory, shared by HTTP handlers and the event consumer."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        sqlite = make_url(self.url).get_backend_name() == "sqlite"
        # A file has no server to lose the connection: no ping before every checkout.
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": not sqlite}
        if sqlite:
            # Handlers run on a thread pool, so a connection may change threads.
            kwargs["connect_args"] = {"check_same_thread": False}
            if make_url(self.url).database not in (None, "", ":memory:"):
                kwargs.update(pool_size=POOL_SIZE, max_overflow=8)
        else:
            kwargs["connect_args"] = {"connect_timeout": 5}
        # Short reads of a local file take microseconds, less than a hop to a thread and
        # back, so the hot reads run them on the event loop (``read``); a network
        # database's round trip goes to a thread instead (api.deps.run_read).
        self.inline_reads = sqlite
        self.read_threads = HOT_POOL_SIZE  # threads for those hops (api.deps.run_read)
        self.engine: Engine = create_engine(self.url, **kwargs)
        # The hot reads' engine on a network database: no ping before each checkout (a
        # round trip as long as the read); a dropped connection is retried instead.
        self._hot: Engine | None = None
        if not sqlite:
            self._hot = create_engine(
                self.url,
                connect_args=kwargs["connect_args"],
                pool_size=HOT_POOL_SIZE,
                max_overflow=0,
            )
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: each thread's own connection for ``read_raw`` (by thread id).
        self._own: dict[int, PoolProxiedConnection] = {}
        self._own_lock = threading.Lock()

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

    def read(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` on a pooled connection, handed back (rolled back) afterwards."""
        with self.engine.connect() as conn:
            return fn(conn)

    def read_raw(self, fn: Callable[[DBAPIConnection, Dialect], T]) -> T:
        """``fn`` on a DBAPI connection and the dialect: for SQLite the calling thread's
        own connection (kept open: checking one out of the pool costs more than a short
        read), else one of the hot pool's (``_read_hot``), handed back afterwards.

        ``fn`` must read every row it asks for: a statement left open would keep its
        read snapshot, and later reads on the connection would not see newer commits.
        """
        dialect = self.engine.dialect
        if self._hot is not None:
            return self._read_hot(self._hot, fn)
        own = self._own.get(threading.get_ident())
        if own is None:
            own = self.engine.raw_connection()
            own.detach()  # out of the pool: this thread's for good, closed by dispose()
            with self._own_lock:
                self._own[threading.get_ident()] = own
        return fn(own, dialect)

    def _read_hot(self, hot: Engine, fn: Callable[[DBAPIConnection, Dialect], T]) -> T:
        """``fn`` on a connection of the hot pool, unpinged: when the database dropped it
        (a restart, an idle timeout), the pool is emptied and ``fn`` retried once on a
        new connection (reads only: nothing was written)."""
        for attempt in (1, 2):
            pooled = hot.raw_connection()
            try:
                return _autocommit(pooled, fn, hot.dialect)
            except hot.dialect.loaded_dbapi.Error as exc:
                if attempt == 2 or not hot.dialect.is_disconnect(
                    exc, pooled.dbapi_connection, None
                ):
                    raise
                pooled.invalidate()
                hot.dispose()  # its other connections are as stale
            finally:
                pooled.close()
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        """Close every pooled connection (and the threads' own)."""
        with self._own_lock:
            own, self._own = list(self._own.values()), {}
        for conn in own:
            conn.close()
        self.engine.dispose()
        if self._hot is not None:
            self._hot.dispose()
