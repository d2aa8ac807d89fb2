"""``ezspark evaluator`` keeps the evaluator service running on a user's machine.

In a cluster, Kubernetes or compose restart an evaluator that ended itself after a hung
evaluation (exit :data:`HUNG_EXIT_CODE`: the stuck thread can only end with its process).
A laptop has no such supervisor, so the command is one: it runs the service as a child,
starts it again after that exit, and ends with the child's code on any other (a stop, a
refused login, a lost broker).  SIGINT and SIGTERM are passed on to the child, which
stops cleanly and deletes its broker user.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

# EX_TEMPFAIL, "try again": the evaluator service's exit after it ended a hung evaluation
# (defined here, with the library's light modules: the command runs without the service's
# dependencies).
HUNG_EXIT_CODE = 75
RESTART_PAUSE_S = 2.0  # a breath between restarts: never a tight loop


def supervise(
    argv: Sequence[str],
    env: Mapping[str, str],
    say: Callable[[str], None] = print,
    pause_s: float = RESTART_PAUSE_S,
) -> int:
    """Run ``argv`` until it exits with anything but :data:`HUNG_EXIT_CODE`; its exit code
    (128 + the signal number if a signal ended it)."""
    stopping = threading.Event()
    child: subprocess.Popen[bytes] | None = None  # the one running now

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            child = subprocess.Popen(list(argv), env=dict(env))
            if stopping.is_set():  # a signal came while it was starting
                child.terminate()
            code = child.wait()
            code = 128 - code if code < 0 else code
            if code != HUNG_EXIT_CODE or stopping.is_set():
                return code
            say(
                "the evaluator ended a hung evaluation (an environment stuck in reset or "
                "step); starting it again"
            )
            if stopping.wait(pause_s):
                return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
