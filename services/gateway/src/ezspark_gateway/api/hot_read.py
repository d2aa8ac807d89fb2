"""The short path of the hot read, ``GET /api/trainings`` with a bearer token.

``middleware.EdgeMiddleware`` calls it before FastAPI's routing: for a valid bearer
token and valid parameters it reads the credential and then the page on one connection
in one call (on PostgreSQL: one thread hop and one pool checkout instead of two), and
hands back the JSON; for anything else (no bearer token, a cookie, an unknown, revoked
or expired token, a bad parameter) it hands the request on to the route, which answers
it exactly as before (401, 422, their bodies and headers).  FastAPI's routing,
dependency solving and response path cost a read about as much as the bare app's whole
request (docs/production.md, "Speed").  The route stays declared, so the OpenAPI
document is unchanged.  Every request reads its credential (with its owner's
``data_version``); the unfiltered page is then served from ``page_cache`` while that
version is unchanged, else read (only once the credential is found valid) and kept.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi.exceptions import RequestValidationError
from sqlalchemy import Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection
from starlette.datastructures import QueryParams
from starlette.types import Scope

from ezspark_gateway.api import list_query
from ezspark_gateway.api.context import AppContext
from ezspark_gateway.api.deps import header_token, run_read, touch_credential
from ezspark_gateway.api.page_cache import Owner, PageCache
from ezspark_gateway.api.routes_trainings import LIST_PATH, core_page, page_json
from ezspark_gateway.core import accounts
from ezspark_gateway.core.security import hash_token
from ezspark_gateway.storage import reads
from ezspark_gateway.storage.listing import TrainingFilter

PATH = LIST_PATH
Page = tuple[list[dict[str, Any]], int] | None


# The credential row's values the short path reads.
_UID, _NAME, _CREATED, _VERSION = (
    reads.CRED[k] for k in ("user_id", "username", "user_created_at", "data_version")
)
_TOKEN_ID, _REVOKED, _EXPIRES, _USED = (
    reads.CRED[k] for k in ("token_id", "revoked_at", "expires_at", "last_used_at")
)
Found = tuple[Any, bytes | None, Page]


def owner_of(row: Any) -> Owner:
    """The caller's account in a credential row, as ``PageCache`` keys it."""
    return row[_UID], row[_NAME], row[_CREATED], row[_VERSION]


def caller_and_page(
    conn: DBAPIConnection,
    dialect: Dialect,
    *,
    token_hash: str,
    now: float,
    flt: TrainingFilter,
    limit: int,
    offset: int,
    kept: PageCache,
) -> Found | None:
    """The credential's row (None unless live at ``now``: ``accounts.is_live``, the
    rule of ``check_credential``), then the unfiltered page kept at its owner's current
    ``data_version`` (read in the credential's statement), else the page's rows
    (``reads.page_raw``), on one connection.  No objects are built for the caller."""
    row = reads.credential_row(conn, dialect, token_hash)
    if row is None or not accounts.is_live(row[_REVOKED], row[_EXPIRES], now):
        return None
    if flt == reads.DEFAULT_FILTER:
        body = kept.get(owner_of(row), limit, offset)
        if body is not None:
            return row, body, None
    return row, None, reads.page_raw(conn, dialect, row[_UID], flt, limit, offset)


class HotList:
    """``EdgeMiddleware``'s short path for ``PATH`` (a ``middleware.HotRead``)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.kept = PageCache()

    async def __call__(self, scope: Scope, authorization: bytes | None) -> bytes | None:
        """The list's JSON, or None: the route answers instead."""
        if authorization is None:
            return None
        # Decoded as Starlette decodes headers.
        token = header_token(authorization.decode("latin-1"))
        if token is None:
            return None
        query = scope.get("query_string", b"")
        params = list_query.DEFAULTS
        if query:
            try:
                params = list_query.parse(QueryParams(query))
            except RequestValidationError:
                return None  # the route's 422 (after its 401, if the token is bad too)
        # The plain list's filter is built once (a dataclass built and compared per
        # request costs more than the kept page's look-up).
        flt = reads.DEFAULT_FILTER if params is list_query.DEFAULTS else params.to_filter()
        ctx, limit, offset = self.ctx, params.limit, params.offset
        now = ctx.clock()
        both = partial(
            caller_and_page, token_hash=hash_token(token), now=now, flt=flt, kept=self.kept
        )
        found = await run_read(
            ctx, partial(ctx.db.read_raw, partial(both, limit=limit, offset=offset))
        )
        if found is None:
            return None  # the route's 401
        row, body, page = found
        if accounts.touch_due(row[_USED], now):
            await touch_credential(ctx, row[_TOKEN_ID], now)
        if body is not None:
            return body
        if page is None:  # a filtered list, or an empty page past the end: Core SQL
            return page_json(*await core_page(ctx, row[_UID], flt, limit, offset), limit, offset)
        body = page_json(*page, limit, offset)
        self.kept.put(owner_of(row), limit, offset, body)
        return body
