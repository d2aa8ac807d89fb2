"""The short path of the hot read, ``GET /api/trainings`` with a bearer token.

``middleware.EdgeMiddleware`` calls it before FastAPI's routing: for a valid bearer
token and valid parameters it reads the credential and the page itself (``deps.
authenticate`` and ``routes_trainings.list_body``, as the route does) and hands back the
JSON; for anything else (no bearer token, a cookie, an unknown, revoked or expired
token, a bad parameter) it hands the request on to the route, which answers it exactly
as before (401, 422, their bodies and headers).  FastAPI's routing, dependency solving
and response path cost a read about as much as the bare app's whole request
(docs/production.md, "Speed").  The route stays declared, so the OpenAPI document is
unchanged.  Nothing is cached: every request reads its credential.
"""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.datastructures import QueryParams
from starlette.types import Scope

from ezspark_gateway.api import list_query
from ezspark_gateway.api.context import AppContext
from ezspark_gateway.api.deps import authenticate, header_token
from ezspark_gateway.api.routes_trainings import LIST_PATH, list_body

PATH = LIST_PATH


class HotList:
    """``EdgeMiddleware``'s short path for ``PATH`` (a ``middleware.HotRead``)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

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
        principal = await authenticate(self.ctx, token)
        if principal is None:
            return None  # the route's 401
        return await list_body(self.ctx, principal.user.id, params)
