"""Batched evaluation: many genomes × many games, all stepped in lockstep.

Pure compute shared by the embedded trainer and the evaluator service.  A genome's returns
depend only on its genes and the game seeds, never on which other genomes share its batch:
networks are evaluated with batch-independent operation order (see ``neat.network``) and
each game is seeded on its own.

A game ends when the environment terminates or truncates it, or after ``max_steps`` steps.
An environment that raises, or yields a NaN/inf observation or reward, ends all of that
genome's games: it gets ``reward_floor`` for every game and an error message; the rest of
the batch goes on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from numpy.typing import NDArray

from ezspark_common.envs import flatten_obs, make_env, registered_id
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.network import compile_plans, genome_plan

CARTPOLE_RESET_BOUND = 0.05  # CartPoleEnv.reset draws each state value from ±0.05


@dataclass(frozen=True)
class Outcome:
    """One genome's result over the games it played."""

    key: int
    returns: tuple[float, ...]
    steps: int
    error: str | None = None

    @property
    def mean(self) -> float:
        """Mean return; ``fsum`` makes it independent of summation order."""
        return math.fsum(self.returns) / len(self.returns)


StepResult = tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], list[str | None] | None
]


class Games:
    """``rows`` games of one environment, stepped together.

    Errors come back as a per-row list of messages, or ``None`` when no row failed (the
    common case stays free of per-row Python work).
    """

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        """Start every game with its seed; returns observations and per-row errors."""
        raise NotImplementedError

    def step(self, actions: NDArray[np.int64], active: NDArray[np.bool_]) -> StepResult:
        """Step active rows; returns observations, rewards, done flags and per-row errors."""
        raise NotImplementedError

    def select(self, rows: NDArray[np.int64]) -> None:
        """Keep only ``rows``, in that order (games that still matter)."""
        raise NotImplementedError


class ScalarGames(Games):
    """Ordinary environments, one per game, stepped one after another in a loop."""

    def __init__(self, env_id: str, rows: int, n_inputs: int) -> None:
        self.envs = _env_pool(env_id, rows)
        self.obs = np.zeros((rows, n_inputs), dtype=np.float64)

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        errors: list[str | None] = [None] * len(seeds)
        for r, seed in enumerate(seeds):
            try:
                obs, _ = self.envs[r].reset(seed=int(seed))
                self.obs[r] = flatten_obs(obs)
            except Exception as exc:  # the user's environment: contain, report
                errors[r] = f"reset raised {type(exc).__name__}: {exc}"
        return self.obs, errors if any(errors) else None

    def step(self, actions: NDArray[np.int64], active: NDArray[np.bool_]) -> StepResult:
        rows = self.obs.shape[0]
        reward = np.zeros(rows)
        done = np.zeros(rows, dtype=np.bool_)
        errors: list[str | None] | None = None
        for r in np.flatnonzero(active).tolist():
            try:
                obs, rew, term, trunc, _ = self.envs[r].step(int(actions[r]))
                self.obs[r] = flatten_obs(obs)
                reward[r] = float(rew)
                done[r] = bool(term) or bool(trunc)
            except Exception as exc:
                errors = errors or [None] * rows
                errors[r] = f"step raised {type(exc).__name__}: {exc}"
        return self.obs, reward, done, errors

    def select(self, rows: NDArray[np.int64]) -> None:
        self.envs = [self.envs[r] for r in rows.tolist()]
        self.obs = self.obs[rows]


class CartPoleGames(Games):
    """Gymnasium's numpy-vectorised CartPole, re-seeded per game to match ``CartPoleEnv``."""

    def __init__(self, env_id: str, rows: int) -> None:
        self.env_id = registered_id(env_id)
        self.env = self._make(rows)

    def _make(self, rows: int) -> Any:
        import gymnasium as gym

        return gym.make_vec(self.env_id, num_envs=rows, vectorization_mode="vector_entry_point")

    def reset(self, seeds: Sequence[int]) -> tuple[NDArray[np.float64], list[str | None] | None]:
        self.env.reset(seed=0)
        core: Any = self.env.unwrapped
        starts: dict[int, NDArray[np.float64]] = {}
        for seed in seeds:
            if seed not in starts:
                # Same draw as CartPoleEnv.reset(seed=seed): each game is what a lone env plays.
                rng, _ = seeding.np_random(int(seed))
                starts[seed] = rng.uniform(-CARTPOLE_RESET_BOUND, CARTPOLE_RESET_BOUND, 4)
        core.state[:] = np.stack([starts[s] for s in seeds], axis=1)
        obs = core.state.T.astype(np.float32).astype(np.float64)
        return obs, None

    def step(self, actions: NDArray[np.int64], active: NDArray[np.bool_]) -> StepResult:
        obs, reward, term, trunc, _ = self.env.step(actions)
        done = np.asarray(term | trunc, dtype=np.bool_)
        return np.asarray(obs, dtype=np.float64), np.asarray(reward, dtype=np.float64), done, None

    def select(self, rows: NDArray[np.int64]) -> None:
        old: Any = self.env.unwrapped
        self.env = self._make(int(rows.shape[0]))
        self.env.reset(seed=0)
        new: Any = self.env.unwrapped
        new.state = old.state[:, rows]
        new.steps = old.steps[rows]
        new.prev_done = old.prev_done[rows]


_ENV_POOLS: dict[str, list[Any]] = {}


def _env_pool(env_id: str, rows: int) -> list[Any]:
    """Reusable environment instances: building them is slower than resetting them."""
    pool = _ENV_POOLS.setdefault(env_id, [])
    while len(pool) < rows:
        pool.append(make_env(env_id))
    return pool[:rows]


def vectorised(env_id: str) -> bool:
    """True where a per-game-seedable numpy-vectorised implementation is used."""
    return registered_id(env_id) in ("CartPole-v0", "CartPole-v1")


def make_games(env_id: str, rows: int, n_inputs: int, *, vector: bool | None = None) -> Games:
    """The fastest lockstep implementation available for ``env_id``."""
    use_vector = vectorised(env_id) if vector is None else vector
    return CartPoleGames(env_id, rows) if use_vector else ScalarGames(env_id, rows, n_inputs)


class _Rollout:
    """One batch in flight.  Row ``r`` of the current layout is game ``r // n`` of the
    ``r % n``-th genome still playing; finished genomes are compacted away so late steps
    cost only what is still alive."""

    def __init__(self, genomes: Sequence[Genome], n_games: int, n_inputs: int,
                 n_outputs: int, games: Games) -> None:
        self.n_total, self.n_games = len(genomes), n_games
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.plans = [genome_plan(g) for g in genomes]
        self.games = games
        self.returns = np.zeros(n_games * self.n_total)  # flat (game, genome), original order
        self.steps = np.zeros(n_games * self.n_total, dtype=np.int64)
        self.errors: dict[int, str] = {}
        self.active: NDArray[np.bool_] = np.ones(n_games * self.n_total, dtype=np.bool_)
        self._use(np.arange(self.n_total))

    def _use(self, alive: NDArray[np.int64]) -> None:
        self.alive = alive
        self.net = compile_plans([self.plans[i] for i in alive], self.n_inputs, self.n_outputs)
        games = np.repeat(np.arange(self.n_games), alive.shape[0])
        self.flat = games * self.n_total + np.tile(alive, self.n_games)
        self.values = self.net.new_values(self.n_games)

    def fail(self, rows: NDArray[np.int64], messages: list[str | None] | None) -> None:
        """End every game of the genomes owning ``rows`` (they get the floor later)."""
        n = self.alive.shape[0]
        for r in rows.tolist():
            message = (messages[r] if messages else None) or "non-finite observation or reward"
            self.errors.setdefault(int(self.alive[r % n]), message)
        dead = np.isin(self.alive, np.fromiter(self.errors, np.int64))
        self.active &= ~np.tile(dead, self.n_games)

    def compact(self, obs: NDArray[np.float64]) -> NDArray[np.float64]:
        """Drop genomes with no game left when they are at least half the batch."""
        n = self.alive.shape[0]
        playing = self.active.reshape(self.n_games, n).any(axis=0)
        keep = np.flatnonzero(playing)
        if n < 16 or keep.shape[0] > n // 2:
            return obs
        rows = (np.arange(self.n_games)[:, None] * n + keep[None, :]).ravel()
        self.games.select(rows)
        self.active = self.active[rows]
        self._use(self.alive[keep])
        return np.asarray(obs[rows])

    def run(self, seeds: Sequence[int], max_steps: int) -> None:
        """Play until every game has ended or ``max_steps`` steps were taken."""
        obs, errors = self.games.reset([s for s in seeds for _ in range(self.n_total)])
        self.active = np.ones(self.flat.shape[0], dtype=np.bool_)
        self._check(obs, None, errors)
        for _ in range(max_steps):
            if not self.active.any():
                break
            n = self.alive.shape[0]
            self.net.set_inputs(self.values, obs.reshape(self.n_games, n * self.n_inputs))
            self.net.activate(self.values)
            actions = self.net.actions(self.values).ravel()
            obs, reward, done, errors = self.games.step(actions, self.active)
            live = self.active & ~self._check(obs, reward, errors)
            self.returns[self.flat[live]] += reward[live]
            self.steps[self.flat[live]] += 1
            self.active &= ~done
            obs = self.compact(obs)

    def _check(self, obs: NDArray[np.float64], reward: NDArray[np.float64] | None,
               errors: list[str | None] | None) -> NDArray[np.bool_]:
        """Rows that failed this step; their genomes are failed as a side effect."""
        if errors is None and np.isfinite(obs).all() and (
            reward is None or np.isfinite(reward).all()
        ):
            return np.zeros(obs.shape[0], dtype=np.bool_)  # the common case, kept cheap
        bad = ~np.isfinite(obs).all(axis=1)
        if reward is not None:
            bad |= ~np.isfinite(reward)
        if errors is not None:
            bad |= np.array([e is not None for e in errors], dtype=np.bool_)
        bad &= self.active
        if bad.any():
            self.fail(np.flatnonzero(bad), errors)
        return np.asarray(bad, dtype=np.bool_)

    def outcomes(self, genomes: Sequence[Genome], reward_floor: float) -> list[Outcome]:
        """One Outcome per genome, in input order."""
        per_game = self.returns.reshape(self.n_games, self.n_total)
        steps = self.steps.reshape(self.n_games, self.n_total).sum(axis=0)
        out = []
        for b, genome in enumerate(genomes):
            error = self.errors.get(b)
            returns = (reward_floor,) * self.n_games if error else tuple(per_game[:, b].tolist())
            out.append(Outcome(genome.key, returns, int(steps[b]), error))
        return out


def evaluate_batch(
    genomes: Sequence[Genome],
    env_id: str,
    game_seeds: Sequence[int],
    max_steps: int,
    reward_floor: float,
    n_inputs: int,
    n_outputs: int,
    *,
    vector: bool | None = None,
) -> list[Outcome]:
    """Play every genome on every game seed; one Outcome per genome, in input order."""
    if not genomes:
        return []
    games = make_games(env_id, len(genomes) * len(game_seeds), n_inputs, vector=vector)
    rollout = _Rollout(genomes, len(game_seeds), n_inputs, n_outputs, games)
    rollout.run(game_seeds, max_steps)
    return rollout.outcomes(genomes, reward_floor)
