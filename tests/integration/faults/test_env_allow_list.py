"""A config naming an importable module that is NOT on the allow-list never imports it.

The probe module sits on every service's ``PYTHONPATH`` (so importing it would work) and
writes a marker file the moment it is imported.  It is named through the gateway's API
(validate and create: the gateway takes the id as data, the evolver refuses the training
and the gateway shows it failed), in a TrainingRequested straight to the evolver, and in a
task straight to an evaluator; afterwards the marker must not exist and every process must
still run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ezspark_common.messages import RESULTS_QUEUE, TASKS_QUEUE, EvaluationResult, encode
from tests.integration.faults.common import (
    alive,
    evaluator_proc,
    evolver_proc,
    logged,
    private_vhost,
    start_gateway,
    training_end,
)
from tests.integration.services.harness import REPO, Bus, config, make_task, wait_until
from tests.integration.services.procs import processes

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PROBE = "ezspark_fault_probe"
PROBE_SOURCE = """\
import os
from pathlib import Path

Path(__file__).with_suffix(".imported").write_text(f"imported by pid {os.getpid()}")
"""


def test_not_allowed_module_is_never_imported_by_gateway_evolver_or_evaluator(
        tmp_path: Path) -> None:
    """An importable, not allowed 'module:Env' is never imported by gateway/evolver/evaluator."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / f"{PROBE}.py").write_text(PROBE_SOURCE)
    marker = plugins / f"{PROBE}.imported"
    pythonpath = f"{REPO}{os.pathsep}{plugins}"
    found = subprocess.run(  # importable (find_spec does not import it)
        [sys.executable, "-c", f"import importlib.util as u; print(u.find_spec({PROBE!r}))"],
        env={**os.environ, "PYTHONPATH": pythonpath}, capture_output=True, text=True,
        check=True)
    assert str(plugins) in found.stdout
    assert not marker.exists()
    env_id = f"{PROBE}:Probe-v0"
    cfg = config(gym_game_name=env_id)
    with private_vhost() as url, processes() as procs:
        importable = {"PYTHONPATH": pythonpath}  # every process could import the probe
        gw = start_gateway(tmp_path, procs, url, os_env=importable)
        evo = evolver_proc(tmp_path, procs, url, os_env=importable)
        ev = evaluator_proc(tmp_path, procs, url, "allow-list", os_env=importable)
        evo.wait_log("evolver_started")
        ev.wait_log("consuming")
        token = gw.signup("allow-list")
        with gw.client(token) as api:
            checked = api.post("/api/validate", json=cfg)
            assert checked.status_code < 500, checked.text
            created = api.post("/api/trainings", json=cfg)
            if created.status_code == 201:  # the gateway defers env checks to the evolver
                detail = training_end(api, created.json()["id"], 60)
                assert detail["status"] == "failed"
                assert "not an allowed environment module" in detail["error"]
            else:
                assert created.status_code == 422, created.text
                assert "not an allowed environment module" in created.text
        bus = Bus("", url)
        try:
            # Straight to the evolver too, in case the gateway ever refuses it itself.
            bus.request("probe-direct", cfg)
            refused = wait_until(lambda: {r.get("training_id") for r in
                                          logged(evo, "training_refused")} >= {"probe-direct"},
                                 30, "the evolver to refuse the direct request")
            assert refused
            assert evo.stop() == 0  # so the test is the only consumer of the results queue
            results = bus.collect(RESULTS_QUEUE)
            task = make_task(cfg, [0, 1], [0], "probe-task", env_id=env_id)
            bus.publish(TASKS_QUEUE, encode(task))
            wait_until(lambda: results, 30, "the evaluator's answer")
        finally:
            bus.close()
        assert ev.metric("ezspark_evaluator_errors_total", {"kind": "env_not_allowed"}) == 1
        assert alive(gw.proc)
        assert alive(ev)
        assert gw.proc.stop() == 0
        assert ev.stop() == 0
    (result,) = results
    assert isinstance(result, EvaluationResult)
    assert all(o.error and "not an allowed environment module" in o.error
               for o in result.outcomes)
    assert not marker.exists(), marker.read_text()
