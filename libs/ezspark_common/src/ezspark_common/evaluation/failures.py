"""How a user's environment failed, in one line: the call, the exception, and where.

The line travels in results and reports to the training's owner, who cannot see the
evaluator's logs.  "Where" is the innermost frame outside Gymnasium, numpy, the standard
library and EzSpark, normally the owner's own code, by its folder and file name (not the
whole path: evaluators install the package in different places, and safeness compares
these lines between evaluators bit for bit) and line.
"""

from __future__ import annotations

import os
import re
import sysconfig
import traceback
from types import FrameType

import gymnasium
import numpy

from ezspark_common.evaluation.hangs import EnvHung

_EZSPARK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the package's folder
_LIBRARIES = (
    "<",  # <frozen …>, <string>
    *(os.path.dirname(str(m.__file__)) + os.sep for m in (gymnasium, numpy)),
    _EZSPARK + os.sep,
)
_STDLIB_PATH = sysconfig.get_path("stdlib")
_STDLIB = tuple({_STDLIB_PATH + os.sep, os.path.realpath(_STDLIB_PATH) + os.sep})
# Installed packages may live under the standard library's folder (no venv): theirs.
_INSTALLED = tuple({sysconfig.get_path(k) + os.sep for k in ("purelib", "platlib")})


def _theirs(filename: str) -> bool:
    if filename.startswith(_LIBRARIES):
        return False
    return filename.startswith(_INSTALLED) or not filename.startswith(_STDLIB)


def own_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc`` in the user's own code, if it passed through any."""
    theirs = [f for f in traceback.extract_tb(exc.__traceback__) if _theirs(f.filename)]
    return theirs[-1] if theirs else None


def _at(filename: str, lineno: int | None, function: str) -> str:
    folder, name = os.path.split(filename)
    short = f"{os.path.basename(folder)}/{name}" if folder else name  # my_env/env.py
    return f" (at {short}:{lineno} in {function})"


# A frame of a ``faulthandler`` dump: '  File "/path/env.py", line 40 in step'.
_DUMPED_FRAME = re.compile(r'^\s*File "(?P<file>.*)", line (?P<line>\d+) in (?P<fn>\S+)\s*$')


def crash_site(dump: str) -> str:
    """Where a ``faulthandler`` dump (innermost frame first) was in the user's own code,
    as ``" (at <file>:<line> in <function>)"``; ``""`` if it never was."""
    for line in dump.splitlines():
        if (m := _DUMPED_FRAME.match(line)) and _theirs(m["file"]):
            return _at(m["file"], int(m["line"]), m["fn"])
    return ""


def frame_site(frame: FrameType | None) -> str:
    """Where a running stack (``frame`` innermost) is in the user's own code, as
    ``" (at <file>:<line> in <function>)"``; ``""`` if it is not."""
    theirs = [f for f in traceback.extract_stack(frame) if _theirs(f.filename)] if frame else []
    return _at(theirs[-1].filename, theirs[-1].lineno, theirs[-1].name) if theirs else ""


def failure(call: str, exc: BaseException) -> str:
    """``"<call> raised <Type>: <message> (at <file>:<line> in <function>)"``; for a hung
    call ``"<call> did not return within … (at …)"``, the line it was stuck on."""
    frame = own_frame(exc)
    where = _at(frame.filename, frame.lineno, frame.name) if frame else ""
    if isinstance(exc, EnvHung):
        return f"{call} {exc}{where}"
    return f"{call} raised {type(exc).__name__}: {exc}{where}"
