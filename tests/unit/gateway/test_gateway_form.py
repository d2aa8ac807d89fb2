"""The new-training page: error summary, templates, environment list, the no-stopping-point
warning, and the API docs served with no third-party host."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ezspark_common.config import UNBOUNDED_GENERATIONS, parse_config, stopping_warning
from ezspark_gateway.web.fields import form_text
from ezspark_gateway.web.presets import find_examples, presets
from tests.unit.gateway.test_gateway_environments import GRID, announced

EXAMPLES = Path(__file__).parents[3] / "examples"
CARTPOLE: dict[str, Any] = json.loads((EXAMPLES / "cartpole.json").read_text())
SPEC: dict[str, Any] = json.loads((EXAMPLES / "spec-example.json").read_text())


def _form(config: dict[str, Any], **changes: str) -> dict[str, str]:
    return {k: form_text(v) for k, v in config.items()} | changes


def _login(gw: Any) -> None:
    gw.browser_login("former")


def _invalid_inputs(page: str) -> list[str]:
    """The ids of the inputs and selects marked aria-invalid."""
    return re.findall(r'<(?:input|select) id="([^"]+)"[^>]*aria-invalid="true"', page, re.S)


def test_refused_submit_has_a_focused_summary_linking_each_field(gw: Any) -> None:
    """crossover_rate 1.5 comes back with a role=alert summary (autofocus, tabindex -1) whose
    link goes to the field, and only that input is aria-invalid."""
    _login(gw)
    resp = gw.client.post("/trainings/new", data=_form(CARTPOLE, crossover_rate="1.5"))
    assert resp.status_code == 422
    summary = re.search(r'<div id="error-summary"[^>]*>', resp.text)
    assert summary
    for attribute in ('role="alert"', 'tabindex="-1"', "autofocus"):
        assert attribute in summary.group(0)
    assert re.search(
        r'<a href="#f-crossover_rate"><code>crossover_rate</code>: input should be '
        r"less than or equal to 1</a>",
        resp.text,
    )
    assert _invalid_inputs(resp.text) == ["f-crossover_rate"]
    assert gw.publisher.sent == []


def test_summary_lists_errors_in_page_order(gw: Any) -> None:
    """Several bad fields are listed top to bottom as on the page, each with its own link."""
    _login(gw)
    data = _form(CARTPOLE, crossover_rate="2", gym_game_name="", safeness="-1")
    page = gw.client.post("/trainings/new", data=data).text
    links = re.findall(r'<li><a href="#(f-[a-z_]+)">', page)
    assert links == ["f-gym_game_name", "f-safeness", "f-crossover_rate"]
    assert sorted(_invalid_inputs(page)) == sorted(links)


def test_upload_errors_sit_beside_the_upload_and_the_summary_links_there(gw: Any) -> None:
    """A bad file's errors are in the upload section, the file input is aria-invalid, and
    the summary links to #file."""
    _login(gw)
    bad = json.dumps(CARTPOLE | {"populaton_size": 5}).encode()
    resp = gw.client.post("/trainings/upload", files={"file": ("c.json", bad, "application/json")})
    assert resp.status_code == 422
    upload = resp.text.split('action="/trainings/upload"', 1)[1].split("</form>", 1)[0]
    assert "populaton_size: unknown key; did you mean" in upload
    assert 'aria-invalid="true"' in upload
    assert '<a href="#file"><code>Config file</code>: populaton_size' in resp.text
    # The upload sits above the form's fields, so its errors are near the top.
    assert resp.text.index('id="e-file"') < resp.text.index('id="f-gym_game_name"')


def test_templates_come_from_the_examples_and_stop_by_themselves() -> None:
    """CartPole, Acrobot and LunarLander are the examples' values; each has a threshold and
    a realistic length; the custom one leaves the environment to the user."""
    found = {p.slug: p for p in presets(find_examples())}
    assert list(found) == ["cartpole", "acrobot", "lunarlander", "custom"]
    for slug in ("cartpole", "acrobot", "lunarlander"):
        example = json.loads((EXAMPLES / f"{slug}.json").read_text())
        assert found[slug].values == {k: form_text(v) for k, v in example.items()}
        config = parse_config(example)
        assert config.fitness_threshold is not None
        assert config.generations <= 1000
    custom = found["custom"].values
    assert custom["gym_game_name"] == custom["input_size"] == custom["output_size"] == ""
    assert int(custom["generations"]) <= UNBOUNDED_GENERATIONS


def test_default_form_is_the_cartpole_template_not_the_trap(gw: Any) -> None:
    """The untouched form is CartPole-v1 stopping at 475, and ?template= picks another."""
    _login(gw)
    page = gw.client.get("/trainings/new").text
    assert 'name="gym_game_name" value="CartPole-v1"' in page
    assert 'name="fitness_threshold" value="475.0"' in page
    assert 'name="generations" value="100"' in page
    assert 'href="/trainings/new?template=cartpole" aria-current="page"' in page
    acrobot = gw.client.get("/trainings/new?template=acrobot").text
    assert 'name="gym_game_name" value="Acrobot-v1"' in acrobot
    assert 'name="minimum_reward" value="-1"' in acrobot
    unknown = gw.client.get("/trainings/new?template=nope").text
    assert 'name="gym_game_name" value="CartPole-v1"' in unknown


def test_keep_parents_and_switches_are_selects(gw: Any) -> None:
    """keep_parents offers 0 and 1 (the spec's only values); the optional switches false/true."""
    _login(gw)
    page = gw.client.get("/trainings/new").text
    for key, options in (
        ("keep_parents", ["1", "0"]),
        ("recurrent", ["false", "true"]),
        ("trusted_evaluators_only", ["false", "true"]),
    ):
        select = re.search(rf'<select id="f-{key}" name="{key}".*?</select>', page, re.S)
        assert select, key
        assert re.findall(r'<option value="([^"]*)"', select.group(0)) == options
        assert f'name="{key}" value=' not in page  # no text box
    # A value the select does not offer (sent by hand) is shown, with the error.
    _login(gw)
    resp = gw.client.post("/trainings/new", data=_form(CARTPOLE, keep_parents="2"))
    assert '<option value="2" selected>2</option>' in resp.text
    assert "f-keep_parents" in _invalid_inputs(resp.text)


def test_environment_list_offers_announced_and_template_envs_with_sizes(gw: Any) -> None:
    """The datalist holds the announced envs and the templates' envs, and the script's data
    gives their sizes."""
    gw.app.state.ctx.environments.announce(announced("ev-1", GRID))
    _login(gw)
    page = gw.client.get("/trainings/new").text
    options = re.findall(r'<option value="([^"]+)">(\d+) inputs, (\d+) outputs', page)
    assert ("EzCustom/Grid-v0", "2", "3") in options
    assert ("CartPole-v1", "4", "2") in options
    assert ("Acrobot-v1", "6", "3") in options
    sizes = json.loads(
        re.search(
            r'<script type="application/json" id="env-sizes">(.*?)</script>', page, re.S
        ).group(1)
    )  # type: ignore[union-attr]
    assert sizes["EzCustom/Grid-v0"] == [2, 3]
    assert sizes["CartPole-v1"] == [4, 2]


def test_blank_sizes_are_filled_from_the_environment_without_script(gw: Any) -> None:
    """With input/output sizes left blank, the form takes them from the chosen environment."""
    gw.app.state.ctx.environments.announce(announced("ev-1", GRID))
    _login(gw)
    data = _form(CARTPOLE, gym_game_name="EzCustom/Grid-v0", input_size="", output_size="")
    resp = gw.client.post("/trainings/new", data=data, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    [msg] = gw.publisher.sent
    assert (msg.config["input_size"], msg.config["output_size"]) == (2, 3)


def test_run_with_no_stopping_point_needs_confirmation(gw: Any) -> None:
    """20,000 generations without a threshold re-renders with a warning and creates nothing,
    until "create anyway" is ticked; a threshold or fewer generations need no confirmation."""
    _login(gw)
    data = _form(CARTPOLE, generations="20000", fitness_threshold="")
    resp = gw.client.post("/trainings/new", data=data)
    assert resp.status_code == 200
    assert 'id="unbounded-warning" class="summary summary-warning" role="alert"' in resp.text
    assert "20,000 generations and no fitness_threshold" in resp.text
    assert 'name="_confirm_unbounded" value="1" form="config-form"' in resp.text
    assert 'name="generations" value="20000"' in resp.text  # what was typed is kept
    assert gw.publisher.sent == []
    confirmed = data | {"_confirm_unbounded": "1"}
    assert (
        gw.client.post("/trainings/new", data=confirmed, follow_redirects=False).status_code == 303
    )
    bounded = _form(CARTPOLE, generations="20000")  # keeps its fitness_threshold
    assert gw.client.post("/trainings/new", data=bounded, follow_redirects=False).status_code == 303
    short = _form(CARTPOLE, generations=str(UNBOUNDED_GENERATIONS), fitness_threshold="")
    assert gw.client.post("/trainings/new", data=short, follow_redirects=False).status_code == 303
    assert len(gw.publisher.sent) == 3


def test_uploaded_run_with_no_stopping_point_goes_to_the_form_to_confirm(gw: Any) -> None:
    """The spec's example file (600,000 generations, no threshold) is not created at once:
    its values fill the form, with the warning."""
    _login(gw)
    spec = (EXAMPLES / "spec-example.json").read_bytes()
    resp = gw.client.post("/trainings/upload", files={"file": ("s.json", spec, "application/json")})
    assert resp.status_code == 200
    assert "600,000 generations and no fitness_threshold" in resp.text
    assert 'name="generations" value="600000"' in resp.text
    assert 'name="gym_game_name" value="CartPole-v0"' in resp.text
    assert gw.publisher.sent == []


def test_stopping_warning_rule() -> None:
    """The warning fires past 10,000 generations only when no fitness_threshold is set."""
    assert stopping_warning(parse_config(SPEC)) is not None
    assert stopping_warning(parse_config(SPEC | {"fitness_threshold": 195})) is None
    assert stopping_warning(parse_config(SPEC | {"generations": UNBOUNDED_GENERATIONS})) is None


def test_docs_and_redoc_use_no_third_party_host(gw: Any) -> None:
    """/docs and /redoc reference only the gateway's own files, which are served, under a
    CSP with no other host and no inline script."""
    for path in ("/docs", "/redoc"):
        resp = gw.client.get(path)
        assert resp.status_code == 200
        assert not re.search(r"(src|href)=\"(https?:)?//", resp.text), resp.text
        assert "<script>" not in resp.text  # no inline script
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self';" in csp
        assert "http" not in csp
        for asset in re.findall(r'(?:src|href)="(/[^"]+)"', resp.text):
            assert gw.client.get(asset).status_code == 200, asset


def test_openapi_declares_the_bearer_scheme_per_operation(gw: Any) -> None:
    """The OpenAPI document has a bearer scheme; operations needing a token require it,
    /api/validate accepts it optionally, and log-in needs none."""
    spec = gw.client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    paths = spec["paths"]
    assert paths["/api/trainings"]["post"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/trainings/{training_id}"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/validate"]["post"]["security"] == [{}, {"bearerAuth": []}]
    assert "security" not in paths["/api/auth/login"]["post"]


def test_api_validate_lists_the_warning_but_creation_goes_on(gw: Any) -> None:
    """/api/validate accepts a run with no stopping point and says why it may never end;
    POST /api/trainings creates it (only the web form asks)."""
    unbounded = CARTPOLE | {"generations": 20_000, "fitness_threshold": None}
    resp = gw.client.post("/api/validate", json=unbounded)
    assert resp.status_code == 200
    [warning] = resp.json()["warnings"]
    assert "no stopping point: 20,000 generations" in warning
    assert gw.client.post("/api/validate", json=CARTPOLE).json()["warnings"] == []
    token = gw.signup()
    created = gw.client.post("/api/trainings", json=unbounded, headers=gw.auth(token))
    assert created.status_code == 201


def test_without_the_examples_only_the_custom_template_is_offered(tmp_path: Path) -> None:
    """An installed gateway with no examples directory still offers a form that stops."""
    assert find_examples(str(tmp_path / "missing")) is None
    (only,) = presets(None)
    assert only.slug == "custom"
    assert int(only.values["generations"]) <= UNBOUNDED_GENERATIONS
    (tmp_path / "acrobot.json").write_text((EXAMPLES / "acrobot.json").read_text())
    assert [p.slug for p in presets(find_examples(str(tmp_path)))] == ["acrobot", "custom"]
