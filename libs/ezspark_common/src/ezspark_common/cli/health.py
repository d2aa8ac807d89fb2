"""Run health in ``ezspark watch`` and ``ezspark status``: the gateway's ``health`` object
(``GET /api/trainings/{id}``) as lines for people.

``watch`` prints a health line when the state or the phase changes, and otherwise at most
every ``QUIET_S`` seconds while no generation line was printed, so a long generation shows
its tasks and a stalled run says so instead of going silent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

QUIET_S = 30.0
PREFIX = "-- health: "  # set apart from watch's status lines ("-- <env> training …")


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min`` or ``4 d 3 h``; ``–`` for None."""
    if seconds is None:
        return "–"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _phase(h: dict[str, Any], config: dict[str, Any]) -> str | None:
    if h.get("phase") == "local":
        return f"local phase (alone_training_iterations {config.get('alone_training_iterations')})"
    return "distributed phase" if h.get("phase") == "distributed" else None


def health_line(t: dict[str, Any]) -> str | None:
    """One line: state, phase, generations, tasks, evaluators, ETA, last update."""
    h = t.get("health")
    if not h:
        return None
    parts = [h["state"].upper() if h["stalled"] else h["state"]]
    if phase := _phase(h, t.get("config", {})):
        parts.append(phase)
    total = h.get("generations_total")
    parts.append(f"{h['generations_done']}{f' of {total}' if total else ''} generations done")
    if h.get("running_generation"):
        running = f"generation {h['running_generation']}"
        if h.get("tasks_total"):
            running += f": {h['tasks_done']}/{h['tasks_total']} tasks"
        parts.append(running)
    if h.get("evaluators_answering") is not None or h.get("evaluators_serving") is not None:
        answering, serving = h.get("evaluators_answering"), h.get("evaluators_serving")
        parts.append(
            f"evaluators {'–' if answering is None else answering} answering, "
            f"{'–' if serving is None else serving} serving"
        )
    if h.get("eta_s") is not None:
        parts.append(f"ETA {duration(h['eta_s'])}")
    age = h.get("last_event_age_s")
    parts.append("no update yet" if age is None else f"last update {duration(age)} ago")
    if h["stalled"]:
        parts.append(f"stalled: silent for more than {duration(h['stalled_after_s'])}")
    return PREFIX + " | ".join(parts)


def detail_rows(t: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows for ``ezspark status ID``."""
    h = t.get("health")
    if not h:
        return []
    rows = [
        ("state", h["state"] + (" (stalled)" if h["stalled"] and h["state"] != "stalled" else ""))
    ]
    if phase := _phase(h, t.get("config", {})):
        rows.append(("phase", phase))
    if line := health_line(t):
        rows.append(("progress", line.removeprefix(PREFIX)))
    rows.append(("elapsed", duration(h["elapsed_s"])))
    if h.get("finish_reason_text"):
        rows.append(("ended", h["finish_reason_text"]))
    if h.get("env_errors_text"):
        rows.append(("env errors", h["env_errors_text"]))
    if h.get("safeness_text"):
        rows.append(("safeness", h["safeness_text"]))
    return rows


class HealthPrinter:
    """Decides when ``watch`` prints a health line (see the module docstring)."""

    def __init__(self, echo: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self._echo, self._clock = echo, clock
        self._key: tuple[Any, ...] | None = None
        self._at = -QUIET_S

    def update(self, t: dict[str, Any], printed_generations: bool) -> None:
        """Print the health of ``t`` if its state or phase changed, or after a quiet spell."""
        h = t.get("health")
        line = health_line(t)
        if not h or line is None:
            return
        key = (h["state"], h.get("phase"))
        now = self._clock()
        if printed_generations:
            self._at = now
        if key != self._key or now - self._at >= QUIET_S:
            self._key, self._at = key, now
            self._echo(line)
