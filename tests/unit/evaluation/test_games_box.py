"""Lockstep Pendulum and MountainCarContinuous: bit-identical to Gymnasium, step by step."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.evaluation.games import Games, make_games, vectorised
from ezspark_common.evaluation.games.exact import square32
from ezspark_common.evaluation.games.mountaincar import MountainCarGames
from ezspark_common.evaluation.games.pendulum import PendulumGames
from ezspark_common.evaluation.games.scalar import ScalarGames
from tests.support.games import Policy, assert_select_keeps_futures, play_both
from tests.support.genomes import random_genome

PENDULUM, CAR = "Pendulum-v1", "MountainCarContinuous-v0"


def uniform(bound: float) -> Policy:
    """Uniform actions within ±bound, the bounds themselves now and then."""

    def policy(obs: NDArray[np.float64], rng: np.random.Generator) -> float:
        if rng.random() < 0.1:
            return bound if rng.random() < 0.5 else -bound
        return float(rng.uniform(-bound, bound))

    return policy


def pumping(obs: NDArray[np.float64], rng: np.random.Generator) -> float:
    """Push along the car's velocity (it reaches the flag), with some noise."""
    return float(rng.uniform(-1, 1)) if rng.random() < 0.2 else (1.0 if obs[1] >= 0 else -1.0)


def test_square32_is_numpy_float32_scalar_power() -> None:
    """square32 equals numpy's float32 scalar u**2 (C powf) bit for bit, where u*u does not."""
    u = np.random.default_rng(5).uniform(-2, 2, 300_000).astype(np.float32)
    expected = np.array([v**2 for v in u], dtype=np.float32)
    assert np.array_equal(square32(u), expected)
    assert not np.array_equal((u.astype(np.float64) ** 2).astype(np.float32), expected)


def test_pendulum_every_step_equals_gymnasium() -> None:
    """Pendulum-v1: observations, rewards and done flags equal Gymnasium's for 24 seeds."""
    play_both(PendulumGames(PENDULUM, 24), PENDULUM, list(range(300, 324)), uniform(2.0))


@pytest.mark.parametrize("policy", [uniform(1.0), pumping])
def test_mountain_car_every_step_equals_gymnasium(policy: Policy) -> None:
    """MountainCarContinuous-v0 equals Gymnasium to the bit, reaching the flag or not."""
    ends = play_both(MountainCarGames(CAR, 16), CAR, list(range(40, 56)), policy)
    if policy is pumping:
        assert sum(term for _, term in ends) >= 12  # termination (the +100) is exercised too


@pytest.mark.parametrize(("env_id", "cls"), [(PENDULUM, PendulumGames), (CAR, MountainCarGames)])
def test_select_keeps_selected_futures(env_id: str, cls: type[Games]) -> None:
    """After select, the kept games continue exactly like a fresh set of those games."""
    history = np.random.default_rng(0).uniform(-1, 1, size=(90, 6, 1))
    assert_select_keeps_futures(
        lambda rows: cls(env_id, rows),  # type: ignore[call-arg]
        [5, 6, 7, 8, 9, 10],
        history,
        30,
    )


@pytest.mark.parametrize(("env_id", "n_in"), [(PENDULUM, 3), (CAR, 2)])
def test_evaluate_batch_equals_ordinary_envs(env_id: str, n_in: int) -> None:
    """Through the batched evaluator, returns equal those with ordinary environments."""
    genomes = [random_genome(k, n_in, 1, seed=90 + k, steps=8) for k in range(20)]
    fast = evaluate_batch(genomes, GameSetup(env_id, 300, -1e6, n_in, 1), [1, 2, 3])
    slow = evaluate_batch(genomes, GameSetup(env_id, 300, -1e6, n_in, 1), [1, 2, 3], vector=False)
    assert [(o.returns, o.steps) for o in fast] == [(o.returns, o.steps) for o in slow]
    assert all(o.error is None for o in fast)


def test_registered_for_box_envs() -> None:
    """Both ids are vectorised; make_games picks the lockstep sets unless vector=False."""
    assert vectorised(PENDULUM)
    assert vectorised(CAR)
    assert isinstance(make_games(PENDULUM, 4, 3), PendulumGames)
    assert isinstance(make_games(CAR, 4, 2), MountainCarGames)
    assert isinstance(make_games(PENDULUM, 4, 3, vector=False), ScalarGames)
