"""The remote ``ezspark`` commands against a real ``ezspark-gateway`` process.

One gateway runs with the in-memory broker (nothing ever evolves there: trainings stay
queued or stopping).  The watch/best tests use a second gateway on a private RabbitMQ vhost
and publish evolver events to it, so trainings really progress, finish or fail.  Every
command runs through click's CliRunner with ``XDG_CONFIG_HOME`` in the test's tmp_path.
"""

from __future__ import annotations

import json
import stat
import threading
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ezspark_common.cli import remote_account, remote_common, remote_trainings
from ezspark_common.cli.app import main
from tests.e2e.browser.gateway_process import (
    EventFeed,
    Gateway,
    api,
    free_port,
    gateway_with_feed,
    running_gateway,
    sign_up,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "spec-example.json"
PASSWORD = "correct-horse-42"
Cli = Callable[..., Result]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway process with SQLite and the in-memory broker."""
    with running_gateway(tmp_path_factory.mktemp("gw-memory")) as gw:
        yield gw


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, EventFeed]]:
    """A gateway on a private RabbitMQ vhost, and a feed of evolver events into it."""
    with gateway_with_feed(tmp_path_factory.mktemp("gw-amqp")) as live_pair:
        yield live_pair


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Runs ``ezspark ARGS`` with a private config dir and no EZSPARK_URL/TOKEN."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "EZSPARK_URL": None, "EZSPARK_TOKEN": None}

    def run(*args: str, input: str | None = None, **extra_env: str) -> Result:
        return CliRunner().invoke(main, list(args), input=input, env=env | extra_env)

    return run


def _creds_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "ezspark" / "credentials.json"


def _login(cli: Cli, gw: Gateway) -> str:
    """Sign up a fresh user through the API and log the CLI in; the username."""
    username = f"u{uuid.uuid4().hex[:10]}"
    sign_up(gw.url, username, PASSWORD)
    result = cli(
        "login", "--url", gw.url, "--username", username, "--password-stdin", input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    return username


def _clean_failure(result: Result, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert "Traceback" not in result.output


def test_login_stores_api_token_not_password(cli: Cli, gateway: Gateway, tmp_path: Path) -> None:
    """login saves {url, token} mode 0600, the token works and is not the password."""
    username = _login(cli, gateway)
    path = _creds_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = json.loads(path.read_text())
    assert saved["url"] == gateway.url
    assert saved["token"]
    assert saved["token"] != PASSWORD
    assert PASSWORD not in path.read_text()
    assert api(gateway.url, "GET", "/api/auth/me", token=saved["token"])["username"] == username
    tokens = api(gateway.url, "GET", "/api/auth/tokens", token=saved["token"])
    assert [t["name"] for t in tokens] == [remote_account.token_name()]


def test_login_wrong_password_fails_cleanly(cli: Cli, gateway: Gateway, tmp_path: Path) -> None:
    """A wrong password is one clear error line, and nothing is stored."""
    username = f"u{uuid.uuid4().hex[:10]}"
    sign_up(gateway.url, username, PASSWORD)
    result = cli(
        "login", "--url", gateway.url, "-u", username, "--password-stdin", input="wrong-password\n"
    )
    _clean_failure(result)
    assert f"login to {gateway.url} failed" in result.stderr
    assert f"ezspark signup --url {gateway.url}" in result.stderr  # the way forward
    assert not _creds_file(tmp_path).exists()


def test_signup_creates_the_account_and_logs_in(cli: Cli, gateway: Gateway, tmp_path: Path) -> None:
    """signup makes a new account whose stored API token the gateway accepts as that user."""
    username = f"u{uuid.uuid4().hex[:10]}"
    result = cli("signup", "--url", gateway.url, "-u", username, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert f"logged in to {gateway.url} as {username}" in result.stdout
    token = json.loads(_creds_file(tmp_path).read_text())["token"]
    assert api(gateway.url, "GET", "/api/auth/me", token=token)["username"] == username
    assert api(gateway.url, "POST", "/api/auth/login", {"username": username, "password": PASSWORD})


def test_signup_with_a_taken_name_or_weak_password_fails_cleanly(
    cli: Cli, gateway: Gateway, tmp_path: Path
) -> None:
    """Another's name gives one clear error (exit 1); a weak password names the field (2)."""
    username = f"u{uuid.uuid4().hex[:10]}"
    sign_up(gateway.url, username, PASSWORD)
    taken = cli(
        "signup",
        "--url",
        gateway.url,
        "-u",
        username,
        "--password-stdin",
        input="another-long-password\n",
    )
    _clean_failure(taken)
    assert "may belong to another account" in taken.stderr
    weak = cli(
        "signup",
        "--url",
        gateway.url,
        "-u",
        f"u{uuid.uuid4().hex[:10]}",
        "--password-stdin",
        input="short\n",
    )
    _clean_failure(weak, code=2)
    assert "password:" in weak.stderr
    assert not _creds_file(tmp_path).exists()


def test_submit_status_stop(cli: Cli, gateway: Gateway) -> None:
    """submit prints the id; status lists and details it; stop makes it stopping."""
    _login(cli, gateway)
    submitted = cli("submit", str(EXAMPLE))
    assert submitted.exit_code == 0, submitted.output
    training_id = submitted.stdout.strip()
    assert str(uuid.UUID(training_id)) == training_id
    listing = cli("status")
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.stdout.splitlines() if line.startswith(training_id))
    assert "queued" in row
    assert "CartPole-v0" in row
    one = cli("status", training_id)
    assert "status:        queued" in one.stdout
    assert "best genome:   not yet" in one.stdout
    stopped = cli("stop", training_id)
    assert stopped.exit_code == 0, stopped.output
    assert "status stopping" in stopped.stdout
    assert json.loads(cli("status", training_id, "--json").stdout)["status"] == "stopping"


def test_best_before_it_exists_is_a_clear_404(cli: Cli, gateway: Gateway, tmp_path: Path) -> None:
    """best on a training without a champion explains why, writes nothing, exits 1."""
    _login(cli, gateway)
    training_id = cli("submit", str(EXAMPLE)).stdout.strip()
    out = tmp_path / "best.json"
    result = cli("best", training_id, "-o", str(out))
    _clean_failure(result)
    assert "no best genome yet" in result.stderr
    assert "404" in result.stderr
    assert not out.exists()


def test_invalid_config_lists_each_field(cli: Cli, gateway: Gateway, tmp_path: Path) -> None:
    """A bad config is refused locally with every broken field listed; nothing is sent."""
    _login(cli, gateway)
    config = json.loads(EXAMPLE.read_text()) | {
        "input_size": 0,
        "safeness": 2,
        "max_population": "lots",
    }
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config))
    result = cli("submit", str(bad))
    _clean_failure(result, 2)
    for key in ("input_size", "safeness", "max_population"):
        assert f"  {key}: " in result.stderr
    assert "no trainings yet" in cli("status").stdout


def test_gateway_422_lists_each_field(
    cli: Cli, gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the gateway refuses a config (stricter rules) its field errors are listed."""
    _login(cli, gateway)
    monkeypatch.setattr(remote_trainings, "load_config", lambda _path: None)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(json.loads(EXAMPLE.read_text()) | {"children": 0, "safeness": 2}))
    result = cli("submit", str(bad))
    _clean_failure(result, 2)
    assert "the gateway rejected the request" in result.stderr
    assert "  children: " in result.stderr
    assert "  safeness: " in result.stderr


def test_not_logged_in_unknown_id_and_bad_token(cli: Cli, gateway: Gateway) -> None:
    """No credentials, an unknown id and a rejected token each give one clear message."""
    result = cli("status")
    _clean_failure(result)
    assert "not logged in" in result.stderr
    result = cli("status", EZSPARK_URL=gateway.url, EZSPARK_TOKEN="ezs_not-a-real-token")
    _clean_failure(result)
    assert "refused the credentials" in result.stderr
    assert "ezspark login" in result.stderr
    _login(cli, gateway)
    for command in ("status", "watch", "stop", "best"):
        result = cli(command, str(uuid.uuid4()))
        _clean_failure(result)
        assert "no such training" in result.stderr, command


def test_gateway_unreachable(cli: Cli) -> None:
    """A gateway nobody answers for is reported as unreachable, never a traceback."""
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("status", EZSPARK_URL=url, EZSPARK_TOKEN="ezs_x")
    _clean_failure(result)
    assert f"cannot reach the gateway at {url}" in result.stderr
    result = cli("login", "--url", url, "-u", "ada", "--password-stdin", input="pw\n")
    _clean_failure(result)
    assert "cannot reach the gateway" in result.stderr


def test_logout_revokes_the_token(cli: Cli, gateway: Gateway, tmp_path: Path) -> None:
    """logout revokes the token on the gateway and deletes the credentials file."""
    _login(cli, gateway)
    token = json.loads(_creds_file(tmp_path).read_text())["token"]
    result = cli("logout")
    assert result.exit_code == 0, result.output
    assert not _creds_file(tmp_path).exists()
    with pytest.raises(urllib.error.HTTPError) as err:
        api(gateway.url, "GET", "/api/auth/me", token=token)
    assert err.value.code == 401
    assert "not logged in" in cli("logout").stdout


def test_watch_ctrl_c_exits_cleanly(
    cli: Cli, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while watching ends with exit 130 and a hint, not a traceback."""
    _login(cli, gateway)
    training_id = cli("submit", str(EXAMPLE)).stdout.strip()

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(remote_common, "_sleep", interrupt)
    result = cli("watch", training_id)
    _clean_failure(result, 130)
    assert f"training {training_id}: queued" in result.stdout
    assert "stopped watching" in result.stderr


def _watch_deadline(monkeypatch: pytest.MonkeyPatch, seconds: float = 30.0) -> None:
    """Make a watch that never sees its training end give up (as Ctrl-C) after ``seconds``."""
    deadline = time.monotonic() + seconds

    def sleep(interval: float) -> None:
        if time.monotonic() > deadline:
            raise KeyboardInterrupt
        time.sleep(interval)

    monkeypatch.setattr(remote_common, "_sleep", sleep)


def _feed_later(feed: EventFeed, training_id: str, fail: bool) -> threading.Thread:
    def run() -> None:
        for gen in range(3):
            time.sleep(0.3)
            feed.generation(training_id, gen, best=10.0 * (gen + 1), mean=5.0 * (gen + 1))
        time.sleep(0.3)
        if fail:
            feed.failed(training_id, "environment CartPole-v0 crashed")
        else:
            feed.finished(training_id, 3, best=30.0)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date:DeprecationWarning")
def test_watch_follows_a_finishing_training(
    cli: Cli,
    live_gateway: tuple[Gateway, EventFeed],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """watch prints each generation as it arrives and exits 0 when the run finishes."""
    gw, feed = live_gateway
    _login(cli, gw)
    _watch_deadline(monkeypatch)
    training_id = cli("submit", str(EXAMPLE)).stdout.strip()
    thread = _feed_later(feed, training_id, fail=False)
    result = cli("watch", training_id, "--interval", "0.1")
    thread.join(10)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("gen ")]
    assert [line.split()[1] for line in lines] == ["0", "1", "2"]
    assert "finished after 3 generations (all generations run): best fitness 30" in result.stdout
    out = tmp_path / "champion.json"
    fetched = cli("best", training_id, "-o", str(out))
    assert fetched.exit_code == 0, fetched.output
    doc = json.loads(out.read_text())
    assert set(doc) == {
        "format",
        "version",
        "env_id",
        "input_size",
        "output_size",
        "max_steps",
        "generation",
        "fitness",
        "returns",
        "genome",
        "training_id",
    }
    assert (doc["max_steps"], doc["fitness"]) == (200, 30.0)
    assert (doc["format"], doc["env_id"], doc["genome"]["key"]) == (
        "ezspark-genome",
        "CartPole-v0",
        7,
    )
    played = cli("play", str(out), "--episodes", "2")
    assert played.exit_code == 0, played.output
    assert "mean return" in played.stdout


def test_watch_exits_1_when_the_training_fails(
    cli: Cli, live_gateway: tuple[Gateway, EventFeed], monkeypatch: pytest.MonkeyPatch
) -> None:
    """watch reports the evolver's error and exits 1 on a failed training."""
    gw, feed = live_gateway
    _login(cli, gw)
    _watch_deadline(monkeypatch)
    training_id = cli("submit", str(EXAMPLE)).stdout.strip()
    thread = _feed_later(feed, training_id, fail=True)
    result = cli("watch", training_id, "--interval", "0.1")
    thread.join(10)
    _clean_failure(result)
    assert "training failed: environment CartPole-v0 crashed" in result.stderr
    assert result.stdout.count("\ngen ") + result.stdout.startswith("gen ") == 3
