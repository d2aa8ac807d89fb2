"""CartPole with the velocities hidden: solved with ``recurrent``, never feed-forward."""

from __future__ import annotations

from pathlib import Path

import pytest

from ezspark_common.config import TrainingConfig, config_with, load_config
from ezspark_common.evaluation.masked_envs import NO_VELOCITY_ID
from ezspark_common.neat.genome import has_cycle
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.generations import NoSink, run_generations
from ezspark_common.trainer.training import start
from tests.support.configs import EXAMPLES


def _config(recurrent: bool, seed: int) -> TrainingConfig:
    """examples/cartpole.json on the velocity-free variant, population capped at 150."""
    return config_with(
        load_config(EXAMPLES / "cartpole.json"),
        gym_game_name=NO_VELOCITY_ID,
        input_size=2,
        max_population=150,
        generations=50,
        alone_training_iterations=0,
        safeness=0.0,
        seed=seed,
        recurrent=recurrent,
    )


def _best(config: TrainingConfig) -> float:
    state = run_generations(start(config), InProcessEvaluator(), NoSink())
    assert state.best is not None
    return state.best.fitness


@pytest.mark.parametrize("seed", [0, 1])
def test_recurrent_reaches_475_feed_forward_does_not(seed: int) -> None:
    """Within 50 generations memory reaches the 475 threshold; without it, far from it."""
    assert _best(_config(True, seed)) >= 475.0
    assert _best(_config(False, seed)) < 200.0


def test_recurrent_run_is_the_same_with_one_or_two_workers(tmp_path: Path) -> None:
    """Same config and seed: the same recurrent population, loops included, for 1 or 2 workers."""
    from tests.support.runs import fingerprint, train

    config = config_with(_config(True, 3), generations=12, fitness_threshold=None, safeness=0.5)
    one = train(config, tmp_path / "w1", workers=1)
    two = train(config, tmp_path / "w2", workers=2)
    assert fingerprint(one) == fingerprint(two)
    assert any(has_cycle(g.src, g.dst) for g in one.population.genomes.values())
