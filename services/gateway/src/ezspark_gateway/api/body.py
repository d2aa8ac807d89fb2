"""Read a training config from a request: JSON body, multipart file, or form fields."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

from ezspark_common.config import TrainingConfig
from ezspark_gateway.core.config_input import config_from_form, config_from_json
from ezspark_gateway.core.errors import InvalidInputError

JSON_MEDIA = "application/json"
MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"

# OpenAPI description of the two accepted bodies (the handler reads the stream itself).
CONFIG_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JSON_MEDIA: {"schema": TrainingConfig.model_json_schema()},
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


def media_type(request: Request) -> str:
    """The request's media type without parameters, lower-cased."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _uploaded_config(request: Request) -> TrainingConfig:
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if isinstance(upload, UploadFile):
            raw = await upload.read()
        elif isinstance(upload, str):
            raw = upload.encode()  # sent as a plain field, e.g. curl -F 'file=<cfg.json'
        else:
            raise InvalidInputError([("file", "is required: attach the JSON config file")])
    return config_from_json(raw)


async def config_from_request(request: Request, *, allow_form: bool = False) -> TrainingConfig:
    """The validated config in the body; 415 for any other media type."""
    media = media_type(request)
    if media == JSON_MEDIA or media.endswith("+json"):
        return config_from_json(await request.body())
    if media == MULTIPART:
        return await _uploaded_config(request)
    if allow_form and media == URLENCODED:
        async with request.form(max_files=0, max_fields=100) as form:
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        return config_from_form(fields)
    accepted = f"{JSON_MEDIA} or {MULTIPART}" + (f" or {URLENCODED}" if allow_form else "")
    raise HTTPException(415, f"unsupported content type {media or '(none)'!r}; send {accepted}")


async def training_config_body(request: Request) -> TrainingConfig:
    """Dependency: the config of POST /api/trainings (JSON body or uploaded file)."""
    return await config_from_request(request)


async def validation_body(request: Request) -> TrainingConfig:
    """Dependency: the config of POST /api/validate (also accepts the web form's fields)."""
    return await config_from_request(request, allow_form=True)
