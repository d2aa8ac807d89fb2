"""A config naming an importable module that is NOT on the allow-list never imports it.

The probe module sits on every service's ``PYTHONPATH`` (so importing it would work) and
writes a marker file the moment it is imported.  It is named

* through the gateway's API (validate and create): the gateway imports no plug-in and no
  evaluator announced the id, so it refuses the config (422 on ``gym_game_name``);
* in a TrainingRequested straight to the evolver: the evolver never builds an environment,
  so it accepts the training and reports it waiting, as no evaluator serves it;
* in an evaluator's ``EZSPARK_ENVS``: the module is not allowed, so the evaluator leaves the
  id out (logged, never announced) and serves the rest;
* in tasks that reach that evaluator's queue (the probe's own id, and the probe's module in
  front of an id the evaluator serves): neither is evaluated.

Afterwards the marker must not exist and every process must still run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ezspark_common.wire.messages import RESULTS_QUEUE, EvaluationResult, encode
from tests.integration.faults.common import (
    alive,
    evaluator_proc,
    evolver_proc,
    logged,
    private_vhost,
    start_gateway,
    wait_served,
)
from tests.integration.services.harness import CP_TASKS, Bus, config, make_task
from tests.integration.services.procs import processes
from tests.support.configs import REPO
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PROBE = "ezspark_fault_probe"
PROBE_SOURCE = """\
import os
from pathlib import Path

Path(__file__).with_suffix(".imported").write_text(f"imported by pid {os.getpid()}")
"""
NOT_ALLOWED = "not an allowed environment module"


def test_not_allowed_module_is_never_imported_by_gateway_evolver_or_evaluator(
    tmp_path: Path,
) -> None:
    """A not allowed 'module:Env' is refused by the gateway, never served, never imported."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / f"{PROBE}.py").write_text(PROBE_SOURCE)
    marker = plugins / f"{PROBE}.imported"
    pythonpath = f"{REPO}{os.pathsep}{plugins}"
    found = subprocess.run(  # importable (find_spec does not import it)
        [sys.executable, "-c", f"import importlib.util as u; print(u.find_spec({PROBE!r}))"],
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(plugins) in found.stdout
    assert not marker.exists()
    env_id = f"{PROBE}:Probe-v0"
    cfg = config(gym_game_name=env_id)
    with private_vhost() as url, processes() as procs:
        importable = {"PYTHONPATH": pythonpath}  # every process could import the probe
        gw = start_gateway(tmp_path, procs, url, os_env=importable)
        evo = evolver_proc(tmp_path, procs, url, os_env=importable, announce_grace_s=0.5)
        ev = evaluator_proc(
            tmp_path, procs, url, "allow-list", f"CartPole-v1,{env_id}", os_env=importable
        )
        evo.wait_log("evolver_active")
        ev.wait_log("consuming")
        (unavailable,) = logged(ev, "envs_unavailable")
        assert unavailable["envs"] == [env_id]
        token = gw.signup("allow-list")
        with gw.client(token) as api:
            wait_served(api, "CartPole-v1")  # the gateway heard the evaluator's announcement
            announced = [e["env_id"] for e in api.get("/api/environments").json()["items"]]
            assert announced == ["CartPole-v1"]
            for path in ("/api/validate", "/api/trainings"):
                refused = api.post(path, json=cfg)
                assert refused.status_code == 422, (path, refused.text)
                assert "gym_game_name" in refused.text
                assert env_id in refused.text
        bus = Bus("", url)
        try:
            # Straight to the evolver, past the gateway: it waits for an evaluator of it.
            bus.request("probe-direct", cfg)
            waiting = wait_until(
                lambda: [
                    r
                    for r in logged(evo, "training_waiting")
                    if r.get("training_id") == "probe-direct"
                ],
                30,
                "the evolver to report the direct request waiting",
            )
            assert "no evaluator serves" in waiting[0]["reason"]
            assert "Probe-v0" in waiting[0]["reason"]
            assert not logged(evo, "training_failed")
            assert evo.stop() == 0  # so the test is the only consumer of the results queue
            results = bus.collect(RESULTS_QUEUE)
            for task_id, task_env in (
                ("probe-task", env_id),
                ("probe-prefix", f"{PROBE}:CartPole-v1"),
            ):
                bus.publish(CP_TASKS, encode(make_task(cfg, [0, 1], [0], task_id, env_id=task_env)))
            wait_until(lambda: len(results) == 2, 30, "the evaluator's answers")
        finally:
            bus.close()
        assert alive(gw.proc)
        assert alive(ev)
        assert gw.proc.stop() == 0
        assert ev.stop() == 0
    by_id = {r.task_id: r for r in results if isinstance(r, EvaluationResult)}
    assert by_id["probe-task"].declined  # not an environment it serves
    assert len(by_id["probe-task"].outcomes) == 0
    # The served id behind the probe's module: declined, or refused with error outcomes.
    prefixed = by_id["probe-prefix"]
    assert prefixed.declined or (
        prefixed.outcomes and all(o.error and NOT_ALLOWED in o.error for o in prefixed.outcomes)
    )
    assert not marker.exists(), marker.read_text()
