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
from ezspark_gateway.api.deps import header_token, run_read, touch_if_due
from ezspark_gateway.api.page_cache import PageCache
from ezspark_gateway.api.routes_trainings import LIST_PATH, core_page, page_json
from ezspark_gateway.core import accounts
from ezspark_gateway.core.accounts import Principal
from ezspark_gateway.core.errors import UnauthorizedError
from ezspark_gateway.core.security import hash_token
from ezspark_gateway.storage import reads
from ezspark_gateway.storage.listing import TrainingFilter

PATH = LIST_PATH
Page = tuple[list[dict[str, Any]], int] | None


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
) -> tuple[Principal, bytes | None, Page] | None:
    """The credential's principal (None unless valid at ``now``: ``accounts.
    check_credential``), then the unfiltered page kept at its owner's current
    ``data_version`` (read in the credential's statement), else its rows
    (``reads.page_raw``), on one connection."""
    try:
        principal = accounts.check_credential(reads.credential_raw(conn, dialect, token_hash), now)
    except UnauthorizedError:
        return None
    owner = principal.user
    if flt == reads.DEFAULT_FILTER:
        body = kept.get(owner, limit, offset)
        if body is not None:
            return principal, body, None
    return principal, None, reads.page_raw(conn, dialect, owner.id, flt, limit, offset)


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
        principal, body, page = found
        await touch_if_due(ctx, principal, now)
        if body is not None:
            return body
        if page is None:  # a filtered list, or an empty page past the end: Core SQL
            return page_json(
                *await core_page(ctx, principal.user.id, flt, limit, offset), limit, offset
            )
        body = page_json(*page, limit, offset)
        self.kept.put(principal.user, limit, offset, body)
        return body
