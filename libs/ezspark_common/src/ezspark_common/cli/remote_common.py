"""What the remote ``ezspark`` commands (and ``train --gateway``) share.

Every failure becomes one readable message on stderr and a non-zero exit code, never a
traceback: 1 for errors, 2 for an invalid config (each field listed), 130 after Ctrl-C.
The polling helpers here (``follow``) serve both ``ezspark watch`` and ``train --gateway``.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from ezspark_common.cli.client import (
    ApiError,
    ClientError,
    Gateway,
    UnreachableError,
    current_credentials,
    path_part,
)
from ezspark_common.cli.env_errors import EnvErrorLines
from ezspark_common.cli.health import HealthPrinter

EXIT_ERROR, EXIT_INVALID, EXIT_INTERRUPTED = 1, 2, 130
TERMINAL = frozenset({"finished", "failed", "stopped"})
PAGE = 1000  # generations fetched per request while catching up
MAX_MISSES = 15  # consecutive failed polls `follow` tolerates before giving up
# Replaced by tests; callers look it up on this module so one patch covers them all.
_sleep = time.sleep

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


# The evolver's finish reasons in words (an unknown one, from a newer gateway, as it is).
_REASONS = MappingProxyType(
    {
        "generations": "all generations run",
        "fitness_threshold": "fitness threshold reached",
        "stopped": "stopped on request",
    }
)


def _outcome_line(t: dict[str, Any]) -> str:
    """How an ended training ended; fails (exit 1) with its error if it failed."""
    if t["status"] == "failed":
        _fail(f"training failed: {t.get('error') or 'no reason given'}")
    why = t.get("finish_reason")
    reason = f" ({_REASONS.get(why, why)})" if why else ""
    return (
        f"{t['status']} after {t['generations']} generations{reason}: "
        f"best fitness {_fmt(t['best_fitness'])}"
    )


def _when(epoch: Any) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def _report_line(r: dict[str, Any]) -> str:
    return (
        f"gen {r['generation']:>6} | best {r['best_fitness']:>10.2f} | "
        f"mean {r['mean_fitness']:>10.2f} | species {r['species']:>3} | "
        f"pop {r['population']:>6} | {r['evaluations_per_s']:>9.0f} evals/s"
        + (f" | errors {r['errors']}" if r.get("errors") else "")
        + (
            f" | safeness {r['safeness_mismatches']}/{r['safeness_checks']} mismatched"
            if r.get("safeness_checks")
            else ""
        )
    )


def _print_new(gw: Gateway, training_id: str, since: int, env_errors: EnvErrorLines) -> int:
    """Print every generation from ``since`` on; return the next one to ask for."""
    while True:
        page = gw.get(
            f"/api/trainings/{path_part(training_id)}/generations", since=since, limit=PAGE
        )
        items = _dig(page, "items")
        for report in items:
            click.echo(_report_line(report))
            errors, population = report.get("errors"), report["population"]
            if line := env_errors.line(errors, population, report.get("first_error")):
                click.echo(line)
        since = int(_dig(page, "next_since"))
        if len(items) < PAGE:
            return since


def _waiting_line(before: Any, now: Any, status: str) -> str | None:
    """The line to print when the training starts or stops waiting (e.g. for an evaluator)."""
    if now and now != before:
        return f"-- waiting: {now}"
    return "-- no longer waiting" if before and not now and status not in TERMINAL else None


def follow(
    gw: Gateway,
    training_id: str,
    since: int,
    interval: float,
    on_poll: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Poll until the training ends and return its final state, printing every new
    generation, each change of status or of what it waits for, and health lines.

    ``on_poll`` runs after every answered poll (``train --gateway`` saves new genomes
    there).  Up to ``MAX_MISSES`` unanswered polls in a row are tolerated.
    """
    last_status, last_waiting, misses = None, None, 0
    health, env_errors = HealthPrinter(click.echo), EnvErrorLines()
    while True:
        try:
            # Status first: once it is final, every report has been stored before it.
            t = _training(gw, training_id)
            before, since = since, _print_new(gw, training_id, since, env_errors)
            if on_poll is not None:
                on_poll()
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
            click.echo(line)  # e.g. no evaluator serves the environment yet
        last_waiting = t.get("waiting")
        if last_status in TERMINAL:
            return t
        health.update(t, since != before)
        _sleep(interval)
