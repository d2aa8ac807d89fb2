"""Sign-up, log-in and log-out pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ezspark_gateway.api.context import SESSION_COOKIE, AppContext
from ezspark_gateway.api.deps import Ctx, MaybePrincipal, Repo, client_ip
from ezspark_gateway.api.routes_auth import set_session_cookie
from ezspark_gateway.core import accounts
from ezspark_gateway.core.errors import (
    ConflictError,
    InvalidInputError,
    RateLimitedError,
    UnauthorizedError,
)
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.models import User
from ezspark_gateway.web.render import Form, errors_by_field, render, safe_next, see_other

router = APIRouter(include_in_schema=False)


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
    request: Request, principal: MaybePrincipal, next_url: Annotated[str, Query(alias="next")] = ""
) -> HTMLResponse:
    """The log-in form."""
    return render(
        request, "login.html", principal, next=safe_next(next_url), errors={}, username=""
    )


@router.post("/login", response_model=None)
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


@router.post("/signup", response_model=None)
def signup_submit(request: Request, form: Form, repo: Repo, ctx: Ctx) -> Response:
    """Create the account and log it in, or show what is wrong next to each field."""
    username, password = form.get("username", ""), form.get("password", "")
    try:
        ctx.throttle.check("signup", client_ip(request), username)
        user = accounts.sign_up(repo, ctx.passwords, username, password, ctx.clock())
    except InvalidInputError as exc:
        return render(
            request,
            "signup.html",
            None,
            status=422,
            username=username,
            errors=errors_by_field(exc.errors),
        )
    except (ConflictError, RateLimitedError) as exc:
        status = 429 if isinstance(exc, RateLimitedError) else 409
        return render(
            request,
            "signup.html",
            None,
            status=status,
            username=username,
            errors={"username": [str(exc)]},
        )
    return _logged_in(repo, ctx, user, "/trainings")


@router.post("/logout", response_model=None)
def logout(principal: MaybePrincipal, repo: Repo, ctx: Ctx) -> Response:
    """Revoke the browser session and forget the cookie."""
    if principal is not None:
        accounts.revoke_token(repo, principal.user, principal.token.id, ctx.clock())
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
