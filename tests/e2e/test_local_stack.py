"""`make up`'s script as a user runs it: the local stack starts, accepts a config submitted
at once (the evaluators have announced before `up` returns), trains it to the end, and
lets users' own machines join; `down` stops everything.  On a fresh RabbitMQ vhost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from ezspark_common.cli.app import main
from tests.e2e.browser.gateway_process import free_port
from tests.integration.security.broker_users import ADMIN, MANAGEMENT_URL, require_management
from tests.integration.services.procs import fresh_vhost

REPO = Path(__file__).parents[2]
PASSWORD = "correct-horse-42"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`scripts/stack.sh up` on a fresh vhost and port (gateway URL, its environment);
    `down` afterwards, whatever happened."""
    require_management()
    with fresh_vhost("up") as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EZSPARK_")}
        port = free_port()
        env |= {
            "EZSPARK_VENV": str(Path(sys.executable).parent.parent),
            "EZSPARK_UP_DIR": str(tmp_path / "up"),
            "EZSPARK_BROKER_URL": url,
            "GATEWAY_PORT": str(port),
            "METRICS_BASE": "0",
            "EZSPARK_ENVS": "CartPole-v1",
        }
        script = ["bash", str(REPO / "scripts" / "stack.sh")]
        try:
            up = subprocess.run(
                [*script, "up"], env=env, capture_output=True, text=True, timeout=180, check=False
            )
            assert up.returncode == 0, up.stdout + up.stderr
            assert "users' own evaluators: on" in up.stderr
            assert "not yet announced" not in up.stderr
            yield f"http://127.0.0.1:{port}", env
        finally:
            down = subprocess.run(
                [*script, "down"], env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert down.returncode == 0, down.stdout + down.stderr
            assert "EzSpark is down" in down.stdout


def test_up_signup_submit_at_once_and_watch_to_the_end(
    stack: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """README's local-cluster commands in order: signup, submit right after up, watch to
    `finished`; the user's own evaluator is given a broker user (not refused with 503)."""
    url, _ = stack
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "EZSPARK_URL": None, "EZSPARK_TOKEN": None}
    run = CliRunner().invoke
    signed = run(main, ["signup", "--url", url, "-u", "upuser"], input=f"{PASSWORD}\n" * 2, env=env)
    assert signed.exit_code == 0, signed.output
    config = tmp_path / "cartpole.json"
    data = json.loads((REPO / "examples" / "cartpole.json").read_text())
    config.write_text(json.dumps(data | {"initial_population": 30, "generations": 3}))
    submitted = run(main, ["submit", str(config)], env=env)
    assert submitted.exit_code == 0, submitted.output  # not "no evaluator serves …"
    training = submitted.stdout.strip()
    watched = run(main, ["watch", training], env=env)
    assert watched.exit_code == 0, watched.output
    assert f"CartPole-v1 training {training}: finished" in watched.stdout
    token = json.loads((tmp_path / "config" / "ezspark" / "credentials.json").read_text())
    auth = {"Authorization": f"Bearer {token['token']}"}
    issued = httpx.post(f"{url}/api/evaluators", headers=auth, json={}, timeout=30)
    assert issued.status_code == 201, issued.text
    name = issued.json()["evaluator_id"]
    assert name in _broker_users()
    # Logging out revokes the token and, with it, the broker user (users outlive vhosts).
    assert run(main, ["logout"], env=env).exit_code == 0
    assert name not in _broker_users()


def _broker_users() -> set[str]:
    reply = httpx.get(f"{MANAGEMENT_URL}/api/users", auth=ADMIN, timeout=10)
    reply.raise_for_status()
    return {u["name"] for u in reply.json()}
