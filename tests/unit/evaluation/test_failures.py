"""The one-line account of an environment's failure names the user's own code, by folder
and file (the same on every evaluator), not Gymnasium's, numpy's, Python's or ours."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest

from ezspark_common.evaluation.failures import failure
from tests.support import faulty_envs
from tests.support.faulty_envs import RaisingEnv


def _raised(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except Exception as exc:  # what an evaluation catches from an environment
        return exc
    raise AssertionError("nothing was raised")


def test_the_users_own_frame_is_named_by_folder_file_line_and_function() -> None:
    """An exception from the environment's step names support/faulty_envs.py and step."""
    faulty_envs.register()
    env = RaisingEnv(fail_at=1)
    env.reset(seed=1)
    line = failure("step", _raised(lambda: env.step(0)))
    assert re.fullmatch(
        r"step raised RuntimeError: boom \(at support/faulty_envs\.py:\d+ in step\)", line
    )


def test_library_frames_are_skipped_for_the_callers_frame() -> None:
    """Raised inside numpy or the standard library: the caller here is named instead."""
    from_numpy = failure("step", _raised(lambda: np.zeros(2).reshape(3)))
    assert re.search(r"\(at evaluation/test_failures\.py:\d+ in <lambda>\)$", from_numpy)
    from_stdlib = failure("reset", _raised(lambda: math.sqrt(-1)))
    assert from_stdlib.startswith("reset raised ValueError: math domain error (at evaluation/")


def test_without_a_frame_of_theirs_there_is_no_location() -> None:
    """An exception that never passed through user code has no "(at …)" part."""
    exc = RuntimeError("made here")
    assert failure("step", exc) == "step raised RuntimeError: made here"


def test_a_package_installed_inside_the_standard_librarys_folder_is_theirs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a venv, site-packages lies under the standard library's folder: a user's
    package there still counts as theirs, the standard library itself does not."""
    from ezspark_common.evaluation import failures

    monkeypatch.setattr(failures, "_STDLIB", ("/py/lib/",))
    monkeypatch.setattr(failures, "_INSTALLED", ("/py/lib/site-packages/",))
    assert failures._theirs("/py/lib/site-packages/my_env/env.py")
    assert not failures._theirs("/py/lib/random.py")
    assert failures._theirs("/home/me/my_env/env.py")
