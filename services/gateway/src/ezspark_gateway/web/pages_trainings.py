"""Training pages: my list, the new-training form (or file upload), one training."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ezspark_common.config import ConfigError, TrainingConfig
from ezspark_gateway.api.deps import Ctx, MaybePrincipal, Repo
from ezspark_gateway.api.routes_trainings import detail
from ezspark_gateway.core import manage, trainings
from ezspark_gateway.core.accounts import Principal
from ezspark_gateway.core.config_input import config_from_form, config_from_json
from ezspark_gateway.core.errors import (
    ConflictError,
    NotFoundError,
    QuotaExceededError,
    UnavailableError,
)
from ezspark_gateway.web import pages_manage, pages_tokens
from ezspark_gateway.web.fields import form_groups
from ezspark_gateway.web.pages_manage import canonical_list_url, list_context
from ezspark_gateway.web.render import Form, Upload, errors_by_field, render, see_other, to_login

router = APIRouter(include_in_schema=False)
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


def _form_page(
    request: Request,
    principal: Principal,
    ctx: Ctx,
    *,
    values: dict[str, str],
    errors: dict[str, list[str]],
    status: int = 200,
) -> Response:
    return render(
        request,
        "new_training.html",
        principal,
        status=status,
        groups=form_groups(),
        values=values,
        errors=errors,
        environments=ctx.environments.known(),
    )


def _file_errors(errors: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Every error of an uploaded file, under the upload field, prefixed with its key."""
    return {"file": [m if k == "config" else f"{k}: {m}" for k, m in errors]}


@router.get("/trainings/new", response_model=None)
def new_page(
    request: Request,
    principal: MaybePrincipal,
    ctx: Ctx,
    repo: Repo,
    from_id: Annotated[str | None, Query(alias="from", max_length=64)] = None,
) -> Response:
    """The training form, pre-filled with the spec's example, or with the config of the
    caller's run ``?from=<id>`` (clone and edit)."""
    if principal is None:
        return to_login(request)
    source = manage.clone_source(repo, principal.user, from_id) if from_id else None
    if source is not None:
        values = {k: _text(v) for k, v in source.config.items()}
        return _form_page(request, principal, ctx, values=values, errors={})
    return _form_page(request, principal, ctx, values={}, errors={})


def _text(value: object) -> str:
    """A config value as the form shows it (JSON spelling for booleans, blank for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _create(
    request: Request,
    principal: Principal,
    repo: Repo,
    ctx: Ctx,
    config: TrainingConfig,
    values: dict[str, str],
    *,
    upload: bool,
) -> Response:
    """Create and go to the training, or show the form again with why not."""
    top = "file" if upload else "config"
    try:
        training = trainings.create_training(
            repo, ctx.publisher, principal.user, config, ctx.clock(), ctx.admission
        )
    except ConfigError as exc:  # a quota or the environment
        errors = _file_errors(exc.errors) if upload else errors_by_field(exc.errors)
        return _form_page(request, principal, ctx, values=values, status=422, errors=errors)
    except QuotaExceededError as exc:
        return _form_page(
            request, principal, ctx, values=values, status=429, errors={top: [str(exc)]}
        )
    except UnavailableError as exc:
        return _form_page(
            request, principal, ctx, values=values, status=503, errors={top: [str(exc)]}
        )
    ctx.metrics.commands.labels("training_requested").inc()
    return see_other(f"/trainings/{training.id}")


@router.post("/trainings/new", response_model=None)
def new_submit(
    request: Request, principal: MaybePrincipal, form: Form, repo: Repo, ctx: Ctx
) -> Response:
    """Validate the form with the shared rules; errors go back next to their fields."""
    if principal is None:
        return to_login(request)
    try:
        config = config_from_form(form)
    except ConfigError as exc:
        return _form_page(
            request, principal, ctx, values=form, status=422, errors=errors_by_field(exc.errors)
        )
    return _create(request, principal, repo, ctx, config, form, upload=False)


@router.post("/trainings/upload", response_model=None)
def upload_submit(
    request: Request, principal: MaybePrincipal, data: Upload, repo: Repo, ctx: Ctx
) -> Response:
    """Create a training from an uploaded JSON file."""
    if principal is None:
        return to_login(request)
    if data is None:
        return _form_page(
            request,
            principal,
            ctx,
            values={},
            status=422,
            errors={"file": ["is required: choose a JSON config file"]},
        )
    try:
        config = config_from_json(data)
    except ConfigError as exc:
        return _form_page(
            request, principal, ctx, values={}, status=422, errors=_file_errors(exc.errors)
        )
    return _create(request, principal, repo, ctx, config, {}, upload=True)


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
