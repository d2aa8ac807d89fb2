"""/api/environments: what the evaluators announced they can run."""

from __future__ import annotations

from fastapi import APIRouter

from ezspark_gateway.api.deps import Ctx, CurrentPrincipal
from ezspark_gateway.api.schemas import EnvironmentList, EnvironmentOut, error_responses

router = APIRouter(prefix="/api", tags=["environments"])


@router.get("/environments", response_model=EnvironmentList, responses=error_responses(401))
def environments(_principal: CurrentPrincipal, ctx: Ctx) -> EnvironmentList:
    """Every environment announced since start-up, its sizes, and how many live
    evaluators serve it (a config naming one with 0 is accepted and waits)."""
    return EnvironmentList(
        items=[
            EnvironmentOut(**known.space.model_dump(), evaluators=known.evaluators)
            for known in ctx.environments.known()
        ]
    )
