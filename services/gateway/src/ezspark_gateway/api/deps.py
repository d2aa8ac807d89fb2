"""FastAPI dependencies: the app context, a unit of work, the caller's identity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ezspark_gateway.api.body import JSON_MEDIA, media_type
from ezspark_gateway.api.context import SESSION_COOKIE, AppContext
from ezspark_gateway.core import accounts
from ezspark_gateway.core.accounts import Principal
from ezspark_gateway.core.errors import ForbiddenError, UnauthorizedError
from ezspark_gateway.storage import Repository

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# Dependencies that do no I/O are ``async def``: FastAPI would otherwise run each on its
# thread pool, and those hand-offs cost more than the work (profile in docs/production.md).


async def get_ctx(request: Request) -> AppContext:
    """The app's context object."""
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def get_repo(ctx: Ctx) -> AsyncIterator[Repository]:
    """A repository over a fresh session (no connection until its first query), closed
    when the request ends.  Closing stays on the event loop: it only hands the connection
    back, and waiting for a thread there while holding a pooled connection could starve
    the pool (requests holding threads would wait for connections, and vice versa)."""
    session = ctx.db.session()
    try:
        yield Repository(session)
    finally:
        session.close()


Repo = Annotated[Repository, Depends(get_repo)]


def client_ip(request: Request) -> str:
    """The peer address (uvicorn's --proxy-headers makes this the real client)."""
    return request.client.host if request.client else "unknown"


def _own_origins(request: Request, ctx: AppContext) -> set[str]:
    """This gateway's origin as the browser sees it (scheme included), plus the
    configured ``allowed_origins``."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    extra = (o.strip().rstrip("/").lower() for o in ctx.settings.allowed_origins.split(","))
    return {own, *filter(None, extra)}


def same_origin(request: Request, ctx: AppContext, *, missing_ok: bool) -> bool:
    """True when the ``Origin`` header names this gateway, scheme included.

    Every current browser sends ``Origin`` on POST, PUT, PATCH and DELETE, so a missing
    one means a non-browser client: ``missing_ok`` says whether that is acceptable.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return missing_ok
    return origin.rstrip("/").lower() in _own_origins(request, ctx)


def require_same_origin(request: Request, ctx: Ctx) -> None:
    """403 for a log-in or sign-up posted from another site (login CSRF).  Without an
    ``Origin`` the client is not a browser, so nobody else's session can be planted."""
    if not same_origin(request, ctx, missing_ok=True):
        raise ForbiddenError("cross-site request refused")


def bearer_token(request: Request) -> tuple[str | None, bool]:
    """The presented token and whether it came from the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


# Declares the bearer scheme in the OpenAPI document, on every operation that reads the
# caller (Swagger UI's "Authorize"); the token itself is read by ``bearer_token``.
BEARER_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="A session token from `POST /api/auth/login`, or an API token from "
    "`POST /api/auth/tokens` (`ezspark login` makes one).",
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)]


def optional_principal(
    request: Request, repo: Repo, ctx: Ctx, _scheme: Bearer = None
) -> Principal | None:
    """The caller, or None when no valid credential was presented."""
    token, from_cookie = bearer_token(request)
    if token is None:
        return None
    try:
        principal = accounts.authenticate(repo, token, ctx.clock())
    except UnauthorizedError:
        return None
    finally:
        # End the transaction: the connection goes back to the pool before the handler's
        # own thread hop.  Held across it, requests waiting for a thread would hold every
        # connection while the threads wait for one (sessions keep their objects loaded).
        repo.commit()
    # A cookie rides along on cross-site requests; refuse those that change state.  A
    # cookie means a browser, and browsers send Origin on such requests: none is refused.
    if (
        from_cookie
        and request.method not in SAFE_METHODS
        and not same_origin(request, ctx, missing_ok=False)
    ):
        raise ForbiddenError("cross-site request refused")
    return principal


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]


async def current_principal(principal: MaybePrincipal) -> Principal:
    """The caller; 401 when no valid credential was presented."""
    if principal is None:
        raise UnauthorizedError("missing or invalid credentials")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON."""
    media = media_type(request)
    if media != JSON_MEDIA and not media.endswith("+json"):
        raise HTTPException(415, "send the body as application/json")
