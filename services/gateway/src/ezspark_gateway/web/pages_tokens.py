"""The API tokens page: list, create (the secret shown once), revoke.

The same use cases as ``/api/auth/tokens``; revoking also removes the broker users of the
evaluators started with the token, as the API does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError

from ezspark_gateway.api.context import AppContext
from ezspark_gateway.api.deps import Ctx, MaybePrincipal, Repo
from ezspark_gateway.api.routes_auth import revoke_evaluators
from ezspark_gateway.api.schemas import TokenCreate
from ezspark_gateway.core import accounts
from ezspark_gateway.core.accounts import IssuedToken, Principal
from ezspark_gateway.core.errors import UnavailableError
from ezspark_gateway.storage import Repository
from ezspark_gateway.web.pages_manage import when
from ezspark_gateway.web.render import Form, render, see_other, to_login

router = APIRouter(include_in_schema=False)
TOKENS_URL = "/account/tokens"
# Lifetimes offered by the form, in days ("" is the gateway's default).
LIFETIMES = ("", "7", "30", "90", "365")
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _page(
    request: Request,
    principal: Principal,
    repo: Repository,
    ctx: AppContext,
    *,
    status: int = 200,
    created: IssuedToken | None = None,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    notice: str = "",
) -> Response:
    response = render(
        request,
        "tokens.html",
        principal,
        status=status,
        tokens=accounts.list_tokens(repo, principal.user, ctx.clock()),
        created=created,
        errors=errors or {},
        values=values or {"name": "", "days": ""},
        lifetimes=LIFETIMES,
        default_days=round(ctx.settings.api_token_ttl_s / 86400),
        notice=notice,
        when=when,
    )
    # The page may carry a token's secret: never keep it in any cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(TOKENS_URL, response_model=None)
def tokens_page(request: Request, principal: MaybePrincipal, repo: Repo, ctx: Ctx) -> Response:
    """The caller's live API tokens and a form for a new one."""
    if principal is None:
        return to_login(request)
    notice = "The token was revoked." if request.query_params.get("revoked") else ""
    return _page(request, principal, repo, ctx, notice=notice)


@router.post(TOKENS_URL, response_model=None)
def token_create(
    request: Request, principal: MaybePrincipal, form: Form, repo: Repo, ctx: Ctx
) -> Response:
    """Mint a token and show its secret this once (no redirect: it is not stored)."""
    if principal is None:
        return to_login(request)
    values = {"name": form.get("name", "").strip(), "days": form.get("expires_in_days", "")}
    body = _token_create(values)
    if isinstance(body, dict):
        return _page(request, principal, repo, ctx, status=422, errors=body, values=values)
    days = body.expires_in_days
    ttl = days * 86400.0 if days is not None else float(ctx.settings.api_token_ttl_s)
    issued = accounts.issue_token(
        repo, principal.user, kind=accounts.API, name=body.name, now=ctx.clock(), ttl_s=ttl
    )
    return _page(request, principal, repo, ctx, status=201, created=issued)


def _token_create(values: dict[str, str]) -> TokenCreate | dict[str, list[str]]:
    """The API's TokenCreate from the form, or the errors by field."""
    days = values["days"].strip()
    if days and not days.isdigit():
        return {"expires_in_days": ["must be a whole number of days"]}
    try:
        return TokenCreate(
            name=values["name"] or "api", expires_in_days=int(days) if days else None
        )
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "name"
            errors.setdefault(field, []).append(str(err["msg"]))
        return errors


@router.get(TOKENS_URL + "/{token_id}/revoke", response_model=None)
def revoke_confirm(
    token_id: TokenId, request: Request, principal: MaybePrincipal, repo: Repo, ctx: Ctx
) -> Response:
    """Are you sure?  (The Revoke button without JavaScript.)"""
    if principal is None:
        return to_login(request)
    live = {t.id: t for t in accounts.list_tokens(repo, principal.user, ctx.clock())}
    token = live.get(token_id)
    if token is None:
        return render(request, "not_found.html", principal, status=404)
    return render(
        request,
        "confirm.html",
        principal,
        title="Revoke this token?",
        label=f"{token.name} ({token.prefix}…)",
        action=f"{TOKENS_URL}/{token_id}/revoke",
        button="Revoke the token",
        text="Scripts and evaluators using it stop working at once. This cannot be undone.",
        back=TOKENS_URL,
    )


@router.post(TOKENS_URL + "/{token_id}/revoke", response_model=None)
def revoke_submit(
    token_id: TokenId, request: Request, principal: MaybePrincipal, repo: Repo, ctx: Ctx
) -> Response:
    """Revoke the token (and its evaluators' broker users), then list the rest."""
    if principal is None:
        return to_login(request)
    # Only API tokens: this page must not log sessions out (the API has its own route).
    if token_id not in {t.id for t in accounts.list_tokens(repo, principal.user, ctx.clock())}:
        return render(request, "not_found.html", principal, status=404)
    accounts.revoke_token(repo, principal.user, token_id, ctx.clock())
    try:
        revoke_evaluators(ctx, principal.user, token_id)
    except UnavailableError:
        notice = (
            "The token was revoked, but its evaluators could not be disconnected yet: "
            "the gateway's sweep disconnects them within a minute."
        )
        return _page(request, principal, repo, ctx, status=503, notice=notice)
    return see_other(f"{TOKENS_URL}?revoked=1")
