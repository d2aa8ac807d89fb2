"""Training pages: my list and one training (the new-training form is in ``pages_form``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ezspark_gateway.api.deps import Ctx, MaybePrincipal, Repo
from ezspark_gateway.api.routes_trainings import detail
from ezspark_gateway.core import trainings
from ezspark_gateway.core.errors import (
    ConflictError,
    NotFoundError,
    UnavailableError,
)
from ezspark_gateway.web import pages_form, pages_manage, pages_tokens
from ezspark_gateway.web.pages_manage import canonical_list_url, list_context
from ezspark_gateway.web.render import render, see_other, to_login

router = APIRouter(include_in_schema=False)
# First: /trainings/new must not be taken for a training id by /trainings/{training_id}.
router.include_router(pages_form.router)
router.include_router(pages_manage.router)  # run management
router.include_router(pages_tokens.router)  # the API tokens page


@router.get("/trainings", response_model=None)
def list_page(request: Request, principal: MaybePrincipal, repo: Repo) -> Response:
    """The caller's trainings, filtered and sorted by the query (``pages_manage``)."""
    if principal is None:
        return to_login(request)
    tidy = canonical_list_url(request.url.query)
    if tidy is not None:
        return see_other(tidy)
    query = dict(request.query_params)
    return render(request, "trainings.html", principal, **list_context(repo, principal, query))


@router.get("/trainings/{training_id}", response_model=None)
def training_page(
    training_id: str, request: Request, principal: MaybePrincipal, repo: Repo, ctx: Ctx
) -> Response:
    """One training: status, live chart, stop button, best genome download."""
    if principal is None:
        return to_login(request)
    try:
        training = trainings.get_training(repo, principal.user, training_id)
    except NotFoundError:
        return render(request, "not_found.html", principal, status=404)
    return render(
        request,
        "training.html",
        principal,
        t=detail(repo, training, ctx),
        active=training.status in trainings.ACTIVE,
    )


@router.post("/trainings/{training_id}/stop", response_model=None)
def stop_submit(
    training_id: str, request: Request, principal: MaybePrincipal, repo: Repo, ctx: Ctx
) -> Response:
    """Ask to stop, then show the training again."""
    if principal is None:
        return to_login(request)
    try:
        trainings.stop_training(repo, ctx.publisher, principal.user, training_id, ctx.clock())
        ctx.metrics.commands.labels("stop_requested").inc()
    except NotFoundError:
        return render(request, "not_found.html", principal, status=404)
    except (ConflictError, UnavailableError):
        pass  # the page shows the real status; nothing more to say
    return see_other(f"/trainings/{training_id}")
