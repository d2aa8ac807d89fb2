"""The leader lock: one holder per data directory; it passes on when the holder dies."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from ezspark_evolver.leader import LeaderLock

_HOLD = """
import sys, time
from ezspark_evolver.leader import LeaderLock
lock = LeaderLock(sys.argv[1])
assert lock.try_acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_second_process_waits_until_the_holder_is_killed(tmp_path: Path) -> None:
    """While another process holds the lock it cannot be taken; after SIGKILL it can."""
    path = str(tmp_path / ".leader.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, path], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        standby = LeaderLock(path)
        assert not standby.try_acquire()
        holder.kill()
        holder.wait(10)
        assert standby.wait(threading.Event(), poll_s=0.05)
        assert standby.held
        standby.release()
        assert not standby.held
    finally:
        holder.kill()


def test_wait_returns_false_when_stopping(tmp_path: Path) -> None:
    """A standby that is told to stop gives up waiting instead of blocking for ever."""
    path = str(tmp_path / ".leader.lock")
    first = LeaderLock(path)
    assert first.try_acquire()
    stopping = threading.Event()
    stopping.set()
    assert not LeaderLock(path).wait(stopping, poll_s=0.01)
    first.release()
