"""Map domain errors and framework errors to JSON responses (never a bare 500)."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ezspark_common.config import ConfigError
from ezspark_gateway.core.errors import (
    ConflictError,
    CoreError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    RateLimitedError,
    UnauthorizedError,
    UnavailableError,
)

log = structlog.get_logger(__name__)

_STATUS: dict[type[CoreError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    RateLimitedError: 429,
    QuotaExceededError: 429,
    UnavailableError: 503,
}


def field_errors(detail: str, errors: list[tuple[str, str]]) -> JSONResponse:
    """A 422 whose body names each field and the rule it broke."""
    return JSONResponse(
        {"detail": detail, "errors": [{"field": k, "message": m} for k, m in errors]},
        status_code=422,
    )


async def _config_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConfigError)
    return field_errors("invalid training config", exc.errors)


async def _invalid_input(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInputError)
    return field_errors("invalid input", exc.errors)


async def _core_error(_request: Request, exc: Exception) -> JSONResponse:
    status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), 400)
    headers: dict[str, str] = {}
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(int(exc.retry_after + 0.999))
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[tuple[str, str]] = []
    for err in exc.errors():
        # Drop the "body"/"query" prefix: clients care about the field name.
        loc = [str(p) for p in err.get("loc", ())][1:] or ["body"]
        errors.append((".".join(loc), str(err.get("msg", "invalid"))))
    return field_errors("invalid request", errors)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error=repr(exc))
    return JSONResponse({"detail": "internal error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(ConfigError, _config_error)
    app.add_exception_handler(InvalidInputError, _invalid_input)
    app.add_exception_handler(CoreError, _core_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
