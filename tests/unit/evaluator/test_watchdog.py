"""The evaluator's watchdog: a hung evaluation is settled, the clean-up hook runs, then the
process ends with the restart code."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ezspark_common.cli.supervise import HUNG_EXIT_CODE
from ezspark_evaluator import watchdog
from ezspark_evaluator.watchdog import Watchdog


class _OneHang:
    """Stands in for the TaskHandler: one evaluation hung, settled once."""

    def __init__(self, events: list[object]) -> None:
        self.settled = 0
        self.events = events

    def hung(self, limit_s: float) -> Any:
        return None if self.settled else object()

    def abandon(self, hand: Any, limit_s: float) -> bool:
        self.settled += 1
        return True

    def end_children(self) -> None:
        self.events.append("children ended")


def _run(before_exit: Any) -> list[object]:
    events: list[object] = []
    ended = threading.Event()

    def exit_process(code: int) -> None:
        events.append(code)
        ended.set()

    def hook() -> None:
        events.append("clean-up")
        before_exit()

    dog = Watchdog(_OneHang(events), 0.05, exit_process=exit_process, before_exit=hook)  # type: ignore[arg-type]
    dog.start()
    assert ended.wait(10)
    return events


@pytest.fixture(autouse=True)
def _no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "ACK_GRACE_S", 0.0)


def test_the_clean_up_hook_runs_before_the_process_ends() -> None:
    """The child playing the stuck game is killed (it would outlive the process), and a
    user's machine deletes its broker user first: exit skips every finally block."""
    assert _run(lambda: None) == ["children ended", "clean-up", HUNG_EXIT_CODE]


def test_a_failing_clean_up_still_ends_the_process() -> None:
    """The gateway away: the hook's error is logged and the restart code still follows."""

    def unreachable() -> None:
        raise OSError("gateway unreachable")

    assert _run(unreachable) == ["children ended", "clean-up", HUNG_EXIT_CODE]
