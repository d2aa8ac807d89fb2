"""``ezspark``: the command line.  Embedded training, validation and replay live here;
the remote commands (submit, status, watch, stop, best, login) are in ``remote``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ezspark_common.cli.env_errors import EnvErrorLines
from ezspark_common.cli.evaluator import register as register_evaluator
from ezspark_common.cli.remote import register as register_remote
from ezspark_common.config import (
    ConfigError,
    TrainingConfig,
    config_with,
    load_config,
    stopping_warning,
)
from ezspark_common.evaluation import determinism
from ezspark_common.evaluation.envs import EnvModuleError, load_env_modules, resolve
from ezspark_common.evaluation.failures import failure
from ezspark_common.evaluation.games import EnvPool
from ezspark_common.evaluation.hangs import EnvHung, HangGuard
from ezspark_common.evaluation.replay import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_SCALE,
    DEFAULT_STRIDE,
    Player,
    RecordOptions,
)
from ezspark_common.logging import configure_logging, report_native_crashes
from ezspark_common.settings import CommonSettings

if TYPE_CHECKING:  # for annotations only: the commands import the trainer when they run
    from ezspark_common.trainer.training import TrainingState

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130
# A step or reset this long is stuck, not slow: generous, since the run stops for it.
DEFAULT_HANG_LIMIT_S = 60.0


def _fail_config(exc: ConfigError) -> NoReturn:
    click.echo("config is invalid:", err=True)
    for key, msg in exc.errors:
        click.echo(f"  {key}: {msg}", err=True)
    sys.exit(EXIT_INVALID)


def _load(path: str, settings: CommonSettings) -> TrainingConfig:
    try:
        config = load_config(path)
        with HangGuard(DEFAULT_HANG_LIMIT_S) as guard:  # builds one: a constructor may hang
            guard.call(resolve, config, settings.env_module_list)
        return config
    except ConfigError as exc:
        _fail_config(exc)
    except EnvHung as exc:
        _fail_config(ConfigError([("gym_game_name", failure("building the environment", exc))]))


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """EzSpark: distributed NEAT neuroevolution for Gymnasium environments."""
    settings = CommonSettings()
    configure_logging(settings.log_level, json_logs=False)
    report_native_crashes()
    try:
        load_env_modules(settings.env_module_list)
    except EnvModuleError as exc:  # every command needs them: say why, without a traceback
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    ctx.obj = settings


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def validate(settings: CommonSettings, config: str) -> None:
    """Check CONFIG against every rule and against its environment."""
    cfg = _load(config, settings)
    click.echo(
        f"ok: {cfg.gym_game_name}, {cfg.input_size} inputs, {cfg.output_size} outputs, "
        f"{cfg.generations} generations, seed {cfg.seed}"
    )
    warning = stopping_warning(cfg)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    _warn_if_nondeterministic(cfg.gym_game_name, settings.env_module_list)


def _warn_if_nondeterministic(
    env_id: str, env_modules: Sequence[str] = (), wait_s: float = determinism.PROBE_WAIT_S
) -> None:
    """Tell the owner now, not through quarantined evaluators later (seconds at most)."""
    if text := determinism.warning(env_id, wait_s, env_modules):
        click.echo(f"warning: {text}", err=True)


def _report_printer() -> Callable[[Any], None]:
    """Prints each generation's line, and what went wrong when its environment failed."""
    env_errors = EnvErrorLines()

    def print_report(report: Any) -> None:
        _print_report(report)
        if line := env_errors.line(report.errors, report.population, report.first_error):
            click.echo(line)

    return print_report


def _print_report(report: Any) -> None:
    click.echo(
        f"gen {report.generation:>5} | best {report.best_fitness:>10.2f} | "
        f"mean {report.mean_fitness:>10.2f} | species {report.species:>3} | "
        f"pop {report.population:>6} | {report.evaluations_per_s:>9.0f} evals/s | "
        f"{report.steps_per_s / 1e6:>6.2f} M steps/s"
        + (f" | errors {report.errors}" if report.errors else "")
        + (
            f" | safeness {report.safeness_mismatches}/{report.safeness_checks} mismatched"
            if report.safeness_checks
            else ""
        )
    )


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="runs/latest",
    show_default=True,
    help="Directory for checkpoint, best genome and history.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes evaluating genomes (default 1; with --gateway, every core).",
)
@click.option(
    "--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Override the config's seed."
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Continue the run checkpointed in this directory.",
)
@click.option(
    "--gateway",
    metavar="URL",
    default=None,
    help="Run the alone phase here, then continue in the cluster behind this gateway "
    "(after `ezspark login --url URL`; see docs/byo-environment.md).",
)
@click.option(
    "--hang-limit",
    type=click.FloatRange(0),
    default=DEFAULT_HANG_LIMIT_S,
    show_default=True,
    help="Seconds one reset or step of the environment may take; a call still running "
    "then fails its game (floor fitness, counted error) and the run goes on. 0: no limit.",
)
@click.option("--interval", type=click.FloatRange(0.05, 3600), default=2.0, hidden=True)
@click.pass_obj
def train(
    settings: CommonSettings,
    config: str,
    out_dir: str,
    workers: int | None,
    seed: int | None,
    resume_dir: str | None,
    gateway: str | None,
    hang_limit: float,
    interval: float,
) -> None:
    """Train CONFIG here (no broker needed), or start here and go on in a cluster (--gateway)."""
    cfg = _load(config, settings)
    if seed is not None:
        cfg = config_with(cfg, seed=seed)
    _warn_if_nondeterministic(cfg.gym_game_name, settings.env_module_list)
    hang_limit_s = hang_limit or None
    if gateway is None:
        _train_here(settings, cfg, config, out_dir, resume_dir, workers, hang_limit_s)
        return
    from ezspark_common.cli.hybrid import run_hybrid

    run_hybrid(
        settings,
        cfg,
        config,
        gateway,
        out_dir,
        resume_dir,
        workers,
        interval,
        _report_printer(),
        hang_limit_s=hang_limit_s,
    )


def _train_here(
    settings: CommonSettings,
    cfg: TrainingConfig,
    config: str,
    out_dir: str,
    resume_dir: str | None,
    workers: int | None,
    hang_limit_s: float | None,
) -> None:
    """The whole run in this process and its workers; Ctrl-C leaves a resumable checkpoint."""
    from ezspark_common.trainer.embedded import run_embedded
    from ezspark_common.trainer.evaluators import EmbeddedEvaluator, plays_user_code

    state, out = _starting_state(cfg, out_dir, resume_dir)
    evaluator = EmbeddedEvaluator(
        workers or 1,
        settings.env_module_list,
        hang_limit_s=hang_limit_s,
        isolate=settings.isolate_envs and plays_user_code(cfg.gym_game_name),
    )
    try:
        state = run_embedded(state, evaluator, out, _report_printer())
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted: checkpoint in {out}; continue with "
            f"`ezspark train {config} --resume {out}`",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    finally:
        evaluator.close()
    best = state.best
    click.echo(
        f"finished ({state.finished}) after generation {state.generation}: "
        f"best fitness {best.fitness if best else float('nan'):.2f}; "
        f"best genome in {out / 'best.json'}"
    )


def _starting_state(
    cfg: TrainingConfig, out_dir: str, resume_dir: str | None
) -> tuple[TrainingState, Path]:
    """A new run of ``cfg`` in ``out_dir``, or the checkpoint in ``resume_dir`` with
    ``cfg``'s stopping rules (its other keys must match)."""
    from ezspark_common.trainer.checkpoints import load_checkpoint
    from ezspark_common.trainer.embedded import with_stopping_rules
    from ezspark_common.trainer.training import start

    if resume_dir is None:
        return start(cfg), Path(out_dir)
    out = Path(resume_dir)
    state = load_checkpoint(out)
    _check_resume(state.config, cfg)
    state = with_stopping_rules(state, cfg)
    click.echo(f"resuming {out} at generation {state.generation}")
    return state, out


def _check_resume(saved: TrainingConfig, given: TrainingConfig) -> None:
    """A resumed run keeps its config; only the stopping rules may change."""
    free = {"generations", "fitness_threshold"}
    a, b = saved.model_dump(), given.model_dump()
    changed = sorted(k for k in a if k not in free and a[k] != b[k])
    if changed:
        click.echo(f"cannot resume: the config differs from the checkpoint in {changed}", err=True)
        sys.exit(EXIT_INVALID)


@main.command()
@click.argument("genome_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--episodes", type=click.IntRange(1, 10_000), default=5, show_default=True)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**63 - 1),
    default=0,
    show_default=True,
    help="Seed of the first episode; episode i uses seed + i.",
)
@click.option(
    "--max-steps",
    type=click.IntRange(1),
    default=None,
    help="Step limit per episode (default: the one the genome was trained with).",
)
@click.option(
    "--record",
    "record_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also save the first episode (seed --seed) as an animated GIF here.",
)
@click.option(
    "--frame-stride",
    type=click.IntRange(1, 1000),
    default=DEFAULT_STRIDE,
    show_default=True,
    help="With --record: keep a frame every N steps.",
)
@click.option(
    "--max-frames",
    type=click.IntRange(2, 10_000),
    default=DEFAULT_MAX_FRAMES,
    show_default=True,
    help="With --record: at most this many frames (a longer game keeps every other one).",
)
@click.option(
    "--scale",
    type=click.FloatRange(0.05, 1.0),
    default=DEFAULT_SCALE,
    show_default=True,
    help="With --record: shrink frames by this factor.",
)
@click.pass_obj
def play(
    settings: CommonSettings,
    genome_file: str,
    episodes: int,
    seed: int,
    max_steps: int | None,
    record_path: str | None,
    frame_stride: int,
    max_frames: int,
    scale: float,
) -> None:
    """Replay a saved genome and print its returns (--record: save a GIF of the first)."""
    from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
    from ezspark_common.evaluation.envs import EnvError, check_env_id

    doc = json.loads(Path(genome_file).read_text(encoding="utf-8"))
    try:
        player = Player.from_document(doc, max_steps)
        check_env_id(player.env_id, settings.env_module_list)
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{genome_file} is not an EzSpark genome file ({exc})") from None
    except EnvError as exc:
        raise click.ClickException(str(exc)) from None
    seeds = [seed + i for i in range(episodes)]
    setup = GameSetup(
        player.env_id,
        player.max_steps,
        0.0,
        player.n_inputs,
        player.n_outputs,
        recurrent=player.recurrent,
        input_scaling=player.input_scaling,
    )
    envs = EnvPool(HangGuard(DEFAULT_HANG_LIMIT_S))  # a stuck step fails its episode
    with envs.guard:
        (outcome,) = evaluate_batch([player.genome], setup, seeds, envs=envs)
    for s, r in zip(seeds, outcome.returns, strict=True):
        click.echo(f"episode seed {s}: return {r:.2f}")
    if outcome.error:
        click.echo(f"error: {outcome.error}", err=True)
    click.echo(f"mean return {outcome.mean:.2f} over {episodes} episodes")
    if record_path is not None:
        options = RecordOptions(frame_stride, max_frames, scale)
        _record(settings, player, seed, options, Path(record_path))


def _record(
    settings: CommonSettings, player: Player, seed: int, options: RecordOptions, out: Path
) -> None:
    """Save the game with ``seed`` as an animated GIF at ``out``."""
    from ezspark_common.evaluation.replay import ReplayError, record_gif

    try:
        gif, rec = record_gif(player, seed, options, settings.env_module_list)
    except ReplayError as exc:
        raise click.ClickException(f"cannot record: {exc}") from None
    try:
        out.write_bytes(gif)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(
        f"recorded episode seed {seed}: return {rec.episode_return:.2f} in {rec.steps} steps, "
        f"{len(rec.frames)} frames ({rec.frame_ms} ms each), {len(gif) / 1024:.0f} KiB -> {out}"
    )


register_remote(main)
register_evaluator(main)
