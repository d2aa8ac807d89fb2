"""GET /api/trainings/{id}/generations.csv: every column, owner-only, streamed in batches."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from ezspark_common.wire.messages import GenerationFinished
from ezspark_gateway.api import routes_exports
from ezspark_gateway.core.events import EventApplier
from tests.unit.gateway.conftest import example_bytes


def full_report(tid: str, gen: int) -> GenerationFinished:
    """A report with every optional field set (species and genome sizes, phase, errors)."""
    return GenerationFinished(
        training_id=tid,
        generation=gen,
        best_fitness=10.0 + gen + 0.125,
        mean_fitness=-58.7 + gen,
        species=3,
        population=60,
        evaluations_per_s=250.5,
        best_genome_key=100 + gen,
        species_sizes=[30, 20, 10],
        mean_nodes=5.5,
        mean_connections=8.25,
        best_nodes=6,
        best_connections=9 + gen,
        phase="local" if gen == 0 else "distributed",
        errors=gen,
        first_error=f'step raised ValueError: bad "action", {gen}' if gen else None,
        safeness_checks=30,
        safeness_mismatches=gen,
    )


def old_report(tid: str, gen: int) -> GenerationFinished:
    """A report as older evolvers send it: no species sizes, genome sizes or phase."""
    return GenerationFinished(
        training_id=tid,
        generation=gen,
        best_fitness=1.0,
        mean_fitness=0.5,
        species=2,
        population=50,
        evaluations_per_s=99.0,
        best_genome_key=gen,
    )


def rows_of(text: str) -> list[dict[str, str]]:
    """The CSV's rows keyed by its header."""
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_every_column_and_value(gw: Any) -> None:
    """The CSV has all columns in order; values round-trip, sizes space-separated, missing empty."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    for gen in range(3):
        sink.handle(full_report(tid, gen))
    sink.handle(old_report(tid, 3))
    resp = gw.client.get(f"/api/trainings/{tid}/generations.csv", headers=gw.auth(token))
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert resp.headers["content-disposition"] == (
        f'attachment; filename="ezspark-{tid}-generations.csv"'
    )
    assert resp.text.splitlines()[0] == ",".join(routes_exports.COLUMNS)
    rows = rows_of(resp.text)
    assert [r["generation"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[1] == {
        "generation": "1",
        "best_fitness": "11.125",
        "mean_fitness": repr(-58.7 + 1),
        "species": "3",
        "population": "60",
        "evaluations_per_s": "250.5",
        "best_genome_key": "101",
        "received_at": repr(gw.clock.now),
        "species_sizes": "30 20 10",
        "mean_nodes": "5.5",
        "mean_connections": "8.25",
        "best_nodes": "6",
        "best_connections": "10",
        "phase": "distributed",
        "errors": "1",
        "first_error": 'step raised ValueError: bad "action", 1',
        "safeness_checks": "30",
        "safeness_mismatches": "1",
    }
    assert (rows[0]["errors"], rows[0]["first_error"]) == ("0", "")
    old = rows[3]
    missing = ("species_sizes", "mean_nodes", "best_connections", "phase", "errors", "first_error")
    assert [old[c] for c in (*missing, "safeness_checks", "safeness_mismatches")] == [""] * 8
    api = gw.client.get(f"/api/trainings/{tid}/generations", headers=gw.auth(token)).json()
    assert [float(r["mean_fitness"]) for r in rows] == [r["mean_fitness"] for r in api["items"]]


def test_csv_is_owner_only(gw: Any) -> None:
    """Another user's training and unknown ids are 404; no credentials is 401."""
    owner, other = gw.signup(), gw.signup()
    tid = gw.create(owner)
    url = f"/api/trainings/{tid}/generations.csv"
    assert gw.client.get(url, headers=gw.auth(other)).status_code == 404
    assert gw.client.get(url).status_code == 401
    missing = "/api/trainings/00000000-0000-4000-8000-000000000000/generations.csv"
    assert gw.client.get(missing, headers=gw.auth(owner)).status_code == 404
    assert (
        gw.client.get(url, headers=gw.auth(owner)).text == ",".join(routes_exports.COLUMNS) + "\n"
    )


def test_csv_works_with_the_session_cookie(gw: Any) -> None:
    """The page's download link works for a browser logged in with the cookie."""
    gw.browser_login("cookie-user")
    created = gw.client.post(
        "/api/trainings", content=example_bytes(), headers={"Content-Type": "application/json"}
    )
    assert created.status_code == 201, created.text
    resp = gw.client.get(f"/api/trainings/{created.json()['id']}/generations.csv")
    assert resp.status_code == 200
    assert resp.text.startswith("generation,best_fitness,")


def test_csv_streams_in_batches(gw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long history is produced batch by batch (one chunk per BATCH rows, header once),
    and the streamed whole equals what the endpoint answers."""
    monkeypatch.setattr(routes_exports, "BATCH", 7)
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    for gen in range(20):
        sink.handle(full_report(tid, gen))
    chunks = list(routes_exports.csv_chunks(gw.db, tid))
    assert [len(c.splitlines()) for c in chunks] == [8, 7, 6]
    body = gw.client.get(f"/api/trainings/{tid}/generations.csv", headers=gw.auth(token)).text
    assert body == "".join(chunks)
    assert [int(r["generation"]) for r in rows_of(body)] == list(range(20))
