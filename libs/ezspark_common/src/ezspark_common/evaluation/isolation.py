"""Child processes that play a user's environment, and how to tell how one ended.

A native crash (a segfault in an environment's C code) or a native hang cannot be caught
or interrupted from Python, only survived by the process that did not play the game.  The
trainer's workers, an evaluator's child and the determinism probe all play in such a
child; this module starts them and words their end.
"""

from __future__ import annotations

import faulthandler
import multiprocessing as mp
import os
import signal
import tempfile
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType, MappingProxyType
from typing import Any

from ezspark_common.evaluation.failures import crash_site, frame_site

# The forkserver preloads this (EzSpark's games, with numpy and Gymnasium), not users' modules.
PRELOAD = "ezspark_common.evaluation.batch"


def context() -> Any:
    """Fork from a clean server where the platform has one, so a child that died is
    replaced in milliseconds (spawning one imports everything again: about 0.7 s).  The
    server preloads only EzSpark: a user's module might start threads on import, and
    forking a process with threads is not safe, so each child imports it."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([PRELOAD])
    return ctx


def start(
    ctx: Any, target: Callable[..., None], args: tuple[Any, ...], name: str | None = None
) -> tuple[Connection, Any, str]:
    """Start ``target(conn, stack_file, *args)`` in a daemon child of ``ctx``; this end of
    the pipe, the process, and the file for its crash stack (see :func:`enter`)."""
    fd, dump = tempfile.mkstemp(prefix="ezspark-child-", suffix=".stack")
    os.close(fd)
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, dump, *args), name=name, daemon=True)
    proc.start()
    child.close()  # so a dead child's pipe reads as closed here
    return parent, proc, dump


def enter(path: str) -> None:
    """First thing in a child: leave Ctrl-C to the parent (which stops it in order), and on
    a native crash write the Python stack that led into it to ``path``, for the parent to
    say where.  The file stays open for the process's life (faulthandler writes to its
    descriptor when the process is already dying)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable(file=open(path, "w"), all_threads=False)  # noqa: SIM115


STUCK_EXIT_CODE = 76  # a child that ended itself: its game was stuck in native code
_STUCK = "EZSPARK-STUCK "  # how such a child's stack file starts


def end_stuck(path: str, limit_s: float | None) -> Callable[[str, FrameType | None], None]:
    """A ``HangGuard.on_stuck`` for a child: say where the call is stuck in ``path``, then
    end the process (nothing else frees a thread in native code); the parent reads it."""

    def stuck(what: str, frame: FrameType | None) -> None:
        limit = "" if limit_s is None else f" ({limit_s:g} s)"
        text = (
            f"hung in {what} past the hang limit{limit} in native code, which cannot be "
            f"interrupted, so its worker process ended{frame_site(frame)}"
        )
        with open(path, "w") as out:
            out.write(_STUCK + text)
        os._exit(STUCK_EXIT_CODE)

    return stuck


def how_it_ended(exitcode: int | None, path: str) -> str:
    """How a child ended, in words ("ended its worker process with SIGSEGV"), and where
    in the user's code if the stack it left in ``path`` says; the file is removed."""
    dump = Path(path)
    text = dump.read_text(errors="replace") if dump.exists() else ""
    dump.unlink(missing_ok=True)
    if text.startswith(_STUCK):
        return text[len(_STUCK) :]
    fatal = _fatal_signal(text)
    if fatal is not None:  # the dying process's own word: the forkserver's can be lost
        how = f"ended its worker process with {fatal}"
    elif exitcode is None:
        how = "stopped its worker process"
    elif exitcode < 0:
        try:
            how = f"ended its worker process with {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"ended its worker process with signal {-exitcode}"
    else:
        how = f"ended its worker process (exit code {exitcode})"
    return f"{how}{crash_site(text)}"


# faulthandler's first line for each fatal signal it handles.
_FATAL = MappingProxyType(
    {
        "Segmentation fault": "SIGSEGV",
        "Bus error": "SIGBUS",
        "Floating point exception": "SIGFPE",
        "Aborted": "SIGABRT",
        "Illegal instruction": "SIGILL",
    }
)


def _fatal_signal(dump: str) -> str | None:
    """The signal a faulthandler dump says the process died of, if it says one.

    Read from the dump, not only the exit code: a forkserver child's exit code reaches the
    parent through the server, and when that report is lost multiprocessing says 255.
    """
    first = dump.split("\n", 1)[0]
    return _FATAL.get(first.removeprefix("Fatal Python error: ").strip())
