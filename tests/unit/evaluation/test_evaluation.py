"""Batched evaluation: equivalence with a plain loop, batch independence, fault containment."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from ezspark_common.evaluation.batch import GameSetup, Outcome, evaluate_batch
from ezspark_common.neat.genome import Genome
from tests.support.faulty_envs import register
from tests.support.genomes import random_genome
from tests.unit.neat.test_network import reference_outputs

register()

CARTPOLE = GameSetup("CartPole-v1", 500, 0.0, 4, 2)


def reference_return(
    genome: Genome, env_id: str, seed: int, max_steps: int, n_out: int
) -> tuple[float, int]:
    """One genome, one game, one step at a time with an ordinary environment."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    for _ in range(max_steps):
        outs = reference_outputs(genome, np.asarray(obs, np.float64).ravel().tolist(), n_out)
        action = int(np.argmax(outs))
        obs, reward, term, trunc, _ = env.step(action)
        total += float(reward)
        steps += 1
        if term or trunc:
            break
    env.close()
    return total, steps


@pytest.mark.parametrize(
    ("env_id", "n_in", "n_out", "max_steps"),
    [
        ("CartPole-v1", 4, 2, 500),
        ("Acrobot-v1", 6, 3, 60),
        ("MountainCar-v0", 2, 3, 60),
    ],
)
def test_batch_matches_plain_reference(env_id: str, n_in: int, n_out: int, max_steps: int) -> None:
    """Returns and step counts equal a one-game-at-a-time reference on random genomes."""
    genomes = [random_genome(k, n_in, n_out, seed=k, steps=10) for k in range(6)]
    seeds = [11, 12, 13]
    out = evaluate_batch(genomes, GameSetup(env_id, max_steps, 0.0, n_in, n_out), seeds)
    for genome, outcome in zip(genomes, out, strict=True):
        ref = [reference_return(genome, env_id, s, max_steps, n_out) for s in seeds]
        assert outcome.returns == tuple(r for r, _ in ref)
        assert outcome.steps == sum(n for _, n in ref)
        assert outcome.error is None


def test_vectorised_cartpole_equals_scalar_envs() -> None:
    """The numpy-vectorised CartPole path gives the same returns as ordinary environments."""
    genomes = [random_genome(k, 4, 2, seed=50 + k, steps=8) for k in range(40)]
    seeds = [1, 2, 3, 4]
    fast = evaluate_batch(genomes, CARTPOLE, seeds, vector=True)
    slow = evaluate_batch(genomes, CARTPOLE, seeds, vector=False)
    assert [o.returns for o in fast] == [o.returns for o in slow]


def test_returns_do_not_depend_on_batch() -> None:
    """A genome scores bit-identically alone, first, last, or among other genomes."""
    genomes = [random_genome(k, 4, 2, seed=200 + k, steps=14) for k in range(30)]
    seeds = [7, 8]
    full = evaluate_batch(genomes, CARTPOLE, seeds)
    alone = [evaluate_batch([g], CARTPOLE, seeds)[0] for g in genomes[:5]]
    reversed_ = evaluate_batch(genomes[::-1], CARTPOLE, seeds)[::-1]
    assert [o.returns for o in full[:5]] == [o.returns for o in alone]
    assert [o.returns for o in full] == [o.returns for o in reversed_]


def test_same_seed_same_rollout_and_different_seed_differs() -> None:
    """Same game seed ⇒ identical returns; another seed gives other starting states."""
    genomes = [random_genome(k, 4, 2, seed=300 + k, steps=6) for k in range(20)]
    a = evaluate_batch(genomes, CARTPOLE, [5])
    b = evaluate_batch(genomes, CARTPOLE, [5])
    c = evaluate_batch(genomes, CARTPOLE, [6])
    assert [o.returns for o in a] == [o.returns for o in b]
    assert [o.returns for o in a] != [o.returns for o in c]


@pytest.mark.parametrize("env_id", ["EzTest/Raise-v0", "EzTest/NaN-v0"])
def test_faulty_env_costs_floor_fitness_and_batch_goes_on(env_id: str) -> None:
    """An env that raises or yields NaN gives its genome the floor and an error; others finish."""
    broken = random_genome(1, 2, 2, seed=1)
    out = evaluate_batch([broken], GameSetup(env_id, 50, -7.0, 2, 2), [1, 2])
    assert out[0].returns == (-7.0, -7.0)
    assert out[0].error
    assert np.isfinite(out[0].mean)


def test_one_failing_genome_does_not_fail_its_batch() -> None:
    """Only genomes whose game raised are floored; companions keep their standalone returns."""
    genomes = [random_genome(k, 2, 2, seed=k) for k in range(16)]
    out = evaluate_batch(genomes, GameSetup("EzTest/RaiseOnOne-v0", 50, -1.0, 2, 2), [3, 4])
    failed = [o for o in out if o.error]
    fine = [(g, o) for g, o in zip(genomes, out, strict=True) if not o.error]
    assert failed
    assert fine
    assert all(o.returns == (-1.0, -1.0) for o in failed)
    for genome, outcome in fine:
        alone = evaluate_batch([genome], GameSetup("EzTest/RaiseOnOne-v0", 50, -1.0, 2, 2), [3, 4])[
            0
        ]
        assert outcome.returns == alone.returns


def test_endless_env_stops_at_max_steps() -> None:
    """A game that never ends is cut at max_steps."""
    endless = GameSetup("EzTest/Endless-v0", 37, 0.0, 2, 2)
    out = evaluate_batch([random_genome(0, 2, 2, seed=0)], endless, [1])
    assert out[0].steps == 37
    assert out[0].returns == (37.0,)


def test_outcome_mean_is_order_independent() -> None:
    """The mean uses exact summation, so game order cannot change a fitness."""
    a = Outcome(0, (0.1, 0.2, 0.3, 1e16, -1e16), 5)
    b = Outcome(0, (1e16, 0.3, -1e16, 0.2, 0.1), 5)
    assert a.mean == b.mean
