"""One active evolver per data directory; any other waits as a hot standby.

The active evolver holds an exclusive ``flock`` on a file in the shared data directory.
The kernel (or the network file system) releases it when the process dies, however it
dies, so the standby's next attempt succeeds and it resumes the trainings from their
checkpoints.  No lease to renew, no clock to trust: the lock lives exactly as long as
the process that holds it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


class LeaderLock:
    """An exclusive lock on ``path``, held until ``release()`` or the process ends."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never blocks."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for people
        self._fd = fd
        return True

    def wait(self, stopping: threading.Event, poll_s: float = 0.25) -> bool:
        """Block until the lock is ours (True) or ``stopping`` is set (False)."""
        while not stopping.is_set():
            if self.try_acquire():
                return True
            stopping.wait(poll_s)
        return False

    def release(self) -> None:
        """Give the lock up (the standby takes over)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
