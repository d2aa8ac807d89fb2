"""CartPoles slowed down on purpose: resets (to catch services mid-task) or steps (scale-out).

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

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        delay = float(os.environ.get(DELAY_VAR) or 0.0)
        if delay > 0:
            time.sleep(delay)
        obs, info = super().reset(seed=seed, options=options)
        return np.asarray(obs), dict(info)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=f"{__name__}:SlowCartPole", max_episode_steps=500)


SLEEPY_ID = "EzSleepyCartPole-v1"
STEP_SLEEP_VAR = "EZSPARK_TEST_STEP_SLEEP_S"


class SleepyCartPole(CartPoleEnv):
    """CartPole-v1 whose every ``step`` first waits (default 1 ms, no CPU): an environment
    dominated by its own latency (a simulator, a robot, a remote game) for scale-out runs."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        self._sleep = float(os.environ.get(STEP_SLEEP_VAR) or 0.001)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        time.sleep(self._sleep)
        obs, reward, terminated, truncated, info = super().step(action)
        return np.asarray(obs), float(reward), terminated, truncated, dict(info)


if SLEEPY_ID not in gym.registry:
    gym.register(SLEEPY_ID, entry_point=f"{__name__}:SleepyCartPole", max_episode_steps=500)
