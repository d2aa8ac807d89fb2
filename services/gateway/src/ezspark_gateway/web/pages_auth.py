"""Sign-up, log-in and log-out pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ezspark_gateway.api.context import SESSION_COOKIE, AppContext
from ezspark_gateway.api.deps import Ctx, MaybePrincipal, Repo, client_ip, require_same_origin
from ezspark_gateway.api.routes_auth import set_session_cookie
from ezspark_gateway.core import accounts
from ezspark_gateway.core.errors import (
    InvalidInputError,
    RateLimitedError,
    UnauthorizedError,
)
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.models import User
from ezspark_gateway.web.render import Form, errors_by_field, render, safe_next, see_other

router = APIRouter(include_in_schema=False)
SIGNED_UP = "If this username was free, your account now exists: log in."


def _logged_in(repo: Repository, ctx: AppContext, user: User, target: str) -> Response:
    issued = accounts.issue_token(
        repo,
        user,
        kind=accounts.SESSION,
        name="browser",
        now=ctx.clock(),
        ttl_s=ctx.settings.session_ttl_s,
    )
    response = see_other(safe_next(target))
    set_session_cookie(response, ctx, issued.plain)
    return response


@router.get("/", response_model=None)
def home(principal: MaybePrincipal) -> RedirectResponse:
    """The list for users, the log-in page for visitors."""
    return see_other("/trainings" if principal else "/login")


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request,
    principal: MaybePrincipal,
    next_url: Annotated[str, Query(alias="next")] = "",
    signed_up: bool = False,
) -> HTMLResponse:
    """The log-in form (with a notice after sign-up)."""
    notice = SIGNED_UP if signed_up else ""
    return render(
        request,
        "login.html",
        principal,
        next=safe_next(next_url),
        errors={},
        username="",
        notice=notice,
    )


@router.post("/login", response_model=None, dependencies=[Depends(require_same_origin)])
def login_submit(request: Request, form: Form, repo: Repo, ctx: Ctx) -> Response:
    """Check the password; set the session cookie and go on, or show the error."""
    username, password = form.get("username", ""), form.get("password", "")
    target = safe_next(form.get("next"))
    try:
        ctx.throttle.check("login", client_ip(request), username)
        user = accounts.log_in(repo, ctx.passwords, username, password)
    except (UnauthorizedError, RateLimitedError) as exc:
        status = 429 if isinstance(exc, RateLimitedError) else 401
        return render(
            request,
            "login.html",
            None,
            status=status,
            next=target,
            errors={"form": [str(exc)]},
            username=username,
        )
    return _logged_in(repo, ctx, user, target)


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, principal: MaybePrincipal) -> HTMLResponse:
    """The sign-up form."""
    return render(request, "signup.html", principal, errors={}, username="")


@router.post("/signup", response_model=None, dependencies=[Depends(require_same_origin)])
def signup_submit(request: Request, form: Form, repo: Repo, ctx: Ctx) -> Response:
    """Create the account and go to the log-in page, or show what is wrong next to each
    field.  A taken name goes to the log-in page too: sign-up reveals no names."""
    username, password = form.get("username", ""), form.get("password", "")
    try:
        ctx.throttle.check("signup", client_ip(request), username)
        accounts.sign_up(repo, ctx.passwords, username, password, ctx.clock())
    except InvalidInputError as exc:
        return render(
            request,
            "signup.html",
            None,
            status=422,
            username=username,
            errors=errors_by_field(exc.errors),
        )
    except RateLimitedError as exc:
        return render(
            request,
            "signup.html",
            None,
            status=429,
            username=username,
            errors={"username": [str(exc)]},
        )
    return see_other("/login?signed_up=1")


@router.post("/logout", response_model=None)
def logout(principal: MaybePrincipal, repo: Repo, ctx: Ctx) -> Response:
    """Revoke the browser session and forget the cookie."""
    if principal is not None:
        accounts.revoke_token(repo, principal.user, principal.token.id, ctx.clock())
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
