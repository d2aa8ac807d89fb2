"""`make up` (scripts/stack.sh) lets users' own machines join only with an administrator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.security.broker_users import MANAGEMENT_URL, require_management, secure_vhost

SCRIPT = Path(__file__).parents[3] / "scripts" / "stack.sh"


def _byo(**env: str) -> subprocess.CompletedProcess[str]:
    """``stack.sh byo`` with this interpreter's venv and the given EZSPARK_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EZSPARK_")}
    venv = str(Path(sys.executable).parent.parent)
    return subprocess.run(
        ["bash", str(SCRIPT), "byo"],
        env={**clean, "EZSPARK_VENV": venv, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_administrator_broker_url_turns_users_evaluators_on() -> None:
    """The local broker's guest (an administrator) is used for the management API."""
    require_management()
    result = _byo(EZSPARK_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/%2F")
    assert result.returncode == 0, result.stderr
    assert f"users' own evaluators: on (management API at {MANAGEMENT_URL} as guest)" in (
        result.stderr
    )


def test_other_broker_users_leave_them_off_and_up_goes_on() -> None:
    """A service's own (non-administrator) user or wrong credentials: off, and why, exit 0."""
    with secure_vhost() as sv:
        service = _byo(EZSPARK_BROKER_URL=sv.url("evaluator"))
        wrong = _byo(EZSPARK_BROKER_URL="amqp://guest:not-the-password@127.0.0.1:5672/%2F")
    assert service.returncode == wrong.returncode == 0, service.stderr + wrong.stderr
    assert f"off ({sv.user('evaluator')} is not a RabbitMQ administrator" in service.stderr
    assert "users' own evaluators: off (guest is not a RabbitMQ administrator" in wrong.stderr
    assert "HTTP 401" in wrong.stderr


def test_no_management_api_leaves_them_off() -> None:
    """A broker host without the management API: off, naming where it looked, exit 0."""
    result = _byo(EZSPARK_BROKER_URL="amqp://guest:guest@no-such-host.invalid:5672/%2F")
    assert result.returncode == 0, result.stderr
    assert "off (no management API at http://no-such-host.invalid:15672" in result.stderr


def test_a_configured_admin_url_is_kept_as_given() -> None:
    """EZSPARK_BROKER_ADMIN_URL set by the user wins; the script does not look further."""
    result = _byo(EZSPARK_BROKER_ADMIN_URL="http://rabbit.example:15672")
    assert result.returncode == 0, result.stderr
    assert "on (EZSPARK_BROKER_ADMIN_URL=http://rabbit.example:15672)" in result.stderr
