"""MountainCar and MountainCarContinuous, all games in numpy arrays, bit-identical to
Gymnasium's.

``MountainCarEnv`` (discrete, ``MountainCar-v0``) keeps its state in float64 throughout:
``velocity += (action - 1) * force + math.cos(3 * position) * (-gravity)`` adds one Python
float to a numpy float64, and only the observation is cast to float32.  The sum on the
right is formed first, so it is added to the velocity as one value, as here.

``Continuous_MountainCarEnv.step`` works on numpy scalars whose type changes: the reset
state is float64, every later state float32 (``np.array(..., dtype=np.float32)``), and a
Python float meeting a float32 scalar is cast to float32 first (NumPy 2's promotion rules),
comparisons included.  So the first step of a game runs in float64 and the later ones in
float32; both are computed for all rows and each row takes its own.  ``math.cos`` and
numpy's ``cos`` agree on float64 (checked with the rest by :func:`available`).

Actions must lie within the bounds, as the squashing of ``ezspark_common.evaluation.actions`` makes
them: outside, the environment clips with Python floats, a path not reproduced here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv
from gymnasium.envs.classic_control.mountain_car import MountainCarEnv
from gymnasium.utils import seeding
from numpy.typing import NDArray

from ezspark_common.evaluation.actions import box_actions
from ezspark_common.evaluation.envs import make_env
from ezspark_common.evaluation.games.base import Games, StepResult
from ezspark_common.evaluation.games.exact import stands_in, unchanged

IDS = ("MountainCarContinuous-v0",)
DISCRETE_IDS = ("MountainCar-v0",)
_MIRRORED = ("reset", "step")
_F32 = np.float32


@functools.cache
def available(env_id: str) -> bool:
    """Whether :class:`MountainCarGames` may stand in for ``env_id`` on this machine."""
    return stands_in(
        env_id,
        IDS,
        lambda e: unchanged(e, Continuous_MountainCarEnv, _MIRRORED),
        MountainCarGames,
        (0, 1, 2),
        200,
        lambda t, r: np.array([math.sin(t * 0.05 + r) * (0.3 + 0.35 * r)]),
    )


@functools.cache
def discrete_available(env_id: str) -> bool:
    """Whether :class:`DiscreteMountainCarGames` may stand in for ``env_id`` on this machine."""
    return stands_in(
        env_id,
        DISCRETE_IDS,
        lambda e: unchanged(e, MountainCarEnv, _MIRRORED),
        DiscreteMountainCarGames,
        (0, 1, 2),
        200,
        # Pumping along the velocity most of the time reaches the flag (termination too).
        lambda t, r: np.array((t * 7 + r) % 3 if (t + r) % 5 == 0 else 2 * (t // 30 % 2)),
    )


def _observed(pos: NDArray[np.float64], vel: NDArray[np.float64]) -> NDArray[np.float64]:
    """The observations Gymnasium hands out: the state's float32 values."""
    return np.stack((pos, vel), axis=1).astype(_F32).astype(np.float64)


def _reset_positions(seeds: Sequence[int]) -> NDArray[np.float64]:
    """Each game's start position, as the env's ``reset(seed=seed)`` draws it."""
    starts: dict[int, float] = {}
    for seed in seeds:
        if seed not in starts:
            rng, _ = seeding.np_random(int(seed))
            starts[seed] = float(rng.uniform(low=-0.6, high=-0.4))
    return np.array([starts[s] for s in seeds])


class _CarGames(Games):
    """What both cars share: the env's constants, per-row state and step count, reset and
    row selection; subclasses step."""

    continuous = False  # a Box action space: read its bounds for squashing

    def __init__(self, env_id: str, rows: int) -> None:
        env = make_env(env_id)
        self.e: Any = env.unwrapped
        if self.continuous:
            self.box = box_actions(env.action_space)
        self.limit = env.spec.max_episode_steps if env.spec else None
        env.close()
        self.pos, self.vel = np.zeros(rows), np.zeros(rows)
        self.steps = np.zeros(rows, dtype=np.int64)

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        self.pos = _reset_positions(seeds)
        self.vel = np.zeros(len(seeds))
        self.steps = np.zeros(len(seeds), dtype=np.int64)
        return _observed(self.pos, self.vel), None

    def select(self, rows: NDArray[np.int64]) -> None:
        self.pos, self.vel, self.steps = self.pos[rows], self.vel[rows], self.steps[rows]


class DiscreteMountainCarGames(_CarGames):
    """``rows`` games of ``MountainCar-v0``: position and velocity in float64, as the env
    keeps them; observations are their float32 values."""

    def step(self, actions: NDArray[Any], active: NDArray[np.bool_]) -> StepResult:
        e = self.e
        push = (actions.astype(np.int64) - 1).astype(np.float64) * e.force
        vel = self.vel + (push + np.cos(3 * self.pos) * (-e.gravity))
        vel = np.clip(vel, -e.max_speed, e.max_speed)
        pos = np.clip(self.pos + vel, e.min_position, e.max_position)
        self.vel = np.where((pos == e.min_position) & (vel < 0), 0.0, vel)
        self.pos = pos
        terminated = (pos >= e.goal_position) & (self.vel >= e.goal_velocity)
        self.steps += 1
        done = terminated if self.limit is None else terminated | (self.steps >= self.limit)
        return _observed(self.pos, self.vel), np.full(pos.shape[0], -1.0), done, None


class MountainCarGames(_CarGames):
    """``rows`` games; position and velocity (float64 arrays holding the env's values)."""

    continuous = True

    def step(self, actions: NDArray[Any], active: NDArray[np.bool_]) -> StepResult:
        e = self.e
        a = actions[:, 0].astype(_F32)
        force = np.minimum(np.maximum(a, _F32(e.min_action)), _F32(e.max_action))
        push = force * _F32(e.power)  # float32
        first = self.steps == 0
        p64, v64 = self._first_step(push)
        p32, v32 = self._later_step(push)
        pos = np.where(first, p64, p32.astype(np.float64))
        vel = np.where(first, v64, v32.astype(np.float64))
        goal = np.where(first, pos >= e.goal_position, p32 >= _F32(e.goal_position))
        terminated = goal & np.where(first, vel >= e.goal_velocity, v32 >= e.goal_velocity)
        a64 = a.astype(np.float64)
        reward = np.where(terminated, 100.0, 0.0) - (a64 * a64) * 0.1  # math.pow(a, 2)
        self.pos = pos.astype(_F32).astype(np.float64)  # the state is stored as float32
        self.vel = vel.astype(_F32).astype(np.float64)
        self.steps += 1
        done = terminated if self.limit is None else terminated | (self.steps >= self.limit)
        return np.stack((self.pos, self.vel), axis=1), reward, done, None

    def _first_step(
        self, push: NDArray[np.float32]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """A step from the float64 reset state (position, velocity before the cast)."""
        e = self.e
        dv = push - (0.0025 * np.cos(3 * self.pos)).astype(_F32)  # float32 - float → float32
        vel = np.clip(self.vel + dv, -e.max_speed, e.max_speed)
        pos = np.clip(self.pos + vel, e.min_position, e.max_position)
        vel = np.where((pos == e.min_position) & (vel < 0), 0.0, vel)
        return pos, vel

    def _later_step(
        self, push: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """A step from a float32 state: every constant is cast to float32 first."""
        e = self.e
        p, v = self.pos.astype(_F32), self.vel.astype(_F32)
        cos = np.cos((_F32(3) * p).astype(np.float64))  # math.cos of a float32 scalar
        v = v + (push - (0.0025 * cos).astype(_F32))
        top = _F32(e.max_speed)
        v = np.where(v > top, top, np.where(v < -top, -top, v))
        p = p + v
        low, high = _F32(e.min_position), _F32(e.max_position)
        p = np.where(p > high, high, np.where(p < low, low, p))
        v = np.where((p == low) & (v < 0), _F32(0.0), v)
        return p, v
