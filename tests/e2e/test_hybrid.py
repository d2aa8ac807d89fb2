"""``ezspark train CONFIG --gateway URL`` through the whole stack as real processes.

The alone phase runs in the test process (the CLI, on two local worker processes), the
rest on the gateway, evolver and two evaluators of ``test_stack.start_stack`` on a fresh
RabbitMQ vhost.  The result is compared with a fully embedded run of the same config: the
evolver's final population, and every genome file the CLI wrote locally, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from ezspark_common.cli.app import main
from ezspark_common.config import parse_config
from ezspark_common.trainer.checkpoints import load_checkpoint
from ezspark_common.trainer.embedded import run_embedded
from ezspark_common.trainer.evaluators import InProcessEvaluator
from ezspark_common.trainer.training import start
from tests.e2e.test_stack import spec_config, start_stack, vhost_broker_url
from tests.integration.services.harness import assert_same_run, embedded
from tests.integration.services.procs import processes

__all__ = ["vhost_broker_url"]  # the fixture, imported for pytest
PASSWORD = "correct horse battery"


def hybrid_config() -> dict[str, Any]:
    """The bounded spec example: 2 generations alone, 3 in the cluster, saving every 2."""
    return {**spec_config(), "generations": 5, "alone_training_iterations": 2, "saving": 2}


def test_hybrid_run_equals_the_embedded_run_and_saves_genomes_locally(
    tmp_path: Path, vhost_broker_url: str
) -> None:
    """Alone phase here, hand-over, the cluster finishes: the evolver starts at generation
    2, its final population equals the embedded run's, and the local folder holds the
    embedded run's genomes/gen-*.json and best.json, byte for byte."""
    cfg = hybrid_config()
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(cfg))
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "EZSPARK_URL": None, "EZSPARK_TOKEN": None}
    out = tmp_path / "run"
    with processes() as procs:
        base = start_stack(tmp_path, vhost_broker_url, procs, cfg["gym_game_name"])
        signup = httpx.post(
            f"{base}/api/auth/signup", json={"username": "ada", "password": PASSWORD}
        )
        assert signup.status_code == 202, signup.text
        runner = CliRunner()
        login = runner.invoke(
            main,
            ["login", "--url", base, "-u", "ada", "--password-stdin"],
            input=PASSWORD + "\n",
            env=env,
        )
        assert login.exit_code == 0, login.output
        args = ["train", str(config_file), "--gateway", base, "--out", str(out)]
        result = runner.invoke(main, [*args, "--workers", "2", "--interval", "0.2"], env=env)
        assert result.exit_code == 0, result.output
        tid = json.loads((out / "handoff.json").read_text())["training_id"]
        procs[1].wait_log("training_accepted", training_id=tid, from_generation=2)
        for proc in procs:
            assert proc.stop() == 0, f"{proc.command} did not exit cleanly"
    assert "finished after 5 generations (all generations run)" in result.output
    assert_same_run(load_checkpoint(tmp_path / "evolver" / tid), embedded(cfg))
    reference = tmp_path / "reference"
    run_embedded(start(parse_config(cfg)), InProcessEvaluator(), reference)
    names = sorted(p.name for p in (out / "genomes").iterdir())
    assert names == ["gen-000000.json", "gen-000002.json", "gen-000004.json"]
    for name in names:
        assert (out / "genomes" / name).read_bytes() == (reference / "genomes" / name).read_bytes()
    assert (out / "best.json").read_bytes() == (reference / "best.json").read_bytes()
