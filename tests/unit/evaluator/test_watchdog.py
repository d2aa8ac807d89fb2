"""The evaluator's watchdog: a hung evaluation is settled; then its child process is killed
and the evaluator goes on, or (playing in its own process) the clean-up hook runs and the
process ends with the restart code."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ezspark_common.cli.supervise import HUNG_EXIT_CODE
from ezspark_evaluator import watchdog
from ezspark_evaluator.watchdog import Watchdog
from tests.support.waiting import wait_until


class _Hangs:
    """Stands in for the TaskHandler: ``hangs`` evaluations hung one after another, each
    settled once; ``isolated``: played in a child process the watchdog can kill."""

    def __init__(self, events: list[object], hangs: int = 1, isolated: bool = False) -> None:
        self.settled = 0
        self.hangs = hangs
        self.isolated = isolated
        self.events = events

    def hung(self, limit_s: float) -> Any:
        return object() if self.settled < self.hangs else None

    def abandon(self, hand: Any, limit_s: float) -> bool:
        self.settled += 1
        self.events.append("settled")
        return True

    def free_stuck(self, hand: Any) -> bool:
        if self.isolated:
            self.events.append("child killed")
        return self.isolated


def _run(before_exit: Any) -> list[object]:
    events: list[object] = []
    ended = threading.Event()

    def exit_process(code: int) -> None:
        events.append(code)
        ended.set()

    def hook() -> None:
        events.append("clean-up")
        before_exit()

    dog = Watchdog(_Hangs(events), 0.05, exit_process=exit_process, before_exit=hook)  # type: ignore[arg-type]
    dog.start()
    assert ended.wait(10)
    return events


@pytest.fixture(autouse=True)
def _no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "ACK_GRACE_S", 0.0)


def test_the_clean_up_hook_runs_before_the_process_ends() -> None:
    """Playing in its own process, a user's machine deletes its broker user first: exit
    skips every finally block."""
    assert _run(lambda: None) == ["settled", "clean-up", HUNG_EXIT_CODE]


def test_a_failing_clean_up_still_ends_the_process() -> None:
    """The gateway away: the hook's error is logged and the restart code still follows."""

    def unreachable() -> None:
        raise OSError("gateway unreachable")

    assert _run(unreachable) == ["settled", "clean-up", HUNG_EXIT_CODE]


def test_with_a_child_process_each_hang_kills_the_child_and_the_evaluator_goes_on() -> None:
    """Tasks played in a child: every hang is settled and its child killed; the process
    never exits and no clean-up runs, so a user's machine keeps its broker user."""
    events: list[object] = []
    handler = _Hangs(events, hangs=3, isolated=True)
    dog = Watchdog(
        handler,  # type: ignore[arg-type]
        0.05,
        exit_process=events.append,
        before_exit=lambda: events.append("clean-up"),
    )
    dog.start()
    try:
        wait_until(lambda: handler.settled == 3, 10, "three hangs settled")
    finally:
        dog.stop()
    assert events == ["settled", "child killed"] * 3
