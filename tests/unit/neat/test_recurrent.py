"""Recurrent networks: cycles allowed, memory within a game, reset per game, any batch."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.neat.genome import Genome, check_genome, has_cycle
from ezspark_common.neat.mutation import InnovationTracker, add_connection, add_node
from ezspark_common.neat.network import BatchPlan
from ezspark_common.neat.packed import PackedGenomes
from ezspark_common.neat.recurrent import ReferenceNetwork
from ezspark_common.wire.messages import EvaluationTask, decode, encode
from tests.support.genomes import random_genome

ENV = "EzCartPoleNoVelocity-v1"


def looped_genome(key: int, seed: int, n_in: int = 2, n_out: int = 2) -> Genome:
    """A random genome grown with recurrent add-connection: cycles and self-loops likely."""
    rng = np.random.default_rng(seed)
    genome = random_genome(key, n_in, n_out, seed=seed, steps=3)
    tracker = InnovationTracker(next_innov=100_000 + 100 * seed, next_node=5000 + 10 * seed)
    for _ in range(14):
        if rng.random() < 0.3:
            genome = add_node(genome, rng, tracker)
        genome = add_connection(genome, n_in, rng, tracker, recurrent=True)
    return genome


def reference_returns(genome: Genome, env_id: str, seeds: list[int], max_steps: int) -> list[float]:
    """One game at a time, one node at a time, memory cleared before each game."""
    env = gym.make(env_id, disable_env_checker=True)
    net = ReferenceNetwork(genome, 2)
    out = []
    for seed in seeds:
        net.reset()
        obs, _ = env.reset(seed=seed)
        total = 0.0
        for _ in range(max_steps):
            values = net.step(np.asarray(obs, np.float64))
            action = int(np.argmax(values))
            obs, reward, term, trunc, _ = env.step(action)
            total += float(reward)
            if term or trunc:
                break
        out.append(total)
    return out


GENOMES = [looped_genome(k, seed=k) for k in range(40)]


def test_genomes_under_test_have_cycles() -> None:
    """The recurrent add-connection made cycles (self-loops included) in most genomes."""
    assert sum(has_cycle(g.src, g.dst) for g in GENOMES) >= 20
    assert any((g.src == g.dst).any() for g in GENOMES)


def test_batched_equals_step_by_step_reference() -> None:
    """Every return equals the one-node-at-a-time reference, compaction included."""
    seeds = [3, 4, 5]
    got = evaluate_batch(GENOMES, GameSetup(ENV, 500, 0.0, 2, 2, recurrent=True), seeds)
    for genome, outcome in zip(GENOMES, got, strict=True):
        assert list(outcome.returns) == reference_returns(genome, ENV, seeds, 500)
    assert len({o.returns for o in got}) > 5  # the genomes do differ


def test_bit_identical_whatever_the_batch() -> None:
    """A genome's returns do not depend on the genomes beside it nor on their order."""
    seeds = [7, 8]
    together = evaluate_batch(GENOMES, GameSetup(ENV, 500, 0.0, 2, 2, recurrent=True), seeds)
    backwards = evaluate_batch(GENOMES[::-1], GameSetup(ENV, 500, 0.0, 2, 2, recurrent=True), seeds)
    assert together == backwards[::-1]
    for g, o in zip(GENOMES[:8], together[:8], strict=True):
        assert evaluate_batch([g], GameSetup(ENV, 500, 0.0, 2, 2, recurrent=True), seeds) == [o]


def test_memory_resets_for_each_game() -> None:
    """A game's return is the same whichever games come before it in the task."""
    alone = evaluate_batch(GENOMES, GameSetup(ENV, 500, 0.0, 2, 2, recurrent=True), [9])
    after = evaluate_batch(GENOMES, GameSetup(ENV, 500, 0.0, 2, 2, recurrent=True), [2, 1, 9])
    assert [o.returns[0] for o in alone] == [o.returns[2] for o in after]


def test_memory_carries_from_step_to_step() -> None:
    """A hidden node's value reaches the output one step late: the state is used."""
    net = ReferenceNetwork(
        Genome.build(
            0,
            [0, 1, 2],
            [0.0, 0.0, 0.0],
            [0, 1, 2],
            [-1, 2, 2],
            [2, 0, 1],
            [1.0, 1.0, -1.0],
            [True, True, True],
        ),
        2,
    )
    assert net.step(np.array([1.0, 0.0])) == [0.0, 0.0]  # node 2 was 0 at the last step
    assert net.step(np.array([0.0, 0.0])) == [1 / 3, -1 / 3]  # softsign(softsign(1)) = 1/3
    net.reset()
    assert net.step(np.array([0.0, 0.0])) == [0.0, 0.0]


def test_cycles_refused_unless_recurrent() -> None:
    """Feed-forward evaluation, genome checks and decoding refuse a cycle; recurrent ones not."""
    looped = next(g for g in GENOMES if has_cycle(g.src, g.dst))
    with pytest.raises(ValueError, match="cycle"):
        BatchPlan([looped])
    with pytest.raises(ValueError, match="cycle"):
        check_genome(looped)
    check_genome(looped, cycles=True)
    packed = PackedGenomes.pack([looped])
    with pytest.raises(ValueError, match="cycle"):
        PackedGenomes.from_columns(packed.columns())
    assert PackedGenomes.from_columns(packed.columns(), cycles=True) == packed
    BatchPlan([looped], recurrent=True)


def _task(recurrent: bool, genomes: list[Genome]) -> EvaluationTask:
    return EvaluationTask(
        task_id="t",
        training_id="x",
        generation=0,
        env_id=ENV,
        game_indices=[0],
        game_seeds=[1],
        max_steps=10,
        reward_floor=0.0,
        input_size=2,
        output_size=2,
        recurrent=recurrent,
        genomes=PackedGenomes.pack(genomes),
    )


def test_task_carries_the_recurrent_flag() -> None:
    """A recurrent task round-trips with its cycles; the same genomes without it are refused."""
    looped = [g for g in GENOMES if has_cycle(g.src, g.dst)][:3]
    task = decode(encode(_task(True, looped)))
    assert isinstance(task, EvaluationTask)
    assert task.recurrent
    assert task.genomes == PackedGenomes.pack(looped)
    with pytest.raises(Exception, match="cycle"):
        decode(encode(_task(False, looped)))


def test_add_connection_makes_cycles_only_when_recurrent() -> None:
    """Without the key add-connection never closes a cycle; with it, it does."""
    plain = random_genome(0, 2, 2, seed=1, steps=3)
    for genome in [plain]:
        rng = np.random.default_rng(0)
        tracker = InnovationTracker(next_innov=1000, next_node=50)
        for _ in range(60):
            genome = add_node(genome, rng, tracker) if rng.random() < 0.2 else genome
            genome = add_connection(genome, 2, rng, tracker)
        assert not has_cycle(genome.src, genome.dst)
    assert has_cycle(looped_genome(0, seed=1).src, looped_genome(0, seed=1).dst)
