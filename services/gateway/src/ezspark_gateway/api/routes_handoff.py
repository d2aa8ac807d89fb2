"""/api/trainings/handoff and /api/trainings/{id}/genomes: ``ezspark train --gateway``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ezspark_common.config import TrainingConfig
from ezspark_gateway.api.deps import Ctx, CurrentPrincipal, Repo, require_json
from ezspark_gateway.api.routes_trainings import MAX_INT, detail
from ezspark_gateway.api.schemas import TrainingDetail, error_responses
from ezspark_gateway.core import handoff, trainings

router = APIRouter(prefix="/api", tags=["trainings"])
HANDOFF_PATH = "/api/trainings/handoff"
MAX_GENOMES_PAGE = 1000

_HANDOFF_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "config": TrainingConfig.model_json_schema(),
                        "checkpoint": {
                            "type": "object",
                            "description": "checkpoint.json of the local run",
                        },
                        "handoff_id": {
                            "type": "string",
                            "description": "client-chosen id; a retry with it returns "
                            "the training already created",
                        },
                    },
                    "required": ["config", "checkpoint"],
                }
            }
        },
    }
}


async def handoff_body(request: Request) -> handoff.Handoff:
    """Dependency: the checked config and checkpoint (parsed off the event loop: a large
    checkpoint takes a while)."""
    require_json(request)
    raw = await request.body()
    return await run_in_threadpool(handoff.parse_handoff, raw)


@router.post(
    "/trainings/handoff",
    status_code=201,
    response_model=TrainingDetail,
    openapi_extra=_HANDOFF_DOC,
    responses=error_responses(401, 413, 415, 422, 429, 503),
)
def hand_over(
    principal: CurrentPrincipal,
    body: Annotated[handoff.Handoff, Depends(handoff_body)],
    repo: Repo,
    ctx: Ctx,
    response: Response,
) -> TrainingDetail:
    """Continue a local run in the cluster from its checkpoint after the alone phase.

    422 names the field of a bad config or checkpoint (``config.<key>``,
    ``checkpoint.config``, ``checkpoint.population.generation``...); 413 for a body over
    ``EZSPARK_MAX_CHECKPOINT_BYTES``; quotas and environment as for ``POST /api/trainings``.
    200 with the training already created when ``handoff_id`` was seen before (a retry).
    """
    training = handoff.earlier(repo, principal.user, body.handoff_id)
    if training is not None:  # a retry: the first answer was lost
        response.status_code = 200
        response.headers["Location"] = f"/api/trainings/{training.id}"
        return detail(repo, training)
    training = trainings.create_training(
        repo,
        ctx.publisher,
        principal.user,
        body.config,
        ctx.clock(),
        ctx.admission,
        handoff=body.state,
        handoff_id=body.handoff_id,
    )
    ctx.metrics.commands.labels("training_requested").inc()
    response.headers["Location"] = f"/api/trainings/{training.id}"
    return detail(repo, training)


class SavedGenomesOut(BaseModel):
    """Genomes saved every ``saving`` generations (``messages.SavedGenome`` documents)."""

    class Item(BaseModel):
        """One generation's best, and the best so far, where saved."""

        generation: int
        generation_best: dict[str, Any] | None
        best_so_far: dict[str, Any] | None

    training_id: str
    next_since: int
    items: list[Item]


@router.get(
    "/trainings/{training_id}/genomes",
    response_model=SavedGenomesOut,
    responses=error_responses(401, 404),
)
def saved_genomes(
    training_id: str,
    principal: CurrentPrincipal,
    repo: Repo,
    since: Annotated[int, Query(ge=0, le=MAX_INT, description="first generation")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_GENOMES_PAGE)] = 100,
) -> SavedGenomesOut:
    """The genomes the cluster saved, in generation order; poll with ``since=next_since``."""
    rows = handoff.saved_genomes(repo, principal.user, training_id, since, limit)
    return SavedGenomesOut(
        training_id=training_id,
        next_since=rows[-1].generation + 1 if rows else since,
        items=[
            SavedGenomesOut.Item(
                generation=r.generation,
                generation_best=r.generation_best,
                best_so_far=r.best_so_far,
            )
            for r in rows
        ],
    )
