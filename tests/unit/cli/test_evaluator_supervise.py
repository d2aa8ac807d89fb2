"""``ezspark evaluator`` restarts the evaluator service after a hung evaluation (exit 75),
as a cluster's supervisor would, and ends with the service's code on any other exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ezspark_common.cli.supervise import HUNG_EXIT_CODE, supervise

pytestmark = pytest.mark.timeout(60)

# A stand-in service: appends a line per start to RUNS, exits with the code CODES gives for
# that start (the last one from then on).
SERVICE = """
import sys
runs, codes = sys.argv[1], [int(c) for c in sys.argv[2].split(",")]
with open(runs, "a") as fh:
    fh.write("run\\n")
n = len(open(runs).read().splitlines())
sys.exit(codes[min(n, len(codes)) - 1])
"""


def _service(tmp_path: Path, codes: str) -> list[str]:
    return [sys.executable, "-c", SERVICE, str(tmp_path / "runs"), codes]


def _runs(tmp_path: Path) -> int:
    return len((tmp_path / "runs").read_text().splitlines())


def test_restarts_after_each_hung_exit_until_another_code(tmp_path: Path) -> None:
    """Exit 75 twice, then a clean stop: three starts, the command ends with 0 and says why."""
    said: list[str] = []
    code = supervise(
        _service(tmp_path, f"{HUNG_EXIT_CODE},{HUNG_EXIT_CODE},0"),
        os.environ,
        said.append,
        pause_s=0,
    )
    assert code == 0
    assert _runs(tmp_path) == 3
    assert len(said) == 2
    assert "hung evaluation" in said[0]


def test_any_other_exit_is_final(tmp_path: Path) -> None:
    """A refused login or a lost broker (exit 1) is not retried: one start, its code back."""
    said: list[str] = []
    assert supervise(_service(tmp_path, "1"), os.environ, said.append, pause_s=0) == 1
    assert _runs(tmp_path) == 1
    assert said == []


CHILD = """
import signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
signal.signal(signal.SIGTERM, lambda s, f: (out.write_text("stopped by SIGTERM"), sys.exit(0)))
Path(sys.argv[2]).write_text("ready")
while True:
    time.sleep(0.05)
"""

PARENT = """
import os, sys
from ezspark_common.cli.supervise import supervise
sys.exit(supervise([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]], os.environ))
"""


def test_sigterm_reaches_the_service_which_stops_cleanly(tmp_path: Path) -> None:
    """SIGTERM to the command is passed on; the service's clean exit code is the command's."""
    out, ready = tmp_path / "out", tmp_path / "ready"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, str(out), str(ready)], env=os.environ
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists()
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(30) == 0
    assert out.read_text() == "stopped by SIGTERM"
