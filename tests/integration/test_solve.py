"""The embedded trainer really learns: CartPole-v1 and Acrobot-v1 reach their thresholds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ezspark_common.config import config_with, load_config
from ezspark_common.trainer.embedded import run_embedded
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.training import TrainingState, start
from tests.support.configs import REPO


def _solve(example: str, tmp_path: Path, label: str, **overrides: Any) -> TrainingState:
    """Train ``examples/<example>`` embedded on one worker; print generations and time."""
    config = config_with(load_config(REPO / "examples" / example), **overrides)
    evaluator = InProcessEvaluator()
    started = time.perf_counter()
    try:
        state = run_embedded(start(config), evaluator, tmp_path)
    finally:
        evaluator.close()
    print(f"{label}: {len(state.history)} generations, {time.perf_counter() - started:.1f} s")
    return state


@pytest.mark.parametrize("seed", range(10))
def test_cartpole_reaches_475(seed: int, tmp_path: Path) -> None:
    """examples/cartpole.json reaches a mean return of 475 over 5 games, for 10 of 10 seeds."""
    state = _solve("cartpole.json", tmp_path, f"cartpole seed {seed}", seed=seed, generations=50)
    assert state.finished == "fitness_threshold"
    assert state.best is not None
    assert state.best.fitness >= 475


def test_acrobot_reaches_minus_100(tmp_path: Path) -> None:
    """examples/acrobot.json reaches a mean return of -100 within its generation budget."""
    state = _solve("acrobot.json", tmp_path, "acrobot", generations=60)
    assert state.finished == "fitness_threshold"
    assert state.best is not None
    assert state.best.fitness >= -100
