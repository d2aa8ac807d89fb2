"""Exports of a training: its generation history as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ezspark_gateway.api.deps import Ctx, CurrentPrincipal, Repo
from ezspark_gateway.api.schemas import error_responses
from ezspark_gateway.core import trainings
from ezspark_gateway.storage import Database, Repository
from ezspark_gateway.storage.models import GenerationRow

router = APIRouter(prefix="/api", tags=["trainings"])
# Every stored column of a generation report, in the order of GET .../generations.
COLUMNS = (
    "generation",
    "best_fitness",
    "mean_fitness",
    "species",
    "population",
    "evaluations_per_s",
    "best_genome_key",
    "received_at",
    "species_sizes",
    "mean_nodes",
    "mean_connections",
    "best_nodes",
    "best_connections",
    "phase",
    "errors",
    "first_error",
    "safeness_checks",
    "safeness_mismatches",
)
BATCH = 1000


def _cell(value: object) -> object:
    """A CSV cell: empty for missing, sizes space-separated, floats round-tripping."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else value


def _lines(rows: Iterable[GenerationRow], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    writer.writerows([_cell(getattr(row, c)) for c in COLUMNS] for row in rows)
    return out.getvalue()


def csv_chunks(db: Database, training_id: str) -> Iterator[str]:
    """The history as CSV, one chunk per BATCH generations.  Each batch has its own short
    session, so a slow download never holds a database connection between chunks."""
    since, header = 0, True
    while True:
        with db.session() as session:
            rows = Repository(session).generations(training_id, since, BATCH)
            chunk = _lines(rows, header)
        yield chunk
        if len(rows) < BATCH:
            return
        since, header = rows[-1].generation + 1, False


@router.get(
    "/trainings/{training_id}/generations.csv",
    response_class=StreamingResponse,
    responses={
        **error_responses(401, 404),
        200: {"content": {"text/csv": {}}, "description": "one row per stored generation"},
    },
)
def generations_csv(
    training_id: str, principal: CurrentPrincipal, repo: Repo, ctx: Ctx
) -> StreamingResponse:
    """Every stored generation report of one of the caller's trainings as a CSV download,
    with all the columns of ``GET .../generations`` (``species_sizes`` space-separated)."""
    trainings.get_training(repo, principal.user, training_id)
    return StreamingResponse(
        csv_chunks(ctx.db, training_id),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="ezspark-{training_id}-generations.csv"',
            "Cache-Control": "no-cache",
        },
    )
