"""The evolver continuing a run handed over by a user's machine, against the real RabbitMQ.

The test plays the user's machine: it runs the alone phase with the embedded trainer,
then publishes the TrainingRequested the gateway would, carrying that checkpoint.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from ezspark_common.config import parse_config
from ezspark_common.trainer.embedded import run_embedded
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.training import start, state_to_dict
from ezspark_common.wire.messages import COMMANDS_QUEUE, SavedGenome, TrainingRequested, encode
from tests.integration.services.harness import (
    Bus,
    assert_same_run,
    bus,
    config,
    embedded,
    evaluator_thread,
    evolver_thread,
    finished,
    new_prefix,
)
from tests.support.waiting import wait_until


def alone_phase(cfg: dict[str, Any], out: Path) -> dict[str, Any]:
    """The checkpoint a local run leaves after its alone phase."""
    config_ = parse_config(cfg)
    state = run_embedded(
        start(config_), InProcessEvaluator(), out, stop_at=config_.alone_training_iterations
    )
    return state_to_dict(state)


def hand_over(b: Bus, tid: str, cfg: dict[str, Any], checkpoint: Any) -> None:
    """Publish the gateway's TrainingRequested with a checkpoint."""
    msg = TrainingRequested(
        training_id=tid, owner="tester", config=cfg, requested_at=time.time(), checkpoint=checkpoint
    )
    b.publish(COMMANDS_QUEUE, encode(msg), message_id=f"training_requested:{tid}")


def test_evolver_continues_a_handed_over_run_to_the_embedded_result(tmp_path: Path) -> None:
    """A run handed over after its alone phase starts at that generation (no generation
    before it is dispatched again), ends equal to the fully embedded run, and its reports
    carry the genomes saved every ``saving`` generations, equal to the embedded files."""
    cfg = config(generations=5, alone_training_iterations=2, saving=2)
    prefix, tid = new_prefix(), f"t-{uuid.uuid4().hex[:8]}"
    checkpoint = alone_phase(cfg, tmp_path / "local")
    data = tmp_path / "evolver"
    with bus(prefix) as b, evaluator_thread(prefix), evolver_thread(prefix, data):
        hand_over(b, tid, cfg, checkpoint)
        state = finished(data, tid)
        wait_until(lambda: b.events_of(tid, "training_finished"), 10, "TrainingFinished")
    assert_same_run(state, embedded(cfg))
    reports = {r.generation: r for r in b.events_of(tid, "generation_report")}
    # Generation 1 is the alone phase's last report, published again on start; 0 never is.
    assert sorted(reports) == [1, 2, 3, 4]
    reference = tmp_path / "reference"
    run_embedded(start(parse_config(cfg)), InProcessEvaluator(), reference)
    for gen in (2, 4):
        saved = reports[gen].generation_best
        assert saved is not None
        want = json.loads((reference / "genomes" / f"gen-{gen:06d}.json").read_text())
        assert saved.model_dump(mode="json") == {k: want[k] for k in SavedGenome.model_fields}
    assert reports[3].generation_best is None
    assert reports[3].best_so_far is None
    final = reports[4].best_so_far
    assert final is not None
    want_best = json.loads((reference / "best.json").read_text())
    assert final.model_dump(mode="json") == {k: want_best[k] for k in SavedGenome.model_fields}


def test_evolver_refuses_a_checkpoint_that_does_not_fit_the_config(tmp_path: Path) -> None:
    """A checkpoint of another config, or one before the end of the alone phase, is refused
    with TrainingFailed naming the field, and no training directory is created."""
    cfg = config(generations=4, alone_training_iterations=1)
    checkpoint = alone_phase(cfg, tmp_path / "local")
    early = state_to_dict(start(parse_config(cfg)))
    prefix = new_prefix()
    data = tmp_path / "evolver"
    cases = {
        "checkpoint.config": alone_phase(config(seed=8, generations=4), tmp_path / "other"),
        "checkpoint.population.generation": early,
        "checkpoint": {"format": "something-else"},
    }
    ids = {field: f"t-{uuid.uuid4().hex[:8]}" for field in cases}
    with bus(prefix) as b, evolver_thread(prefix, data):
        for field, bad in cases.items():
            hand_over(b, ids[field], cfg, bad)
        for field, tid in ids.items():
            (failed,) = wait_until(
                lambda tid=tid: b.events_of(tid, "training_failed"), 10, "TrainingFailed"
            )
            assert f"{field}:" in failed.error or f"{field} " in failed.error, failed.error
            assert not (data / tid).exists()
    assert checkpoint["population"]["generation"] == 1
