"""Template rendering and small helpers shared by the page routers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ezspark_gateway.api.body import MULTIPART, URLENCODED, media_type
from ezspark_gateway.core.accounts import Principal
from ezspark_gateway.web.fields import field_order

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
templates = Jinja2Templates(directory=WEB_DIR / "templates")


def render(
    request: Request, name: str, principal: Principal | None, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page with the current user (if any) in the context."""
    user = principal.user.username if principal else None
    return templates.TemplateResponse(request, name, {"user": user, **context}, status_code=status)


def safe_next(target: str | None) -> str:
    """A local path to go to after logging in; anything else goes to the list."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/trainings"


def to_login(request: Request) -> RedirectResponse:
    """Send an anonymous visitor to the log-in page, coming back here afterwards."""
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def see_other(url: str) -> RedirectResponse:
    """Redirect after a successful POST (so reloading does not repeat it)."""
    return RedirectResponse(url, status_code=303)


def errors_by_field(errors: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Group ``(field, message)`` pairs for display next to each input."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, message in errors:
        grouped[key].append(message)
    return dict(grouped)


@dataclass(frozen=True)
class SummaryItem:
    """One line of a page's error summary: what is wrong, linking to where (``#anchor``)."""

    anchor: str
    label: str
    message: str


# Errors not about one config field: where their summary line points to.
_PLACES = {"file": ("file", "Config file"), "config": ("config-form", "")}


def error_summary(errors: dict[str, list[str]]) -> list[SummaryItem]:
    """Every message of ``errors``, in the order of the page (the form's fields first, then
    the upload), each linking to its input ``#f-<key>`` (or the upload's ``#file``)."""
    rank = {k: i for i, k in enumerate(field_order())}
    keys = sorted(errors, key=lambda k: (k not in rank, rank.get(k, 0), k))
    items: list[SummaryItem] = []
    for key in keys:
        anchor, label = _PLACES.get(key) or (f"f-{key}" if key in rank else "config-form", key)
        items.extend(SummaryItem(anchor, label, m) for m in errors[key])
    return items


async def form_fields(request: Request) -> dict[str, str]:
    """Dependency: the text fields of an urlencoded (or multipart) form post."""
    if media_type(request) not in (URLENCODED, MULTIPART):
        raise HTTPException(415, "submit the form as application/x-www-form-urlencoded")
    async with request.form(max_files=0, max_fields=100) as form:
        return {k: v for k, v in form.items() if isinstance(v, str)}


async def uploaded_file(request: Request) -> bytes | None:
    """Dependency: the bytes of the ``file`` field of a multipart post, if any."""
    if media_type(request) != MULTIPART:
        raise HTTPException(415, "upload the file as multipart/form-data")
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return None
        data = await upload.read()
    return data or None


Form = Annotated[dict[str, str], Depends(form_fields)]
Upload = Annotated[bytes | None, Depends(uploaded_file)]
