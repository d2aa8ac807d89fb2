"""Hung evaluations: an environment stuck inside ``step`` must not hold an evaluator for ever.

Once an evaluation has run ``task_hang_s``, the watchdog settles the task on the stuck
thread's behalf (every genome gets the reward floor and an error; the result is published
and confirmed, the delivery acked, so the training moves on and no other evaluator
inherits the task).  Then, as tasks play in a child process (``player``), it kills that
child and the evaluator goes on with a new one.  Playing in this process
(``EZSPARK_ISOLATE_ENVS=false``), Python cannot interrupt the stuck thread, so it ends the
process with :data:`HUNG_EXIT_CODE` for its supervisor (Kubernetes, compose, systemd, or
``ezspark evaluator`` on a user's machine) to start a fresh one.  Just before,
``before_exit`` runs: a user's machine deletes its broker user there, as a clean stop
would, so restarts do not pile up credentials against the account's limit.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

import structlog

from ezspark_common.cli.supervise import HUNG_EXIT_CODE
from ezspark_evaluator.worker import TaskHandler

log = structlog.get_logger("ezspark_evaluator")

ACK_GRACE_S = 1.0  # lets the IO thread put the ack on the wire before the process ends


class Watchdog:
    """A daemon thread that checks the evaluation in hand against ``limit_s``."""

    def __init__(
        self,
        handler: TaskHandler,
        limit_s: float,
        exit_process: Callable[[int], None] = os._exit,
        before_exit: Callable[[], None] | None = None,
    ) -> None:
        self._handler = handler
        self.limit_s = limit_s
        self._exit = exit_process
        self._before_exit = before_exit
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evaluation-watchdog", daemon=True)

    def start(self) -> None:
        """Begin watching (keeps watching during a stop: a hang would block that too)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (tests; a real process just exits)."""
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        period = min(1.0, self.limit_s / 10)
        while not self._done.wait(period):
            hand = self._handler.hung(self.limit_s)
            if hand is None or not self._handler.abandon(hand, self.limit_s):
                continue
            if self._handler.free_stuck(hand):
                continue  # the child playing it was killed: this process goes on
            time.sleep(ACK_GRACE_S)
            log.error("evaluator_exiting", reason="hung evaluation", exit_code=HUNG_EXIT_CODE)
            self._clean_up()
            sys.stdout.flush()
            sys.stderr.flush()
            self._exit(HUNG_EXIT_CODE)  # the stuck thread can only end with the process
            return

    def _clean_up(self) -> None:
        if self._before_exit is None:
            return
        try:
            self._before_exit()
        except Exception as exc:  # best effort: the process ends either way
            log.warning("exit_clean_up_failed", error=str(exc))
