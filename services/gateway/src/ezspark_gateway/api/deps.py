"""FastAPI dependencies: the app context, a unit of work, the caller's identity."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Annotated, TypeVar

import anyio.to_thread
from anyio.lowlevel import RunVar
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from ezspark_gateway.api.body import JSON_MEDIA, media_type
from ezspark_gateway.api.context import SESSION_COOKIE, AppContext
from ezspark_gateway.core import accounts
from ezspark_gateway.core.accounts import Principal
from ezspark_gateway.core.errors import ForbiddenError, UnauthorizedError
from ezspark_gateway.core.security import hash_token
from ezspark_gateway.storage import Repository, reads

T = TypeVar("T")

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


def header_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def bearer_token(request: Request) -> tuple[str | None, bool]:
    """The presented token (the Authorization header's, else the session cookie) and
    whether it came from the session cookie."""
    token = header_token(request.headers.get("authorization", ""))
    if token is not None:
        return token, False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


# Per event loop: the threads the reads of a network database may hold at once.
_READ_THREADS: RunVar[anyio.CapacityLimiter] = RunVar("ezspark_read_threads")


def _read_threads(size: int) -> anyio.CapacityLimiter:
    try:
        return _READ_THREADS.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(size)
        _READ_THREADS.set(limiter)
        return limiter


async def run_read(ctx: AppContext, call: Callable[[], T]) -> T:
    """``call()`` (a database read): on the event loop for a local SQLite file (a read
    takes microseconds there, less than the hop to a thread and back, and WAL readers
    never wait for writers), on a thread for a database across a network.

    At most as many threads as the hot pool has connections (``Database.read_threads``):
    more would only wait for a connection inside the pool, and 16 threads a worker
    fighting for the GIL doubled a read's CPU and its p99 on PostgreSQL; the rest wait
    on the event loop, which costs nothing."""
    if ctx.db.inline_reads:
        return call()
    limiter = _read_threads(ctx.db.read_threads)
    return await anyio.to_thread.run_sync(call, limiter=limiter)


async def authenticate(ctx: AppContext, token: str) -> Principal | None:
    """The owner of ``token`` with the token, or None when it is unknown, revoked or
    expired.

    Looked up in the database on every request (one query for the token and its owner;
    nothing cached), so a revoked or expired credential is refused on the very next
    request, whichever worker process or replica serves it.
    """
    now = ctx.clock()
    lookup = partial(reads.credential_raw, token_hash=hash_token(token))
    found = await run_read(ctx, partial(ctx.db.read_raw, lookup))
    try:
        principal = accounts.check_credential(found, now)
    except UnauthorizedError:
        return None
    if accounts.needs_touch(principal.token, now):
        await touch_credential(ctx, principal.token.id, now)
        principal.token.last_used_at = now
    return principal


async def touch_credential(ctx: AppContext, token_id: int, now: float) -> None:
    """Record the credential's use at ``now`` (callers do it at most once a minute:
    ``accounts.touch_due``)."""
    # A write (once a minute per credential) may wait for SQLite's lock: on a thread.
    touch = partial(reads.touch_token, token_id=token_id, now=now)
    await anyio.to_thread.run_sync(ctx.db.read, touch)


async def optional_principal(request: Request, ctx: AppContext) -> Principal | None:
    """The caller, or None when no valid credential was presented (``authenticate``)."""
    token, from_cookie = bearer_token(request)
    if token is None:
        return None
    principal = await authenticate(ctx, token)
    if principal is None:
        return None
    # A cookie rides along on cross-site requests; refuse those that change state.  A
    # cookie means a browser, and browsers send Origin on such requests: none is refused.
    if (
        from_cookie
        and request.method not in SAFE_METHODS
        and not same_origin(request, ctx, missing_ok=False)
    ):
        raise ForbiddenError("cross-site request refused")
    return principal


class PrincipalScheme(HTTPBearer):
    """The caller, as one dependency that is also the bearer scheme of the OpenAPI
    document (Swagger UI's "Authorize") on every operation that reads the caller.

    One dependency instead of four (scheme, context, optional and required caller):
    FastAPI spends more resolving each dependency than the credential's query costs.
    ``required``: 401 without a valid credential, else None.
    """

    def __init__(self, *, required: bool) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="bearerAuth",
            description="A session token from `POST /api/auth/login`, or an API token "
            "from `POST /api/auth/tokens` (`ezspark login` makes one).",
        )
        self.required = required

    async def __call__(self, request: Request) -> Principal | None:  # type: ignore[override]
        """The caller (None, or 401 when ``required``, without a valid credential)."""
        principal = await optional_principal(request, request.app.state.ctx)
        if principal is None and self.required:
            raise UnauthorizedError("missing or invalid credentials")
        return principal


MaybePrincipal = Annotated[Principal | None, Depends(PrincipalScheme(required=False))]
CurrentPrincipal = Annotated[Principal, Depends(PrincipalScheme(required=True))]


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON."""
    media = media_type(request)
    if media != JSON_MEDIA and not media.endswith("+json"):
        raise HTTPException(415, "send the body as application/json")
