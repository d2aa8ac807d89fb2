"""Ordinary Gymnasium environments, one per game, stepped one after another.

Building an environment is slower than resetting one, so instances are reused between
batches from an :class:`EnvPool`.  The pool belongs to whoever evaluates (one per
evaluating thread or process): nothing here is shared between callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.wrappers import OrderEnforcing, TimeLimit
from numpy.typing import NDArray

from ezspark_common.evaluation.actions import box_of
from ezspark_common.evaluation.envs import flatten_obs, make_env
from ezspark_common.evaluation.failures import failure
from ezspark_common.evaluation.games.base import Games, StepResult
from ezspark_common.evaluation.hangs import EnvHung, HangGuard


class SizeError(ValueError):
    """The environment's observation does not have ``input_size`` values (says so itself)."""


def _why(call: str, exc: BaseException) -> str:
    """A size error says what is wrong itself; anything else is the environment's failure."""
    return str(exc) if isinstance(exc, SizeError) else failure(call, exc)


class ScalarGames(Games):
    """Any environment: a pool of instances, one per row, stepped in a Python loop."""

    def __init__(self, env_id: str, rows: int, n_inputs: int, envs: EnvPool | None = None) -> None:
        self.n_inputs = n_inputs
        pool = envs if envs is not None else EnvPool()
        self.guard = pool.guard
        self.envs = pool.take(env_id, rows)
        self.box = box_of(self.envs[0].action_space) if self.envs else None
        self.obs = np.zeros((rows, n_inputs), dtype=np.float64)
        # Gymnasium's own two wrappers cost about a sixth of a cheap environment's step:
        # where they are all there is, step the environment itself and count for TimeLimit.
        # ``limit`` is None where the wrappers are stepped through (TimeLimit counts itself).
        limits = [_limit(e) for e in self.envs]
        plain = all(limit is not False for limit in limits)
        self.limit = limits[0] if plain and limits else None
        self._steppers = [e.unwrapped.step if plain else e.step for e in self.envs]
        self._counts = [0] * rows

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        errors: list[str | None] = [None] * len(seeds)
        for r, seed in enumerate(seeds):
            try:
                obs, _ = self.guard.call(self.envs[r].reset, seed=int(seed))
                self.obs[r] = self._sized(flatten_obs(obs), "reset")
            except (Exception, EnvHung) as exc:  # the user's environment: contain, report
                errors[r] = _why("reset", exc)
        self._counts = [0] * len(seeds)
        return self.obs, errors if any(errors) else None

    def step(self, actions: NDArray[Any], active: NDArray[np.bool_]) -> StepResult:
        rows = self.obs.shape[0]
        reward = np.zeros(rows)
        done = np.zeros(rows, dtype=np.bool_)
        errors: list[str | None] = [None] * rows
        box, call = self.box, self.guard.call if self.guard.active else None
        acts = actions.tolist() if box is None else actions  # plain ints: cheaper per row
        counts, limit = self._counts, self.limit
        stepped: list[tuple[int, Any, float, bool]] = []
        for r in np.flatnonzero(active).tolist():
            try:
                act = int(acts[r]) if box is None else box.for_env(actions[r])
                step = self._steppers[r]
                obs, rew, term, trunc, _ = step(act) if call is None else call(step, act)
                counts[r] += 1  # TimeLimit's count, when it is stepped past
                end = bool(term) or bool(trunc) or (limit is not None and counts[r] >= limit)
                stepped.append((r, obs, float(rew), end))
            except (Exception, EnvHung) as exc:
                errors[r] = _why("step", exc)
        for r, rew, end in self._store(stepped, errors):
            reward[r], done[r] = rew, end
        return self.obs, reward, done, errors if any(errors) else None

    def _store(
        self, stepped: list[tuple[int, Any, float, bool]], errors: list[str | None]
    ) -> list[tuple[int, float, bool]]:
        """Every stepped row's observation into ``self.obs``, in one cast when they all have
        ``n_inputs`` values (the usual case), else row by row with a size error for each
        row that has not; the rows stored, with their reward and end."""
        if not stepped:
            return []
        try:
            block = np.asarray([s[1] for s in stepped], dtype=np.float64)
            block = block.reshape(len(stepped), -1)
        except (ValueError, TypeError):  # ragged or not numbers: each row says what it is
            block = None
        if block is not None and block.shape[1] == self.n_inputs:
            self.obs[[s[0] for s in stepped]] = block
            return [(r, rew, end) for r, _, rew, end in stepped]
        stored = []
        for r, obs, rew, end in stepped:
            try:
                self.obs[r] = self._sized(flatten_obs(obs), "step")
            except Exception as exc:
                errors[r] = _why("step", exc)
                continue
            stored.append((r, rew, end))
        return stored

    def _sized(self, obs: NDArray[Any], call: str) -> NDArray[Any]:
        # Named here: numpy's broadcast error would not say which size is wrong.
        if obs.size != self.n_inputs:
            raise SizeError(
                f"{call} returned an observation of {obs.size} values; "
                f"the config's input_size is {self.n_inputs}"
            )
        return obs

    def select(self, rows: NDArray[np.int64]) -> None:
        kept = rows.tolist()
        self.envs = [self.envs[r] for r in kept]
        self._steppers = [self._steppers[r] for r in kept]
        self._counts = [self._counts[r] for r in kept]
        self.obs = self.obs[rows]


def _limit(env: Any) -> int | bool | None:
    """TimeLimit's ``max_episode_steps`` (None without one) where ``env`` is only
    Gymnasium's standard ``TimeLimit(OrderEnforcing(env))`` or ``OrderEnforcing(env)``;
    False where any other wrapper is on it (then it is stepped through its wrappers)."""
    limit = None
    if type(env) is TimeLimit:
        limit, env = getattr(env, "_max_episode_steps", False), env.env
    if type(env) is not OrderEnforcing or env.env is not env.unwrapped or limit is False:
        return False  # not only those two, or a TimeLimit that no longer says its limit
    return int(limit) if limit is not None else None


class EnvPool:
    """Reusable environment instances by id, for one evaluating thread at a time.

    ``take`` lends the first ``rows`` instances; they are reset before use, so a batch
    never sees what the previous one left.  Not thread-safe: two batches evaluated at once
    need two pools.  ``guard`` bounds each ``reset`` and ``step`` while its owner has it
    entered (the embedded trainer does; evaluators have their watchdog instead).
    """

    def __init__(self, guard: HangGuard | None = None) -> None:
        self._envs: dict[str, list[Any]] = {}
        self.guard = guard if guard is not None else HangGuard(None)
        # Input normalisation constants already measured (evaluation.scaling), by their
        # arguments: a pure function, so the pool's owner reuses them across batches.
        self.scalings: dict[tuple[Any, ...], Any] = {}

    def take(self, env_id: str, rows: int) -> list[Any]:
        """``rows`` instances of ``env_id``, building only the ones still missing."""
        pool = self._envs.setdefault(env_id, [])
        while len(pool) < rows:
            pool.append(make_env(env_id))
        return pool[:rows]
