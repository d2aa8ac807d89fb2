"""The embedded trainer: determinism across workers, checkpoints, resume after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ezspark_common.config import TrainingConfig, config_with, load_config
from ezspark_common.neat.population import population_to_dict
from ezspark_common.trainer.checkpoints import load_checkpoint
from ezspark_common.trainer.embedded import run_embedded, with_stopping_rules
from ezspark_common.trainer.evaluators import EmbeddedEvaluator, InProcessEvaluator
from ezspark_common.trainer.training import TrainingState, start, state_from_dict, state_to_dict

REPO = Path(__file__).resolve().parents[2]


def small_config(**changes: Any) -> TrainingConfig:
    """The spec's example on CartPole-v1, shrunk so a run takes about a second."""
    base = load_config(REPO / "examples" / "spec-example.json")
    values = {
        "gym_game_name": "CartPole-v1",
        "initial_population": 40,
        "max_population": 120,
        "generations": 6,
        "max_number_of_games": 3,
        "sub_games": 2,
        "max_number_of_steps": 120,
        "seed": 3,
        "safeness": 0.25,
    }
    values.update(changes)
    return config_with(base, **values)


def fingerprint(state: TrainingState) -> str:
    """Genomes, species and last fitnesses of a state, as comparable text."""
    data = state_to_dict(state)
    return json.dumps([data["population"], data["last_outcomes"]], sort_keys=True)


def train(config: TrainingConfig, out: Path, workers: int) -> TrainingState:
    """Run the embedded trainer to the end."""
    evaluator = EmbeddedEvaluator(workers)
    try:
        return run_embedded(start(config), evaluator, out)
    finally:
        evaluator.close()


def test_same_seed_same_population_with_one_or_two_workers(tmp_path: Path) -> None:
    """Genomes, species and fitnesses after N generations match for --workers 1 and 2."""
    config = small_config(alone_training_iterations=2)
    one = train(config, tmp_path / "w1", workers=1)
    two = train(config, tmp_path / "w2", workers=2)
    assert one.population.generation == config.generations - 1
    assert fingerprint(one) == fingerprint(two)
    assert len(one.population.species) >= 1


def test_different_seed_gives_different_population(tmp_path: Path) -> None:
    """The seed really feeds the run: another seed evolves other genomes."""
    a = train(small_config(generations=2), tmp_path / "a", workers=1)
    b = train(small_config(generations=2, seed=4), tmp_path / "b", workers=1)
    assert fingerprint(a) != fingerprint(b)


def test_checkpoint_round_trip_is_exact(tmp_path: Path) -> None:
    """A state written and read back serialises identically (floats exact)."""
    state = train(small_config(generations=3), tmp_path / "r", workers=1)
    again = state_from_dict(json.loads(json.dumps(state_to_dict(state))))
    assert state_to_dict(again) == state_to_dict(state)
    assert population_to_dict(load_checkpoint(tmp_path / "r").population) == population_to_dict(
        state.population
    )


def test_resume_from_mid_run_checkpoint_reaches_same_result(tmp_path: Path) -> None:
    """Stopping after generation 2 and resuming ends exactly where an uninterrupted run does."""
    config = small_config()
    full = train(config, tmp_path / "full", workers=1)
    partial = train(config_with(config, generations=3), tmp_path / "part", workers=1)
    resumed_state = TrainingState(
        config=config, population=partial.population, history=partial.history, best=partial.best
    )
    evaluator = InProcessEvaluator()
    try:
        # Resuming from the last checkpoint re-evaluates that generation first.
        ckpt = load_checkpoint(tmp_path / "part")
        assert ckpt.finished == "generations"
        resumed = run_embedded(
            TrainingState(
                config=config, population=ckpt.population, history=ckpt.history[:-1], best=None
            ),
            evaluator,
            tmp_path / "part",
        )
    finally:
        evaluator.close()
    assert resumed_state.population.generation == 2
    assert fingerprint(resumed) == fingerprint(full)


def test_resume_with_more_generations_extends_a_finished_run_like_a_longer_run(
    tmp_path: Path,
) -> None:
    """A finished run resumed with a larger ``generations`` goes on, and ends exactly where a
    run with that many generations from the start ends; the same limit leaves it finished."""
    config = small_config()
    full = train(config, tmp_path / "full", workers=1)
    train(config_with(config, generations=3), tmp_path / "short", workers=1)
    same = with_stopping_rules(load_checkpoint(tmp_path / "short"), small_config(generations=3))
    assert same.finished == "generations"
    longer = with_stopping_rules(load_checkpoint(tmp_path / "short"), config)
    assert (longer.finished, longer.generation) == (None, 3)
    evaluator = InProcessEvaluator()
    try:
        extended = run_embedded(longer, evaluator, tmp_path / "short")
    finally:
        evaluator.close()
    assert extended.finished == "generations"
    assert fingerprint(extended) == fingerprint(full)
    assert [(r.generation, r.best_fitness, r.mean_fitness) for r in extended.history] == [
        (r.generation, r.best_fitness, r.mean_fitness) for r in full.history
    ]


def _run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ezspark_common", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_ctrl_c_writes_checkpoint_and_resume_matches_uninterrupted(tmp_path: Path) -> None:
    """SIGINT mid-run exits 130 with a checkpoint; --resume reaches the uninterrupted result."""
    config = small_config(
        gym_game_name="Acrobot-v1",
        input_size=6,
        output_size=3,
        minimum_reward=-1,
        generations=5,
        initial_population=30,
        max_number_of_steps=200,
        max_number_of_games=2,
        sub_games=2,
    )
    cfg_file = tmp_path / "acrobot.json"
    cfg_file.write_text(json.dumps(config.model_dump()))
    straight = train(config, tmp_path / "straight", workers=1)
    out = tmp_path / "interrupted"
    proc = _run_cli("train", str(cfg_file), "--out", str(out))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = (
            (out / "history.jsonl").read_text().splitlines()
            if (out / "history.jsonl").exists()
            else []
        )
        if len(lines) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err
    interrupted_at = load_checkpoint(out).generation
    assert 2 <= interrupted_at < config.generations
    resumed = _run_cli("train", str(cfg_file), "--resume", str(out))
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert fingerprint(load_checkpoint(out)) == fingerprint(straight)
    history = (out / "history.jsonl").read_text().splitlines()
    assert [json.loads(h)["generation"] for h in history] == list(range(config.generations))
