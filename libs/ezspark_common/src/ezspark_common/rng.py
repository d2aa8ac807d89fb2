"""Named, derived random generators: every draw in EzSpark comes from one of these.

A generator is a pure function of the training seed and a purpose-specific path
(generation, genome, game...), so any process can recreate exactly the stream it needs
without shared state.
"""

from __future__ import annotations

import numpy as np

# Stream tags keep purposes apart: the same (seed, generation) never feeds two purposes.
INIT = 1
REPRODUCE = 2
GAMES = 3
SAFENESS = 4
DISPATCH = 5  # timing jitter of the service's re-dispatches: never changes a result
SCALING = 6  # the random-action games that fix input normalisation (normalize_inputs)


def generator(seed: int, tag: int, *path: int) -> np.random.Generator:
    """A fresh PCG64 generator for ``(seed, tag, *path)``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, tag, *path])))


def game_seeds(seed: int, generation: int, games: int) -> list[int]:
    """The environment seeds for a generation's games, shared by every genome.

    Every genome plays the same games in a generation so that fitnesses compare like with like.
    """
    state = np.random.SeedSequence([seed, GAMES, generation]).generate_state(games, np.uint32)
    return [int(s) for s in state]


def scaling_seed(seed: int) -> int:
    """The seed of a training's input-normalisation games (``evaluation.scaling``); derived,
    so an evaluator that is sent it never learns the training seed, and with it every later
    generation's games."""
    state = np.random.SeedSequence([seed, SCALING]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])
