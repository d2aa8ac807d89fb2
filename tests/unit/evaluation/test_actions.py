"""From outputs to actions: the Box squashing, refused spaces, and Box games end to end."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from ezspark_common.evaluation.actions import ActionSpaceError, action_size, box_actions
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.evaluation.envs import EnvError, describe
from ezspark_common.neat.genome import initial_genome
from ezspark_common.neat.recurrent import ReferenceNetwork


def test_squash_maps_outputs_onto_the_bounds() -> None:
    """−1 → low, +1 → high, 0 → the middle, per dimension; never outside the bounds."""
    box = box_actions(spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 10.0]), dtype=np.float32))
    out = box.squash(np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [0.5, -0.5]]))
    assert out.tolist() == [[-2.0, 0.0], [2.0, 10.0], [0.0, 5.0], [1.0, 2.5]]
    assert box.size == 2
    wild = box.squash(np.array([[7.0, -7.0]]))  # softsign never gives these; still clipped
    assert wild.tolist() == [[2.0, 0.0]]


def test_for_env_uses_the_space_dtype_and_shape() -> None:
    """An action row is handed over in the Box's dtype and shape (here float32, 2×2)."""
    box = box_actions(spaces.Box(-1.0, 1.0, (2, 2), dtype=np.float32))
    assert box.size == 4
    act = box.for_env(box.squash(np.zeros((1, 4)))[0])
    assert act.dtype == np.float32
    assert act.shape == (2, 2)


@pytest.mark.parametrize(
    ("space", "words"),
    [
        (spaces.Box(-np.inf, np.inf, (2,)), "infinite bound"),
        (spaces.Box(np.array([0.0, -np.inf]), np.array([1.0, 1.0])), "infinite bound"),
        (spaces.MultiDiscrete([3, 2]), "MultiDiscrete action space, which EzSpark does not"),
        (spaces.MultiBinary(4), "MultiBinary action space, which EzSpark does not"),
        (spaces.Discrete(1), "one action"),
        (spaces.Tuple((spaces.Discrete(2),)), "Tuple action space"),
    ],
)
def test_unsupported_spaces_are_refused_clearly(space: Any, words: str) -> None:
    """Unbounded Box, MultiDiscrete, MultiBinary, one-action and other spaces say why."""
    with pytest.raises(ActionSpaceError, match=words):
        action_size(space)


def test_sizes_of_supported_spaces() -> None:
    """output_size is n for Discrete(n) and the flattened dimension for a bounded Box."""
    assert action_size(spaces.Discrete(3)) == 3
    assert action_size(spaces.Box(-1.0, 1.0, (2, 3))) == 6


def test_describe_reads_box_environments() -> None:
    """Pendulum-v1 and MountainCarContinuous-v0 have 1 action value each."""
    assert describe("Pendulum-v1").output_size == 1
    assert describe("MountainCarContinuous-v0").output_size == 1


class _Unbounded(gym.Env[Any, Any]):
    observation_space = spaces.Box(-1.0, 1.0, (1,))
    action_space = spaces.Box(-np.inf, np.inf, (1,))


def test_unbounded_environment_is_refused_by_id() -> None:
    """An environment with an unbounded Box is refused naming it and the reason."""
    gym.register("EzTestUnbounded-v0", entry_point=_Unbounded)
    try:
        with pytest.raises(EnvError, match=r"'EzTestUnbounded-v0' has a Box .* infinite bound"):
            describe("EzTestUnbounded-v0")
    finally:
        del gym.registry["EzTestUnbounded-v0"]


@pytest.mark.parametrize("vector", [True, False])
def test_box_game_equals_a_hand_written_loop(vector: bool) -> None:
    """Returns of Pendulum genomes equal a loop applying the documented squashing by hand."""
    rng = np.random.default_rng(4)
    genomes = [initial_genome(k, 3, 1, rng) for k in range(6)]
    seeds = [11, 12]
    got = evaluate_batch(genomes, GameSetup("Pendulum-v1", 200, -1e5, 3, 1), seeds, vector=vector)
    env = gym.make("Pendulum-v1", disable_env_checker=True)
    for genome, outcome in zip(genomes, got, strict=True):
        net = ReferenceNetwork(genome, 1)  # no hidden nodes: the same as feed-forward
        returns = []
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            total = 0.0
            for _ in range(200):
                (y,) = net.step(np.asarray(obs, np.float64))
                torque = min(max((y + 1.0) * 2.0 + -2.0, -2.0), 2.0)  # (y+1)·(high−low)/2 + low
                obs, reward, term, trunc, _ = env.step(np.array([torque], dtype=np.float32))
                total += float(reward)
                if term or trunc:
                    break
            returns.append(total)
        assert list(outcome.returns) == returns
