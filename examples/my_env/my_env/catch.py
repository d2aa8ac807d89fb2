"""Catch: balls fall one after another; move the paddle under each to catch it."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

FALL = 0.05  # how far a ball falls per step: 20 steps from the top
PADDLE_STEP = 0.05  # how far the paddle moves per step
REACH = 0.1  # a ball within this of the paddle's centre is caught


class CatchEnv(gym.Env[np.ndarray, int]):
    """``balls`` balls per game, each from a random column with a random drift (it bounces
    off the walls). Actions: 0 left, 1 stay, 2 right. Reward +1 per ball caught, -1 per
    ball missed. Observation: ball x, ball height, paddle x, ball drift (all float32).

    Every random number comes from ``self.np_random``, which ``reset(seed=…)`` seeds, and
    ``reset`` starts everything afresh: the same seed and actions give the same game,
    which EzSpark checks (``ezspark validate``) and relies on.
    """

    def __init__(self, balls: int = 10) -> None:
        self.balls = balls
        self.observation_space = spaces.Box(
            np.array([0.0, 0.0, 0.0, -0.02], dtype=np.float32),
            np.array([1.0, 1.0, 1.0, 0.02], dtype=np.float32),
            dtype=np.float32,
        )
        self.action_space = spaces.Discrete(3)
        self._ball = (0.5, 1.0, 0.0)  # x, height, drift
        self._paddle = 0.5
        self._left = balls

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._paddle = 0.5
        self._left = self.balls
        self._drop()
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._paddle = min(1.0, max(0.0, self._paddle + (int(action) - 1) * PADDLE_STEP))
        x, height, drift = self._ball
        x, height = x + drift, height - FALL
        if not 0.0 <= x <= 1.0:  # bounce off the wall
            x, drift = min(1.0, max(0.0, x)), -drift
        self._ball = (x, height, drift)
        reward = 0.0
        if height <= 0.0:
            reward = 1.0 if abs(x - self._paddle) <= REACH else -1.0
            self._left -= 1
            self._drop()
        return self._obs(), reward, self._left == 0, False, {}

    def _drop(self) -> None:
        x = float(self.np_random.uniform(0.0, 1.0))
        self._ball = (x, 1.0, float(self.np_random.uniform(-0.02, 0.02)))

    def _obs(self) -> np.ndarray:
        x, height, drift = self._ball
        return np.array([x, height, self._paddle, drift], dtype=np.float32)
