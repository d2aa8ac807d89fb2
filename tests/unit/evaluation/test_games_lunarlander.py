"""LunarLander's leaner step, discrete and continuous: bit-identical to Gymnasium's, step by
step and by outcome."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from numpy.typing import NDArray

from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.evaluation.games import make_games
from ezspark_common.evaluation.games.lunarlander import LunarLanderGames, _plain, available
from ezspark_common.evaluation.games.scalar import ScalarGames
from tests.support.games import play_both
from tests.support.genomes import random_genome

ENV, CONTINUOUS = "LunarLander-v3", "LunarLanderContinuous-v3"


def flying(obs: NDArray[np.float64], rng: np.random.Generator) -> int:
    """Fire the main engine when falling fast, steer against the tilt, else random."""
    if rng.random() < 0.3:
        return int(rng.integers(4))
    if obs[3] < -0.2:
        return 2
    return 1 if obs[4] > 0.1 else 3 if obs[4] < -0.1 else 0


def flying_continuous(obs: NDArray[np.float64], rng: np.random.Generator) -> list[float]:
    """The same flight with engine powers: main and side engines alone, together and off,
    at every power, and out-of-range values (clipped) now and then."""
    if rng.random() < 0.3:
        return rng.uniform(-1.3, 1.3, 2).tolist()
    main = float(np.clip(-4 * obs[3], -1, 1))
    return [main, float(np.clip(8 * obs[4], -1, 1))]


def test_every_step_equals_gymnasium_through_landings_crashes_and_truncation() -> None:
    """24 seeds, a policy that flies, lands and crashes, and games cut at 150 steps."""
    games = LunarLanderGames(ENV, 24)
    games.limit = 150  # Gymnasium's TimeLimit at 150 on the reference side too
    ends = play_both(games, ENV, list(range(500, 524)), flying, max_episode_steps=150)
    assert sum(length for length, _ in ends) > 24 * 60


def test_continuous_every_step_equals_gymnasium() -> None:
    """LunarLanderContinuous-v3: 24 seeds of flights with both engines at every power."""
    games = LunarLanderGames(CONTINUOUS, 24)
    games.limit = 150
    ends = play_both(
        games, CONTINUOUS, list(range(600, 624)), flying_continuous, max_episode_steps=150
    )
    assert sum(length for length, _ in ends) > 24 * 60
    assert any(term for _, term in ends)  # landings or crashes, not only the limit


@pytest.mark.parametrize(("env_id", "n_out"), [(ENV, 4), (CONTINUOUS, 2)])
def test_evaluation_outcomes_equal_gymnasiums_environments(env_id: str, n_out: int) -> None:
    """evaluate_batch's outcomes for random genomes equal those on ordinary environments."""
    assert available(env_id)
    assert isinstance(make_games(env_id, 2, 8), LunarLanderGames)
    assert isinstance(make_games(env_id, 2, 8, vector=False), ScalarGames)
    genomes = [random_genome(k, 8, n_out, seed=k) for k in range(30)]
    setup = GameSetup(env_id, 300, -1.0, 8, n_out)
    fast = evaluate_batch(genomes, setup, [7, 8, 9])
    slow = evaluate_batch(genomes, setup, [7, 8, 9], vector=False)
    assert fast == slow


def test_only_the_plain_lander_is_stood_in_for() -> None:
    """Wind, drawing and other environments keep Gymnasium's own step."""
    assert not available("BipedalWalker-v3")
    assert not available("CartPole-v1")
    assert _plain(gym.make(ENV).unwrapped)
    assert _plain(gym.make(ENV, continuous=True).unwrapped)
    for kwargs in ({"enable_wind": True}, {"render_mode": "rgb_array"}):
        assert not _plain(gym.make(ENV, **kwargs).unwrapped), kwargs
