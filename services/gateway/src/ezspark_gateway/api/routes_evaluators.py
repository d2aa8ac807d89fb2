"""/api/evaluators: broker credentials for users' own evaluators (``ezspark evaluator``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict

from ezspark_gateway.api.deps import Ctx, CurrentPrincipal
from ezspark_gateway.api.schemas import error_responses
from ezspark_gateway.core.errors import UnavailableError
from ezspark_gateway.core.evaluators import EvaluatorIssuer

router = APIRouter(prefix="/api/evaluators", tags=["evaluators"])


class EvaluatorCreate(BaseModel):
    """What the machine asks for."""

    model_config = ConfigDict(extra="forbid")

    # Also serve other users' trainings of the environments it has (they opted in).
    volunteer: bool = False


class EvaluatorIssued(BaseModel):
    """A broker user for one machine; ``broker_url`` holds its password, shown once."""

    evaluator_id: str
    broker_url: str
    volunteer: bool


class EvaluatorList(BaseModel):
    """The caller's machines' broker users."""

    items: list[str]


def _issuer(ctx: Ctx) -> EvaluatorIssuer:
    if ctx.evaluators is None:
        raise UnavailableError("this gateway does not accept users' own evaluators")
    return ctx.evaluators


@router.post(
    "", status_code=201, response_model=EvaluatorIssued, responses=error_responses(401, 429, 503)
)
def issue(
    principal: CurrentPrincipal, ctx: Ctx, body: EvaluatorCreate | None = None
) -> EvaluatorIssued:
    """Create a broker user for one of the caller's machines, tied to this token: it may
    read the caller's task queues (and the volunteers' with ``volunteer``) and publish
    results, nothing else.  Revoking the token deletes it."""
    volunteer = body.volunteer if body else False
    issued = _issuer(ctx).issue(principal.user, principal.token.id, volunteer)
    return EvaluatorIssued(**issued.__dict__)


@router.get("", response_model=EvaluatorList, responses=error_responses(401, 503))
def list_evaluators(principal: CurrentPrincipal, ctx: Ctx) -> EvaluatorList:
    """The broker users of the caller's machines."""
    return EvaluatorList(items=_issuer(ctx).of_user(principal.user))


@router.delete("/{evaluator_id}", status_code=204, responses=error_responses(401, 404, 503))
def revoke(
    evaluator_id: Annotated[str, Path(max_length=200)], principal: CurrentPrincipal, ctx: Ctx
) -> None:
    """Delete one of the caller's machines' broker users; RabbitMQ disconnects it."""
    _issuer(ctx).revoke(principal.user, evaluator_id)
