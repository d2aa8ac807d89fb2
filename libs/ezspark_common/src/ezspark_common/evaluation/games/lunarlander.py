"""LunarLander-v3 and LunarLanderContinuous-v3 (no wind), stepped leaner than Gymnasium,
bit for bit the same.

Box2D's world step is about half of a game's time; Gymnasium's ``step`` around it (an
action-space check, two random draws through ``uniform``, the state through numpy
scalars) and its wrappers are most of the rest.  Each row here is Gymnasium's own
environment, reset by Gymnasium (terrain, initial push), and only ``step`` is done again
with the same Box2D calls and the same floating-point expressions in the same order:
``math.sqrt`` where Gymnasium calls ``np.sqrt`` on a Python float (both correctly
rounded), and ``2·U − 1`` for ``uniform(−1, 1)`` (what numpy computes: ``low + range·U``,
and the doubling is exact).  The particles Gymnasium draws when rendering are not
created; they only collide with the ground, never the lander.  :func:`available` replays
games against Gymnasium on this machine before standing in, as every exact set does.

Continuous actions go through Gymnasium's casts (float32 as the action space has them,
clipped to [-1, 1], then float64); the engine powers are then the same float64 values
Gymnasium's ``np.clip`` and ``np.sign`` give, and both engines may fire in one step, main
first.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.envs.box2d import lunar_lander as ll
from numpy.typing import NDArray

from ezspark_common.evaluation.actions import box_actions
from ezspark_common.evaluation.envs import make_env
from ezspark_common.evaluation.failures import failure
from ezspark_common.evaluation.games.base import Games, StepResult
from ezspark_common.evaluation.games.exact import stands_in, unchanged
from ezspark_common.evaluation.games.scalar import EnvPool

IDS = ("LunarLander-v3", "LunarLanderContinuous-v3")
_MIRRORED = ("reset", "step")
_SCALE, _FPS = ll.SCALE, ll.FPS
_MAIN_POWER, _SIDE_POWER = ll.MAIN_ENGINE_POWER, ll.SIDE_ENGINE_POWER
_HALF_W, _HALF_H = ll.VIEWPORT_W / _SCALE / 2, ll.VIEWPORT_H / _SCALE / 2
_LEG_DOWN = ll.LEG_DOWN / _SCALE


def _plain(env: Any) -> bool:
    """Gymnasium's own class and physics, no wind, not drawing."""
    return (
        unchanged(env, ll.LunarLander, _MIRRORED)
        and type(env) is ll.LunarLander
        and not env.enable_wind
        and env.render_mode is None
    )


@functools.cache
def available(env_id: str) -> bool:
    """Whether :class:`LunarLanderGames` may stand in for ``env_id`` on this machine."""
    # Every action (each engine alone, both, neither; powers across their ranges), in runs
    # long enough to fly, land and crash.
    probe = _continuous_probe if _continuous(env_id) else _discrete_probe
    return stands_in(env_id, IDS, _plain, LunarLanderGames, (0, 1, 2, 3), 400, probe)


def _continuous(env_id: str) -> bool:
    env = make_env(env_id)
    try:
        return bool(getattr(env.unwrapped, "continuous", False))
    finally:
        env.close()


def _discrete_probe(t: int, row: int) -> NDArray[Any]:
    return np.array((t // (3 + row)) % 4)


def _continuous_probe(t: int, row: int) -> NDArray[Any]:
    phase = t // (3 + row)
    return np.array([math.sin(0.7 * phase + row), 1.1 * math.cos(0.3 * t + 2 * row)])


class LunarLanderGames(Games):
    """``rows`` games on Gymnasium's environments (from ``envs``, reused), stepped here."""

    def __init__(self, env_id: str, rows: int, envs: EnvPool | None = None) -> None:
        wrapped = (envs if envs is not None else EnvPool()).take(env_id, rows)
        self.envs: list[Any] = [e.unwrapped for e in wrapped]
        spec = wrapped[0].spec if wrapped else None
        self.continuous = bool(self.envs and self.envs[0].continuous)
        self.box = box_actions(wrapped[0].action_space) if self.continuous else None
        self.limit = spec.max_episode_steps if spec is not None else None  # TimeLimit's
        self.obs32 = np.zeros((rows, 8), dtype=np.float32)
        self.steps = np.zeros(rows, dtype=np.int64)

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        errors: list[str | None] = [None] * len(seeds)
        for r, seed in enumerate(seeds):
            try:
                obs, _ = self.envs[r].reset(seed=int(seed))
                self.obs32[r] = obs
            except Exception as exc:
                errors[r] = failure("reset", exc)
        self.steps[:] = 0
        return self.obs32.astype(np.float64), errors if any(errors) else None

    def step(self, actions: NDArray[Any], active: NDArray[np.bool_]) -> StepResult:
        rows = self.obs32.shape[0]
        reward = np.zeros(rows)
        done = np.zeros(rows, dtype=np.bool_)
        errors: list[str | None] | None = None
        engines = _continuous_engines(actions) if self.continuous else _discrete_engines(actions)
        for r in np.flatnonzero(active).tolist():
            try:
                state, reward[r], done[r] = _step(self.envs[r], *engines[r])
                self.obs32[r] = state
            except Exception as exc:
                errors = errors or [None] * rows
                errors[r] = failure("step", exc)
        self.steps += active
        if self.limit is not None:
            done |= self.steps >= self.limit
        return self.obs32.astype(np.float64), reward, done, errors

    def select(self, rows: NDArray[np.int64]) -> None:
        self.envs = [self.envs[r] for r in rows.tolist()]
        self.obs32, self.steps = self.obs32[rows], self.steps[rows]


Engines = tuple[float, float, float]  # main power, side power, side direction
# By discrete action: 0 none, 1 the left engine, 2 the main one, 3 the right one.
_DISCRETE: tuple[Engines, ...] = (
    (0.0, 0.0, 0.0),
    (0.0, 1.0, -1.0),
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 1.0),
)


def _discrete_engines(actions: NDArray[Any]) -> list[Engines]:
    """Per row, the engines its discrete action fires."""
    return [_DISCRETE[a] for a in actions.astype(np.int64).tolist()]


def _continuous_engines(actions: NDArray[Any]) -> list[Engines]:
    """Per row, as Gymnasium reads a Box action: the main engine above 0 at power 0.5 to 1,
    a side engine beyond ±0.5 at its magnitude (both may fire)."""
    clipped = np.clip(actions.astype(np.float32), -1, +1).astype(np.float64)
    out = []
    for main, lateral in clipped[:, :2].tolist():
        m_power = (min(max(main, 0.0), 1.0) + 1.0) * 0.5 if main > 0.0 else 0.0
        fires = abs(lateral) > 0.5
        s_power = min(max(abs(lateral), 0.5), 1.0) if fires else 0.0
        out.append((m_power, s_power, (1.0 if lateral > 0 else -1.0) if fires else 0.0))
    return out


def _step(
    env: Any, m_power: float, s_power: float, direction: float
) -> tuple[list[float], float, bool]:
    """``LunarLander.step`` without wind, the engines already read from the action: state,
    reward, terminated."""
    lander = env.lander
    angle = lander.angle  # one read through SWIG, not two
    tip0, tip1 = math.sin(angle), math.cos(angle)
    side0, side1 = -tip1, tip0
    u0, u1 = env.np_random.random(2).tolist()
    d0, d1 = (u0 * 2.0 - 1.0) / _SCALE, (u1 * 2.0 - 1.0) / _SCALE
    if m_power:
        ox = tip0 * (ll.MAIN_ENGINE_Y_LOCATION / _SCALE + 2 * d0) + side0 * d1
        oy = -tip1 * (ll.MAIN_ENGINE_Y_LOCATION / _SCALE + 2 * d0) - side1 * d1
        pos = lander.position
        at = (pos[0] + ox, pos[1] + oy)
        push = (-ox * _MAIN_POWER * m_power, -oy * _MAIN_POWER * m_power)
        lander.ApplyLinearImpulse(push, at, True)
    if s_power:
        ox = tip0 * d0 + side0 * (3 * d1 + direction * ll.SIDE_ENGINE_AWAY / _SCALE)
        oy = -tip1 * d0 - side1 * (3 * d1 + direction * ll.SIDE_ENGINE_AWAY / _SCALE)
        pos = lander.position
        at = (
            pos[0] + ox - tip0 * 17 / _SCALE,
            pos[1] + oy + tip1 * ll.SIDE_ENGINE_HEIGHT / _SCALE,
        )
        push = (-ox * _SIDE_POWER * s_power, -oy * _SIDE_POWER * s_power)
        lander.ApplyLinearImpulse(push, at, True)
    env.world.Step(1.0 / _FPS, 6 * 30, 2 * 30)
    return _after(env, lander, m_power, s_power)


def _after(
    env: Any, lander: Any, m_power: float, s_power: float
) -> tuple[list[float], float, bool]:
    pos, vel = lander.position, lander.linearVelocity
    s0 = (pos.x - _HALF_W) / _HALF_W
    s1 = (pos.y - (env.helipad_y + _LEG_DOWN)) / _HALF_H
    s2, s3 = vel.x * _HALF_W / _FPS, vel.y * _HALF_H / _FPS
    s4, s5 = lander.angle, 20.0 * lander.angularVelocity / _FPS
    c0 = 1.0 if env.legs[0].ground_contact else 0.0
    c1 = 1.0 if env.legs[1].ground_contact else 0.0
    shaping = (
        -100 * math.sqrt(s0 * s0 + s1 * s1)
        - 100 * math.sqrt(s2 * s2 + s3 * s3)
        - 100 * abs(s4)
        + 10 * c0
        + 10 * c1
    )
    reward = 0.0 if env.prev_shaping is None else shaping - env.prev_shaping
    env.prev_shaping = shaping
    reward -= m_power * 0.30
    reward -= s_power * 0.03
    terminated = False
    if env.game_over or abs(s0) >= 1.0:
        terminated, reward = True, -100.0
    if not lander.awake:
        terminated, reward = True, 100.0
    return [s0, s1, s2, s3, s4, s5, c0, c1], reward, terminated
