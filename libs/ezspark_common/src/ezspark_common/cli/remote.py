"""Remote ``ezspark`` commands: log in to a gateway, submit, follow, stop, fetch the best genome.

``ezspark login`` trades a password for a long-lived API token (named after this host) and
stores it with the gateway URL (see ``ezspark_common.cli.client``); the other commands use it.
Every failure is one readable message on stderr and a non-zero exit code, never a traceback:
1 for errors, 2 for an invalid config (each field listed), 130 after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from ezspark_common.cli.client import (
    TOKEN_ENV,
    ApiError,
    ClientError,
    Credentials,
    Gateway,
    UnreachableError,
    credentials_path,
    current_credentials,
    forget,
    gateway_url,
    load_stored,
    path_part,
    save,
)
from ezspark_common.cli.health import PREFIX, HealthPrinter, detail_rows, duration
from ezspark_common.config import ConfigError, TrainingConfig, load_config, stopping_warning
from ezspark_common.trainer.training import genome_header
from ezspark_common.wire.messages import WireGenome

EXIT_ERROR, EXIT_INVALID, EXIT_INTERRUPTED = 1, 2, 130
TERMINAL = frozenset({"finished", "failed", "stopped"})
PAGE = 1000  # generations fetched per request while catching up
MAX_MISSES = 15  # consecutive failed polls `watch` tolerates before giving up
_sleep = time.sleep  # replaced by tests

P = ParamSpec("P")
R = TypeVar("R")


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _fail_fields(title: str, errors: list[tuple[str, str]]) -> NoReturn:
    click.echo(f"error: {title}:", err=True)
    for key, msg in errors:
        click.echo(f"  {key}: {msg}", err=True)
    sys.exit(EXIT_INVALID)


def _report(exc: ClientError) -> NoReturn:
    if not isinstance(exc, ApiError):
        _fail(str(exc))
    if exc.status == 401:
        _fail(f"the gateway refused the credentials ({exc.detail}); run `ezspark login` again")
    if exc.status == 422:
        _fail_fields(
            f"the gateway rejected the request ({exc.detail})",
            exc.errors or [("request", exc.detail)],
        )
    _fail(str(exc))


def handled(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn every ClientError raised by a command into a message and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            _report(exc)
        except (KeyError, TypeError) as exc:  # an answer of an unexpected shape
            _fail(
                f"unexpected answer from the gateway ({type(exc).__name__}: {exc}); is it "
                "an EzSpark gateway of a matching version?"
            )

    return wrapper


def _dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``; ClientError if the gateway's answer lacks it."""
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            raise ClientError(f"unexpected answer from the gateway (no {'.'.join(keys)!r})")
        data = data[key]
    return data


def _gateway() -> Gateway:
    creds = current_credentials()
    return Gateway(creds.url, creds.token)


def _training(gw: Gateway, training_id: str) -> dict[str, Any]:
    data = gw.get(f"/api/trainings/{path_part(training_id)}")
    _dig(data, "status")
    assert isinstance(data, dict)
    return data


def _fmt(value: Any, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _when(epoch: Any) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def token_name() -> str:
    """The name of the API token ``login`` creates: where it is used from."""
    return f"ezspark-cli@{socket.gethostname() or 'unknown-host'}"[:100]


def _read_password(from_stdin: bool) -> str:
    if not from_stdin:
        return str(click.prompt("Password", hide_input=True))
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("--password-stdin: no password on standard input")
    return password


def _revoke_quietly(gw: Gateway, creds: Credentials | None) -> None:
    """Best effort: revoke a token we are about to forget (it may be gone already)."""
    if creds is None or creds.token_id is None:
        return
    with contextlib.suppress(ClientError):
        gw.request("DELETE", f"/api/auth/tokens/{creds.token_id}", token=creds.token)


@click.command()
@click.option(
    "--url",
    help="Gateway URL, e.g. https://ezspark.example.org "
    "(default: $EZSPARK_URL, the last one used, or http://127.0.0.1:8000).",
)
@click.option("--username", "-u", help="Account name (prompted if missing).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@handled
def login(url: str | None, username: str | None, password_stdin: bool) -> None:
    """Log in and store an API token (never the password) for the other commands."""
    gw = Gateway(gateway_url(url))
    username = username or str(click.prompt("Username"))
    password = _read_password(password_stdin)
    try:
        session = gw.post("/api/auth/login", {"username": username, "password": password})
    except ApiError as exc:
        if exc.status in (401, 422, 429):
            _fail(f"login to {gw.url} failed: {exc.detail}")
        raise
    session_token = str(_dig(session, "token", "token"))
    issued = gw.request(
        "POST", "/api/auth/tokens", json_body={"name": token_name()}, token=session_token
    )
    creds = Credentials(
        url=gw.url,
        token=str(_dig(issued, "token")),
        token_id=int(_dig(issued, "id")),
        username=username,
    )
    with contextlib.suppress(ClientError):  # the short-lived session has done its job
        gw.request("POST", "/api/auth/logout", token=session_token)
    try:
        previous = load_stored()
    except ClientError:
        previous = None  # unreadable: overwritten below
    path = save(creds)
    if previous is not None and previous.url == gw.url:
        _revoke_quietly(gw, previous)
    click.echo(f"logged in to {gw.url} as {username}; API token saved in {path}")


@click.command()
@handled
def logout() -> None:
    """Revoke the stored API token and delete it."""
    stored = load_stored()
    if stored is None:
        click.echo(f"not logged in (no {credentials_path()})")
    else:
        try:
            if stored.token_id is not None:
                Gateway(stored.url, stored.token).request(
                    "DELETE", f"/api/auth/tokens/{stored.token_id}"
                )
        except ClientError as exc:
            if not (isinstance(exc, ApiError) and exc.status in (401, 404)):
                click.echo(
                    f"warning: could not revoke the token on the gateway ({exc}); "
                    "it is only deleted here",
                    err=True,
                )
        forget()
        click.echo(f"logged out of {stored.url}")
    if os.environ.get(TOKEN_ENV):
        click.echo(f"note: {TOKEN_ENV} is still set and keeps authenticating", err=True)


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


def _report_line(r: dict[str, Any]) -> str:
    return (
        f"gen {r['generation']:>6} | best {r['best_fitness']:>10.2f} | "
        f"mean {r['mean_fitness']:>10.2f} | species {r['species']:>3} | "
        f"pop {r['population']:>6} | {r['evaluations_per_s']:>9.0f} evals/s"
    )


def _print_new(gw: Gateway, training_id: str, since: int) -> int:
    """Print every generation from ``since`` on; return the next one to ask for."""
    while True:
        page = gw.get(
            f"/api/trainings/{path_part(training_id)}/generations", since=since, limit=PAGE
        )
        items = _dig(page, "items")
        for report in items:
            click.echo(_report_line(report))
        since = int(_dig(page, "next_since"))
        if len(items) < PAGE:
            return since


def _waiting_line(before: Any, now: Any, status: str) -> str | None:
    """The line to print when the training starts or stops waiting (e.g. for an evaluator)."""
    if now and now != before:
        return f"-- waiting: {now}"
    return "-- no longer waiting" if before and not now and status not in TERMINAL else None


def _follow(gw: Gateway, training_id: str, since: int, interval: float) -> dict[str, Any]:
    """Poll until the training ends and return its final state."""
    last_status, last_waiting, misses = None, None, 0
    health = HealthPrinter(click.echo)
    while True:
        try:
            # Status first: once it is final, every report has been stored before it.
            t = _training(gw, training_id)
            before, since = since, _print_new(gw, training_id, since)
            misses = 0
        except UnreachableError as exc:
            misses += 1
            if misses > MAX_MISSES:
                raise
            if misses == 1:
                click.echo(f"warning: {exc}; retrying", err=True)
            _sleep(interval)
            continue
        if t["status"] != last_status:
            last_status = t["status"]
            click.echo(f"-- {t['gym_game_name']} training {training_id}: {last_status}")
        if line := _waiting_line(last_waiting, t.get("waiting"), t["status"]):
            click.echo(line)
        last_waiting = t.get("waiting")
        if last_status in TERMINAL:
            return t
        health.update(t, since != before)
        _sleep(interval)


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
        t = _follow(gw, training_id, since, interval)
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped watching; the training goes on (`ezspark stop {training_id}` stops it)",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    if h := t.get("health"):
        click.echo(f"{PREFIX}ended after {duration(h['elapsed_s'])}: {h['finish_reason_text']}")
    if t["status"] == "failed":
        _fail(f"training failed: {t.get('error') or 'no reason given'}")
    reason = f" ({t['finish_reason']})" if t.get("finish_reason") else ""
    click.echo(
        f"{t['status']} after {t['generations']} generations{reason}: "
        f"best fitness {_fmt(t['best_fitness'])}"
    )


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


def register(group: click.Group) -> None:
    """Add the remote commands to the ``ezspark`` group."""
    for command in (login, logout, submit, status, watch, stop, best):
        group.add_command(command)
