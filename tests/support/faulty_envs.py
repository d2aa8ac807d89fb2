"""Deliberately broken environments for fault tests, registered under ``EzTest/…`` ids."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class _Base(gym.Env[np.ndarray, int]):
    """Two inputs, two actions; one reward per step; the fault comes from subclasses."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float64)
    action_space = spaces.Discrete(2)

    def __init__(self, fail_at: int = 3) -> None:
        self.fail_at = fail_at
        self.t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, 2), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self.np_random.uniform(-1, 1, 2), 1.0, self.t >= 10, False, {}


class RaisingEnv(_Base):
    """Raises from ``step`` once ``fail_at`` steps were taken."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.t + 1 >= self.fail_at:
            raise RuntimeError("boom")
        return super().step(action)


class NaNRewardEnv(_Base):
    """Returns a NaN reward at step ``fail_at``."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, rew, term, trunc, info = super().step(action)
        return obs, float("nan") if self.t >= self.fail_at else rew, term, trunc, info


class EndlessEnv(_Base):
    """Never terminates nor truncates."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, rew, _, _, info = super().step(action)
        return obs, rew, False, False, info


class ActionEchoEnv(_Base):
    """Rewards action 1 only, so fitness depends on what the network chose."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, _, term, trunc, info = super().step(action)
        return obs, float(action), term, trunc, info


class RaiseOnActionOneEnv(_Base):
    """Raises whenever the agent picks action 1: whether it fails depends on the genome."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if action == 1:
            raise ValueError("action 1 is forbidden")
        return super().step(action)


class GlobalRandomEnv(_Base):
    """Draws its reward from the global numpy generator: the same seed, another game."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, _, term, trunc, info = super().step(action)
        return obs, float(np.random.random()), term, trunc, info  # the fault: a global generator


class CarryOverEnv(_Base):
    """Its first observation counts the games this instance played: state leaks between games."""

    def __init__(self, fail_at: int = 3) -> None:
        super().__init__(fail_at)
        self.games = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed)
        self.games += 1
        return obs + self.games, info


class SleepingEnv(_Base):
    """Blocks for ever in its ``fail_at``-th step, as a deadlocked environment would."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        while self.t + 1 >= self.fail_at:
            time.sleep(3600)
        return super().step(action)


class SpinningEnv(_Base):
    """Loops for ever in Python when the agent picks action 1, swallowing what it can."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        while action == 1:
            try:
                self.t += 0  # busy: never leaves Python code
            except Exception:  # a careless environment must not swallow the hang
                continue
        return super().step(action)


class StuckResetEnv(_Base):
    """``reset`` never returns for an odd seed."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        while seed is not None and seed % 2:
            time.sleep(3600)
        return super().reset(seed=seed)


_BUILT = [0]  # instances built in this process, for FirstInstanceEnv


class FirstInstanceEnv(_Base):
    """Only the first instance of a process is seeded from reset: a second one is not."""

    def __init__(self, fail_at: int = 3) -> None:
        super().__init__(fail_at)
        _BUILT[0] += 1
        self.offset = 0.0 if _BUILT[0] % 2 else 0.5

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed)
        return obs * 0 + self.offset, info


def register() -> None:
    """Register every faulty environment once."""
    for name, cls in (
        ("Raise", RaisingEnv),
        ("NaN", NaNRewardEnv),
        ("Endless", EndlessEnv),
        ("Echo", ActionEchoEnv),
        ("RaiseOnOne", RaiseOnActionOneEnv),
        ("GlobalRandom", GlobalRandomEnv),
        ("CarryOver", CarryOverEnv),
        ("FirstInstance", FirstInstanceEnv),
        ("Sleep", SleepingEnv),
        ("Spin", SpinningEnv),
        ("StuckReset", StuckResetEnv),
    ):
        env_id = f"EzTest/{name}-v0"
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=cls)
