"""Every way in refuses what ``ezspark validate`` refuses, environment and sizes included.

One real ``ezspark-gateway`` process (SQLite, in-memory broker).  A config with a wrong
``input_size`` and one naming an unknown environment are sent through the web form, the
web upload, ``POST /api/validate``, ``POST /api/trainings`` and ``ezspark submit``; each
refuses it naming the same field, and nothing is created.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from ezspark_common.cli.app import main
from ezspark_gateway.web.fields import form_text
from tests.e2e.browser.gateway_process import Gateway, running_gateway, sign_up
from tests.support.configs import example

CARTPOLE = example("cartpole")
PASSWORD = "equivalent-pass-42"
CASES = {
    "wrong-input-size": (CARTPOLE | {"input_size": 5}, "input_size"),
    "unknown-env": (CARTPOLE | {"gym_game_name": "CartPoel-v1"}, "gym_game_name"),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway process with SQLite and the in-memory broker."""
    with running_gateway(tmp_path_factory.mktemp("gw-equivalence")) as gw:
        yield gw


def _cli(tmp_path: Path, *args: str, stdin: str | None = None) -> Result:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "EZSPARK_URL": None, "EZSPARK_TOKEN": None}
    return CliRunner().invoke(main, list(args), input=stdin, env=env)


def _listed(stderr: str) -> dict[str, str]:
    """The ``  field: message`` lines the CLI prints for a refused config."""
    return dict(re.findall(r"^  ([a-z_]+): (.*)$", stderr, re.M))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_path_refuses_naming_the_field(gateway: Gateway, tmp_path: Path, case: str) -> None:
    """Form, upload, /api/validate, /api/trainings and `ezspark submit` refuse the config
    `ezspark validate` refuses, each naming the field it names."""
    config, field = CASES[case]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    local = _cli(tmp_path, "validate", str(path))
    assert local.exit_code == 2, local.output
    assert field in _listed(local.stderr)

    username = f"q{uuid.uuid4().hex[:10]}"
    token = sign_up(gateway.url, username, PASSWORD)
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {token}"}) as http:
        form = http.post("/trainings/new", data={k: form_text(v) for k, v in config.items()})
        assert form.status_code == 422
        assert f'<a href="#f-{field}"><code>{field}</code>: ' in form.text
        assert re.search(rf'<input id="f-{field}"[^>]*aria-invalid="true"', form.text, re.S)

        upload = http.post(
            "/trainings/upload", files={"file": ("c.json", path.read_bytes(), "application/json")}
        )
        assert upload.status_code == 422
        beside = upload.text.split('id="e-file"', 1)[1].split("</div>", 1)[0]
        assert f"{field}: " in beside

        answers = {
            "/api/validate": http.post("/api/validate", json=config),
            "/api/trainings": http.post("/api/trainings", json=config),
        }
        for name, answer in answers.items():
            assert answer.status_code == 422, (name, answer.text)
            assert [e["field"] for e in answer.json()["errors"]] == [field], name
        api_message = answers["/api/trainings"].json()["errors"][0]["message"]
        assert api_message in html.unescape(form.text)

        login = _cli(
            tmp_path,
            "login",
            "--url",
            gateway.url,
            "-u",
            username,
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert login.exit_code == 0, login.output
        submitted = _cli(tmp_path, "submit", str(path))
        assert submitted.exit_code == 2, submitted.output
        assert _listed(submitted.stderr) == {field: api_message}
        if field == "input_size":  # the same sizes rule, word for word, everywhere
            assert _listed(local.stderr)[field] == api_message
        assert http.get("/api/trainings").json()["total"] == 0
