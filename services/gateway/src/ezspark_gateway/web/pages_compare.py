"""The compare page: the best-fitness curves of several of the caller's trainings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ezspark_gateway.api.deps import MaybePrincipal, Repo
from ezspark_gateway.core import trainings
from ezspark_gateway.core.errors import NotFoundError
from ezspark_gateway.storage.models import Training
from ezspark_gateway.web.render import render, to_login

router = APIRouter(include_in_schema=False)
MAX_RUNS = 8  # one colour each; more curves than that cannot be told apart
CHOICES = 200  # the newest trainings offered in the picker


@dataclass(frozen=True)
class Run:
    """One training as the compare page shows it."""

    id: str
    label: str
    status: str
    generations: int
    best_fitness: float | None
    threshold: float | None


def label(training: Training) -> str:
    """The run's name, or its environment and the start of its id."""
    env = str(training.config.get("gym_game_name", ""))
    return training.name or f"{env} {training.id[:8]}"


def run(training: Training) -> Run:
    """The compare page's view of a training."""
    limit = training.config.get("fitness_threshold")
    return Run(
        id=training.id,
        label=label(training),
        status=training.status,
        generations=training.generations,
        best_fitness=training.best_fitness,
        threshold=None if limit is None else float(limit),
    )


def requested_ids(raw: list[str]) -> list[str]:
    """Ids from ``?ids=a,b`` and ``?ids=a&ids=b`` alike, in order, without repeats."""
    seen: dict[str, None] = {}
    for part in raw:
        for one in part.split(","):
            if one.strip():
                seen.setdefault(one.strip(), None)
    return list(seen)


@router.get("/trainings/compare", response_model=None)
def compare_page(
    request: Request,
    principal: MaybePrincipal,
    repo: Repo,
    ids: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Overlay the chosen trainings' curves; a picker of the caller's trainings.  An id
    that is not one of the caller's trainings is 404, as on the training page."""
    if principal is None:
        return to_login(request)
    wanted = requested_ids(ids or [])
    if len(wanted) > MAX_RUNS:
        chosen: list[Run] = []
        error = f"Choose at most {MAX_RUNS} trainings to compare (you chose {len(wanted)})."
    else:
        error = ""
        try:
            chosen = [run(trainings.get_training(repo, principal.user, i)) for i in wanted]
        except NotFoundError:
            return render(request, "not_found.html", principal, status=404)
    items, total = trainings.list_trainings(repo, principal.user, CHOICES, 0)
    limits = {r.threshold for r in chosen}
    return render(
        request,
        "compare.html",
        principal,
        status=422 if error else 200,
        runs=chosen,
        error=error,
        choices=[run(t) for t in items],
        total=total,
        selected={r.id for r in chosen} or set(wanted),
        threshold=limits.pop() if len(limits) == 1 else None,
        max_runs=MAX_RUNS,
    )
