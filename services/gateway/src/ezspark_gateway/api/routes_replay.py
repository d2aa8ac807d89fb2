"""/api/trainings/{id}/replay(.gif): the best genome playing one game (``core.replays``).

Both routes are sync, so FastAPI runs them on its thread pool: drawing takes seconds
and must not hold up the event loop.  The database session is released before drawing.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel

from ezspark_gateway.api.deps import CurrentPrincipal, Repo
from ezspark_gateway.api.schemas import error_responses
from ezspark_gateway.core import trainings
from ezspark_gateway.core.replays import (
    ReplayBusyError,
    ReplayInfo,
    Replays,
    ReplaySettings,
    ReplaySubject,
)
from ezspark_gateway.storage.models import Training

router = APIRouter(prefix="/api", tags=["trainings"])
_ERRORS = error_responses(401, 404, 409, 503)
_LOCK = threading.Lock()


class ReplayOut(BaseModel):
    """Which genome the replay shows, on which game, and how it did."""

    training_id: str
    genome_key: int
    env_id: str
    seed: int
    episode_return: float
    steps: int
    max_steps: int
    frames: int
    frame_ms: int
    size_bytes: int
    url: str
    cached: bool
    # Beside the return, for comparison: the fitness is a mean over this many games.
    best_fitness: float | None
    training_games: int | None


def get_replays(request: Request) -> Replays:
    """This app's replay cache, built from ``EZSPARK_REPLAY_*`` on first use."""
    state = request.app.state
    with _LOCK:
        if not hasattr(state, "replays"):
            state.replays = Replays(ReplaySettings())
    replays: Replays = state.replays
    return replays


ReplaysDep = Annotated[Replays, Depends(get_replays)]


def _replay(training: Training, repo: Repo, replays: Replays) -> tuple[ReplayInfo, bytes, bool]:
    """The training's replay: 404 (no genome), 409 (cannot be drawn), 503 (busy)."""
    subject = ReplaySubject.of(training)
    repo.commit()  # hand the connection back: drawing may take seconds
    try:
        return replays.get(subject)
    except ReplayBusyError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None


@router.get("/trainings/{training_id}/replay", response_model=ReplayOut, responses=_ERRORS)
def replay_facts(
    training_id: str, principal: CurrentPrincipal, repo: Repo, replays: ReplaysDep
) -> ReplayOut:
    """Draw (once) the best genome playing one game, seed ``EZSPARK_REPLAY_SEED``; which
    genome and game it shows and its return.  ``url`` is the animated GIF.  404 before
    a best genome; 409 when this gateway cannot run the environment; 503 while busy."""
    training = trainings.get_training(repo, principal.user, training_id)
    best_fitness, games = training.best_fitness, training.config.get("max_number_of_games")
    info, _, cached = _replay(training, repo, replays)
    url = f"/api/trainings/{training_id}/replay.gif?genome={info.genome_key}"
    return ReplayOut(
        training_id=info.training_id,
        genome_key=info.genome_key,
        env_id=info.env_id,
        seed=info.seed,
        episode_return=info.episode_return,
        steps=info.steps,
        max_steps=info.max_steps,
        frames=info.frames,
        frame_ms=info.frame_ms,
        size_bytes=info.size_bytes,
        url=url,
        cached=cached,
        best_fitness=best_fitness,
        training_games=games if isinstance(games, int) else None,
    )


@router.get(
    "/trainings/{training_id}/replay.gif",
    responses={**_ERRORS, 200: {"content": {"image/gif": {}}, "description": "the replay"}},
)
def replay_gif(
    training_id: str,
    request: Request,
    principal: CurrentPrincipal,
    repo: Repo,
    replays: ReplaysDep,
) -> Response:
    """The replay as an animated GIF (see ``GET .../replay`` for what it shows); 304 when
    ``If-None-Match`` names it."""
    training = trainings.get_training(repo, principal.user, training_id)
    info, data, cached = _replay(training, repo, replays)
    etag = f'"{info.digest}"'
    if request.headers.get("if-none-match") == etag:
        return Response(
            status_code=304, headers={"ETag": etag, "Cache-Control": "private, no-cache"}
        )
    return Response(
        data,
        media_type="image/gif",
        headers={
            # The URL stays while the best genome changes: revalidate by ETag.
            "Cache-Control": "private, no-cache",
            "ETag": etag,
            "X-Replay-Cache": "hit" if cached else "miss",
            "X-Replay-Seed": str(info.seed),
            "X-Replay-Return": repr(info.episode_return),
        },
    )
