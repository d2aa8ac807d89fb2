"""Vectorised MountainCar-v0 (discrete): bit-identical to Gymnasium's environment, step by step."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.mountain_car import MountainCarEnv
from numpy.typing import NDArray

from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.evaluation.games import make_games, stood_in, vectorised
from ezspark_common.evaluation.games.mountaincar import (
    DiscreteMountainCarGames,
    discrete_available,
)
from ezspark_common.evaluation.games.scalar import ScalarGames
from tests.support.games import Policy, assert_select_keeps_futures, play_both
from tests.support.genomes import random_genome

ENV_ID = "MountainCar-v0"


def _games(rows: int) -> DiscreteMountainCarGames:
    return DiscreteMountainCarGames(ENV_ID, rows)


def random_policy(obs: NDArray[np.float64], rng: np.random.Generator) -> int:
    """Uniform random push (the car mostly stays in the valley, against the left wall now
    and then: the velocity reset there is exercised)."""
    return int(rng.integers(3))


def pumping_policy(obs: NDArray[np.float64], rng: np.random.Generator) -> int:
    """Push along the velocity (reaches the flag in about 100 steps), with some noise."""
    if rng.random() < 0.2:
        return int(rng.integers(3))
    return 2 if obs[1] >= 0 else 0


@pytest.mark.parametrize("policy", [random_policy, pumping_policy])
def test_every_step_equals_gymnasium(policy: Policy) -> None:
    """Observations, rewards and done flags equal Gymnasium's for 32 seeds, to the flag
    (termination) or to the 200-step limit (truncation)."""
    ends = play_both(_games(32), ENV_ID, list(range(500, 532)), policy)
    reached = sum(term for _, term in ends)
    if policy is pumping_policy:
        assert reached >= 24, ends
    else:
        assert all(length == 200 and not term for length, term in ends)


def test_the_left_wall_stops_the_car_as_in_gymnasium() -> None:
    """Pushed right for 30 steps, then left, the car of these seeds swings into the wall at
    -1.2, where its velocity is reset to 0; every step still equals Gymnasium's."""
    seeds = [2, 3, 8, 11, 12, 20, 24, 25]
    calls: list[bool] = []  # one per row and step, rows in order

    def right_then_left(obs: NDArray[np.float64], rng: np.random.Generator) -> int:
        calls.append(bool(obs[0] <= -1.2))
        return 2 if len(calls) <= 30 * len(seeds) else 0

    play_both(_games(len(seeds)), ENV_ID, seeds, right_then_left)
    assert sum(calls) >= len(seeds)


def test_select_keeps_selected_futures() -> None:
    """After select, the kept games continue exactly like a fresh set of those games."""
    history = np.random.default_rng(0).integers(3, size=(90, 6))
    assert_select_keeps_futures(_games, [5, 6, 7, 8, 9, 10], history, 30)


def test_evaluate_batch_equals_ordinary_envs() -> None:
    """Through the batched evaluator, returns and lengths equal those with ordinary
    environments."""
    genomes = [random_genome(k, 2, 3, seed=40 + k, steps=8) for k in range(24)]
    seeds = [1, 2, 3]
    fast = evaluate_batch(genomes, GameSetup(ENV_ID, 200, -1.0, 2, 3), seeds)
    slow = evaluate_batch(genomes, GameSetup(ENV_ID, 200, -1.0, 2, 3), seeds, vector=False)
    assert [(o.returns, o.steps) for o in fast] == [(o.returns, o.steps) for o in slow]
    assert all(o.error is None for o in fast)


def test_registered_for_mountain_car() -> None:
    """MountainCar-v0 is vectorised; make_games picks the lockstep set unless vector=False."""
    assert vectorised(ENV_ID)
    assert stood_in(ENV_ID)
    assert isinstance(make_games(ENV_ID, 4, 2), DiscreteMountainCarGames)
    assert isinstance(make_games(ENV_ID, 4, 2, vector=False), ScalarGames)


def test_an_overridden_step_is_not_stood_in_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """MountainCar-v0 registered with a subclass that changes step is played by
    Gymnasium itself."""

    class Windy(MountainCarEnv):
        def step(self, action: int) -> tuple[object, float, bool, bool, dict[str, object]]:
            return super().step(action)  # type: ignore[no-any-return]

    spec = dataclasses.replace(gym.registry[ENV_ID], entry_point=Windy)  # type: ignore[arg-type]
    monkeypatch.setitem(gym.registry, ENV_ID, spec)
    discrete_available.cache_clear()
    try:
        assert not discrete_available(ENV_ID)
        assert isinstance(make_games(ENV_ID, 4, 2), ScalarGames)
    finally:
        discrete_available.cache_clear()  # the real registration is back after the test
