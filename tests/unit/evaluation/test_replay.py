"""Recorded replays (``ezspark play --record``, ``evaluation.replay``): a real animated GIF
drawn by Gymnasium, deterministic to the byte, whose game is the one training plays."""

from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner
from gymnasium import spaces
from PIL import Image

from ezspark_common.cli.app import main
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.evaluation.replay import (
    EnvironmentMissingError,
    Player,
    RecordOptions,
    ReplayError,
    _Frames,
    encode_gif,
    make_render_env,
    record,
    record_gif,
)
from ezspark_common.neat.genome import Genome
from tests.support import faulty_envs
from tests.unit.neat.test_recurrent import ENV as NO_VELOCITY
from tests.unit.neat.test_recurrent import GENOMES as LOOPED

# A CartPole controller: push the way the pole falls (inputs -3 and -4: angle, angular speed).
BALANCER: dict[str, Any] = {
    "key": 7,
    "node_ids": [0, 1],
    "biases": [0.0, 0.0],
    "innov": [0, 1, 2, 3],
    "src": [-3, -4, -3, -4],
    "dst": [1, 1, 0, 0],
    "weight": [1.0, 1.0, -1.0, -1.0],
    "enabled": [True] * 4,
}


class _Drawn(gym.Env[np.ndarray, int]):
    """Two inputs, two actions, ten steps, a tiny grey frame; ``crash_at`` makes step raise."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012
    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float64)
    action_space = spaces.Discrete(2)

    def __init__(self, render_mode: str | None = None, crash_at: int = 0, draws: bool = True):
        self.render_mode, self.crash_at, self.draws, self.t = render_mode, crash_at, draws, 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:  # type: ignore[type-arg]
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:  # type: ignore[type-arg]
        self.t += 1
        if self.t == self.crash_at:
            raise RuntimeError("boom")
        return np.full(2, self.t / 10), 1.0, self.t >= 10, False, {}

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        return np.full((20, 30, 3), 8 * self.t, np.uint8) if self.draws else None


for _name, _kwargs in (("Crash", {"crash_at": 3}), ("Blind", {"draws": False})):
    if f"EzReplay/{_name}-v0" not in gym.registry:
        gym.register(id=f"EzReplay/{_name}-v0", entry_point=_Drawn, kwargs=_kwargs)

LINE = re.compile(r"return (-?[\d.]+) in (\d+) steps, (\d+) frames \((\d+) ms each\)")


def dense_genome(n_in: int, n_out: int, seed: int) -> Genome:
    """Every input wired to every output with random weights (a plausible policy)."""
    rng = np.random.default_rng(seed)
    src = [-(i + 1) for _ in range(n_out) for i in range(n_in)]
    dst = [o for o in range(n_out) for _ in range(n_in)]
    return Genome.from_wire(
        {
            "key": 1,
            "node_ids": list(range(n_out)),
            "biases": rng.normal(0, 0.5, n_out).tolist(),
            "innov": list(range(len(src))),
            "src": src,
            "dst": dst,
            "weight": rng.normal(0, 1.5, len(src)).tolist(),
            "enabled": [True] * len(src),
        }
    )


def genome_file(tmp_path: Path, env_id: str = "CartPole-v1", **extra: Any) -> Path:
    """An ``ezspark-genome`` file holding the CartPole balancer (or ``extra`` overrides)."""
    doc = {
        "format": "ezspark-genome",
        "version": 1,
        "env_id": env_id,
        "input_size": 4,
        "output_size": 2,
        "max_steps": 500,
        "generation": None,
        "fitness": 500.0,
        "returns": [],
        "genome": BALANCER,
        **extra,
    }
    path = tmp_path / "best.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def play(*args: str) -> Any:
    """Run ``ezspark play ARGS`` in-process."""
    return CliRunner().invoke(main, ["play", *args], catch_exceptions=False)


def gif_facts(data: bytes) -> tuple[int, int, tuple[int, int], bytes]:
    """Frames stored, total display time (ms), size and comment of a GIF."""
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "GIF"
        total, stored = 0, 0
        for i in range(im.n_frames):
            im.seek(i)
            total += int(im.info["duration"])
            stored += 1
        im.seek(0)
        return stored, total, im.size, im.info.get("comment", b"")


def test_play_record_writes_an_animated_gif_of_the_whole_game(tmp_path: Path) -> None:
    """--record writes a looping GIF: one frame every 2 steps plus the last, shown for
    the game's own duration, downscaled to half size, with the seed and return inside."""
    out = tmp_path / "replay.gif"
    result = play(str(genome_file(tmp_path)), "--episodes", "2", "--record", str(out))
    assert result.exit_code == 0, result.output
    first = re.search(r"episode seed 0: return ([\d.]+)", result.output)
    ret, steps, frames, ms = LINE.search(result.output).groups()  # type: ignore[union-attr]
    assert first is not None
    assert float(first.group(1)) == float(ret)
    steps_n, frames_n = int(steps), int(frames)
    assert steps_n > 100  # the balancer keeps the pole up for a while
    assert frames_n == steps_n // 2 + 1 + (steps_n % 2)
    data = out.read_bytes()
    assert data[:6] == b"GIF89a"
    stored, total_ms, size, comment = gif_facts(data)
    # Identical consecutive frames are merged with their times added, never lost.
    assert 0.9 * frames_n <= stored <= frames_n
    assert total_ms == frames_n * int(ms) == frames_n * 40  # CartPole draws at 50 fps
    assert size == (300, 200)
    assert comment.startswith(b"ezspark replay: CartPole-v1, seed 0, return")
    with Image.open(io.BytesIO(data)) as im:
        assert im.is_animated
        assert im.info["loop"] == 0


def test_same_genome_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    """Two recordings of the same genome and seed are byte-identical; another seed differs."""
    path = str(genome_file(tmp_path))
    outs = [tmp_path / f"{name}.gif" for name in ("a", "b", "c")]
    for out, seed in zip(outs, ("3", "3", "4"), strict=True):
        assert play(path, "--episodes", "1", "--seed", seed, "--record", str(out)).exit_code == 0
    a, b, c = (o.read_bytes() for o in outs)
    assert a == b
    assert a != c


def test_frame_options_bound_the_file(tmp_path: Path) -> None:
    """--max-frames caps the frames (the stride doubles, the game is still shown whole);
    --scale shrinks them; the smaller GIF is smaller on disk too."""
    path = str(genome_file(tmp_path))
    big, small = tmp_path / "big.gif", tmp_path / "small.gif"
    assert play(path, "--episodes", "1", "--record", str(big)).exit_code == 0
    result = play(
        path, "--episodes", "1", "--record", str(small), "--max-frames", "40", "--scale", "0.25"
    )
    assert result.exit_code == 0, result.output
    _, steps, frames, ms = LINE.search(result.output).groups()  # type: ignore[union-attr]
    assert int(frames) <= 40
    assert int(frames) * int(ms) >= int(steps) * 20 * 0.9  # covers the whole game
    stored, _, size, _ = gif_facts(small.read_bytes())
    assert size == (150, 100)
    assert stored <= 40
    assert small.stat().st_size < big.stat().st_size / 3


def test_thinning_keeps_the_whole_game_evenly() -> None:
    """Past the limit every other frame goes and the stride doubles: frames stay evenly
    spaced from step 0, never above the limit, and the final step is always shown."""
    frames = _Frames(stride=1, limit=10)
    for step in range(0, 101):
        frames.offer(step, lambda s=step: np.full((1, 1, 3), s % 256, np.uint8))  # type: ignore[misc]
    frames.finish(100, lambda: np.full((1, 1, 3), 255, np.uint8))
    shown = [int(f[0, 0, 0]) for f in frames.frames]
    assert len(shown) <= 10
    assert shown[0] == 0
    assert shown[-1] == 255  # the final frame, drawn by finish
    gaps = {b - a for a, b in itertools.pairwise(shown[:-1])}
    assert gaps == {frames.stride}


@pytest.mark.parametrize(
    ("env_id", "n_in", "n_out", "seed"),
    [
        ("CartPole-v1", 4, 2, 11),
        ("Acrobot-v1", 6, 3, 2),
        ("LunarLander-v3", 8, 4, 5),
        ("Pendulum-v1", 3, 1, 1),  # a Box action: outputs squashed onto the bounds
    ],
)
def test_replay_return_is_the_training_return(
    env_id: str, n_in: int, n_out: int, seed: int
) -> None:
    """The recorded game is the game evaluation plays: same seed, same return and steps
    (vectorised physics included), so `ezspark play` and the replay agree."""
    genome = dense_genome(n_in, n_out, seed)
    player = Player(genome, env_id, n_in, n_out, max_steps=300)
    rec = record(player, 9, RecordOptions(stride=5, max_frames=50, scale=0.2))
    (outcome,) = evaluate_batch([genome], GameSetup(env_id, 300, 0.0, n_in, n_out), [9])
    assert outcome.error is None
    assert rec.episode_return == outcome.returns[0]
    assert rec.steps == outcome.steps
    assert len(rec.frames) == min(rec.steps // 5 + 1 + (rec.steps % 5 > 0), 50)


def test_recurrent_replay_keeps_its_memory() -> None:
    """A recurrent genome replays with its node values carried from step to step: its
    return equals evaluation's on CartPole without velocities."""
    genome = LOOPED[3]
    player = Player(genome, NO_VELOCITY, 2, 2, max_steps=200, recurrent=True)
    rec = record(player, 4, RecordOptions())
    setup = GameSetup(NO_VELOCITY, 200, 0.0, 2, 2, recurrent=True)
    (outcome,) = evaluate_batch([genome], setup, [4])
    assert (rec.episode_return, rec.steps) == (outcome.returns[0], outcome.steps)


def test_environment_problems_are_replay_errors() -> None:
    """Unknown ids, environments that cannot start, raise or draw, and a network that
    does not fit fail with a ReplayError saying why (never another exception)."""
    faulty_envs.register()
    genome = dense_genome(2, 2, 0)
    options = RecordOptions()
    with pytest.raises(ReplayError, match="unknown environment 'NoSuchGame-v0'"):
        record(Player(genome, "NoSuchGame-v0", 2, 2, 10), 0, options)
    with pytest.raises(ReplayError, match="not an allowed environment module"):
        record(Player(genome, "os:CartPole-v1", 2, 2, 10), 0, options)
    with pytest.raises(ReplayError, match="cannot start 'EzTest/Echo-v0' here: TypeError"):
        record(Player(genome, "EzTest/Echo-v0", 2, 2, 10), 0, options)  # takes no render_mode
    with pytest.raises(ReplayError, match="step raised RuntimeError: boom"):
        record(Player(genome, "EzReplay/Crash-v0", 2, 2, 10), 0, options)
    with pytest.raises(ReplayError, match="draws no RGB frames"):
        record(Player(genome, "EzReplay/Blind-v0", 2, 2, 10), 0, options)
    with pytest.raises(ReplayError, match="observations have 4 values, the network 2 inputs"):
        record(Player(genome, "CartPole-v1", 2, 2, 10), 0, options)


def test_a_crashing_environment_is_a_clear_cli_error(tmp_path: Path) -> None:
    """`ezspark play --record` on an environment that raises mid-game exits 1 with the
    reason, no traceback, and writes no file."""
    wire = dense_genome(2, 2, 0).to_wire()
    path = genome_file(tmp_path, "EzReplay/Crash-v0", input_size=2, genome=wire)
    out = tmp_path / "r.gif"
    result = CliRunner().invoke(main, ["play", str(path), "--record", str(out)])
    assert result.exit_code == 1
    assert "cannot record: step raised RuntimeError: boom" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_deadline_fails_instead_of_cutting_the_game() -> None:
    """A replay over its time budget fails (a shorter GIF would not be deterministic)."""
    player = Player(Genome.from_wire(BALANCER), "CartPole-v1", 4, 2, 500)
    with pytest.raises(ReplayError, match="longer than 1e-09 s"):
        record(player, 0, RecordOptions(deadline_s=1e-9))


def test_encode_gif_is_a_pure_function_of_the_recording() -> None:
    """Encoding the same recording twice gives the same bytes; record_gif = record + encode."""
    player = Player(Genome.from_wire(BALANCER), "CartPole-v1", 4, 2, 60)
    options = RecordOptions(stride=3, scale=0.3)
    data, rec = record_gif(player, 1, options)
    assert encode_gif(rec) == encode_gif(rec) == data
    assert gif_facts(data)[2] == (180, 120)


def test_an_environment_that_cannot_draw_is_told_how_to() -> None:
    """A constructor without render_mode: the refusal says what recording needs."""
    faulty_envs.register()
    with pytest.raises(EnvironmentMissingError, match="render_mode") as info:
        make_render_env("EzTest/Echo-v0")
    assert "takes render_mode in its constructor" in str(info.value)


def test_play_fails_an_episode_whose_step_never_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ezspark play` reports a stuck step as that episode's error instead of hanging."""
    from ezspark_common.cli import app

    faulty_envs.register()
    monkeypatch.setattr(app, "DEFAULT_HANG_LIMIT_S", 0.2)
    wire = dense_genome(2, 2, 0).to_wire()
    path = genome_file(tmp_path, "EzTest/Sleep-v0", input_size=2, genome=wire)
    result = CliRunner().invoke(main, ["play", str(path), "--episodes", "1"])
    assert result.exit_code == 0, result.output
    assert "error: step did not return within 0.2 s (the hang limit)" in result.output
