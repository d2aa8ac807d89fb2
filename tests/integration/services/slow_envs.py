"""A CartPole whose resets can be slowed down, to catch services in the middle of a task.

``EzSlowCartPole-v1`` plays exactly like CartPole-v1 (through the ordinary, non-vectorised
path); each reset sleeps ``EZSPARK_TEST_SLOW_RESET_S`` seconds when that variable is set.
Tests set it only for the service processes, so the in-test reference run stays fast.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

ENV_ID = "EzSlowCartPole-v1"
DELAY_VAR = "EZSPARK_TEST_SLOW_RESET_S"


class SlowCartPole(CartPoleEnv):
    """CartPole-v1 with an optional pause in ``reset``."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        delay = float(os.environ.get(DELAY_VAR) or 0.0)
        if delay > 0:
            time.sleep(delay)
        obs, info = super().reset(seed=seed, options=options)
        return np.asarray(obs), dict(info)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=f"{__name__}:SlowCartPole", max_episode_steps=500)
