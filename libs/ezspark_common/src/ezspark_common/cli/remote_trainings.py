"""``ezspark submit``, ``status``, ``watch``, ``stop`` and ``best``: a training on the gateway."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ezspark_common.cli.client import ApiError, ClientError, path_part
from ezspark_common.cli.health import PREFIX, detail_rows, duration
from ezspark_common.cli.remote_common import (
    EXIT_INTERRUPTED,
    _dig,
    _fail,
    _fail_fields,
    _fmt,
    _gateway,
    _outcome_line,
    _report_line,
    _training,
    _when,
    follow,
    handled,
)
from ezspark_common.config import ConfigError, TrainingConfig, load_config, stopping_warning
from ezspark_common.trainer.training import genome_header
from ezspark_common.wire.messages import WireGenome


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@handled
def submit(config: str) -> None:
    """Validate CONFIG here, send it to the gateway and print the new training's id.

    The gateway checks what ``ezspark validate`` checks here, the environment and its
    sizes included, against the environments its evaluators serve (which this machine
    may not have installed): its refusal is listed field by field."""
    try:
        cfg = load_config(config)
        raw = Path(config).read_bytes()
    except ConfigError as exc:
        _fail_fields(f"{config} is invalid", exc.errors)
    except OSError as exc:
        _fail(f"cannot read {config}: {exc.strerror or exc}")
    warning = stopping_warning(cfg) if isinstance(cfg, TrainingConfig) else None
    if warning:
        click.echo(f"warning: {warning}", err=True)
    training = _gateway().request("POST", "/api/trainings", raw_json=raw)
    training_id = str(_dig(training, "id"))
    click.echo(training_id)
    click.echo(f"queued; follow it with `ezspark watch {training_id}`", err=True)


def _show_list(page: Any) -> None:
    items = _dig(page, "items")
    if not items:
        click.echo("no trainings yet; create one with `ezspark submit CONFIG`")
        return
    click.echo(f"{'ID':<36}  {'STATUS':<9} {'GENS':>8} {'BEST':>10}  {'CREATED':<16}  ENV")
    for t in items:
        click.echo(
            f"{t['id']:<36}  {t['status']:<9} {t['generations']:>8} "
            f"{_fmt(t['best_fitness']):>10}  {_when(t['created_at']):<16}  "
            f"{t['gym_game_name']}"
        )
    total = int(_dig(page, "total"))
    if total > len(items):
        click.echo(f"(newest {len(items)} of {total})")


def _show_detail(t: dict[str, Any]) -> None:
    rows = [
        ("id", t["id"]),
        ("environment", t["gym_game_name"]),
        ("status", t["status"]),
        ("generations", t["generations"]),
        ("best fitness", _fmt(t["best_fitness"])),
        ("created", _when(t["created_at"])),
        ("updated", _when(t["updated_at"])),
    ]
    if t.get("waiting"):
        rows.append(("waiting", t["waiting"]))
    if t.get("finish_reason"):
        rows.append(("finish reason", t["finish_reason"]))
    if t.get("error"):
        rows.append(("error", t["error"]))
    rows += detail_rows(t)
    latest = t.get("latest_report")
    if latest:
        rows.append(("latest", _report_line(latest)))
    rows.append(
        (
            "best genome",
            "available (`ezspark best ID -o FILE`)" if t.get("has_best_genome") else "not yet",
        )
    )
    for key, value in rows:
        click.echo(f"{key + ':':<15}{value}")


@click.command()
@click.argument("training_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the gateway's JSON answer.")
@handled
def status(training_id: str | None, as_json: bool) -> None:
    """List my trainings, or show one training in detail."""
    gw = _gateway()
    data: Any = _training(gw, training_id) if training_id else gw.get("/api/trainings", limit=100)
    if as_json:
        click.echo(json.dumps(data, indent=1))
    elif training_id:
        _show_detail(data)
    else:
        _show_list(data)


@click.command()
@click.argument("training_id")
@click.option(
    "--interval",
    type=click.FloatRange(0.05, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between polls.",
)
@click.option(
    "--since",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="First generation to print.",
)
@handled
def watch(training_id: str, interval: float, since: int) -> None:
    """Print each new generation until the training ends (exit 0 finished/stopped, 1 failed)."""
    gw = _gateway()
    try:
        t = follow(gw, training_id, since, interval)
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped watching; the training goes on (`ezspark stop {training_id}` stops it)",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    if h := t.get("health"):
        click.echo(f"{PREFIX}ended after {duration(h['elapsed_s'])}: {h['finish_reason_text']}")
    click.echo(_outcome_line(t))


@click.command()
@click.argument("training_id")
@handled
def stop(training_id: str) -> None:
    """Ask the gateway to stop a training (it ends at the next generation boundary)."""
    t = _gateway().post(f"/api/trainings/{path_part(training_id)}/stop")
    click.echo(f"stop requested for {training_id}: status {_dig(t, 'status')}")


def _no_genome(t: dict[str, Any]) -> NoReturn:
    _fail(
        f"no best genome yet for training {t['id']} (status {t['status']}): the gateway "
        "stores one when the training ends (HTTP 404)"
    )


@click.command()
@click.argument("training_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="File to write (default: ezspark-ID-best.json).",
)
@handled
def best(training_id: str, output: str | None) -> None:
    """Download the best genome as a file that `ezspark play FILE` replays."""
    gw = _gateway()
    t = _training(gw, training_id)
    if not t.get("has_best_genome"):
        _no_genome(t)
    try:
        wire = gw.get(f"/api/trainings/{path_part(training_id)}/best")
    except ApiError as exc:
        if exc.status == 404:
            _no_genome(t)
        raise
    try:
        genome = WireGenome.model_validate(wire).model_dump(mode="json")
    except ValueError:
        raise ClientError("the gateway sent a malformed genome") from None
    config = t["config"]
    # docs/genome-format.md; the gateway does not keep the champion's generation or returns.
    doc = {
        **genome_header(config),
        "generation": None,
        "fitness": t["best_fitness"],
        "returns": [],
        "training_id": t["id"],
        "genome": genome,
    }
    out = Path(output or f"ezspark-{t['id']}-best.json")
    try:
        out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    click.echo(
        f"best genome (fitness {_fmt(t['best_fitness'])}) saved to {out}; replay it "
        f"with `ezspark play {out}`"
    )
