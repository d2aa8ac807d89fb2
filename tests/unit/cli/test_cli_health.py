"""``ezspark watch``/``status`` health lines: what they say and when watch prints them."""

from __future__ import annotations

from typing import Any

from ezspark_common.cli.health import HealthPrinter, detail_rows, duration, health_line


def _training(**health: Any) -> dict[str, Any]:
    h = {
        "state": "running",
        "stalled": False,
        "stalled_after_s": 60.0,
        "phase": "local",
        "generations_done": 10,
        "generations_total": 600,
        "running_generation": 11,
        "tasks_done": 35,
        "tasks_total": 80,
        "evaluators_answering": 2,
        "evaluators_serving": 3,
        "eta_s": 754.0,
        "last_event_age_s": 3.2,
        "elapsed_s": 3700.0,
        "finish_reason_text": None,
    } | health
    return {"health": h, "config": {"alone_training_iterations": 60}}


def test_duration_words() -> None:
    """Seconds, minutes, hours and days read as people write them."""
    assert [duration(s) for s in (None, 42, 185, 7800, 360000)] == [
        "–",
        "42 s",
        "3 min 5 s",
        "2 h 10 min",
        "4 d 4 h",
    ]


def test_health_line_says_phase_progress_eta_and_age() -> None:
    """A running run: phase, X of Y, tasks, evaluators, ETA, last update."""
    line = health_line(_training())
    assert line == (
        "-- health: running | local phase (alone_training_iterations 60) | 10 of 600 generations "
        "done | generation 11: 35/80 tasks | evaluators 2 answering, 3 serving | "
        "ETA 12 min 34 s | last update 3 s ago"
    )


def test_a_stalled_run_shouts_and_says_how_long() -> None:
    """Stalled is upper-case and names the silence threshold; no ETA is invented."""
    line = health_line(_training(state="stalled", stalled=True, eta_s=None, last_event_age_s=95))
    assert line is not None
    assert line.startswith("-- health: STALLED |")
    assert "ETA" not in line
    assert line.endswith("last update 1 min 35 s ago | stalled: silent for more than 1 min 0 s")


def test_watch_prints_on_change_or_after_a_quiet_spell() -> None:
    """Printed at first, again on a state change, not while generations scroll by, and
    again after 30 s without generation lines."""
    out: list[str] = []
    now = [0.0]
    printer = HealthPrinter(out.append, clock=lambda: now[0])
    printer.update(_training(), printed_generations=False)
    now[0] = 5
    printer.update(_training(), printed_generations=True)
    now[0] = 20
    printer.update(_training(), printed_generations=False)
    assert len(out) == 1
    now[0] = 21
    printer.update(_training(state="waiting"), printed_generations=False)
    assert len(out) == 2
    now[0] = 52
    printer.update(_training(state="waiting"), printed_generations=False)
    assert len(out) == 3


def test_status_rows_include_the_end() -> None:
    """``ezspark status ID`` shows the state, elapsed time and the finish reason."""
    rows = dict(
        detail_rows(
            _training(
                state="finished",
                running_generation=None,
                eta_s=None,
                finish_reason_text="ran all 600 generations",
            )
        )
    )
    assert rows["state"] == "finished"
    assert rows["elapsed"] == "1 h 1 min"
    assert rows["ended"] == "ran all 600 generations"
