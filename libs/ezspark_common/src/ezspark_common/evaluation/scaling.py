"""Input normalisation (config key ``normalize_inputs``).

Each observation value ``x_i`` enters the network as ``(x_i − mean_i) / spread_i``, so that
inputs of very different ranges (a position in metres beside an angle in radians) start on
an equal footing for the initial weights and every weight nudge, as augmented random search
and OpenAI's evolution strategies do.  The constants are fixed once per training, before
generation 0, from :data:`GAMES` games of uniformly random actions: not from the genomes'
own games, where genomes that play to the step limit outweigh the rest (on LunarLander such
constants ruined the runs: docs/learning-rounds.md, sixteenth round).

They are a pure function of the environment, the network sizes, the step limit and a seed
derived from the training seed (``rng.scaling_seed``), so every evaluator, the embedded
trainer, ``ezspark play`` and the gateway's replays compute the same constants on their
own (kept in the caller's ``EnvPool``): tasks and genome files carry only that seed.  The
sums run row by row in a fixed order, so every machine gets the same constants to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ezspark_common import rng as rngs
from ezspark_common.evaluation.games import EnvPool, make_games

GAMES = 30  # random-action games measured
STEP_CAP = 1000  # steps per game at most, whatever the training's step limit
MIN_SPREAD = 1e-6  # below this an input counts as constant: it is centred, not scaled
KEPT = 64  # constants an EnvPool keeps at most (one entry per training it served)


@dataclass(frozen=True, eq=False)
class InputScaling:
    """Per-input constants: a network sees ``(obs − mean) / spread``."""

    mean: NDArray[np.float64]
    spread: NDArray[np.float64]

    def apply(self, obs: NDArray[np.float64]) -> NDArray[np.float64]:
        """Observations ``(rows, n_inputs)`` as the networks see them."""
        return np.asarray((obs - self.mean) / self.spread)


def for_games(
    env_id: str,
    n_inputs: int,
    n_outputs: int,
    games: tuple[int, int] | None,
    envs: EnvPool | None = None,
) -> InputScaling | None:
    """The constants of the random-action games ``games`` = (seed, step limit), as
    ``GameSetup`` and ``Player`` carry them; None (raw observations) without."""
    if games is None:
        return None
    seed, steps = games
    return measured(env_id, n_inputs, n_outputs, steps, seed, envs)


def measured(
    env_id: str, n_inputs: int, n_outputs: int, max_steps: int, seed: int, envs: EnvPool | None
) -> InputScaling:
    """:func:`measure`, or the constants ``envs`` already holds for these arguments."""
    key = (env_id, n_inputs, n_outputs, max_steps, seed)
    found = envs.scalings.get(key) if envs is not None else None
    if isinstance(found, InputScaling):
        return found
    found = measure(*key, envs)
    if envs is not None:
        while len(envs.scalings) >= KEPT:
            del envs.scalings[next(iter(envs.scalings))]
        envs.scalings[key] = found
    return found


def measure(
    env_id: str,
    n_inputs: int,
    n_outputs: int,
    max_steps: int,
    seed: int,
    envs: EnvPool | None = None,
) -> InputScaling:
    """Mean and spread of every observation value over :data:`GAMES` random-action games
    of at most ``min(max_steps, STEP_CAP)`` steps (reset and every later observation).

    A game whose environment fails or yields a non-finite value stops counting from
    there; if nothing was observed, the identity (mean 0, spread 1).  ``envs``: the
    caller's environment instances (and hang guard), as for a batch.
    """
    gen = rngs.generator(seed, rngs.SCALING)
    seeds = [int(s) for s in gen.integers(0, 2**32, GAMES)]
    games = make_games(env_id, GAMES, n_inputs, envs=envs)
    obs, errors = games.reset(seeds)
    active = _fine(obs, errors)
    origin = obs[np.argmax(active)].copy() if active.any() else np.zeros(n_inputs)
    count, total, squares = 0, np.zeros(n_inputs), np.zeros(n_inputs)
    for step in range(min(max_steps, STEP_CAP) + 1):
        if step:  # every row draws its action, active or not: draws never depend on play
            if games.box is None:
                actions: NDArray[Any] = gen.integers(0, n_outputs, GAMES)
            else:
                actions = games.box.squash(gen.uniform(-1.0, 1.0, (GAMES, n_outputs)))
            obs, _, done, errors = games.step(actions, active)
            active &= _fine(obs, errors)
        # Shifted by a first observation, so the sums keep their precision far from 0.
        seen = obs[active] - origin
        count += seen.shape[0]
        total += seen.sum(axis=0)
        squares += (seen * seen).sum(axis=0)
        if step:
            active &= ~done
        if not active.any():
            break
    return _constants(count, total, squares, origin)


def _fine(obs: NDArray[np.float64], errors: list[str | None] | None) -> NDArray[np.bool_]:
    """Rows whose observation is finite and whose environment did not fail."""
    ok = np.isfinite(obs).all(axis=1)
    if errors is not None:
        ok &= np.array([e is None for e in errors], dtype=np.bool_)
    return np.asarray(ok, dtype=np.bool_)


def _constants(
    count: int, total: NDArray[np.float64], squares: NDArray[np.float64], origin: NDArray[Any]
) -> InputScaling:
    """Mean and spread from the shifted sums, read-only: pools share them between batches."""
    n = total.shape[0]
    if count == 0:
        mean, spread = np.zeros(n), np.ones(n)
    else:
        shift = total / count
        var = np.maximum(squares / count - shift * shift, 0.0)
        mean, spread = shift + origin, np.sqrt(var)
        spread[~(spread >= MIN_SPREAD)] = 1.0
    mean.setflags(write=False)
    spread.setflags(write=False)
    return InputScaling(mean, spread)
