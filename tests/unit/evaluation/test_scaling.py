"""Input normalisation (``normalize_inputs``): constants from seeded random-action games,
the same wherever they are computed, and applied wherever a network sees observations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner

from ezspark_common import rng as rngs
from ezspark_common.cli.app import main
from ezspark_common.config import config_with
from ezspark_common.evaluation import scaling
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.evaluation.games import EnvPool
from ezspark_common.evaluation.replay import Player, RecordOptions, record
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.packed import PackedGenomes
from ezspark_common.trainer.tasks import evaluate_task, task_setup
from ezspark_common.trainer.training import BestGenome, genome_document
from ezspark_common.wire.messages import EvaluationTask, decode, encode
from tests.support import faulty_envs
from tests.support.configs import small_config
from tests.unit.evaluation.test_replay import dense_genome
from tests.unit.wire.test_messages import task as message_task


def _random_play(env_id: str, n_out: int, steps: int, seed: int) -> np.ndarray:
    """Every observation of the random-action games, played on Gymnasium's own environment
    with the draws the docs describe (an independent reading of them)."""
    gen = rngs.generator(seed, rngs.SCALING)
    seeds = [int(s) for s in gen.integers(0, 2**32, scaling.GAMES)]
    envs = [gym.make(env_id) for _ in seeds]
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)]
    seen, active = list(obs), [True] * len(envs)
    for _ in range(steps):
        actions = gen.integers(0, n_out, scaling.GAMES)
        for i, env in enumerate(envs):
            if active[i]:
                o, _, term, trunc, _ = env.step(int(actions[i]))
                seen.append(o)
                active[i] = not (term or trunc)
        if not any(active):
            break
    return np.array(seen, dtype=np.float64)


def test_constants_are_the_mean_and_spread_of_random_play() -> None:
    """CartPole's constants are the mean and standard deviation of every observation of
    thirty seeded random-action games, reset included."""
    seen = _random_play("CartPole-v1", 2, 500, 7)
    got = scaling.measure("CartPole-v1", 4, 2, 500, 7)
    np.testing.assert_allclose(got.mean, seen.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.spread, seen.std(axis=0), rtol=1e-9)


def test_same_seed_same_constants_other_seed_other_ones() -> None:
    """Measured afresh, a seed gives bit-identical constants; another seed other ones;
    the training's step limit caps the games (LunarLander, the issue's task)."""
    args = ("LunarLander-v3", 8, 4, 1000)
    first = scaling.measure(*args, rngs.scaling_seed(1))
    again = scaling.measure(*args, rngs.scaling_seed(1), EnvPool())
    assert first.mean.tobytes() == again.mean.tobytes()
    assert first.spread.tobytes() == again.spread.tobytes()
    other = scaling.measure(*args, rngs.scaling_seed(2))
    assert not np.array_equal(first.mean, other.mean)
    short = scaling.measure("LunarLander-v3", 8, 4, 5, rngs.scaling_seed(1))
    assert not np.array_equal(first.spread, short.spread)
    assert rngs.scaling_seed(1) != 1  # evaluators get a derived seed, not the training's


class _SteadyEnv(faulty_envs._Base):
    """Its first observation value never changes."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, term, trunc, info = super().step(action)
        return np.array([0.5, obs[1]]), reward, term, trunc, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed)
        return np.array([0.5, obs[1]]), info


def test_a_failing_environment_or_a_constant_input_leaves_usable_constants() -> None:
    """An environment that raises at its third step leaves the observations before it
    (finite constants, no exception); an input that never changes is centred, not scaled."""
    faulty_envs.register()
    raising = scaling.measure("EzTest/Raise-v0", 2, 2, 10, 1)
    assert np.isfinite(raising.mean).all()
    assert (raising.spread > 0).all()
    if "EzTest/Steady-v0" not in gym.registry:
        gym.register(id="EzTest/Steady-v0", entry_point=_SteadyEnv)
    steady = scaling.measure("EzTest/Steady-v0", 2, 2, 10, 1)
    assert steady.mean[0] == 0.5
    assert steady.spread[0] == 1.0
    assert 0.3 < steady.spread[1] < 0.8  # uniform on (-1, 1): about 0.58


def _folded(genome: Genome, found: scaling.InputScaling) -> Genome:
    """The same policy on raw observations: ``w·(x − m)/s + b`` folded into the genes."""
    wire = genome.to_wire()
    inputs = [-s - 1 for s in wire["src"]]
    weights = [w / found.spread[i] for w, i in zip(wire["weight"], inputs, strict=True)]
    biases = list(wire["biases"])
    for w, i, d in zip(weights, inputs, wire["dst"], strict=True):
        biases[d] -= w * found.mean[i]
    return Genome.from_wire({**wire, "weight": weights, "biases": biases})


def test_networks_see_the_normalised_observations() -> None:
    """With the setting, a genome plays as the genome with the constants folded into its
    weights plays on raw observations, and unlike the same genome without the setting."""
    genome = dense_genome(4, 2, 3)
    setup = GameSetup("CartPole-v1", 500, 0.0, 4, 2, input_scaling=(5, 500))
    found = setup.scaling()
    assert found is not None
    seeds = [1, 2, 3]
    (normalised,) = evaluate_batch([genome], setup, seeds)
    raw = GameSetup("CartPole-v1", 500, 0.0, 4, 2)
    (folded,) = evaluate_batch([_folded(genome, found)], raw, seeds)
    (plain,) = evaluate_batch([genome], raw, seeds)
    assert normalised.returns == folded.returns
    assert normalised.returns != plain.returns


def test_a_task_carries_the_seed_only_when_set() -> None:
    """The evolver's task sends the derived seed (never the constants) and evaluation with
    it equals the embedded setup's; without the key the field is not on the wire, so an
    evaluator from before it still serves such trainings."""
    config = small_config(normalize_inputs=True)
    setup = GameSetup.of(config)
    genomes = [dense_genome(4, 2, s) for s in range(3)]
    fields: dict[str, object] = {
        "game_seeds": [4, 5],
        "max_steps": setup.max_steps,
        "reward_floor": setup.reward_floor,
        "genomes": PackedGenomes.pack(genomes),
    }
    plain = message_task(**fields)
    assert b"input_scaling_seed" not in encode(plain)
    assert setup.input_scaling is not None
    task = decode(encode(message_task(**fields, input_scaling_seed=setup.input_scaling[0])))
    assert isinstance(task, EvaluationTask)
    assert task_setup(task) == setup
    assert list(evaluate_task(task)) == evaluate_batch(genomes, setup, [4, 5])
    assert list(evaluate_task(plain)) != list(evaluate_task(task))


def test_play_and_replays_use_the_training_constants(tmp_path: Path) -> None:
    """A saved genome of a normalising training records its seed; `ezspark play` and a
    recorded replay then score what training scored, even with another step limit."""
    config = small_config(normalize_inputs=True, max_number_of_steps=200, seed=4)
    genome = dense_genome(4, 2, 3)
    setup = GameSetup.of(config)
    (trained,) = evaluate_batch([genome], setup, [0])
    doc = genome_document(BestGenome(genome, trained.mean, 0, trained.returns), config)
    assert doc["input_scaling_seed"] == rngs.scaling_seed(4)
    path = tmp_path / "best.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["play", str(path), "--seed", "0", "--episodes", "1"])
    assert result.exit_code == 0, result.output
    assert f"episode seed 0: return {trained.returns[0]:.2f}" in result.output
    player = Player.from_document(doc, max_steps=150)
    assert player.input_scaling == (rngs.scaling_seed(4), 200)
    rec = record(player, 0, RecordOptions(scale=0.1))
    (capped,) = evaluate_batch([genome], dataclasses.replace(setup, max_steps=150), [0])
    assert rec.episode_return == capped.returns[0]
    raw = config_with(config, normalize_inputs=False)
    assert "input_scaling_seed" not in genome_document(BestGenome(genome, 0.0, 0, ()), raw)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "7"])
def test_a_bad_seed_in_a_genome_file_is_refused(bad: object) -> None:
    """A genome file whose input_scaling_seed is not a whole number >= 0 is not one."""
    doc = {
        "format": "ezspark-genome",
        "env_id": "CartPole-v1",
        "input_size": 4,
        "output_size": 2,
        "max_steps": 10,
        "input_scaling_seed": bad,
        "genome": dense_genome(4, 2, 0).to_wire(),
    }
    with pytest.raises(ValueError, match="input_scaling_seed"):
        Player.from_document(doc)


def test_a_normalising_run_is_the_same_with_one_or_two_workers(tmp_path: Path) -> None:
    """Each worker process measures the constants on its own: one worker or two, the same
    population and history."""
    from tests.support.runs import fingerprint, train

    config = small_config(normalize_inputs=True)
    one = train(config, tmp_path / "w1", workers=1)
    two = train(config, tmp_path / "w2", workers=2)
    assert fingerprint(one) == fingerprint(two)


def test_a_pool_keeps_the_constants_it_measured_up_to_a_bound() -> None:
    """Whoever evaluates owns the memo: its EnvPool measures a training's constants once,
    then reuses them, and keeps at most KEPT trainings' constants."""
    pool = EnvPool()
    setup = GameSetup("CartPole-v1", 50, 0.0, 4, 2, input_scaling=(1, 50))
    first = setup.scaling(pool)
    assert first is not None
    assert setup.scaling(pool) is first
    assert setup.scaling() is not first  # no pool: measured afresh (the same values)
    for seed in range(scaling.KEPT + 3):
        scaling.measured("CartPole-v1", 4, 2, 5, seed, pool)
    assert len(pool.scalings) == scaling.KEPT
