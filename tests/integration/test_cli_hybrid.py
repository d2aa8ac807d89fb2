"""``ezspark train --gateway`` against a real ``ezspark-gateway`` process (in-memory broker:
handed-over trainings stay queued, which is all these behaviours need).

Ctrl-C is simulated by raising KeyboardInterrupt where the command would receive it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ezspark_common.cli import app as cli
from ezspark_common.cli import remote_common
from ezspark_common.cli.app import main
from ezspark_common.trainer.checkpoints import load_checkpoint
from tests.e2e.browser.gateway_process import Gateway, api, free_port, running_gateway, sign_up
from tests.support.configs import example

CONFIG = example(
    "cartpole",
    initial_population=8,
    generations=4,
    alone_training_iterations=2,
    max_number_of_games=1,
    sub_games=1,
    max_number_of_steps=20,
    seed=11,
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway process with SQLite and the in-memory broker."""
    with running_gateway(tmp_path_factory.mktemp("gw-hybrid")) as gw:
        yield gw


def _config(tmp_path: Path, **overrides: Any) -> str:
    path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({**CONFIG, **overrides}))
    return str(path)


def _train(token: str | None, *args: str) -> Result:
    env = {"EZSPARK_TOKEN": token, "EZSPARK_URL": None, "XDG_CONFIG_HOME": "/nonexistent"}
    return CliRunner().invoke(main, ["train", *args, "--interval", "0.05"], env=env)


def _token(gw: Gateway) -> str:
    return sign_up(gw.url, f"u{uuid.uuid4().hex[:10]}", "correct-horse-42")


def _stop_following(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first wait between polls is interrupted, as Ctrl-C would."""

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(remote_common, "_sleep", interrupted)


def test_not_logged_in_fails_before_training(tmp_path: Path, gateway: Gateway) -> None:
    """Without a token for the gateway nothing is trained and the message says to log in."""
    out = tmp_path / "run"
    result = _train(None, _config(tmp_path), "--gateway", gateway.url, "--out", str(out))
    assert result.exit_code == 1
    assert f"ezspark login --url {gateway.url}" in result.output
    assert not out.exists()


def test_unreachable_gateway_keeps_the_checkpoint_and_resume_hands_it_over(
    tmp_path: Path, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the gateway down the alone phase still runs and the checkpoint stays, with the
    command that retries; that command hands it over, and Ctrl-C while following leaves the
    training running and says how to stop it."""
    token, config, out = _token(gateway), _config(tmp_path), tmp_path / "run"
    down = f"http://127.0.0.1:{free_port()}"
    result = _train(token, config, "--gateway", down, "--out", str(out), "--workers", "1")
    assert result.exit_code == 1, result.output
    assert f"--gateway {down} --resume {out}" in result.output
    assert load_checkpoint(out).generation == 2
    assert "training_id" not in json.loads((out / "handoff.json").read_text())
    _stop_following(monkeypatch)
    result = _train(token, config, "--gateway", gateway.url, "--resume", str(out))
    assert result.exit_code == 130, result.output
    tid = json.loads((out / "handoff.json").read_text())["training_id"]
    assert f"ezspark stop {tid}" in result.output
    assert f"-- CartPole-v1 training {tid}: queued" in result.output  # watch's display
    training = api(gateway.url, "GET", f"/api/trainings/{tid}", token=token)
    assert (training["status"], training["generations"]) == ("queued", 2)
    again = _train(token, config, "--gateway", gateway.url, "--resume", str(out))
    assert again.exit_code == 130, again.output
    assert "handing" not in again.output  # followed again, not handed over twice
    assert api(gateway.url, "GET", "/api/trainings", token=token)["total"] == 1


def test_ctrl_c_in_the_alone_phase_leaves_a_resumable_run(
    tmp_path: Path, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after generation 0, the folder holds a checkpoint at generation 1 and the
    message gives the command that continues the alone phase and hands it over."""
    token, config, out = _token(gateway), _config(tmp_path), tmp_path / "run"

    def interrupt(_report: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_print_report", interrupt)
    result = _train(token, config, "--gateway", gateway.url, "--out", str(out), "--workers", "1")
    assert result.exit_code == 130, result.output
    assert f"--gateway {gateway.url} --resume {out}" in result.output
    assert load_checkpoint(out).generation == 1
    assert api(gateway.url, "GET", "/api/trainings", token=token)["total"] == 0


def test_resume_with_another_config_and_a_refused_config_fail_clearly(
    tmp_path: Path, gateway: Gateway
) -> None:
    """A config that differs from the checkpoint is named (exit 2); a config the gateway
    refuses is refused before the alone phase, field by field (exit 2)."""
    token, out = _token(gateway), tmp_path / "run"
    down = f"http://127.0.0.1:{free_port()}"
    _train(token, _config(tmp_path), "--gateway", down, "--out", str(out))
    other = _config(tmp_path, seed=12)
    result = _train(token, other, "--gateway", gateway.url, "--resume", str(out))
    assert result.exit_code == 2
    assert "['seed']" in result.output
    huge = _config(tmp_path, max_number_of_steps=1_000_000, max_number_of_games=1000)
    fresh = tmp_path / "fresh"
    result = _train(token, huge, "--gateway", gateway.url, "--out", str(fresh))
    assert result.exit_code == 2, result.output
    assert "the gateway rejected" in result.output
    assert "EZSPARK_QUOTA_WORK_PER_GENERATION" in result.output
    assert not fresh.exists()


def test_a_run_that_ends_in_the_alone_phase_is_not_handed_over(
    tmp_path: Path, gateway: Gateway
) -> None:
    """When the alone phase covers every generation the run finishes here."""
    token, out = _token(gateway), tmp_path / "run"
    config = _config(tmp_path, generations=2)
    result = _train(token, config, "--gateway", gateway.url, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "nothing to hand over" in result.output
    assert (out / "best.json").is_file()
    assert api(gateway.url, "GET", "/api/trainings", token=token)["total"] == 0


def test_a_retry_after_a_lost_answer_follows_the_training_already_created(
    tmp_path: Path, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway created the training but its answer never arrived: the retry sends the
    same hand-over id and follows that training instead of creating a second one."""
    token, config, out = _token(gateway), _config(tmp_path), tmp_path / "run"
    down = f"http://127.0.0.1:{free_port()}"
    assert _train(token, config, "--gateway", down, "--out", str(out)).exit_code == 1
    marker = json.loads((out / "handoff.json").read_text())
    body = {
        "config": CONFIG,
        "checkpoint": json.loads((out / "checkpoint.json").read_text()),
        "handoff_id": marker["handoff_id"],
    }
    first = api(gateway.url, "POST", "/api/trainings/handoff", body, token=token)
    _stop_following(monkeypatch)
    result = _train(token, config, "--gateway", gateway.url, "--resume", str(out))
    assert result.exit_code == 130, result.output
    assert json.loads((out / "handoff.json").read_text())["training_id"] == first["id"]
    assert api(gateway.url, "GET", "/api/trainings", token=token)["total"] == 1
