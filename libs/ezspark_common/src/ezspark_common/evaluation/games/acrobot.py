"""Acrobot, all games in numpy arrays, bit-identical to Gymnasium's ``AcrobotEnv``.

``AcrobotEnv.step`` integrates one Runge-Kutta step over a handful of numpy scalars per
call, so a Python loop over environments spends nearly all its time on interpreter
overhead.  Here the same arithmetic runs on whole rows at once.  Every floating-point
operation is the one Gymnasium performs, in its order and association (the constant
sub-products are formed in Python exactly as ``_dsdt`` forms them, left to right), so a
game equals ``gym.make(id).reset(seed=s)`` followed by ``step`` bit for bit
(``tests/unit/test_games_acrobot.py`` checks this step by step).

Two details need care:

* ``x**2`` on a numpy scalar is the C library's ``pow``, which is *not* always the
  correctly rounded ``x*x`` (about 1 value in 1,200 differs).  :func:`_square` computes
  ``x*x`` and hands the few values whose exact square lies close to a rounding boundary
  to ``pow`` itself.
* The reset state is float32 (Gymnasium casts the draw), and the first observation is
  computed from it in float32; later states are float64.

:func:`available` is what the registry consults: the id must be known, :func:`supports`
must accept the environment, and a short trajectory must agree with Gymnasium's on this
machine (a guard against a different maths library, not a proof).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.acrobot import AcrobotEnv
from gymnasium.utils import seeding
from numpy.typing import NDArray

from ezspark_common.evaluation.envs import make_env
from ezspark_common.evaluation.games.base import Games, StepResult
from ezspark_common.evaluation.games.exact import stands_in

IDS = ("Acrobot-v1",)
RESET_BOUND = 0.1  # AcrobotEnv.reset draws each state value from ±0.1
GRAVITY = 9.8  # a local of AcrobotEnv._dsdt, not an attribute, so it cannot be read
_MIRRORED = ("reset", "step", "_dsdt", "_terminal", "_get_ob")
_CONSTANTS = (
    "dt",
    "LINK_LENGTH_1",
    "LINK_LENGTH_2",
    "LINK_MASS_1",
    "LINK_MASS_2",
    "LINK_COM_POS_1",
    "LINK_COM_POS_2",
    "LINK_MOI",
    "MAX_VEL_1",
    "MAX_VEL_2",
)
_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp's split of a double into two 26-bit halves
_BELOW_ONE = 1.0 - 2.0**-53  # scales a power of two onto the binade below it
# pow's result before its final rounding is within 0.041 ULP of the exact square (glibc's
# documented bound: 0.509 ULP for exp plus the log error over |y·log x| ≤ 710); squares
# nearer than 0.44 ULP to the rounding midpoint leave a margin of more than that.
_SAFE_ERR = 0.44
_TINY = 2.0**-450  # below this, x*x and Veltkamp's lo*lo lose bits to underflow


def _real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def supports(env: Any) -> bool:
    """True when ``env`` (unwrapped) runs physics this module reproduces bit for bit.

    The class must be Gymnasium's ``AcrobotEnv`` with none of the mirrored methods
    overridden, the constants plain finite numbers, and no torque noise: the noise comes
    from each environment's own generator, one draw per step, a stream per game that a
    vectorised step does not keep.
    """
    if not isinstance(env, AcrobotEnv):
        return False
    if any(getattr(type(env), name) is not getattr(AcrobotEnv, name) for name in _MIRRORED):
        return False
    torques = env.AVAIL_TORQUE
    return (
        all(_real(getattr(env, name)) for name in _CONSTANTS)
        and isinstance(torques, (list, tuple))
        and all(_real(t) for t in torques)
        and env.torque_noise_max == 0
    )


@functools.cache
def available(env_id: str) -> bool:
    """Whether :class:`AcrobotGames` may stand in for ``env_id`` on this machine."""
    return stands_in(
        env_id, IDS, supports, AcrobotGames, (0, 1, 2), 150, lambda t, r: np.array((r + t * t) % 3)
    )


@dataclass(frozen=True)
class _Physics:
    """AcrobotEnv's constants, with each constant sub-expression of ``_dsdt`` pre-formed."""

    dt: float
    dt2: float
    dt6: float
    torque: NDArray[np.float64]  # per action, the torque slot of the k1 / k2, k3 / k4 inputs
    torque_half: NDArray[np.float64]
    torque_full: NDArray[np.float64]
    nips: bool
    m2: float
    i1: float
    i2: float
    d1_a: float
    d1_b: float
    d1_c: float
    d2_a: float
    d2_b: float
    phi2_c: float
    phi1_a: float
    phi1_b: float
    phi1_c: float
    book_c: float
    den_c: float
    max_vel_1: float
    max_vel_2: float

    @classmethod
    def of(cls, e: Any) -> _Physics:
        """Read ``e``'s constants, combined in Gymnasium's order."""
        m1, m2, l1 = e.LINK_MASS_1, e.LINK_MASS_2, e.LINK_LENGTH_1
        lc1, lc2, i1, i2 = e.LINK_COM_POS_1, e.LINK_COM_POS_2, e.LINK_MOI, e.LINK_MOI
        dt = e.dt - 0  # rk4 takes t[1] - t[0] with t = [0, dt]
        torque = np.array([float(t) for t in e.AVAIL_TORQUE])  # np.append makes them float64
        return cls(
            dt=dt,
            dt2=dt / 2.0,
            dt6=dt / 6.0,
            torque=torque,
            # rk4 also advances the torque slot by dt·0.0, which can only turn -0.0 into 0.0
            torque_half=torque + dt / 2.0 * 0.0,
            torque_full=torque + dt * 0.0,
            nips=e.book_or_nips == "nips",
            m2=m2,
            i1=i1,
            i2=i2,
            d1_a=m1 * lc1**2,
            d1_b=l1**2 + lc2**2,
            d1_c=2 * l1 * lc2,
            d2_a=lc2**2,
            d2_b=l1 * lc2,
            phi2_c=m2 * lc2 * GRAVITY,
            phi1_a=-m2 * l1 * lc2,
            phi1_b=2 * m2 * l1 * lc2,
            phi1_c=(m1 * lc1 + m2 * l1) * GRAVITY,
            book_c=m2 * l1 * lc2,
            den_c=m2 * lc2**2 + i2,
            max_vel_1=e.MAX_VEL_1,
            max_vel_2=e.MAX_VEL_2,
        )


def _square(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x**2`` exactly as numpy scalars compute it: the C library's ``pow(x, 2.0)``.

    ``pow`` rounds the exact square correctly unless it lies within pow's tiny error of a
    rounding midpoint.  Veltkamp/Dekker's exact product gives the rounding error of
    ``x*x``; values not clearly away from a midpoint go to ``pow`` one by one.
    """
    p = x * x
    c = x * _SPLIT
    hi = c - (c - x)
    lo = x - hi
    err = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo  # x² == p + err, exactly
    # spacing of the value just below p: the smaller ULP when p is a power of two
    unsure = ~(np.abs(err) < _SAFE_ERR * np.spacing(p * _BELOW_ONE))
    unsure |= np.abs(x) < _TINY
    if unsure.any():
        # Python's float ** 2 calls the same pow(x, 2.0) as numpy's scalar power
        p[unsure] = [v**2 for v in x[unsure].tolist()]
    return p


def _derivs(k: _Physics, y: NDArray[np.float64], a: NDArray[np.float64]) -> NDArray[np.float64]:
    """``AcrobotEnv._dsdt`` for every row: y is ``(4, rows)``, a the torques."""
    theta1, theta2, dtheta1, dtheta2 = y
    cos2, sin2 = np.cos(theta2), np.sin(theta2)
    d1 = k.d1_a + k.m2 * (k.d1_b + k.d1_c * cos2) + k.i1 + k.i2
    d2 = k.m2 * (k.d2_a + k.d2_b * cos2) + k.i2
    phi2 = k.phi2_c * np.cos(theta1 + theta2 - math.pi / 2.0)
    squares = _square(y[2:])  # dtheta1**2, dtheta2**2 in one pass
    phi1 = (
        k.phi1_a * squares[1] * sin2
        - k.phi1_b * dtheta2 * dtheta1 * sin2
        + k.phi1_c * np.cos(theta1 - math.pi / 2)
        + phi2
    )
    if k.nips:
        num = a + d2 / d1 * phi1 - phi2
    else:
        num = a + d2 / d1 * phi1 - k.book_c * squares[0] * sin2 - phi2
    ddtheta2 = num / (k.den_c - _square(d2) / d1)
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return np.stack((dtheta1, dtheta2, ddtheta1, ddtheta2))


def _wrap(x: NDArray[np.float64], low: float, high: float) -> NDArray[np.float64]:
    """Gymnasium's ``wrap``: its while loops, run for all rows until none needs another turn.

    Infinities are left alone (Gymnasium would loop forever on them).
    """
    diff = high - low
    while (turn := (x > high) & np.isfinite(x)).any():
        x = np.where(turn, x - diff, x)
    while (turn := (x < low) & np.isfinite(x)).any():
        x = np.where(turn, x + diff, x)
    return x


def _bound(x: NDArray[np.float64], low: float, high: float) -> NDArray[np.float64]:
    """Gymnasium's ``bound``: ``min(max(x, low), high)`` with Python's tie and NaN rules."""
    x = np.where(low > x, low, x)
    return np.where(high < x, high, x)


def _first_observation(state32: NDArray[np.float32]) -> NDArray[np.float64]:
    """``AcrobotEnv._get_ob`` on the float32 reset state, scalar by scalar as it runs."""
    s = state32
    ob = np.array(
        [np.cos(s[0]), np.sin(s[0]), np.cos(s[1]), np.sin(s[1]), s[2], s[3]], dtype=np.float32
    )
    return ob.astype(np.float64)


class AcrobotGames(Games):
    """``rows`` Acrobot games; state is ``(4, rows)``: θ₁, θ₂, θ̇₁, θ̇₂."""

    def __init__(self, env_id: str, rows: int) -> None:
        env = make_env(env_id)
        if not supports(env.unwrapped):
            env.close()
            raise ValueError(f"'{env_id}' is not an Acrobot this module reproduces exactly")
        self.k = _Physics.of(env.unwrapped)
        self.limit = env.spec.max_episode_steps if env.spec else None
        env.close()
        self.state = np.zeros((4, rows), dtype=np.float64)
        self.steps = np.zeros(rows, dtype=np.int64)

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        starts: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        for seed in seeds:
            if seed not in starts:
                # The same draw as AcrobotEnv.reset(seed=seed), cast to float32 as it does.
                rng, _ = seeding.np_random(int(seed))
                state32 = rng.uniform(-RESET_BOUND, RESET_BOUND, size=(4,)).astype(np.float32)
                starts[seed] = state32.astype(np.float64), _first_observation(state32)
        self.state = np.stack([starts[s][0] for s in seeds], axis=1)
        self.steps = np.zeros(len(seeds), dtype=np.int64)
        return np.stack([starts[s][1] for s in seeds]), None

    def step(self, actions: NDArray[Any], active: NDArray[np.bool_]) -> StepResult:
        k, y0 = self.k, self.state
        # rk4 with t = [0, dt]: one step, stages combined exactly as Gymnasium writes them.
        k1 = _derivs(k, y0, k.torque[actions])
        k2 = _derivs(k, y0 + k.dt2 * k1, k.torque_half[actions])
        k3 = _derivs(k, y0 + k.dt2 * k2, k.torque_half[actions])
        k4 = _derivs(k, y0 + k.dt * k3, k.torque_full[actions])
        ns = y0 + k.dt6 * (k1 + 2 * k2 + 2 * k3 + k4)
        theta = _wrap(ns[:2], -math.pi, math.pi)
        self.state = np.stack(
            (
                theta[0],
                theta[1],
                _bound(ns[2], -k.max_vel_1, k.max_vel_1),
                _bound(ns[3], -k.max_vel_2, k.max_vel_2),
            )
        )
        theta1, theta2, dtheta1, dtheta2 = self.state
        cos1 = np.cos(theta1)
        terminated = -cos1 - np.cos(theta2 + theta1) > 1.0
        obs = np.stack(
            (cos1, np.sin(theta1), np.cos(theta2), np.sin(theta2), dtheta1, dtheta2), axis=1
        )
        self.steps += 1
        done = terminated if self.limit is None else terminated | (self.steps >= self.limit)
        # Gymnasium hands out float32 observations; the network sees exactly those values.
        reward = np.where(terminated, 0.0, -1.0)
        return obs.astype(np.float32).astype(np.float64), reward, done, None

    def select(self, rows: NDArray[np.int64]) -> None:
        self.state = self.state[:, rows]
        self.steps = self.steps[rows]
