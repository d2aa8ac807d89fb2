"""Pendulum, all games in numpy arrays, bit-identical to Gymnasium's ``PendulumEnv``.

``PendulumEnv.step`` mixes precisions the way numpy scalars do: the action is float32 (the
Box's dtype), so ``0.001 * u**2`` and ``3.0 / (m·l²) * u`` are float32 products (a Python
float meeting a float32 takes its type), then join the float64 state.  Here every operation
is the same, on whole rows; ``x**2`` of a scalar is the C library's ``pow`` / ``powf``,
emulated by ``acrobot._square`` and ``exact.square32``.  ``tests/unit/test_games_box.py``
compares games with Gymnasium step by step.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv
from gymnasium.utils import seeding
from numpy.typing import NDArray

from ezspark_common.evaluation.actions import box_actions
from ezspark_common.evaluation.envs import make_env
from ezspark_common.evaluation.games.acrobot import _square
from ezspark_common.evaluation.games.base import Games, StepResult
from ezspark_common.evaluation.games.exact import square32, stands_in, unchanged

IDS = ("Pendulum-v1",)
_MIRRORED = ("reset", "step", "_get_obs")
_CONSTANTS = ("max_speed", "max_torque", "dt", "g", "m", "l")


def supports(env: Any) -> bool:
    """True when ``env`` (unwrapped) is Gymnasium's PendulumEnv with plain constants."""
    if not unchanged(env, PendulumEnv, _MIRRORED):
        return False
    return all(
        isinstance(v := getattr(env, n), int | float) and math.isfinite(v) for n in _CONSTANTS
    )


@functools.cache
def available(env_id: str) -> bool:
    """Whether :class:`PendulumGames` may stand in for ``env_id`` on this machine."""
    return stands_in(
        env_id,
        IDS,
        supports,
        PendulumGames,
        (0, 1, 2, 3),
        60,
        lambda t, r: np.array([math.sin(t * 0.7 + r) * 2.5]),
    )


class PendulumGames(Games):
    """``rows`` Pendulum games; state is θ and θ̇ (float64), as PendulumEnv keeps them."""

    def __init__(self, env_id: str, rows: int) -> None:
        env = make_env(env_id)
        e: Any = env.unwrapped
        self.box = box_actions(env.action_space)
        self.limit = env.spec.max_episode_steps if env.spec else None
        self.max_torque, self.max_speed, self.dt = e.max_torque, e.max_speed, e.dt
        # The constant sub-products, formed in Python exactly as step forms them.
        self.gravity_c = 3 * e.g / (2 * e.l)
        self.torque_c = 3.0 / (e.m * e.l**2)
        env.close()
        self.th = np.zeros(rows)
        self.thdot = np.zeros(rows)
        self.steps = np.zeros(rows, dtype=np.int64)

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        starts: dict[int, NDArray[np.float64]] = {}
        high = np.array([np.pi, 1.0])  # PendulumEnv's default reset bounds
        for seed in seeds:
            if seed not in starts:
                rng, _ = seeding.np_random(int(seed))  # as PendulumEnv.reset(seed=seed)
                starts[seed] = rng.uniform(low=-high, high=high)
        state = np.stack([starts[s] for s in seeds], axis=1)
        self.th, self.thdot = state[0].copy(), state[1].copy()
        self.steps = np.zeros(len(seeds), dtype=np.int64)
        return self._obs(), None

    def _obs(self) -> NDArray[np.float64]:
        obs = np.stack((np.cos(self.th), np.sin(self.th), self.thdot), axis=1)
        return obs.astype(np.float32).astype(np.float64)

    def step(self, actions: NDArray[Any], active: NDArray[np.bool_]) -> StepResult:
        th, thdot = self.th, self.thdot
        u = np.clip(actions[:, 0].astype(np.float32), -self.max_torque, self.max_torque)
        normalized = ((th + np.pi) % (2 * np.pi)) - np.pi
        costs = _square(normalized) + 0.1 * _square(thdot)
        costs += 0.001 * square32(u)  # a float32 product, then widened
        push = self.gravity_c * np.sin(th) + self.torque_c * u  # float64 + float32
        newthdot = np.clip(thdot + push * self.dt, -self.max_speed, self.max_speed)
        self.th = th + newthdot * self.dt
        self.thdot = newthdot
        self.steps += 1
        done = (
            np.zeros(th.shape[0], dtype=np.bool_)
            if self.limit is None
            else self.steps >= self.limit
        )
        return self._obs(), -costs, done, None

    def select(self, rows: NDArray[np.int64]) -> None:
        self.th, self.thdot, self.steps = self.th[rows], self.thdot[rows], self.steps[rows]
