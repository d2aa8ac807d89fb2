"""/api/auth: sign-up, log-in, log-out and API tokens."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Path, Request, Response

from ezspark_gateway.api.context import SESSION_COOKIE, AppContext
from ezspark_gateway.api.deps import (
    Ctx,
    CurrentPrincipal,
    Repo,
    client_ip,
    require_json,
    require_same_origin,
)
from ezspark_gateway.api.schemas import (
    Credentials,
    LoginOut,
    NewTokenOut,
    SessionOut,
    SignupOut,
    TokenCreate,
    TokenOut,
    UserOut,
    error_responses,
)
from ezspark_gateway.core import accounts
from ezspark_gateway.core.accounts import IssuedToken
from ezspark_gateway.core.errors import UnavailableError
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.models import User

router = APIRouter(prefix="/api/auth", tags=["auth"])
log = structlog.get_logger(__name__)


def new_token_out(issued: IssuedToken) -> NewTokenOut:
    """The API view of a freshly minted credential."""
    base = TokenOut.model_validate(issued.row).model_dump()
    return NewTokenOut(**base, token=issued.plain)


def set_session_cookie(response: Response, ctx: AppContext, plain: str) -> None:
    """HttpOnly (no script can read it) and SameSite=Lax (no cross-site POSTs carry it)."""
    response.set_cookie(
        SESSION_COOKIE,
        plain,
        max_age=ctx.settings.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
        path="/",
    )


def start_session(repo: Repository, ctx: AppContext, user: User, response: Response) -> LoginOut:
    """Issue a session token, set it as cookie and return it in the body as well."""
    issued = accounts.issue_token(
        repo,
        user,
        kind=accounts.SESSION,
        name="session",
        now=ctx.clock(),
        ttl_s=ctx.settings.session_ttl_s,
    )
    set_session_cookie(response, ctx, issued.plain)
    return LoginOut(user=UserOut.model_validate(user), token=new_token_out(issued))


@router.post(
    "/signup",
    status_code=202,
    response_model=SignupOut,
    dependencies=[Depends(require_json), Depends(require_same_origin)],
    responses=error_responses(403, 415, 422, 429),
)
def signup(body: Credentials, request: Request, repo: Repo, ctx: Ctx) -> SignupOut:
    """Create an account, then log in with ``/login``.  A taken name gets the same answer
    (and costs the same hash), so sign-up does not tell which names exist."""
    ctx.throttle.check("signup", client_ip(request), body.username)
    user = accounts.sign_up(repo, ctx.passwords, body.username, body.password, ctx.clock())
    log.info("signup", created=user is not None)
    return SignupOut()


@router.post(
    "/login",
    response_model=LoginOut,
    dependencies=[Depends(require_json), Depends(require_same_origin)],
    responses=error_responses(401, 403, 415, 422, 429),
)
def login(
    body: Credentials, request: Request, response: Response, repo: Repo, ctx: Ctx
) -> LoginOut:
    """Check the password; return a session token and set the session cookie."""
    ctx.throttle.check("login", client_ip(request), body.username)
    user = accounts.log_in(repo, ctx.passwords, body.username, body.password)
    return start_session(repo, ctx, user, response)


@router.post("/logout", status_code=204, responses=error_responses(401))
def logout(principal: CurrentPrincipal, response: Response, repo: Repo, ctx: Ctx) -> None:
    """Revoke the credential used for this request and clear the cookie."""
    accounts.revoke_token(repo, principal.user, principal.token.id, ctx.clock())
    revoke_evaluators(ctx, principal.user, principal.token.id)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", response_model=UserOut, responses=error_responses(401))
def me(principal: CurrentPrincipal) -> UserOut:
    """Who the credential belongs to."""
    return UserOut.model_validate(principal.user)


@router.post("/tokens", status_code=201, response_model=NewTokenOut, responses=error_responses(401))
def create_token(
    principal: CurrentPrincipal, repo: Repo, ctx: Ctx, body: TokenCreate | None = None
) -> NewTokenOut:
    """Mint an API token for scripts; its secret is shown in this response only.  It
    expires after ``expires_in_days`` (default: the gateway's EZSPARK_API_TOKEN_TTL_S)."""
    body = body or TokenCreate()
    days = body.expires_in_days
    ttl = days * 86400.0 if days is not None else float(ctx.settings.api_token_ttl_s)
    issued = accounts.issue_token(
        repo, principal.user, kind=accounts.API, name=body.name, now=ctx.clock(), ttl_s=ttl
    )
    return new_token_out(issued)


@router.get("/tokens", response_model=list[TokenOut], responses=error_responses(401))
def list_tokens(principal: CurrentPrincipal, repo: Repo, ctx: Ctx) -> list[TokenOut]:
    """The caller's live API tokens (metadata only)."""
    live = accounts.list_tokens(repo, principal.user, ctx.clock())
    return [TokenOut.model_validate(t) for t in live]


@router.get("/sessions", response_model=list[SessionOut], responses=error_responses(401))
def list_sessions(principal: CurrentPrincipal, repo: Repo, ctx: Ctx) -> list[SessionOut]:
    """The caller's live log-in sessions; ``current`` marks the one of this request."""
    live = accounts.list_tokens(repo, principal.user, ctx.clock(), accounts.SESSION)
    return [
        SessionOut.model_validate(t).model_copy(update={"current": t.id == principal.token.id})
        for t in live
    ]


@router.delete("/sessions/{session_id}", status_code=204, responses=error_responses(401, 404))
def revoke_session(
    session_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: CurrentPrincipal,
    repo: Repo,
    ctx: Ctx,
) -> None:
    """Log one of the caller's sessions out (e.g. a lost laptop's)."""
    accounts.revoke_session(repo, principal.user, session_id, ctx.clock())


@router.delete("/tokens/{token_id}", status_code=204, responses=error_responses(401, 404))
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: CurrentPrincipal,
    repo: Repo,
    ctx: Ctx,
) -> None:
    """Revoke one of the caller's tokens; it stops working immediately, and so do the
    evaluators started with it (their broker users are deleted)."""
    accounts.revoke_token(repo, principal.user, token_id, ctx.clock())
    revoke_evaluators(ctx, principal.user, token_id)


def revoke_evaluators(ctx: AppContext, user: User, token_id: int) -> None:
    """Delete the broker users issued for a revoked token (RabbitMQ disconnects them)."""
    if ctx.evaluators is None:
        return
    try:
        gone = ctx.evaluators.revoke_token(user, token_id)
    except UnavailableError as exc:  # the token is revoked; the broker users are not, yet
        log.error("evaluator_revoke_failed", token_id=token_id, error=str(exc))
        raise
    if gone:
        log.info("evaluators_revoked", token_id=token_id, count=gone)
