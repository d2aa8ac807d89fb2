"""Issue 16 through the services: Box actions and recurrent networks, evolver + evaluator
over RabbitMQ, each run equal to the embedded trainer's."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from ezspark_common.neat.genome import has_cycle
from tests.integration.services.harness import (
    assert_same_run,
    bus,
    config,
    embedded,
    evaluator_thread,
    evolver_thread,
    finished,
    new_prefix,
)

CASES: dict[str, dict[str, Any]] = {
    "pendulum": {"gym_game_name": "Pendulum-v1", "input_size": 3, "output_size": 1},
    "recurrent": {
        "gym_game_name": "EzCartPoleNoVelocity-v1",
        "input_size": 2,
        "recurrent": True,
        "add_connection_big_specie_rate": 1.0,
        "add_node_specie_rate": 0.5,
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_distributed_run_equals_embedded_run(tmp_path: Path, case: str) -> None:
    """A Pendulum (Box) and a recurrent training give the embedded run's final population."""
    prefix, tid = new_prefix(), f"t-{uuid.uuid4().hex[:8]}"
    cfg = config(minimum_reward=-17, **CASES[case])
    serves = evaluator_thread(prefix, envs=cfg["gym_game_name"])
    with bus(prefix) as b, serves, evolver_thread(prefix, tmp_path):
        b.request(tid, cfg)
        state = finished(tmp_path, tid)
    assert_same_run(state, embedded(cfg))
    if case == "recurrent":  # the tasks really carried genomes with loops
        assert any(has_cycle(g.src, g.dst) for g in state.population.genomes.values())
