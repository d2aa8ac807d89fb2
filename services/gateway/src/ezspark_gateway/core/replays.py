"""Replays of a training's best genome: drawn at the gateway once, then served from disk.

Design (issue 15, item 5).  The gateway draws a replay itself, on demand, with
``ezspark_common.evaluation.replay``: one game of the best genome with a fixed seed
(``EZSPARK_REPLAY_SEED``, 0 by default, the seed ``ezspark play`` starts at, so the
command reproduces it).  An evaluator could draw it too, but that needs a new command,
result message and storage path through the broker for a few hundred KiB that only the
page wants; the gateway can build every environment the Gymnasium registry it ships
knows, and answers a clear "unavailable" for the rest (plug-in ``module:Id``
environments, which the gateway never imports, and missing extras such as Box2D in the
slim gateway image).

* **Cache.** On disk (``EZSPARK_REPLAY_CACHE_DIR``), one GIF and its JSON facts per
  (training, best genome, drawing options), named by a digest of all of them: a new best
  genome is a new file, the old one is removed, and at most ``cache_entries`` files are
  kept (oldest removed).  Gateway worker processes sharing the directory share the cache;
  files appear atomically (``os.replace``), the facts last.  No database column needed.
* **Bounded work.** At most ``concurrency`` drawings per process at once (others get
  ReplayBusyError: 503 with Retry-After); each game is capped at ``max_steps`` steps,
  ``max_frames`` frames and ``timeout_s`` seconds; failures (an environment that cannot
  be built or raises) are remembered per digest in memory and answered at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ezspark_common.config import input_scaling_seed
from ezspark_common.evaluation.replay import (
    EnvironmentMissingError,
    Player,
    RecordOptions,
    ReplayError,
    record_gif,
)
from ezspark_common.neat.genome import Genome
from ezspark_gateway.core.errors import ConflictError, CoreError, NotFoundError
from ezspark_gateway.storage.models import Training

log = structlog.get_logger(__name__)
# Bump when the drawing changes, so cached files of the old drawing are not served.
DRAWING_VERSION = 1
MAX_REMEMBERED_FAILURES = 256
ELSEWHERE = (
    "; draw it where the environment is installed: ezspark best {id} -o best.json && "
    "ezspark play best.json --episodes 1 --record replay.gif"
)


class ReplaySettings(BaseSettings):
    """``EZSPARK_REPLAY_*``: where replays are cached and how much one may cost."""

    model_config = SettingsConfigDict(env_prefix="EZSPARK_REPLAY_", extra="ignore")

    cache_dir: str = ""  # empty: <system temp dir>/ezspark-replays
    seed: int = Field(default=0, ge=0, lt=2**63)
    max_steps: int = Field(default=5000, ge=1, le=1_000_000)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    stride: int = Field(default=2, ge=1, le=1000)
    max_frames: int = Field(default=300, ge=2, le=2000)
    scale: float = Field(default=0.5, gt=0, le=1)
    cache_entries: int = Field(default=500, ge=1)
    concurrency: int = Field(default=1, ge=1, le=16)
    retry_after_s: int = Field(default=3, ge=1, le=600)

    def directory(self) -> Path:
        """The cache directory (created private to this user when first written)."""
        return Path(self.cache_dir or Path(tempfile.gettempdir()) / "ezspark-replays")


class ReplayUnavailableError(ConflictError):
    """This training's replay cannot be drawn here; the message says why (409)."""


class ReplayBusyError(CoreError):
    """Every drawing slot of this process is taken; retry after ``retry_after`` s (503)."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__("another replay is being drawn; try again shortly")


@dataclass(frozen=True)
class ReplayInfo:
    """What a replay shows: which genome, which game, its return; and its file."""

    training_id: str
    genome_key: int
    env_id: str
    seed: int
    episode_return: float
    steps: int
    max_steps: int
    frames: int
    frame_ms: int
    size_bytes: int
    digest: str


@dataclass(frozen=True)
class ReplaySubject:
    """The plain data a replay needs, read from the training row (no session after)."""

    training_id: str
    config: Mapping[str, Any]
    genome: Mapping[str, Any]

    @staticmethod
    def of(training: Training) -> ReplaySubject:
        """NotFoundError until the training has a best genome."""
        if training.best_genome is None:
            raise NotFoundError("no best genome yet")
        return ReplaySubject(training.id, dict(training.config), dict(training.best_genome))


class Replays:
    """Draws and caches replays (see the module docstring); one per gateway process."""

    def __init__(self, settings: ReplaySettings) -> None:
        self.settings = settings
        self.dir = settings.directory()  # created when the first replay is stored
        self.options = RecordOptions(
            settings.stride, settings.max_frames, settings.scale, settings.timeout_s
        )
        # Public so operators' probes (and tests) can see or hold the drawing slots.
        self.slots = threading.BoundedSemaphore(settings.concurrency)
        self._failures: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, subject: ReplaySubject) -> tuple[ReplayInfo, bytes, bool]:
        """The replay's facts, its GIF and whether it came from the cache.

        ReplayUnavailableError when it cannot be drawn here, ReplayBusyError when every
        slot is taken.  Never anything else: a crashing environment is "unavailable".
        """
        digest = self._digest(subject)
        found = self._load(subject.training_id, digest)
        if found is not None:
            return *found, True
        with self._lock:
            failure = self._failures.get(digest)
        if failure is not None:
            raise ReplayUnavailableError(failure)  # the same inputs would fail the same way
        if not self.slots.acquire(blocking=False):
            raise ReplayBusyError(self.settings.retry_after_s)
        try:
            found = self._load(subject.training_id, digest)  # drawn while we waited?
            if found is not None:
                return *found, True
            return *self._make(subject, digest), False
        finally:
            self.slots.release()

    def _digest(self, subject: ReplaySubject) -> str:
        """Names the replay: genome, game and drawing options, nothing else."""
        c, s = subject.config, self.settings
        key = {
            "v": DRAWING_VERSION,
            "genome": subject.genome,
            "env": c.get("gym_game_name"),
            "sizes": [c.get("input_size"), c.get("output_size")],
            "steps": self._max_steps(subject),
            "recurrent": c.get("recurrent") is True,
            "draw": [s.seed, s.stride, s.max_frames, s.scale],
        }
        scaling = _input_scaling(c)
        if scaling is not None:  # only then: replays drawn before the key keep their names
            key["scaling"] = list(scaling)
        raw = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def _max_steps(self, subject: ReplaySubject) -> int:
        """The training's step limit, capped by ``max_steps``."""
        steps = subject.config.get("max_number_of_steps")
        cap = self.settings.max_steps
        return min(steps, cap) if isinstance(steps, int) and steps > 0 else cap

    def _paths(self, training_id: str, digest: str) -> tuple[Path, Path]:
        stem = self.dir / f"{training_id}-{digest}"
        return stem.with_suffix(".gif"), stem.with_suffix(".json")

    def _load(self, training_id: str, digest: str) -> tuple[ReplayInfo, bytes] | None:
        """The cached replay, or None (absent, pruned meanwhile, or another version's)."""
        gif, facts = self._paths(training_id, digest)
        try:
            info = ReplayInfo(**json.loads(facts.read_text(encoding="utf-8")))
            return info, gif.read_bytes()
        except (OSError, ValueError, TypeError):
            return None

    def _make(self, subject: ReplaySubject, digest: str) -> tuple[ReplayInfo, bytes]:
        try:
            player = self._player(subject)
            # No plug-in modules: the gateway never imports a module a user names.
            gif, rec = record_gif(player, self.settings.seed, self.options, ())
        except EnvironmentMissingError as exc:
            raise self._failed(digest, f"{exc}{ELSEWHERE.format(id=subject.training_id)}") from None
        except ReplayError as exc:
            raise self._failed(digest, str(exc)) from None
        except Exception as exc:  # an environment's bug must not become a 500
            log.warning("replay_failed", training_id=subject.training_id, error=repr(exc))
            raise self._failed(digest, f"drawing failed: {type(exc).__name__}: {exc}") from None
        info = ReplayInfo(
            training_id=subject.training_id,
            genome_key=player.genome.key,
            env_id=player.env_id,
            seed=rec.seed,
            episode_return=rec.episode_return,
            steps=rec.steps,
            max_steps=player.max_steps,
            frames=len(rec.frames),
            frame_ms=rec.frame_ms,
            size_bytes=len(gif),
            digest=digest,
        )
        try:
            self._store(info, gif)
        except OSError as exc:  # served anyway; the next request draws it again
            log.warning("replay_cache_unwritable", directory=str(self.dir), error=str(exc))
        return info, gif

    def _player(self, subject: ReplaySubject) -> Player:
        c = subject.config
        recurrent = c.get("recurrent") is True
        try:
            genome = Genome.from_wire(dict(subject.genome), cycles=recurrent)
            return Player(
                genome,
                str(c["gym_game_name"]),
                int(c["input_size"]),
                int(c["output_size"]),
                self._max_steps(subject),
                recurrent,
                _input_scaling(c),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReplayError(f"the best genome cannot be played: {exc}") from None

    def _failed(self, digest: str, reason: str) -> ReplayUnavailableError:
        """Remember why ``digest`` cannot be drawn; the error to raise."""
        message = f"replay unavailable: {reason}"
        with self._lock:
            self._failures[digest] = message
            while len(self._failures) > MAX_REMEMBERED_FAILURES:
                self._failures.popitem(last=False)
        return ReplayUnavailableError(message)

    def _store(self, info: ReplayInfo, data: bytes) -> None:
        """Write the GIF, then its facts (their presence means "complete"); prune."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        gif, facts = self._paths(info.training_id, info.digest)
        _write_atomic(gif, data)
        _write_atomic(facts, json.dumps(asdict(info)).encode())
        for old in self.dir.glob(f"{info.training_id}-*"):
            if old not in (gif, facts):  # the previous best genome's replay
                old.unlink(missing_ok=True)
        self._prune()

    def _prune(self) -> None:
        """Keep the newest ``cache_entries`` replays."""
        entries = sorted(self.dir.glob("*.json"), key=_mtime, reverse=True)
        for stale in entries[self.settings.cache_entries :]:
            stale.unlink(missing_ok=True)  # facts first: a half-removed entry is a miss
            stale.with_suffix(".gif").unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _input_scaling(config: Mapping[str, Any]) -> tuple[int, int] | None:
    """A ``normalize_inputs`` training's (seed, step limit) of its random-action games, as
    its evaluators saw them (evaluation.scaling); None for raw observations."""
    seed = input_scaling_seed(config)
    return None if seed is None else (seed, int(config["max_number_of_steps"]))
