"""Recorded replays: one game of a genome, drawn by Gymnasium and saved as an animated GIF.

The game is played exactly as in training (``evaluation``): the same network, actions and
end rules, on an ordinary Gymnasium environment built with ``render_mode="rgb_array"``.
So its return equals the one ``ezspark play`` prints for the same seed.

Files stay small: a frame every ``stride`` steps; when that would exceed ``max_frames``
the kept frames are thinned to every other one and the stride doubled, so the GIF always
shows the whole game; frames are downscaled by ``scale`` and share one 64-colour palette.
Everything is a function of (genome, environment, seed, options), so the same inputs
give the same GIF bytes.  Drawing needs pygame (Gymnasium's renderer) and encoding
Pillow: the ``render`` extra of ezspark-common.
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from ezspark_common.evaluation.actions import box_of
from ezspark_common.evaluation.envs import EnvError, check_env_id, flatten_obs, registered_id
from ezspark_common.evaluation.failures import failure
from ezspark_common.evaluation.scaling import InputScaling, for_games
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.network import BatchPlan

DEFAULT_STRIDE = 2
DEFAULT_MAX_FRAMES = 300
DEFAULT_SCALE = 0.5
PALETTE_COLOURS = 64
# Frames sampled to build the shared palette: enough to see every colour of a game.
PALETTE_SAMPLES = 8
Frame = NDArray[np.uint8]
Action = Any  # an int for Discrete, an array for Box


class ReplayError(Exception):
    """The replay cannot be made (environment missing, crashing, too slow); says why."""


class EnvironmentMissingError(ReplayError):
    """The environment cannot be built in this process (unknown id, module not allowed,
    a missing extra): another machine, with the environment installed, could draw it."""


@dataclass(frozen=True)
class Player:
    """A genome and the game it plays: what an ``ezspark-genome`` file holds."""

    genome: Genome
    env_id: str
    n_inputs: int
    n_outputs: int
    max_steps: int
    recurrent: bool = False
    # (seed, step limit) of the games that fix input normalisation (evaluation.scaling).
    input_scaling: tuple[int, int] | None = None

    @staticmethod
    def from_document(doc: Mapping[str, Any], max_steps: int | None = None) -> Player:
        """From a genome file (docs/genome-format.md); ValueError when it is not one."""
        if doc.get("format") != "ezspark-genome":
            raise ValueError("not an EzSpark genome file")
        recurrent = doc.get("recurrent") is True
        seed = doc.get("input_scaling_seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError("input_scaling_seed must be a whole number >= 0")
        return Player(
            genome=Genome.from_wire(dict(doc["genome"]), cycles=recurrent),
            env_id=str(doc["env_id"]),
            n_inputs=int(doc["input_size"]),
            n_outputs=int(doc["output_size"]),
            max_steps=max_steps or int(doc["max_steps"]),
            recurrent=recurrent,
            # The training's step limit, not a replay's: the constants must be the same.
            input_scaling=None if seed is None else (seed, int(doc["max_steps"])),
        )

    def scaling(self) -> InputScaling | None:
        """The input normalisation constants, or None (raw observations)."""
        return for_games(self.env_id, self.n_inputs, self.n_outputs, self.input_scaling)


@dataclass(frozen=True)
class RecordOptions:
    """How much of the game is kept; ``deadline_s`` bounds the wall-clock time (it makes
    a slow replay fail, never a shorter GIF, so the output stays deterministic)."""

    stride: int = DEFAULT_STRIDE
    max_frames: int = DEFAULT_MAX_FRAMES
    scale: float = DEFAULT_SCALE
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        if self.stride < 1 or self.max_frames < 2 or not 0.0 < self.scale <= 1.0:
            raise ValueError("need stride >= 1, max_frames >= 2 and 0 < scale <= 1")


@dataclass(frozen=True, eq=False)
class Recording:
    """One recorded game: its return and length, and the frames kept."""

    env_id: str
    seed: int
    episode_return: float
    steps: int
    frames: list[Frame]  # downscaled already
    stride: int  # steps between kept frames (after any thinning)
    fps: float  # the environment's own speed, steps per second

    @property
    def frame_ms(self) -> int:
        """Display time of one frame, in whole GIF ticks (10 ms, at least 20 ms)."""
        return max(2, round(100 * self.stride / self.fps)) * 10


class _Frames:
    """Kept frames: step 0 and every ``stride``-th, thinned by halves past ``limit``."""

    def __init__(self, stride: int, limit: int) -> None:
        self.stride, self.limit = stride, limit
        self.frames: list[Frame] = []
        self.last = -1  # the step of the last kept frame

    def offer(self, step: int, draw: Callable[[], Frame]) -> None:
        """Keep the frame of ``step`` when it falls on the stride."""
        if step % self.stride:
            return
        self.frames.append(draw())
        self.last = step
        if len(self.frames) > self.limit:  # frames at 0, s, 2s...: keep 0, 2s, 4s...
            self.frames = self.frames[::2]
            self.stride *= 2
            self.last = (len(self.frames) - 1) * self.stride

    def finish(self, step: int, draw: Callable[[], Frame]) -> None:
        """Show the final state too (in place of the last frame when full)."""
        if step == self.last:
            return
        if len(self.frames) >= self.limit:
            self.frames.pop()
        self.frames.append(draw())
        self.last = step


def _quiet_display() -> None:
    """Headless drawing: pygame needs no screen or sound card for ``rgb_array``."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def make_render_env(env_id: str, allowed_modules: Iterable[str] = ()) -> gym.Env[Any, Any]:
    """The environment, drawing ``rgb_array`` frames; ReplayError when it cannot be built."""
    try:
        check_env_id(env_id, allowed_modules)
    except EnvError as exc:
        raise EnvironmentMissingError(str(exc)) from None
    _quiet_display()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation notes of old ids
            env = gym.make(registered_id(env_id), render_mode="rgb_array", disable_env_checker=True)
    except Exception as exc:  # a missing extra (box2d, mujoco) or a broken environment
        hint = ""
        if "render_mode" in str(exc):  # a user's environment that never learnt to draw
            hint = (
                "; to be recorded, an environment takes render_mode in its constructor "
                "and returns an RGB array from render() when it is 'rgb_array'"
            )
        raise EnvironmentMissingError(
            f"cannot start '{env_id}' here: {type(exc).__name__}: {exc}{hint}"
        ) from None
    return env


def _policy(player: Player, env: gym.Env[Any, Any]) -> Callable[[NDArray[np.float64]], Action]:
    """Observation → action, as ``evaluation`` computes it (memory kept if recurrent)."""
    net = BatchPlan([player.genome], recurrent=player.recurrent).compile(
        np.arange(1), player.n_inputs, player.n_outputs
    )
    values = net.new_values(1)
    scaling = player.scaling()
    box = box_of(env.action_space)
    if box is not None and box.size != player.n_outputs:
        raise ReplayError(f"the network has {player.n_outputs} outputs, the actions {box.size}")

    def act(obs: NDArray[np.float64]) -> Action:
        if obs.shape[0] != player.n_inputs:
            raise ReplayError(
                f"observations have {obs.shape[0]} values, the network {player.n_inputs} inputs"
            )
        seen = obs.reshape(1, player.n_inputs)
        net.set_inputs(values, seen if scaling is None else scaling.apply(seen))
        net.activate(values)
        if box is None:
            return int(net.actions(values)[0, 0])
        return box.for_env(box.squash(net.output_values(values).reshape(1, -1))[0])

    return act


def _pil() -> Any:
    """Pillow's ``Image`` module, or a ReplayError saying how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise ReplayError("recording needs Pillow: pip install 'ezspark-common[render]'") from None
    return Image


def _draw(env: gym.Env[Any, Any], scale: float) -> Callable[[], Frame]:
    """The current frame, downscaled at once: full-size frames would cost ~0.7 MB each."""
    Image = _pil()  # noqa: N806  (the module's usual name)

    def draw() -> Frame:
        try:
            frame = env.render()
        except Exception as exc:
            raise ReplayError(failure("drawing", exc)) from None
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise ReplayError("the environment draws no RGB frames (render_mode 'rgb_array')")
        image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "RGB")
        if scale != 1.0:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BOX)
        return np.asarray(image, dtype=np.uint8)

    return draw


def record(
    player: Player, seed: int, options: RecordOptions, allowed_modules: Iterable[str] = ()
) -> Recording:
    """Play one game with ``seed`` and keep its frames (ReplayError if it cannot)."""
    env = make_render_env(player.env_id, allowed_modules)
    try:
        return _play(player, env, seed, options)
    finally:
        env.close()


def _play(player: Player, env: gym.Env[Any, Any], seed: int, options: RecordOptions) -> Recording:
    start = time.monotonic()
    draw, frames = _draw(env, options.scale), _Frames(options.stride, options.max_frames)
    try:
        obs, _ = env.reset(seed=seed)
    except Exception as exc:  # the user's environment: contain, report
        raise ReplayError(failure("reset", exc)) from None
    act = _policy(player, env)
    frames.offer(0, draw)
    total, steps = 0.0, 0
    while steps < player.max_steps:
        x = flatten_obs(obs)
        if not np.isfinite(x).all():
            raise ReplayError(f"non-finite observation at step {steps}")
        try:
            obs, reward, term, trunc, _ = env.step(act(x))
        except ReplayError:
            raise
        except Exception as exc:
            raise ReplayError(failure("step", exc)) from None
        if not math.isfinite(float(reward)):
            raise ReplayError(f"non-finite reward at step {steps + 1}")
        total += float(reward)
        steps += 1
        frames.offer(steps, draw)
        if term or trunc:
            break
        if options.deadline_s is not None and time.monotonic() - start > options.deadline_s:
            raise ReplayError(f"the game took longer than {options.deadline_s:g} s to draw")
    frames.finish(steps, draw)
    fps = float(env.metadata.get("render_fps") or 30)
    return Recording(player.env_id, seed, total, steps, frames.frames, frames.stride, fps)


def encode_gif(recording: Recording) -> bytes:
    """The frames as a looping animated GIF (Pillow)."""
    Image = _pil()  # noqa: N806

    images = [Image.fromarray(f, "RGB") for f in recording.frames]
    palette = _palette(images)
    frames = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    out = io.BytesIO()
    comment = (
        f"ezspark replay: {recording.env_id}, seed {recording.seed}, "
        f"return {recording.episode_return:.2f} in {recording.steps} steps"
    )
    frames[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=recording.frame_ms,
        loop=0,
        comment=comment.encode(),
    )
    return out.getvalue()


def _palette(images: list[Any]) -> Any:
    """One palette for every frame (no flicker, smaller file), from evenly spaced frames."""
    Image = _pil()  # noqa: N806

    k = min(PALETTE_SAMPLES, len(images))
    picks = sorted({round(j * (len(images) - 1) / max(1, k - 1)) for j in range(k)})
    w, h = images[0].size
    sheet = Image.new("RGB", (w, h * len(picks)))
    for row, i in enumerate(picks):
        sheet.paste(images[i], (0, h * row))
    return sheet.quantize(
        colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )


def record_gif(
    player: Player, seed: int, options: RecordOptions, allowed_modules: Iterable[str] = ()
) -> tuple[bytes, Recording]:
    """:func:`record` then :func:`encode_gif`: the GIF bytes and the recording."""
    recording = record(player, seed, options, allowed_modules)
    return encode_gif(recording), recording
