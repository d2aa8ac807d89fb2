"""The query parameters of ``GET /api/trainings``, parsed in one validation.

FastAPI resolves each declared query parameter on every request through several
layers of Python (aliases, sequence checks, one validation each): for this route's
eight parameters that cost more than the bare app's whole request (docs/production.md,
"Speed").  Here one pydantic model validates them all at once, errors come out as
FastAPI's (``RequestValidationError``, located in ``query``), and the OpenAPI document
lists them as FastAPI did (``OPENAPI_PARAMETERS``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import QueryParams

from ezspark_gateway.storage.listing import Archived, Sort, TrainingFilter

# Past 32 bits integers overflow database integer types.
MAX_INT = 2**31 - 1
StatusName = Literal["queued", "running", "stopping", "finished", "failed", "stopped"]


class ListQuery(BaseModel):
    """What ``GET /api/trainings`` accepts; unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_INT)
    status: list[StatusName] | None = Field(
        default=None, description="only these statuses (repeatable)"
    )
    env: str | None = Field(default=None, max_length=200, description="environment id")
    tag: str | None = Field(default=None, max_length=64, description="one tag")
    q: str | None = Field(
        default=None, max_length=100, description="part of the name, or the id's start"
    )
    archived: Archived = Field(
        default="hide", description="hide (default), only, or include archived runs"
    )
    sort: Sort = Field(
        default="newest", description="newest (default), oldest, best (fitness), name"
    )

    def to_filter(self) -> TrainingFilter:
        """The storage filter these parameters ask for."""
        return TrainingFilter(
            statuses=tuple(self.status or ()),
            env=self.env or None,
            tag=(self.tag or "").strip().lower() or None,
            text=(self.q or "").strip() or None,
            archived=self.archived,
            sort=self.sort,
        )


_SCALARS = tuple(name for name in ListQuery.model_fields if name != "status")


async def list_query(request: Request) -> ListQuery:
    """The request's parameters (``parse``)."""
    return parse(request.query_params)


def parse(params: QueryParams) -> ListQuery:
    """The parameters (the last value of a repeated one, every ``status``); 422 as
    FastAPI answers it for a bad one."""
    if not params:
        return DEFAULTS
    raw: dict[str, Any] = {name: params[name] for name in _SCALARS if name in params}
    statuses = params.getlist("status")
    if statuses:
        raw["status"] = statuses
    try:
        return ListQuery.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError(
            [{**err, "loc": ("query", *err["loc"])} for err in errors]
        ) from None


DEFAULTS = ListQuery()


def _parameters() -> list[dict[str, Any]]:
    """Each field as an OpenAPI query parameter, the way FastAPI renders a declared one."""
    properties = ListQuery.model_json_schema()["properties"]
    out = []
    for name, field in ListQuery.model_fields.items():
        schema = dict(properties[name])
        if schema.get("default", ...) is None:
            del schema["default"]  # FastAPI leaves a None default out
        param: dict[str, Any] = {"name": name, "in": "query", "required": False}
        if field.description:
            param["description"] = field.description
        out.append({**param, "schema": schema})
    return out


OPENAPI_PARAMETERS = _parameters()
