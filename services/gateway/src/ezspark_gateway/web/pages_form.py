"""The new-training page: the form (from a preset), the JSON upload, and what they say back.

Both paths run the checks ``POST /api/validate`` runs (the config rules, the quotas and the
environment with its sizes) before anything is created.  A refused submit comes back with
a summary at the top that links to each field (focused on load, no script needed), the
message beside each field or beside the upload, and ``aria-invalid`` on each bad input.
A valid run with no stopping point (``config.stopping_warning``) is created only once the
user ticks "create anyway".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ezspark_common.config import (
    UNBOUNDED_GENERATIONS,
    ConfigError,
    TrainingConfig,
    stopping_warning,
)
from ezspark_gateway.api.context import AppContext
from ezspark_gateway.api.deps import Ctx, MaybePrincipal, Repo
from ezspark_gateway.core import manage, trainings
from ezspark_gateway.core.accounts import Principal
from ezspark_gateway.core.config_input import config_from_form, config_from_json
from ezspark_gateway.core.errors import QuotaExceededError, UnavailableError
from ezspark_gateway.web.fields import form_groups, form_text
from ezspark_gateway.web.presets import Preset, find_examples, pick, presets
from ezspark_gateway.web.render import (
    Form,
    Upload,
    error_summary,
    errors_by_field,
    render,
    see_other,
    to_login,
)

router = APIRouter(include_in_schema=False)
# The "create anyway" checkbox of a run with no stopping point (not a config key).
CONFIRM = "_confirm_unbounded"


def _presets(ctx: AppContext) -> tuple[Preset, ...]:
    return presets(find_examples(ctx.settings.examples_dir))


def _form_page(
    request: Request,
    principal: Principal,
    ctx: AppContext,
    *,
    values: dict[str, str],
    errors: dict[str, list[str]],
    status: int = 200,
    warning: str | None = None,
    preset: str = "",
) -> Response:
    all_presets = _presets(ctx)
    envs = ctx.admission.environments.choices(p.env_id for p in all_presets if p.env_id)
    return render(
        request,
        "new_training.html",
        principal,
        status=status,
        groups=form_groups(),
        values=values,
        errors=errors,
        summary=error_summary(errors),
        warning=warning,
        confirm=CONFIRM,
        presets=all_presets,
        preset=preset,
        unbounded=UNBOUNDED_GENERATIONS,
        environments=envs,
        env_sizes={e.env_id: [e.input_size, e.output_size] for e in envs},
    )


def _as_form(config: dict[str, Any]) -> dict[str, str]:
    return {k: form_text(v) for k, v in config.items()}


def _file_errors(errors: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Every error of an uploaded file, under the upload field, prefixed with its key."""
    return {"file": [m if k == "config" else f"{k}: {m}" for k, m in errors]}


@router.get("/trainings/new", response_model=None)
def new_page(
    request: Request,
    principal: MaybePrincipal,
    ctx: Ctx,
    repo: Repo,
    template: Annotated[str | None, Query(max_length=40)] = None,
    from_id: Annotated[str | None, Query(alias="from", max_length=64)] = None,
) -> Response:
    """The training form, filled from a preset (CartPole unless ``?template=`` names one),
    or with the config of the caller's run ``?from=<id>`` (clone and edit)."""
    if principal is None:
        return to_login(request)
    source = manage.clone_source(repo, principal.user, from_id) if from_id else None
    if source is not None:
        values = {k: form_text(v) for k, v in source.config.items()}
        return _form_page(request, principal, ctx, values=values, errors={})
    chosen = pick(_presets(ctx), template)
    return _form_page(
        request, principal, ctx, values=dict(chosen.values), errors={}, preset=chosen.slug
    )


def _create(
    request: Request,
    principal: Principal,
    repo: Repo,
    ctx: AppContext,
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


def _with_sizes(form: dict[str, str], ctx: AppContext) -> dict[str, str]:
    """Blank input/output sizes filled in from the chosen environment, when it is known
    (the page's script does the same as you pick it; this is for a browser without it)."""
    env_id = form.get("gym_game_name", "").strip()
    blank = [k for k in ("input_size", "output_size") if not form.get(k, "").strip()]
    sizes = ctx.admission.environments.sizes(env_id) if env_id and blank else None
    if sizes is None:
        return form
    known = dict(zip(("input_size", "output_size"), map(str, sizes), strict=True))
    return form | {k: known[k] for k in blank}


@router.post("/trainings/new", response_model=None)
def new_submit(
    request: Request, principal: MaybePrincipal, form: Form, repo: Repo, ctx: Ctx
) -> Response:
    """Validate the form as ``/api/validate`` does; errors go back next to their fields."""
    if principal is None:
        return to_login(request)
    values = _with_sizes(dict(form), ctx)
    try:
        config = config_from_form(values)
        ctx.admission.check_config(config)
    except ConfigError as exc:
        return _form_page(
            request, principal, ctx, values=values, status=422, errors=errors_by_field(exc.errors)
        )
    warning = stopping_warning(config)
    if warning and values.get(CONFIRM) != "1":
        return _form_page(request, principal, ctx, values=values, errors={}, warning=warning)
    return _create(request, principal, repo, ctx, config, values, upload=False)


@router.post("/trainings/upload", response_model=None)
def upload_submit(
    request: Request, principal: MaybePrincipal, data: Upload, repo: Repo, ctx: Ctx
) -> Response:
    """Create a training from an uploaded JSON file, checked as ``/api/validate`` does."""
    if principal is None:
        return to_login(request)
    fresh = dict(pick(_presets(ctx), None).values)
    if data is None:
        missing = {"file": ["is required: choose a JSON config file"]}
        return _form_page(request, principal, ctx, values=fresh, status=422, errors=missing)
    try:
        config = config_from_json(data)
        ctx.admission.check_config(config)
    except ConfigError as exc:
        errors = _file_errors(exc.errors)
        return _form_page(request, principal, ctx, values=fresh, status=422, errors=errors)
    warning = stopping_warning(config)
    values = _as_form(config.model_dump())
    if warning:  # the file's config goes into the form, to confirm (or fix) there
        warning += "; your file's values are in the form below"
        return _form_page(request, principal, ctx, values=values, errors={}, warning=warning)
    return _create(request, principal, repo, ctx, config, values, upload=True)
