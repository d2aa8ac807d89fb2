"""Server-rendered pages: auth forms, the training form, upload, list and training page."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ezspark_common.config import EXTRA_KEYS, SPEC_KEYS
from ezspark_gateway.web.fields import EXAMPLE, HELP, form_groups, form_text

PASSWORD = "s3cret-password"
CARTPOLE_FILE = Path(__file__).parents[3] / "examples" / "cartpole.json"
CARTPOLE: dict[str, Any] = json.loads(CARTPOLE_FILE.read_text())


def _browser_login(gw: Any, username: str = "web") -> None:
    """Sign up and log in through the pages so the client holds the session cookie."""
    gw.browser_login(username, PASSWORD)


def test_form_fields_cover_every_key_once_with_example_defaults(
    example_dict: dict[str, Any],
) -> None:
    """Every spec key appears in exactly one group, with help text and the example value."""
    keys = [f.key for _, fields in form_groups() for f in fields]
    assert sorted(keys) == sorted(SPEC_KEYS + EXTRA_KEYS)
    assert example_dict == EXAMPLE
    assert all(HELP[k] for k in keys)


def test_anonymous_visitor_is_sent_to_login(gw: Any) -> None:
    """Pages that need an account redirect to the log-in page, remembering where to return."""
    resp = gw.client.get("/trainings/new", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?next=/trainings/new"
    assert "Log in" in gw.client.get("/login").text


def test_web_signup_login_logout(gw: Any) -> None:
    """Signing up then logging in sets a cookie; logging out and in again works."""
    _browser_login(gw, "webby")
    assert "webby" in gw.client.get("/trainings").text
    gw.client.post("/logout", follow_redirects=False)
    gw.client.cookies.clear()
    bad = gw.client.post("/login", data={"username": "webby", "password": "wrong-one"})
    assert bad.status_code == 401
    assert "wrong username or password" in bad.text
    good = gw.client.post(
        "/login",
        data={"username": "webby", "password": PASSWORD, "next": "//evil.example"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert good.headers["location"] == "/trainings"  # no open redirect


def test_web_signup_errors_next_to_fields(gw: Any) -> None:
    """Sign-up form errors are rendered, not raised."""
    resp = gw.client.post("/signup", data={"username": "x", "password": "y"})
    assert resp.status_code == 422
    assert "must be at least 8 characters" in resp.text


def test_empty_list_has_a_clear_empty_state(gw: Any) -> None:
    """A new user's list says there are no trainings and links to the form."""
    _browser_login(gw)
    page = gw.client.get("/trainings").text
    assert "You have no trainings yet" in page
    assert 'href="/trainings/new"' in page


def test_form_page_prefills_every_field_with_help(gw: Any) -> None:
    """The form has an input per key pre-filled from the CartPole template, with help text."""
    _browser_login(gw)
    page = gw.client.get("/trainings/new").text
    for key in SPEC_KEYS:
        assert _shown_value(page, key) == form_text(CARTPOLE[key]), key
        assert html.escape(HELP[key], quote=True) in page or HELP[key] in html.unescape(page)
    assert 'enctype="multipart/form-data"' in page


def _shown_value(page: str, key: str) -> str | None:
    """The value an input shows, or a select's selected option."""
    field = re.search(rf'name="{key}" value="([^"]*)"', page)
    if field:
        return field.group(1)
    select = re.search(rf'<select id="f-{key}".*?</select>', page, re.S)
    chosen = select and re.search(r'<option value="([^"]*)" selected>', select.group(0))
    return chosen.group(1) if chosen else None


def _defaults() -> dict[str, str]:
    """What the untouched form sends: the CartPole template (examples/cartpole.json)."""
    return {k: form_text(v) for k, v in CARTPOLE.items()}


def test_form_with_defaults_creates_training(gw: Any) -> None:
    """Submitting the untouched form creates the CartPole training and shows its page."""
    _browser_login(gw)
    resp = gw.client.post("/trainings/new", data=_defaults(), follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/trainings/")
    [msg] = gw.publisher.sent
    assert msg.config["gym_game_name"] == "CartPole-v1"
    assert msg.config["fitness_threshold"] == 475
    page = gw.client.get(resp.headers["location"]).text
    assert "No generation reported yet" in page
    assert 'id="chart"' in page
    assert "Stop" in page


def test_form_error_shown_next_to_field_with_api_message(
    gw: Any, example_dict: dict[str, Any]
) -> None:
    """A bad form value re-renders the form with the same message the API gives."""
    _browser_login(gw)
    data = _defaults() | {"keep_parents": "2", "generations": "ten"}
    resp = gw.client.post("/trainings/new", data=data)
    assert resp.status_code == 422
    api = gw.client.post("/api/validate", json=example_dict | {"keep_parents": 2})
    api_message = api.json()["errors"][0]["message"]
    block = re.search(r'data-error-for="keep_parents" aria-live="polite">([^<]*)</p>', resp.text)
    assert block
    assert html.unescape(block.group(1).strip()) == api_message
    assert 'value="ten"' in resp.text  # what the user typed is kept
    assert gw.publisher.sent == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("crossover_rate", "1.5"),
        ("input_size", "0"),
        ("minimum_reward", "1e999"),
        ("gym_game_name", ""),
        ("limiting_threshold", "99"),
        ("seed", "-1"),
        ("generations", "2.5"),
        ("species_threshold", "abc"),
    ],
)
def test_form_and_api_agree(gw: Any, example_dict: dict[str, Any], field: str, value: str) -> None:
    """Form fields (as the page's script sends them) and a JSON file get identical errors."""
    form = gw.client.post("/api/validate", data=_defaults() | {field: value})
    # The JSON a user would write with the same text typed in the file.
    doc = dict(example_dict)
    doc.pop(field, None)
    text = json.dumps(doc)
    if value:
        literal = value if re.fullmatch(r"-?[\d.e]+", value) else json.dumps(value)
        text = text[:-1] + f', "{field}": {literal}}}'
    api = gw.client.post(
        "/api/validate", content=text, headers={"Content-Type": "application/json"}
    )
    assert form.status_code == api.status_code == 422
    assert form.json()["errors"] == api.json()["errors"]


def test_upload_form_creates_training(gw: Any) -> None:
    """The page's file upload alternative accepts the CartPole example file."""
    _browser_login(gw)
    resp = gw.client.post(
        "/trainings/upload",
        follow_redirects=False,
        files={"file": ("config.json", CARTPOLE_FILE.read_bytes(), "application/json")},
    )
    assert resp.status_code == 303
    assert len(gw.publisher.sent) == 1


def test_upload_form_shows_errors(gw: Any) -> None:
    """A bad uploaded file re-renders the page with the reasons under the upload field."""
    _browser_login(gw)
    resp = gw.client.post(
        "/trainings/upload", files={"file": ("c.json", b'{"generatons": 1}', "application/json")}
    )
    assert resp.status_code == 422
    assert "did you mean &#39;generations&#39;?" in resp.text


def test_training_page_and_stop_button(gw: Any) -> None:
    """The training page of a user's training renders, and its stop form stops it."""
    _browser_login(gw)
    created = gw.client.post("/trainings/new", data=_defaults(), follow_redirects=False)
    url = created.headers["location"]
    stop = gw.client.post(
        f"{url}/stop", follow_redirects=False, headers={"Origin": "http://testserver"}
    )
    assert stop.status_code == 303
    assert 'class="status status-stopping"' in gw.client.get(url).text
    assert gw.client.get("/trainings").text.count("stopping") >= 1


def test_training_page_of_someone_else_is_404(gw: Any) -> None:
    """Another user's training page is a 404 page."""
    owner = gw.signup()
    tid = gw.create(owner)
    _browser_login(gw, "peeker")
    assert gw.client.get(f"/trainings/{tid}").status_code == 404


def test_static_assets_are_vendored(gw: Any) -> None:
    """The stylesheet and scripts are served from the package itself."""
    for asset in ("style.css", "form.js", "training.js", "charts.js", "time.js"):
        assert gw.client.get(f"/static/{asset}").status_code == 200


def test_blank_required_field_stays_blank_with_its_error(gw: Any) -> None:
    """A field cleared by the user comes back blank with "is required" next to it."""
    _browser_login(gw)
    resp = gw.client.post("/trainings/new", data=_defaults() | {"generations": ""})
    assert resp.status_code == 422
    assert 'name="generations" value=""' in resp.text
    assert 'data-error-for="generations" aria-live="polite">is required</p>' in resp.text
