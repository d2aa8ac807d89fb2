"""A user's environment stuck in ``reset`` or ``step``: the game fails, the run goes on.

An evaluator has a watchdog that ends its process, for its supervisor to restart; the
embedded trainer (``ezspark train``) has no supervisor, and Python cannot stop a thread.
What it can do is run a signal handler on the main thread between two bytecodes of the
stuck code, and also inside a blocking sleep or read (the call is interrupted).  So a
watcher thread sends the main thread a signal once a call has run ``limit_s``; the
handler raises :class:`EnvHung` there, inside the user's frames, and the game fails like
one whose ``step`` raised, naming the line it was stuck on.  Native code that never
returns to Python (a loop in C) cannot be interrupted this way; neither can anything on
a platform without ``pthread_kill`` (Windows): there the guard does nothing.  For native
code, ``on_stuck`` is called if the call is still running ``STUCK_GRACE_S`` (at most the
limit) after the signal, with the main thread's frame: a worker process then ends itself (its parent
fails that genome), the trainer's own process can only say where it is stuck.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")

# SIGUSR2: SIGALRM is pytest-timeout's and a user's timer's; USR2 is free by convention.
# None where a signal cannot be sent to one thread (Windows): the guard then does nothing.
_SIGNAL = getattr(signal, "SIGUSR2", None) if hasattr(signal, "pthread_kill") else None


class EnvHung(BaseException):
    """Raised inside a call that ran past the hang limit.

    A ``BaseException``, so an environment's own ``except Exception`` cannot swallow it and
    hang again; the games catch it by name.
    """

    def __init__(self, limit_s: float | None = None) -> None:
        within = "in time" if limit_s is None else f"within {limit_s:g} s (the hang limit)"
        super().__init__(f"did not return {within}")
        self.limit_s = limit_s


def interrupt(thread: threading.Thread) -> None:
    """Raise :class:`EnvHung` in another ``thread`` at its next bytecode.

    Stops an abandoned environment call looping in Python, which would otherwise take a
    share of the interpreter for the rest of the process; a sleep or native code stays
    stuck (harmlessly, in a daemon thread).  CPython's own API: no signal reaches a thread
    other than the main one.
    """
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(EnvHung)
        )


# After the signal (or the limit itself, if shorter): a call still running then is stuck in
# native code, where the handler cannot run.
STUCK_GRACE_S = 5.0

Stuck = Callable[[str, FrameType | None], None]  # (call's name, main thread's frame)


class HangGuard:
    """Bounds each :meth:`call` to ``limit_s`` seconds while entered (``None``: no bound).

    Enter it on the main thread, around the evaluation; elsewhere, or where signals cannot
    be sent to a thread, it only calls through.  ``on_stuck`` runs (on the watcher thread)
    when a call has not ended ``STUCK_GRACE_S`` (at most ``limit_s``) after it was
    signalled.
    """

    def __init__(self, limit_s: float | None, on_stuck: Stuck | None = None) -> None:
        self.limit_s = limit_s
        self.on_stuck = on_stuck
        self._what = ""  # the name of the call in progress ("step", "reset")
        self._since: float | None = None  # when the call in progress started
        self._active = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._previous: Any = None

    @property
    def active(self) -> bool:
        """True while entered with a limit on a thread it can interrupt."""
        return self._active

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, raising :class:`EnvHung` in it after ``limit_s``."""
        if not self._active:
            return fn(*args, **kwargs)
        self._what = getattr(fn, "__name__", "call")
        self._since = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            self._since = None

    def __enter__(self) -> HangGuard:
        on_main = threading.current_thread() is threading.main_thread()
        main_id = threading.main_thread().ident
        if self.limit_s is None or _SIGNAL is None or not on_main:
            return self
        if self._active or main_id is None:
            return self
        self._previous = signal.signal(_SIGNAL, self._on_signal)
        self._stop.clear()
        self._watcher = threading.Thread(
            target=self._watch, args=(self.limit_s, _SIGNAL, main_id), daemon=True
        )
        self._active = True
        self._watcher.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._active:
            return
        self._active = False
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        assert _SIGNAL is not None
        signal.signal(_SIGNAL, self._previous)

    def _watch(self, limit: float, signum: int, main_id: int) -> None:
        sent_for: float | None = None
        told_for: float | None = None
        grace = min(STUCK_GRACE_S, limit)  # a handler runs within microseconds if it can
        while not self._stop.wait(min(1.0, limit / 4)):
            since = self._since
            if since is None or time.monotonic() - since < limit:
                continue
            if since != sent_for:
                sent_for = since  # once per call: the handler raises, the call ends
                hint = "its game fails; the error names the line"
                log.warning("environment_hung", limit_s=limit, hint=hint)
                signal.pthread_kill(main_id, signum)
            elif since != told_for and time.monotonic() - since >= limit + grace:
                told_for = since  # the handler never ran: native code
                if self.on_stuck is not None:
                    self.on_stuck(self._what, sys._current_frames().get(main_id))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        since, limit = self._since, self.limit_s
        if since is not None and limit is not None and time.monotonic() - since >= limit:
            self._since = None
            raise EnvHung(limit)
