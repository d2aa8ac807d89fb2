"""Managing runs from the browser: the list's filters, labels, archive, delete, confirmations.

Every action is a plain form, so it works without JavaScript.  Actions that cannot be
undone (stop, delete, revoking a token) are forms that GET a confirmation page; with
JavaScript, ``manage.js`` asks with ``confirm()`` instead and posts directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ezspark_gateway.api.deps import Ctx, MaybePrincipal, Repo
from ezspark_gateway.api.routes_trainings import summary
from ezspark_gateway.core import manage, trainings
from ezspark_gateway.core.accounts import Principal
from ezspark_gateway.core.errors import ConflictError, InvalidInputError, NotFoundError
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.listing import ARCHIVED_CHOICES, SORT_CHOICES, TrainingFilter
from ezspark_gateway.storage.models import Training
from ezspark_gateway.web.render import Form, errors_by_field, render, see_other, to_login

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
# The list's status choices: one status, or a group of them.
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "active": tuple(sorted(trainings.ACTIVE)),
    "ended": tuple(sorted(trainings.TERMINAL)),
    **{s: (s,) for s in ("queued", "running", "stopping", "finished", "failed", "stopped")},
}
SORT_LABELS = {"newest": "Newest", "oldest": "Oldest", "best": "Best fitness", "name": "Name"}
ARCHIVED_LABELS = {"hide": "Hide archived", "only": "Archived only", "include": "Include archived"}
NOTICES = {"deleted": "The training was deleted, with its history."}


def when(epoch: float | None) -> str:
    """A time as UTC text for readers without scripts (``time.js`` shows local time)."""
    if epoch is None:
        return "–"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class ListParams:
    """The list page's query, with anything unknown dropped (a bad link shows all)."""

    q: str = ""
    status: str = ""
    env: str = ""
    tag: str = ""
    sort: str = "newest"
    archived: str = "hide"
    page: int = 1

    @classmethod
    def parse(cls, query: dict[str, str]) -> ListParams:
        """The parameters of ``query``; invalid values fall back to their default."""
        page = query.get("page", "1")
        return cls(
            q=query.get("q", "").strip()[:100],
            status=query.get("status", "") if query.get("status") in STATUS_GROUPS else "",
            env=query.get("env", "").strip()[:200],
            tag=query.get("tag", "").strip().lower()[:64],
            sort=query.get("sort", "") if query.get("sort") in SORT_CHOICES else "newest",
            archived=a if (a := query.get("archived", "")) in ARCHIVED_CHOICES else "hide",
            page=max(1, min(int(page), 100_000)) if page.isdigit() else 1,
        )

    def to_filter(self) -> TrainingFilter:
        """The storage filter these parameters ask for."""
        return TrainingFilter(
            statuses=STATUS_GROUPS.get(self.status, ()),
            env=self.env or None,
            tag=self.tag or None,
            text=self.q or None,
            archived=self.archived,  # type: ignore[arg-type]  # checked in parse
            sort=self.sort,  # type: ignore[arg-type]
        )

    @property
    def filtered(self) -> bool:
        """Whether any filter (not the sort) narrows the list."""
        return bool(self.q or self.status or self.env or self.tag or self.archived != "hide")

    def url(self, **changes: Any) -> str:
        """The list's URL with these parameters, ``changes`` applied, defaults left out."""
        values = {**self.__dict__, **changes}
        defaults = ListParams().__dict__
        kept = {k: v for k, v in values.items() if v != defaults[k]}
        return "/trainings" + (f"?{urlencode(kept)}" if kept else "")


def canonical_list_url(query_string: str) -> str | None:
    """The list's tidy address when ``query_string`` differs from it (a filter form sends
    every field, blank or default ones too), else None: links stay short and shareable."""
    pairs = parse_qsl(query_string, keep_blank_values=True)
    url = ListParams.parse(dict(pairs)).url()
    notice = dict(pairs).get("notice", "")
    if notice in NOTICES:
        url += ("&" if "?" in url else "?") + urlencode({"notice": notice})
    wanted = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    return None if sorted(pairs) == sorted(wanted) else url


def list_context(repo: Repository, principal: Principal, query: dict[str, str]) -> dict[str, Any]:
    """Everything ``trainings.html`` shows: one page of matching runs and the choices."""
    params = ListParams.parse(query)
    offset = (params.page - 1) * PAGE_SIZE
    items, total = manage.list_filtered(repo, principal.user, params.to_filter(), PAGE_SIZE, offset)
    return {
        "items": [summary(t) for t in items],
        "total": total,
        "p": params,
        "facets": manage.facets(repo, principal.user),
        "statuses": list(STATUS_GROUPS),
        "sorts": SORT_LABELS,
        "archived_choices": ARCHIVED_LABELS,
        "prev_url": params.url(page=params.page - 1) if params.page > 1 else None,
        "next_url": params.url(page=params.page + 1) if offset + len(items) < total else None,
        "first": offset + 1,
        "notice": NOTICES.get(query.get("notice", ""), ""),
        "when": when,
    }


def _owned(repo: Repository, principal: Principal, training_id: str) -> Training | None:
    try:
        return trainings.get_training(repo, principal.user, training_id)
    except NotFoundError:
        return None


def _label_values(t: Training) -> dict[str, str]:
    return {"name": t.name or "", "tags": " ".join(t.tags or ()), "notes": t.notes or ""}


@router.get("/trainings/{training_id}/labels", response_model=None)
def labels_page(
    training_id: str, request: Request, principal: MaybePrincipal, repo: Repo
) -> Response:
    """The name, tags and notes form on a page of its own (the training page has it too)."""
    if principal is None:
        return to_login(request)
    training = _owned(repo, principal, training_id)
    if training is None:
        return render(request, "not_found.html", principal, status=404)
    return render(
        request,
        "training_labels.html",
        principal,
        t=summary(training),
        label_values=_label_values(training),
        label_errors={},
    )


@router.post("/trainings/{training_id}/labels", response_model=None)
def labels_submit(
    training_id: str, request: Request, principal: MaybePrincipal, form: Form, repo: Repo, ctx: Ctx
) -> Response:
    """Save name, tags (separated by spaces or commas) and notes; errors beside each field."""
    if principal is None:
        return to_login(request)
    values = {k: form.get(k, "") for k in ("name", "tags", "notes")}
    try:
        manage.update_meta(
            repo,
            principal.user,
            training_id,
            ctx.clock(),
            name=values["name"],
            tags=manage.split_tags(values["tags"]),
            notes=values["notes"],
        )
    except NotFoundError:
        return render(request, "not_found.html", principal, status=404)
    except InvalidInputError as exc:
        repo.rollback()
        training = _owned(repo, principal, training_id)
        assert training is not None  # found a moment ago, and only ended runs are deleted
        return render(
            request,
            "training_labels.html",
            principal,
            status=422,
            t=summary(training),
            label_values=values,
            label_errors=errors_by_field(exc.errors),
        )
    return see_other(f"/trainings/{training_id}")


def _archive(
    training_id: str, request: Request, principal: Principal, repo: Repository, ctx: Ctx, on: bool
) -> Response:
    try:
        manage.set_archived(repo, principal.user, training_id, on, ctx.clock())
    except NotFoundError:
        return render(request, "not_found.html", principal, status=404)
    except ConflictError as exc:
        return _message(request, principal, training_id, str(exc), 409)
    return see_other(f"/trainings/{training_id}")


@router.post("/trainings/{training_id}/archive", response_model=None)
def archive_submit(
    training_id: str, request: Request, principal: MaybePrincipal, repo: Repo, ctx: Ctx
) -> Response:
    """Hide an ended run from the default list (undone by restore)."""
    if principal is None:
        return to_login(request)
    return _archive(training_id, request, principal, repo, ctx, True)


@router.post("/trainings/{training_id}/unarchive", response_model=None)
def unarchive_submit(
    training_id: str, request: Request, principal: MaybePrincipal, repo: Repo, ctx: Ctx
) -> Response:
    """Show an archived run in the default list again."""
    if principal is None:
        return to_login(request)
    return _archive(training_id, request, principal, repo, ctx, False)


def _message(
    request: Request, principal: Principal, training_id: str, text: str, status: int
) -> Response:
    """A refused action: say why, and link back to the training."""
    return render(
        request,
        "confirm.html",
        principal,
        status=status,
        title="Not done",
        error=text,
        action=None,
        back=f"/trainings/{training_id}",
    )


def _confirm(
    request: Request, principal: Principal, training: Training, what: str, **extra: Any
) -> Response:
    """The page a confirmation form leads to without JavaScript."""
    label = training.name or str(training.config.get("gym_game_name", ""))
    return render(
        request,
        "confirm.html",
        principal,
        what=what,
        label=label,
        training_id=training.id,
        back=f"/trainings/{training.id}",
        **extra,
    )


# What each "Are you sure?" page says (the buttons' fallback without JavaScript).
_CONFIRMATIONS: dict[str, dict[str, str]] = {
    "stop": {
        "title": "Stop this training?",
        "button": "Stop the training",
        "text": "The run ends once the evolver confirms; its history and best genome so far "
        "are kept. A stopped training cannot be resumed: clone it to start it again.",
    },
    "delete": {
        "title": "Delete this training?",
        "button": "Delete for good",
        "text": "Its history, charts and best genome are deleted too. This cannot be undone; "
        "archive it instead to only hide it from the list.",
    },
}


def _confirm_page(
    what: str, training_id: str, request: Request, principal: Principal | None, repo: Repository
) -> Response:
    """The confirmation page of ``what`` for an owned training (login, 404 otherwise)."""
    if principal is None:
        return to_login(request)
    training = _owned(repo, principal, training_id)
    if training is None:
        return render(request, "not_found.html", principal, status=404)
    if what == "stop" and training.status not in trainings.ACTIVE:
        return see_other(f"/trainings/{training_id}")
    return _confirm(
        request,
        principal,
        training,
        what,
        action=f"/trainings/{training_id}/{what}",
        **_CONFIRMATIONS[what],
    )


@router.get("/trainings/{training_id}/stop", response_model=None)
def stop_confirm(
    training_id: str, request: Request, principal: MaybePrincipal, repo: Repo
) -> Response:
    """Are you sure?  (The Stop button without JavaScript.)"""
    return _confirm_page("stop", training_id, request, principal, repo)


@router.get("/trainings/{training_id}/delete", response_model=None)
def delete_confirm(
    training_id: str, request: Request, principal: MaybePrincipal, repo: Repo
) -> Response:
    """Are you sure?  (The Delete button without JavaScript.)"""
    return _confirm_page("delete", training_id, request, principal, repo)


@router.post("/trainings/{training_id}/delete", response_model=None)
def delete_submit(
    training_id: str, request: Request, principal: MaybePrincipal, repo: Repo
) -> Response:
    """Delete an ended run and go back to the list."""
    if principal is None:
        return to_login(request)
    try:
        manage.delete_training(repo, principal.user, training_id)
    except NotFoundError:
        return render(request, "not_found.html", principal, status=404)
    except ConflictError as exc:
        return _message(request, principal, training_id, str(exc), 409)
    return see_other("/trainings?notice=deleted")
