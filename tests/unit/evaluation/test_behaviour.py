"""Behaviour descriptors (``GameSetup.behaviour``, for ``novelty_weight``): each game's
range of every observation value, the same on every evaluation path."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from ezspark_common.evaluation.batch import GameSetup, evaluate_batch, evaluate_table
from ezspark_common.neat.genome import Genome
from tests.support.faulty_envs import register
from tests.support.genomes import random_genome
from tests.unit.neat.test_network import reference_outputs

register()


def reference_range(
    genome: Genome, env_id: str, seed: int, max_steps: int, n_out: int
) -> tuple[float, ...]:
    """One game with an ordinary environment: lowest then highest value of each input."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    seen = [np.asarray(obs, np.float64).ravel()]
    for _ in range(max_steps):
        outs = reference_outputs(genome, seen[-1].tolist(), n_out)
        obs, _, term, trunc, _ = env.step(int(np.argmax(outs)))
        seen.append(np.asarray(obs, np.float64).ravel())
        if term or trunc:
            break
    env.close()
    values = np.array(seen)
    return tuple(np.concatenate([values.min(axis=0), values.max(axis=0)]).tolist())


@pytest.mark.parametrize(
    ("env_id", "n_in", "n_out", "max_steps", "vector"),
    [
        ("CartPole-v1", 4, 2, 200, True),
        ("CartPole-v1", 4, 2, 200, False),
        ("MountainCar-v0", 2, 3, 120, None),
        ("Acrobot-v1", 6, 3, 40, None),
    ],
)
def test_behaviour_is_each_games_observed_range(
    env_id: str, n_in: int, n_out: int, max_steps: int, vector: bool | None
) -> None:
    """A game's behaviour is the min and max of every observation value it saw, reset and
    terminal observations included, as a plain one-game rollout measures them."""
    genomes = [random_genome(k, n_in, n_out, seed=k, steps=10) for k in range(5)]
    seeds = [21, 22]
    setup = GameSetup(env_id, max_steps, 0.0, n_in, n_out, behaviour=True)
    out = evaluate_batch(genomes, setup, seeds, vector=vector)
    for genome, outcome in zip(genomes, out, strict=True):
        want = [reference_range(genome, env_id, s, max_steps, n_out) for s in seeds]
        assert len(outcome.behaviour) == len(seeds)
        for got, ref in zip(outcome.behaviour, want, strict=True):
            np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)


def test_behaviour_is_off_unless_asked_for() -> None:
    """Without ``behaviour`` the table carries none and outcomes have an empty one."""
    genomes = [random_genome(k, 4, 2, seed=k) for k in range(3)]
    table = evaluate_table(genomes, GameSetup("CartPole-v1", 50, 0.0, 4, 2), [1])
    assert table.behaviour is None
    assert all(o.behaviour == () for o in table)


def test_behaviour_does_not_depend_on_batch() -> None:
    """A genome's behaviour is bit-identical alone or among others, in any order."""
    genomes = [random_genome(k, 2, 3, seed=100 + k, steps=12) for k in range(24)]
    setup = GameSetup("MountainCar-v0", 150, -150.0, 2, 3, behaviour=True)
    full = evaluate_batch(genomes, setup, [3, 4])
    alone = [evaluate_batch([g], setup, [3, 4])[0] for g in genomes[:4]]
    backwards = evaluate_batch(genomes[::-1], setup, [3, 4])[::-1]
    assert [o.behaviour for o in full[:4]] == [o.behaviour for o in alone]
    assert [o.behaviour for o in full] == [o.behaviour for o in backwards]


def test_failed_genome_has_zero_behaviour() -> None:
    """A genome whose environment raised gets zeros, and its companions their own ranges."""
    genomes = [random_genome(k, 2, 2, seed=k) for k in range(16)]
    setup = GameSetup("EzTest/RaiseOnOne-v0", 50, -1.0, 2, 2, behaviour=True)
    out = evaluate_batch(genomes, setup, [3, 4])
    failed = [o for o in out if o.error]
    assert failed
    assert all(o.behaviour == ((0.0,) * 4,) * 2 for o in failed)
    assert any(o.behaviour != ((0.0,) * 4,) * 2 for o in out if not o.error)
