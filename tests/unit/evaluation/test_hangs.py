"""A user's environment stuck in ``reset`` or ``step`` fails its game; the others play on."""

from __future__ import annotations

import re
import signal
import threading
import time
from typing import Any

import numpy as np
import pytest

from ezspark_common.evaluation.games.scalar import EnvPool, ScalarGames
from ezspark_common.evaluation.hangs import EnvHung, HangGuard
from tests.support import faulty_envs

pytestmark = pytest.mark.timeout(60)  # a broken guard shows as a failure, not a stuck suite

LIMIT = 0.2
WHERE = r"\(at support/faulty_envs\.py:\d+ in {call}\)$"


@pytest.fixture(autouse=True)
def _registered() -> None:
    faulty_envs.register()


def _games(env_id: str, rows: int) -> ScalarGames:
    return ScalarGames(env_id, rows, 2, EnvPool(HangGuard(LIMIT)))


def _step(games: ScalarGames, actions: list[int]) -> Any:
    return games.step(np.array(actions), np.ones(len(actions), dtype=np.bool_))


def test_a_sleeping_step_fails_its_game_and_names_the_line() -> None:
    """A step blocked in a sleep is interrupted; the error says so and where it was stuck."""
    games = _games("EzTest/Sleep-v0", 2)  # the third step of every game sleeps for ever
    with games.guard:
        games.reset([1, 2])
        assert _step(games, [0, 0])[3] is None
        assert _step(games, [0, 0])[3] is None
        errors = _step(games, [0, 0])[3]
    assert errors is not None
    for error in errors:
        assert error.startswith("step did not return within 0.2 s (the hang limit) (at ")
        assert re.search(WHERE.format(call="step"), error)


def test_a_python_loop_is_interrupted_even_when_it_swallows_exceptions() -> None:
    """Only the spinning game fails; the row beside it steps on with its reward."""
    games = _games("EzTest/Spin-v0", 2)  # loops for ever on action 1
    with games.guard:
        games.reset([1, 2])
        _, reward, _, errors = _step(games, [0, 1])
    assert errors is not None
    assert errors[0] is None
    assert reward[0] == 1.0
    assert errors[1] is not None
    assert "did not return within" in errors[1]


def test_a_stuck_reset_fails_only_its_game() -> None:
    """``reset`` is bounded too: the odd seed's game fails, the even seed's starts."""
    games = _games("EzTest/StuckReset-v0", 2)
    with games.guard:
        _, errors = games.reset([2, 3])
    assert errors is not None
    assert errors[0] is None
    assert errors[1] is not None
    assert errors[1].startswith("reset did not return within 0.2 s")


def test_the_guard_puts_back_the_signal_handler_it_found() -> None:
    """Leaving the guard restores the process's handler: it borrows the signal only."""
    mine = signal.getsignal(signal.SIGUSR2)
    guard = HangGuard(LIMIT)
    with guard:
        assert guard.active
        assert signal.getsignal(signal.SIGUSR2) != mine
    assert not guard.active
    assert signal.getsignal(signal.SIGUSR2) == mine


def test_the_guard_only_calls_through_without_a_limit_or_off_the_main_thread() -> None:
    """No limit, or a thread a signal cannot reach: calls run unbounded, nothing installed."""
    with HangGuard(None) as guard:
        assert not guard.active
        assert guard.call(sum, [1, 2]) == 3
    seen: list[bool] = []

    def elsewhere() -> None:
        with HangGuard(LIMIT) as other:
            seen.append(other.active)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen == [False]


def test_a_call_that_returns_in_time_is_left_alone() -> None:
    """The bound is per call: many quick calls adding up past the limit never trip it."""
    with HangGuard(LIMIT) as guard:
        for _ in range(8):  # 0.4 s in all, twice the limit
            guard.call(time.sleep, LIMIT / 4)


def test_the_hang_is_not_an_ordinary_exception() -> None:
    """``except Exception`` in an environment cannot swallow it and hang again."""
    assert not issubclass(EnvHung, Exception)
    assert issubclass(EnvHung, BaseException)


def test_a_call_the_signal_cannot_reach_is_reported_as_stuck_with_its_frame() -> None:
    """A call deaf to the guard's signal (native code) is reported to ``on_stuck`` once,
    with its name and the main thread's frame, a short grace after the limit; the signal
    still ends the call once it can land."""
    told: list[tuple[str, str | None]] = []

    def deaf_step() -> str:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
        try:
            time.sleep(LIMIT * 2 + 1.0)  # past the limit and the grace (at most the limit)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})
        return "done"

    guard = HangGuard(
        LIMIT, lambda what, frame: told.append((what, frame and frame.f_code.co_name))
    )
    with guard, pytest.raises(EnvHung):
        guard.call(deaf_step)  # the pending signal lands when the mask is lifted
    assert told == [("deaf_step", "deaf_step")]
