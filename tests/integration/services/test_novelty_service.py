"""Issue 12 through the services: a ``novelty_weight`` training's behaviours travel from
the evaluators over RabbitMQ, and the run equals the embedded trainer's."""

from __future__ import annotations

import uuid
from pathlib import Path

from ezspark_common.neat.population import population_to_dict
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

MOUNTAIN = {
    "gym_game_name": "MountainCar-v0",
    "input_size": 2,
    "output_size": 3,
    "minimum_reward": -1,
    "max_number_of_games": 3,
    "sub_games": 2,
    "safeness": 0.5,
    "novelty_weight": 0.5,
}


def test_distributed_novelty_run_equals_embedded_run(tmp_path: Path) -> None:
    """Evolver + evaluator with novelty (games in groups, safeness re-checks comparing
    behaviours) end on the embedded run's population, with every game's behaviour; the
    weight really acted (a fitness-only run ends elsewhere)."""
    prefix, tid = new_prefix(), f"t-{uuid.uuid4().hex[:8]}"
    cfg = config(**MOUNTAIN)
    serves = evaluator_thread(prefix, envs=cfg["gym_game_name"])
    with bus(prefix) as b, serves, evolver_thread(prefix, tmp_path):
        b.request(tid, cfg)
        state = finished(tmp_path, tid)
    assert_same_run(state, embedded(cfg))
    assert all(len(o.behaviour) == 3 for o in state.last_outcomes.values())
    plain = embedded({**cfg, "novelty_weight": 0.0})
    assert population_to_dict(plain.population) != population_to_dict(state.population)
