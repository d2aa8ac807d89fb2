"""The embedded trainer: determinism across workers, checkpoints and resume (Ctrl-C in a
real process: tests/integration/test_cli_interrupt.py)."""

from __future__ import annotations

import json
from pathlib import Path

from ezspark_common.config import config_with
from ezspark_common.neat.population import population_to_dict
from ezspark_common.trainer.checkpoints import load_checkpoint
from ezspark_common.trainer.embedded import run_embedded, with_stopping_rules
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.generations import NoSink, run_generations
from ezspark_common.trainer.training import TrainingState, start, state_from_dict, state_to_dict
from tests.support.configs import small_config
from tests.support.runs import fingerprint, train


def test_same_seed_same_population_with_one_or_two_workers(tmp_path: Path) -> None:
    """Genomes, species and fitnesses after N generations match for --workers 1 and 2."""
    config = small_config(alone_training_iterations=2)
    one = train(config, tmp_path / "w1", workers=1)
    two = train(config, tmp_path / "w2", workers=2)
    assert one.population.generation == config.generations - 1
    assert fingerprint(one) == fingerprint(two)
    assert len(one.population.species) >= 1


def test_different_seed_gives_different_population(tmp_path: Path) -> None:
    """The seed really feeds the run: another seed evolves other genomes."""
    a = train(small_config(generations=2), tmp_path / "a", workers=1)
    b = train(small_config(generations=2, seed=4), tmp_path / "b", workers=1)
    assert fingerprint(a) != fingerprint(b)


def test_checkpoint_round_trip_is_exact(tmp_path: Path) -> None:
    """A state written and read back serialises identically (floats exact)."""
    state = train(small_config(generations=3), tmp_path / "r", workers=1)
    again = state_from_dict(json.loads(json.dumps(state_to_dict(state))))
    assert state_to_dict(again) == state_to_dict(state)
    assert population_to_dict(load_checkpoint(tmp_path / "r").population) == population_to_dict(
        state.population
    )


def test_resume_from_mid_run_checkpoint_reaches_same_result(tmp_path: Path) -> None:
    """Stopping after generation 2 and resuming ends exactly where an uninterrupted run does."""
    config = small_config()
    full = train(config, tmp_path / "full", workers=1)
    partial = train(config_with(config, generations=3), tmp_path / "part", workers=1)
    resumed_state = TrainingState(
        config=config, population=partial.population, history=partial.history, best=partial.best
    )
    evaluator = InProcessEvaluator()
    try:
        # Resuming from the last checkpoint re-evaluates that generation first.
        ckpt = load_checkpoint(tmp_path / "part")
        assert ckpt.finished == "generations"
        resumed = run_embedded(
            TrainingState(
                config=config, population=ckpt.population, history=ckpt.history[:-1], best=None
            ),
            evaluator,
            tmp_path / "part",
        )
    finally:
        evaluator.close()
    assert resumed_state.population.generation == 2
    assert fingerprint(resumed) == fingerprint(full)


def test_resume_with_more_generations_extends_a_finished_run_like_a_longer_run(
    tmp_path: Path,
) -> None:
    """A finished run resumed with a larger ``generations`` goes on, and ends exactly where a
    run with that many generations from the start ends; the same limit leaves it finished."""
    config = small_config()
    full = train(config, tmp_path / "full", workers=1)
    train(config_with(config, generations=3), tmp_path / "short", workers=1)
    same = with_stopping_rules(load_checkpoint(tmp_path / "short"), small_config(generations=3))
    assert same.finished == "generations"
    longer = with_stopping_rules(load_checkpoint(tmp_path / "short"), config)
    assert (longer.finished, longer.generation) == (None, 3)
    evaluator = InProcessEvaluator()
    try:
        extended = run_embedded(longer, evaluator, tmp_path / "short")
    finally:
        evaluator.close()
    assert extended.finished == "generations"
    assert fingerprint(extended) == fingerprint(full)
    assert [(r.generation, r.best_fitness, r.mean_fitness) for r in extended.history] == [
        (r.generation, r.best_fitness, r.mean_fitness) for r in full.history
    ]


def test_novelty_runs_are_deterministic_and_checkpoint_their_behaviour(tmp_path: Path) -> None:
    """With novelty_weight (MountainCar, games cut into groups of 2 of 3) one and two
    workers evolve the same population, the checkpoint keeps every game's behaviour, and
    the weight changes the run (it drives selection on the −200 plateau)."""
    mountain = {
        "gym_game_name": "MountainCar-v0",
        "input_size": 2,
        "output_size": 3,
        "minimum_reward": -1,
        "generations": 4,
        "safeness": 0.0,
    }
    config = small_config(**mountain, novelty_weight=0.5)
    one = train(config, tmp_path / "w1", workers=1)
    two = train(config, tmp_path / "w2", workers=2)
    assert fingerprint(one) == fingerprint(two)
    assert all(len(o.behaviour) == 3 for o in one.last_outcomes.values())
    again = state_from_dict(json.loads(json.dumps(state_to_dict(one))))
    assert again.last_outcomes == one.last_outcomes
    plain = train(config_with(config, novelty_weight=0), tmp_path / "plain", workers=1)
    assert population_to_dict(plain.population) != population_to_dict(one.population)
    assert all(o.behaviour == () for o in plain.last_outcomes.values())


def test_threshold_games_record_survives_a_checkpoint() -> None:
    """The games of genomes carried over are checkpointed: a run resumed from the document
    stops where the uninterrupted run stops, on the same genome and games."""
    config = small_config(fitness_threshold=100.0, threshold_games=9, generations=8)
    evaluator = InProcessEvaluator()
    try:
        whole = run_generations(start(config), evaluator, NoSink())
        half = run_generations(start(config), evaluator, NoSink(), stop_at=2)
        assert half.record
        assert all(len(r) >= 3 for r in half.record.values())
        again = state_from_dict(json.loads(json.dumps(state_to_dict(half))))
        assert again.record == half.record
        resumed = run_generations(again, evaluator, NoSink())
    finally:
        evaluator.close()
    assert whole.finished == "fitness_threshold"
    assert whole.best is not None
    assert resumed.best is not None
    assert len(whole.best.returns) >= 9
    assert (resumed.best.genome.key, resumed.best.returns) == (
        whole.best.genome.key,
        whole.best.returns,
    )
    assert len(resumed.history) == len(whole.history)
