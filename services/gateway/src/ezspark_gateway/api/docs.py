"""``/docs`` (Swagger UI) and ``/redoc`` served from this gateway, and the bearer scheme.

The script and style files come from the ``fastapi-offline`` package and are served
under ``/docs-assets``; the pages have no inline script (Swagger UI starts from
``static/docs.js``), so they work without internet access and under a strict CSP
(``headers.DOCS_CSP``).  The OpenAPI document declares the bearer token scheme
(``deps.PrincipalScheme``) on each operation that needs or accepts a token, so Swagger UI
shows "Authorize".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
DOCS_PATHS = ("/docs", "/redoc")
_SWAGGER = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{title}} · API</title>
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
<link rel="icon" href="{ASSETS_URL}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""
_REDOC = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · API reference</title>
<link rel="icon" href="{ASSETS_URL}/favicon.png">
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS_URL}/redoc.standalone.js"></script>
</body>
</html>
"""


def secured_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` where the bearer scheme (declared by ``deps.PrincipalScheme`` on each
    operation that reads the caller) is optional on operations that never answer 401."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for operations in schema["paths"].values():
            for operation in operations.values():
                if operation.get("security") and "401" not in operation.get("responses", {}):
                    operation["security"] = [{}, *operation["security"]]
        app.openapi_schema = schema
        return schema

    return build


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets; declare the security scheme (create the app
    with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not added)."""
    title = app.title
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(_SWAGGER.replace("{title}", title))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(_REDOC.replace("{title}", title))

    app.openapi = secured_openapi(app)  # type: ignore[method-assign]
