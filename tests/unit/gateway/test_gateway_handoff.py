"""POST /api/trainings/handoff and GET /api/trainings/{id}/genomes (``ezspark train
--gateway``): a checked checkpoint is stored and published; a bad one is refused by field."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ezspark_common.config import parse_config
from ezspark_common.trainer.embedded import run_embedded
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.training import start, state_to_dict
from ezspark_common.wire.messages import (
    GenerationFinished,
    SavedGenome,
    TrainingRequested,
    WireGenome,
)
from ezspark_gateway.core.events import EventApplier
from ezspark_gateway.storage import Database
from tests.support.configs import example

CONFIG = example(
    "cartpole",
    initial_population=10,
    max_population=12,
    generations=6,
    alone_training_iterations=2,
    max_number_of_games=2,
    sub_games=1,
    max_number_of_steps=30,
    seed=3,
)
URL = "/api/trainings/handoff"


@functools.cache
def _alone(config_json: str, stop_at: int) -> str:
    cfg = parse_config(json.loads(config_json))
    with tempfile.TemporaryDirectory() as tmp:
        state = run_embedded(start(cfg), InProcessEvaluator(), Path(tmp), stop_at=stop_at)
    return json.dumps(state_to_dict(state))


def checkpoint(cfg: dict[str, Any] = CONFIG, stop_at: int | None = None) -> dict[str, Any]:
    """The checkpoint a local run of ``cfg`` leaves at ``stop_at`` (default: alone phase)."""
    at = cfg["alone_training_iterations"] if stop_at is None else stop_at
    data: dict[str, Any] = json.loads(_alone(json.dumps(cfg, sort_keys=True), at))
    return data


def post(gw: Any, token: str, body: Any) -> Any:
    """POST a hand-over body (bytes as they are, anything else as JSON)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return gw.client.post(URL, content=raw, headers=gw.auth(token, json=True))


def test_handoff_stores_the_local_generations_and_publishes_the_checkpoint(gw: Any) -> None:
    """A checkpoint after the alone phase creates a queued training whose history already
    holds the local generations, and the evolver is sent the checkpoint itself."""
    token = gw.signup("ada")
    ckpt = checkpoint()
    resp = post(gw, token, {"config": CONFIG, "checkpoint": ckpt})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["status"], body["generations"]) == ("queued", 2)
    assert body["best_fitness"] == max(r["best_fitness"] for r in ckpt["history"])
    [msg] = gw.publisher.sent
    assert isinstance(msg, TrainingRequested)
    assert msg.checkpoint == ckpt
    history = gw.client.get(f"/api/trainings/{body['id']}/generations", headers=gw.auth(token))
    assert [r["generation"] for r in history.json()["items"]] == [0, 1]


def _other_config() -> dict[str, Any]:
    return checkpoint({**CONFIG, "seed": 4})


def _finished() -> dict[str, Any]:
    return checkpoint(stop_at=99)


def _foreign_input() -> dict[str, Any]:
    data = checkpoint()
    data["population"]["genomes"][0]["src"][0] = -99  # no such input in CartPole
    return data


def _stray_member() -> dict[str, Any]:
    data = checkpoint()
    data["population"]["species"][0]["members"].append(10**9)
    return data


@pytest.mark.parametrize(
    ("make_body", "field"),
    [
        (lambda: {"config": CONFIG, "checkpoint": [1, 2]}, "checkpoint"),
        (lambda: {"config": CONFIG}, "checkpoint"),
        (lambda: {"config": CONFIG, "checkpoint": {"format": "x"}}, "checkpoint"),
        (lambda: {"config": CONFIG, "checkpoint": _other_config()}, "checkpoint.config"),
        (
            lambda: {"config": CONFIG, "checkpoint": checkpoint(stop_at=1)},
            "checkpoint.population.generation",
        ),
        (lambda: {"config": CONFIG, "checkpoint": _finished()}, "checkpoint.finished"),
        (
            lambda: {"config": CONFIG, "checkpoint": _foreign_input()},
            "checkpoint.population.genomes",
        ),
        (
            lambda: {"config": CONFIG, "checkpoint": _stray_member()},
            "checkpoint.population.species",
        ),
        (
            lambda: {"config": {**CONFIG, "initial_population": 0}, "checkpoint": checkpoint()},
            "config.initial_population",
        ),
        (lambda: b'{"config": NaN, "checkpoint": {}}', "body"),
    ],
)
def test_bad_handoff_is_refused_by_field_and_nothing_is_published(
    gw: Any, make_body: Any, field: str
) -> None:
    """Each bad body gets a 422 naming the field at fault; nothing is stored or sent."""
    token = gw.signup()
    resp = post(gw, token, make_body())
    assert resp.status_code == 422, resp.text
    assert field in [e["field"] for e in resp.json()["errors"]], resp.json()
    assert gw.publisher.sent == []
    assert gw.client.get("/api/trainings", headers=gw.auth(token)).json()["total"] == 0


def test_oversized_checkpoint_is_413_naming_the_setting(make_gateway: Any) -> None:
    """A body over EZSPARK_MAX_CHECKPOINT_BYTES is refused with 413 and nothing is sent,
    while an ordinary config endpoint keeps its own (smaller) limit."""
    gw = make_gateway(max_checkpoint_bytes=2048, max_body_bytes=1024)
    token = gw.signup()
    resp = post(gw, token, {"config": CONFIG, "checkpoint": checkpoint()})
    assert resp.status_code == 413
    assert "EZSPARK_MAX_CHECKPOINT_BYTES" in resp.json()["detail"]
    assert gw.publisher.sent == []
    roomy = make_gateway(max_checkpoint_bytes=10_000_000, max_body_bytes=1024)
    token = roomy.signup()
    assert post(roomy, token, {"config": CONFIG, "checkpoint": checkpoint()}).status_code == 201


def test_handoff_obeys_the_quotas_of_a_normal_submit(make_gateway: Any) -> None:
    """Over the active-trainings quota is 429, over the population quota 422; nothing sent
    for either."""
    gw = make_gateway(quota_active_trainings=1, quota_population=15)
    token = gw.signup()
    body = {"config": CONFIG, "checkpoint": checkpoint()}
    assert post(gw, token, body).status_code == 201
    assert post(gw, token, body).status_code == 429
    big = {**CONFIG, "max_population": 16}
    other = make_gateway(quota_population=15)
    t2 = other.signup()
    resp = post(other, t2, {"config": big, "checkpoint": checkpoint(big)})
    assert resp.status_code == 422, resp.text
    assert "max_population" in [e["field"] for e in resp.json()["errors"]]
    assert len(gw.publisher.sent) == 1
    assert other.publisher.sent == []


def _saved(generation: int, fitness: float) -> SavedGenome:
    genome = WireGenome(
        key=generation,
        node_ids=[0, 1],
        biases=[0.0, 0.5],
        innov=[1],
        src=[-1],
        dst=[0],
        weight=[0.25],
        enabled=[True],
    )
    return SavedGenome(generation=generation, fitness=fitness, returns=[fitness], genome=genome)


def test_saved_genomes_from_reports_are_listed_for_their_owner_only(gw: Any) -> None:
    """Genomes carried by reports are listed in order from ``since``; a redelivered report
    adds nothing; another user gets 404."""
    token = gw.signup()
    tid = post(gw, token, {"config": CONFIG, "checkpoint": checkpoint()}).json()["id"]
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    for gen in (2, 3, 4):
        saved = _saved(gen, float(gen)) if gen % 2 == 0 else None
        event = GenerationFinished(
            training_id=tid,
            generation=gen,
            best_fitness=float(gen),
            mean_fitness=1.0,
            species=1,
            population=10,
            evaluations_per_s=1.0,
            best_genome_key=gen,
            generation_best=saved,
            best_so_far=saved,
        )
        sink.handle(event)
        sink.handle(event)
    url = f"/api/trainings/{tid}/genomes"
    page = gw.client.get(url, headers=gw.auth(token)).json()
    assert [i["generation"] for i in page["items"]] == [2, 4]
    assert page["items"][1]["best_so_far"] == _saved(4, 4.0).model_dump(mode="json")
    assert page["next_since"] == 5
    later = gw.client.get(url, params={"since": 3}, headers=gw.auth(token)).json()
    assert [i["generation"] for i in later["items"]] == [4]
    assert gw.client.get(url, headers=gw.auth(gw.signup())).status_code == 404


def test_a_retried_handoff_id_returns_the_same_training(gw: Any) -> None:
    """The same ``handoff_id`` again (the first answer was lost) gets 200 and the training
    already created; nothing is published twice.  A malformed id is a 422."""
    token = gw.signup()
    body = {"config": CONFIG, "checkpoint": checkpoint(), "handoff_id": "retry-0123456789"}
    first = post(gw, token, body)
    assert first.status_code == 201, first.text
    again = post(gw, token, body)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert len(gw.publisher.sent) == 1
    bad = post(gw, token, {**body, "handoff_id": "no spaces allowed"})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["handoff_id"]


def test_old_database_gains_handoff_id_at_start_up(make_gateway: Any) -> None:
    """A database made before ``trainings.handoff_id`` existed gets it added, and takes
    hand-overs afterwards."""
    gw = make_gateway()
    with gw.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE trainings DROP COLUMN handoff_id"))
        conn.execute(text("DROP TABLE alembic_version"))  # made before migrations, too
    gw.db.dispose()
    assert Database(gw.db.url).create_schema() == ["trainings.handoff_id"]
    token = gw.signup()
    body = {"config": CONFIG, "checkpoint": checkpoint(), "handoff_id": "after-upgrade-1"}
    assert post(gw, token, body).status_code == 201
