"""Issue 12 through the services: a ``normalize_inputs`` training's evaluators, sent only
the derived seed over RabbitMQ, measure the same input constants as the embedded trainer,
so the distributed run equals the embedded one."""

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


def test_distributed_normalised_run_equals_embedded_run(tmp_path: Path) -> None:
    """Evolver + two evaluators with normalize_inputs (safeness re-checks comparing their
    answers) end on the embedded run's population; the key really acted (a run on raw
    observations ends elsewhere)."""
    prefix, tid = new_prefix(), f"t-{uuid.uuid4().hex[:8]}"
    cfg = config(normalize_inputs=True, safeness=0.5, max_number_of_steps=120)
    one, two = evaluator_thread(prefix), evaluator_thread(prefix)
    with bus(prefix) as b, one, two, evolver_thread(prefix, tmp_path):
        b.request(tid, cfg)
        state = finished(tmp_path, tid)
    assert_same_run(state, embedded(cfg))
    assert sum(r.safeness_checks for r in state.history) > 0
    assert sum(r.safeness_mismatches for r in state.history) == 0
    plain = embedded({**cfg, "normalize_inputs": False})
    assert population_to_dict(plain.population) != population_to_dict(state.population)
