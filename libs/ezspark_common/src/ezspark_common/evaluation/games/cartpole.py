"""CartPole, all games in flat numpy arrays.

Gymnasium's own ``CartPoleVectorEnv`` gives the same trajectories but spends most of each
call on what a lockstep batch does not need (an action-space assertion, auto-reset draws,
stacking); at the hundreds of rows a late CartPole step has left, that overhead is
several times the physics.  So the physics runs here, with the constants read from
Gymnasium's ``CartPoleEnv`` of the registered id and every operation in the order
Gymnasium performs it: a game is bit-identical to ``gym.make(id).reset(seed=s)`` followed
by ``step`` (``tests/unit/test_games.py`` checks both this and the vector env).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from numpy.typing import NDArray

from ezspark_common.evaluation.envs import make_env, registered_id
from ezspark_common.evaluation.games.base import Games, StepResult
from ezspark_common.evaluation.masked_envs import NO_VELOCITY_ID, VISIBLE

RESET_BOUND = 0.05  # CartPoleEnv.reset draws each state value from ±0.05
IDS = ("CartPole-v0", "CartPole-v1", NO_VELOCITY_ID)


class CartPoleGames(Games):
    """``rows`` CartPole games; state is ``(4, rows)``: x, ẋ, θ, θ̇."""

    def __init__(self, env_id: str, rows: int) -> None:
        env = make_env(env_id)
        self.p: Any = env.unwrapped  # the constants (gravity, masses, thresholds …)
        self.limit = env.spec.max_episode_steps if env.spec else None
        env.close()
        self.state = np.zeros((4, rows), dtype=np.float64)
        self.steps = np.zeros(rows, dtype=np.int64)
        # The partially observed variant shows only some state values.
        self.visible = list(VISIBLE) if registered_id(env_id) == NO_VELOCITY_ID else None

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        starts: dict[int, NDArray[np.float64]] = {}
        for seed in seeds:
            if seed not in starts:
                # The same draw as CartPoleEnv.reset(seed=seed).
                rng, _ = seeding.np_random(int(seed))
                starts[seed] = rng.uniform(-RESET_BOUND, RESET_BOUND, 4)
        self.state = np.stack([starts[s] for s in seeds], axis=1)
        self.steps = np.zeros(len(seeds), dtype=np.int64)
        return self._obs(), None

    def _obs(self) -> NDArray[np.float64]:
        # Gymnasium hands out float32 observations; the network sees exactly those values.
        state = self.state if self.visible is None else self.state[self.visible]
        return state.T.astype(np.float32).astype(np.float64)

    def step(self, actions: NDArray[Any], active: NDArray[np.bool_]) -> StepResult:
        p = self.p
        x, x_dot, theta, theta_dot = self.state
        force = np.where(actions == 1, p.force_mag, -p.force_mag)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        # Term by term as CartPoleEnv.step writes it: float results depend on the order.
        temp = (force + p.polemass_length * np.square(theta_dot) * sintheta) / p.total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * np.square(costheta) / p.total_mass)
        )
        xacc = temp - p.polemass_length * thetaacc * costheta / p.total_mass
        if p.kinematics_integrator == "euler":
            x = x + p.tau * x_dot
            x_dot = x_dot + p.tau * xacc
            theta = theta + p.tau * theta_dot
            theta_dot = theta_dot + p.tau * thetaacc
        else:  # semi-implicit euler
            x_dot = x_dot + p.tau * xacc
            x = x + p.tau * x_dot
            theta_dot = theta_dot + p.tau * thetaacc
            theta = theta + p.tau * theta_dot
        self.state = np.stack((x, x_dot, theta, theta_dot))
        # |v| > t is exactly "v < -t or v > t" (negation and abs are exact), in fewer passes.
        terminated = (np.abs(x) > p.x_threshold) | (np.abs(theta) > p.theta_threshold_radians)
        self.steps += 1
        done = terminated if self.limit is None else terminated | (self.steps >= self.limit)
        return self._obs(), self._reward(terminated), done, None

    def _reward(self, terminated: NDArray[np.bool_]) -> NDArray[np.float64]:
        """CartPoleEnv's reward up to the fall: 1 per step, or Sutton and Barto's −1 on it."""
        if self.p._sutton_barto_reward:
            return np.where(terminated, -1.0, 0.0)
        return np.ones(terminated.shape[0])

    def select(self, rows: NDArray[np.int64]) -> None:
        self.state = self.state[:, rows]
        self.steps = self.steps[rows]
