"""Partially observed variants EzSpark registers: tasks that need a network with memory.

``EzCartPoleNoVelocity-v1`` is CartPole-v1 showing only the cart position and the pole
angle (observation values 0 and 2): the velocities must be inferred from successive
observations, which a feed-forward network cannot do.  Importing this module registers it
(``ezspark_common.evaluation.envs`` does), and ``games.cartpole`` runs it in lockstep.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

NO_VELOCITY_ID = "EzCartPoleNoVelocity-v1"
VISIBLE = (0, 2)  # x and θ of CartPole's (x, ẋ, θ, θ̇)


class HideVelocities(gym.ObservationWrapper[NDArray[np.float32], Any, NDArray[np.float32]]):
    """CartPole with the two velocities removed from every observation."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        box = env.observation_space
        assert isinstance(box, spaces.Box)
        cols = list(VISIBLE)
        self.observation_space = spaces.Box(box.low[cols], box.high[cols], dtype=np.float32)

    def observation(self, observation: NDArray[np.float32]) -> NDArray[np.float32]:
        """Keep only the position and the angle."""
        return np.asarray(observation[list(VISIBLE)], dtype=np.float32)


def make_no_velocity(**kwargs: Any) -> gym.Env[Any, Any]:
    """The registered entry point: CartPole-v1's physics, its time limit added by make."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    return HideVelocities(CartPoleEnv(**kwargs))


if NO_VELOCITY_ID not in gym.registry:
    gym.register(
        NO_VELOCITY_ID,
        entry_point="ezspark_common.evaluation.masked_envs:make_no_velocity",
        max_episode_steps=500,
        reward_threshold=475.0,
    )
