"""main()'s wiring, minus uvicorn: app, broker queues and the event consumer together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from ezspark_common.broker import InMemoryBroker
from ezspark_common.messages import (
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    GenerationReport,
    TrainingRequested,
    decode,
    encode,
)
from ezspark_gateway.main import build_runtime
from ezspark_gateway.settings import GatewaySettings


def test_runtime_publishes_commands_and_applies_events(tmp_path: Path, example: bytes) -> None:
    """A created training lands on the commands queue; a report on the events queue shows up."""
    settings = GatewaySettings(broker_url="memory://",
                               database_url=f"sqlite:///{tmp_path}/gateway.db")
    rt = build_runtime(settings, CollectorRegistry())
    broker = rt.broker
    assert isinstance(broker, InMemoryBroker)
    try:
        client = TestClient(rt.app)
        signup = client.post("/api/auth/signup",
                             json={"username": "ada", "password": "password1"})
        assert signup.status_code == 201
        created = client.post("/api/trainings", content=example,
                              headers={"Content-Type": "application/json"})
        tid = created.json()["id"]
        commands: list[Any] = []
        broker.consume(COMMANDS_QUEUE, lambda d: (commands.append(decode(d.body)), d.ack()))
        broker.publish(EVENTS_QUEUE, encode(GenerationReport(
            training_id=tid, generation=0, best_fitness=5.0, mean_fitness=1.0, species=2,
            population=100, evaluations_per_s=10.0, best_genome_key=1)), message_id="r0")
        broker.drain()
        assert isinstance(commands[0], TrainingRequested)
        assert commands[0].config["gym_game_name"] == json.loads(example)["gym_game_name"]
        detail = client.get(f"/api/trainings/{tid}").json()
        assert detail["status"] == "running"
        assert client.get("/readyz").status_code == 200
    finally:
        broker.stop()
        rt.db.dispose()
