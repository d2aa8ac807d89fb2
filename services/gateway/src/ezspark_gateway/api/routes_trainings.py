"""/api/trainings and /api/validate."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ezspark_common.config import TrainingConfig, stopping_warning
from ezspark_common.wire.messages import routing_id
from ezspark_gateway.api import list_query
from ezspark_gateway.api.body import CONFIG_BODY_DOC, training_config_body, validation_body
from ezspark_gateway.api.context import AppContext
from ezspark_gateway.api.deps import (
    Ctx,
    CurrentPrincipal,
    MaybePrincipal,
    Repo,
    require_json,
    run_read,
)
from ezspark_gateway.api.schemas import (
    GenerationsOut,
    HealthOut,
    ReportOut,
    TrainingDetail,
    TrainingList,
    TrainingPatch,
    TrainingSummary,
    ValidationOut,
    error_responses,
)
from ezspark_gateway.core import manage, trainings
from ezspark_gateway.core.errors import NotFoundError
from ezspark_gateway.core.health import STALL_MIN_S, run_health
from ezspark_gateway.core.io_names import io_names
from ezspark_gateway.core.network_svg import network_svg
from ezspark_gateway.storage import Repository, reads
from ezspark_gateway.storage.listing import TrainingFilter
from ezspark_gateway.storage.models import Training

router = APIRouter(prefix="/api", tags=["trainings"])
# The hot read's path (its route's template, also its metrics label: ``hot_read``).
LIST_PATH = f"{router.prefix}/trainings"
_OWNED = error_responses(401, 404)
# Bounds for integer parameters: past 32 bits they overflow database integer types.
MAX_INT = 2**31 - 1
_BODY_ERRORS = error_responses(413, 415, 422)


def summary(training: Training) -> TrainingSummary:
    """The list view of a training."""
    return TrainingSummary(
        id=training.id,
        status=training.status,
        gym_game_name=str(training.config.get("gym_game_name", "")),
        created_at=training.created_at,
        updated_at=training.updated_at,
        generations=training.generations,
        best_fitness=training.best_fitness,
        waiting=training.waiting_reason,
        name=training.name,
        tags=training.tags,
        notes=training.notes,
        archived_at=training.archived_at,
    )


async def _page(
    ctx: AppContext, owner_id: int, flt: TrainingFilter, limit: int, offset: int
) -> tuple[Sequence[Any], int]:
    """A page of the owner's trainings (the list's columns) and how many match: plain
    SQL on the driver for the unfiltered list, Core SQL for the others."""
    raw = partial(reads.page_raw, owner_id=owner_id, flt=flt, limit=limit, offset=offset)
    found = await run_read(ctx, partial(ctx.db.read_raw, raw))
    if found is not None:
        return found
    return await core_page(ctx, owner_id, flt, limit, offset)


async def core_page(
    ctx: AppContext, owner_id: int, flt: TrainingFilter, limit: int, offset: int
) -> tuple[Sequence[Any], int]:
    """``_page`` in Core SQL: the filtered lists, and an empty page past the end."""
    core = partial(reads.summaries_page, owner_id=owner_id, flt=flt, limit=limit, offset=offset)
    return await run_read(ctx, partial(ctx.db.read, core))


def summary_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``TrainingSummary``'s fields from ``reads.summaries_page``'s columns (extra
    columns are ignored by the validation)."""
    item = row if type(row) is dict else dict(row)
    item["gym_game_name"] = item["gym_game_name"] or ""
    return item


def detail(repo: Repository, training: Training, ctx: AppContext | None = None) -> TrainingDetail:
    """The full view of a training, with its latest report and run health (``ctx``: the
    clock and the evaluators announced; the wall clock and no evaluators without it)."""
    recent = trainings.recent_reports(repo, training)
    latest = recent[-1] if recent else None
    now = ctx.clock() if ctx else time.time()
    serving, stall_min_s = None, STALL_MIN_S
    if ctx is not None:
        env = routing_id(str(training.config.get("gym_game_name", "")))
        serving = ctx.environments.live_counts().get(env, 0)
        stall_min_s = ctx.settings.stall_min_s
    health = run_health(training, recent, now, serving, stall_min_s)
    return TrainingDetail(
        **summary(training).model_dump(),
        config=training.config,
        finish_reason=training.finish_reason,
        error=training.error,
        has_best_genome=training.best_genome is not None,
        latest_report=ReportOut.model_validate(latest) if latest else None,
        health=HealthOut(**dataclasses.asdict(health)),
    )


@router.post(
    "/trainings",
    status_code=201,
    response_model=TrainingDetail,
    openapi_extra=CONFIG_BODY_DOC,
    responses=error_responses(401, 413, 415, 422, 429, 503),
)
def create_training(
    principal: CurrentPrincipal,
    config: Annotated[TrainingConfig, Depends(training_config_body)],
    repo: Repo,
    ctx: Ctx,
    response: Response,
) -> TrainingDetail:
    """Queue a training from a JSON config (body, or a file uploaded as field ``file``).

    422 for an invalid config, one over a quota (``EZSPARK_QUOTA_POPULATION``,
    ``EZSPARK_QUOTA_WORK_PER_GENERATION``) or an environment no evaluator announced and
    the gateway cannot describe; 429 when the caller already has
    ``EZSPARK_QUOTA_ACTIVE_TRAININGS`` trainings queued, running or stopping.
    """
    training = trainings.create_training(
        repo, ctx.publisher, principal.user, config, ctx.clock(), ctx.admission
    )
    ctx.metrics.commands.labels("training_requested").inc()
    response.headers["Location"] = f"/api/trainings/{training.id}"
    return detail(repo, training)


@router.post(
    "/validate", response_model=ValidationOut, openapi_extra=CONFIG_BODY_DOC, responses=_BODY_ERRORS
)
def validate(
    config: Annotated[TrainingConfig, Depends(validation_body)], ctx: Ctx, principal: MaybePrincipal
) -> ValidationOut:
    """Check a config (JSON, file or form fields) with the same rules as creation: the
    config rules, the per-user quotas and its environment (not the count of active
    trainings).  No credentials needed; an unknown environment's error lists the
    environments served now only for an authenticated caller."""
    ctx.admission.check_config(config, detailed=principal is not None)
    warning = stopping_warning(config)
    return ValidationOut(
        config=config.model_dump(mode="json"), warnings=[warning] if warning else []
    )


async def list_body(ctx: AppContext, owner_id: int, params: list_query.ListQuery) -> bytes:
    """The JSON of ``GET /api/trainings``: one query of the list's columns (no ORM, no
    config or genome decoded), no thread hop on SQLite, and JSON straight from
    pydantic-core instead of FastAPI validating the answer again and encoding it with the
    json module.  Also served by ``hot_read``, the short path of this read."""
    limit, offset = params.limit, params.offset
    rows, total = await _page(ctx, owner_id, params.to_filter(), limit, offset)
    return page_json(rows, total, limit, offset)


def page_json(rows: Sequence[Mapping[str, Any]], total: int, limit: int, offset: int) -> bytes:
    """A ``TrainingList`` of ``reads.summaries_page``'s rows, as JSON."""
    # One validation of the whole page: cheaper than a model built per row.
    page = {"items": [summary_item(r) for r in rows], "total": total, "limit": limit}
    out = TrainingList.model_validate({**page, "offset": offset})
    return TrainingList.__pydantic_serializer__.to_json(out)


@router.get(
    LIST_PATH.removeprefix(router.prefix),
    response_model=TrainingList,
    responses=error_responses(401, 422),
    openapi_extra={"parameters": list_query.OPENAPI_PARAMETERS},
)
async def list_trainings(principal: CurrentPrincipal, request: Request) -> Response:
    """The caller's trainings matching every filter given, newest first by default."""
    # Most requests never get here: ``hot_read`` answers a valid bearer token's list
    # before FastAPI's routing.  This route answers the rest (cookies, errors) and
    # declares the operation in the OpenAPI document.  Its parameters are parsed in one
    # validation and the context read off the app, rather than as two more dependencies:
    # FastAPI spends about as much resolving one as the bare app spends on a request.
    params = await list_query.list_query(request)
    body = await list_body(request.app.state.ctx, principal.user.id, params)
    return Response(body, media_type="application/json")


@router.patch(
    "/trainings/{training_id}",
    response_model=TrainingDetail,
    dependencies=[Depends(require_json)],
    responses=error_responses(401, 404, 409, 415, 422),
)
def patch_training(
    training_id: str, body: TrainingPatch, principal: CurrentPrincipal, repo: Repo, ctx: Ctx
) -> TrainingDetail:
    """Rename, tag, annotate or (un)archive one of the caller's trainings.

    Only the fields sent change; null or "" clears one.  422 names the field that breaks
    a rule; 409 when archiving a run that has not ended.
    """
    sent = body.model_fields_set
    training = manage.update_meta(
        repo,
        principal.user,
        training_id,
        ctx.clock(),
        name=body.name if "name" in sent else manage.UNSET,
        tags=body.tags if "tags" in sent else manage.UNSET,
        notes=body.notes if "notes" in sent else manage.UNSET,
        archived=body.archived,
    )
    return detail(repo, training)


@router.delete(
    "/trainings/{training_id}", status_code=204, responses=error_responses(401, 404, 409)
)
def delete_training(training_id: str, principal: CurrentPrincipal, repo: Repo) -> None:
    """Delete one of the caller's ended trainings with its history and best genome.

    409 while it is queued, running or stopping: stop it first and delete it once its
    status is stopped, finished or failed.
    """
    manage.delete_training(repo, principal.user, training_id)


@router.get("/trainings/{training_id}", response_model=TrainingDetail, responses=_OWNED)
def get_training(
    training_id: str, principal: CurrentPrincipal, repo: Repo, ctx: Ctx
) -> TrainingDetail:
    """Status, config, outcome, latest report and run health (``health``: phase,
    generations done of the total, tasks of the running generation, ETA, the age of the
    evolver's last event, stalled) of one of the caller's trainings."""
    return detail(repo, trainings.get_training(repo, principal.user, training_id), ctx)


@router.get("/trainings/{training_id}/generations", response_model=GenerationsOut, responses=_OWNED)
def generations(
    training_id: str,
    principal: CurrentPrincipal,
    repo: Repo,
    since: Annotated[int, Query(ge=0, le=MAX_INT, description="first generation to return")] = 0,
    limit: Annotated[int, Query(ge=1, le=trainings.MAX_HISTORY_PAGE)] = 1000,
) -> GenerationsOut:
    """Per-generation statistics in order; poll with ``since=next_since`` for new ones."""
    rows = trainings.history(repo, principal.user, training_id, since, limit)
    next_since = rows[-1].generation + 1 if rows else since
    return GenerationsOut(
        training_id=training_id,
        next_since=next_since,
        items=[ReportOut.model_validate(r) for r in rows],
    )


@router.get(
    "/trainings/{training_id}/best",
    responses={**_OWNED, 200: {"content": {"application/json": {}}, "description": "a WireGenome"}},
)
def best_genome(training_id: str, principal: CurrentPrincipal, repo: Repo) -> Response:
    """Download the best genome so far as a JSON file (during the run too: it is the
    champion of the latest report that improved it); 404 until there is one."""
    genome = trainings.best_genome(repo, principal.user, training_id)
    filename = f"ezspark-{training_id}-best.json"
    return Response(
        json.dumps(genome, indent=1),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/trainings/{training_id}/best.svg",
    responses={
        **_OWNED,
        200: {"content": {"image/svg+xml": {}}, "description": "the best network"},
    },
)
def best_network_svg(training_id: str, principal: CurrentPrincipal, repo: Repo) -> Response:
    """The best genome so far drawn as SVG, inputs and outputs named (the environment's
    observation and action names when known, else x0…/a0…), with a legend; 404 until the
    training reported a best genome (the first generation's report usually does)."""
    genome = trainings.best_genome(repo, principal.user, training_id)
    config = trainings.get_training(repo, principal.user, training_id).config
    try:
        n_in, n_out = int(config["input_size"]), int(config["output_size"])
        names = io_names(str(config.get("gym_game_name", "")), n_in, n_out)
        svg = network_svg(genome, n_in, n_out, names)
    except (ValueError, KeyError) as exc:  # a genome that does not fit its own config
        raise NotFoundError(f"the best genome cannot be drawn: {exc}") from None
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})


@router.post(
    "/trainings/{training_id}/stop",
    status_code=202,
    response_model=TrainingDetail,
    responses=error_responses(401, 404, 409, 503),
)
def stop_training(
    training_id: str, principal: CurrentPrincipal, repo: Repo, ctx: Ctx
) -> TrainingDetail:
    """Ask the evolvers to stop; the status is ``stopping`` until they confirm."""
    training = trainings.stop_training(
        repo, ctx.publisher, principal.user, training_id, ctx.clock()
    )
    ctx.metrics.commands.labels("stop_requested").inc()
    return detail(repo, training)
