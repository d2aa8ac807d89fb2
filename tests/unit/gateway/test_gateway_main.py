"""main()'s wiring, minus uvicorn: app, broker queues and the event consumer together."""

from __future__ import annotations

import json
from typing import Any

from ezspark_common.wire.messages import (
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    GenerationFinished,
    TrainingRequested,
    decode,
    encode,
)
from tests.unit.gateway.conftest import MemoryRuntime


def test_runtime_publishes_commands_and_applies_events(
    memory_runtime: MemoryRuntime, example: bytes
) -> None:
    """A created training lands on the commands queue; a report on the events queue shows up."""
    broker, client = memory_runtime.broker, memory_runtime.client
    created = client.post(
        "/api/trainings", content=example, headers={"Content-Type": "application/json"}
    )
    tid = created.json()["id"]
    commands: list[Any] = []
    broker.consume(COMMANDS_QUEUE, lambda d: (commands.append(decode(d.body)), d.ack()))
    broker.publish(
        EVENTS_QUEUE,
        encode(
            GenerationFinished(
                training_id=tid,
                generation=0,
                best_fitness=5.0,
                mean_fitness=1.0,
                species=2,
                population=100,
                evaluations_per_s=10.0,
                best_genome_key=1,
            )
        ),
        message_id="r0",
    )
    broker.drain()
    assert isinstance(commands[0], TrainingRequested)
    assert commands[0].config["gym_game_name"] == json.loads(example)["gym_game_name"]
    detail = client.get(f"/api/trainings/{tid}").json()
    assert detail["status"] == "running"
    assert client.get("/readyz").status_code == 200
