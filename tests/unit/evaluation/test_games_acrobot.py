"""Vectorised Acrobot: bit-identical to Gymnasium's environment, step by step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from numpy.typing import NDArray

from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.evaluation.games import make_games, vectorised
from ezspark_common.evaluation.games.acrobot import AcrobotGames, _square, supports
from ezspark_common.evaluation.games.scalar import ScalarGames
from tests.support.games import Policy, assert_select_keeps_futures, play_both
from tests.support.genomes import random_genome

ENV_ID = "Acrobot-v1"


def random_policy(obs: NDArray[np.float64], rng: np.random.Generator) -> int:
    """Uniform random torque."""
    return int(rng.integers(3))


def pumping_policy(obs: NDArray[np.float64], rng: np.random.Generator) -> int:
    """Torque along the second joint's velocity (swings up in ~70 steps), with some noise."""
    if rng.random() < 0.3:
        return int(rng.integers(3))
    return 2 if obs[5] > 0 else 0


def test_square_is_numpy_scalar_power() -> None:
    """_square equals numpy's scalar x**2 (C pow) bit for bit, where plain x*x does not."""
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [
            rng.uniform(-30, 30, 100_000),
            rng.normal(0, 1e-3, 50_000),
            rng.uniform(0.5, 2.5, 50_000),
            np.array([0.0, -0.0, 1.0, 2.0**-500]),
        ]
    )
    expected = np.array([v**2 for v in x])
    assert np.array_equal(_square(x.copy()), expected)
    assert np.array_equal(_square(x.reshape(2, -1)), expected.reshape(2, -1))
    assert not np.array_equal(x * x, expected)  # the slow path is needed


@pytest.mark.parametrize("policy", [random_policy, pumping_policy])
def test_every_step_equals_gymnasium(policy: Policy) -> None:
    """Observations, rewards and done flags equal Gymnasium's to the bit for 24 seeds."""
    ends = play_both(AcrobotGames(ENV_ID, 24), ENV_ID, list(range(100, 124)), policy)
    limit = gym.spec(ENV_ID).max_episode_steps
    assert all(term or length == limit for length, term in ends)
    if policy is pumping_policy:
        assert sum(term for _, term in ends) >= 12  # termination is exercised too
    else:
        assert any(length == limit for length, _ in ends)  # and truncation


def test_select_keeps_selected_futures() -> None:
    """After select, the kept games continue exactly like a fresh set of those games."""
    history = np.random.default_rng(0).integers(0, 3, size=(120, 6))
    assert_select_keeps_futures(
        lambda rows: AcrobotGames(ENV_ID, rows), [5, 6, 7, 8, 9, 10], history, 40
    )


def test_evaluate_batch_equals_ordinary_envs() -> None:
    """Through the batched evaluator, returns equal those with ordinary environments."""
    genomes = [random_genome(k, 6, 3, seed=70 + k, steps=8) for k in range(24)]
    seeds = [1, 2, 3]
    fast = evaluate_batch(genomes, GameSetup(ENV_ID, 500, 0.0, 6, 3), seeds)
    slow = evaluate_batch(genomes, GameSetup(ENV_ID, 500, 0.0, 6, 3), seeds, vector=False)
    assert [(o.returns, o.steps) for o in fast] == [(o.returns, o.steps) for o in slow]
    assert all(o.error is None for o in fast)


def test_registered_for_acrobot() -> None:
    """Acrobot-v1 is vectorised; make_games picks AcrobotGames unless vector=False."""
    assert vectorised(ENV_ID)
    assert isinstance(make_games(ENV_ID, 4, 6), AcrobotGames)
    assert isinstance(make_games(ENV_ID, 4, 6, vector=False), ScalarGames)


def test_unreproducible_variants_are_refused() -> None:
    """Torque noise (a per-env random stream) or an overridden method is not supported."""
    env = gym.make(ENV_ID, disable_env_checker=True).unwrapped
    assert supports(env)
    env.torque_noise_max = 0.1  # type: ignore[attr-defined]
    assert not supports(env)

    class Tweaked(type(env)):  # type: ignore[misc]
        def _dsdt(self, s_augmented: NDArray[np.float64]) -> tuple[float, ...]:
            return tuple(super()._dsdt(s_augmented))

    assert not supports(Tweaked())
