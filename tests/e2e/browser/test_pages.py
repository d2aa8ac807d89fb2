"""The web pages in real headless Chromium against a real gateway process.

Sign up, create a training by the form and by uploading the example file, see a bad value
rejected next to its field, watch the chart grow while evolver events arrive through
RabbitMQ, stop a training.  Every page visited is saved under screenshots/.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.e2e.browser.gateway_process import EventFeed, Gateway

try:  # missing playwright makes the `browser` fixture fail with the install hint
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Page, Response

EXAMPLE = Path(__file__).parents[3] / "examples" / "spec-example.json"
CARTPOLE = EXAMPLE.with_name("cartpole.json")
PASSWORD = "browser-pass-42"
TRAINING_URL = re.compile(r"/trainings/[0-9a-f-]{36}$")
Live = tuple[Gateway, EventFeed]
Shot = Callable[["Page", str], Path]
# Pixels of the "best" series (#2563eb) on the chart, give or take anti-aliasing.
BLUE_PIXELS_JS = """() => {
  const c = document.getElementById('chart');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - 37) < 30 && Math.abs(d[i + 1] - 99) < 30 && d[i + 2] > 200) { n++; }
  }
  return n;
}"""


def posted(path: str) -> Callable[[Response], bool]:
    """Matches the answer to a form POST to ``path``."""
    return lambda r: r.request.method == "POST" and r.url.endswith(path)


def sign_up(page: Page) -> str:
    """Create an account through the sign-up page, then log in; the username."""
    username = f"b{uuid.uuid4().hex[:10]}"
    page.goto("/signup")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/signup'] button[type=submit]")
    page.wait_for_url("**/login?signed_up=1")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/trainings")
    return username


def create_by_form(page: Page, **values: str) -> str:
    """Submit the new-training form with ``values`` changed; the new training's id."""
    page.goto("/trainings/new")
    for key, value in values.items():
        page.fill(f"#f-{key}", value)
    page.click("#config-form button[type=submit]")
    page.wait_for_url(TRAINING_URL)
    return page.url.rsplit("/", 1)[1]


def config_value(page: Page, key: str) -> Any:
    """The value the training page's configuration table shows for ``key``."""
    row = page.locator("table.config tr").filter(
        has=page.locator("th code", has_text=re.compile(f"^{key}$"))
    )
    return row.locator("td")


def test_sign_up(page: Page, shot: Shot) -> None:
    """A visitor is sent to log in, a short password is refused, sign-up lands on the list."""
    page.goto("/")
    page.wait_for_url("**/login")
    shot(page, "1-login")
    page.goto("/signup")
    shot(page, "2-signup")
    page.fill("#username", f"b{uuid.uuid4().hex[:10]}")
    page.fill("#password", "short")
    with page.expect_response(posted("/signup")) as answer:
        page.click("form[action='/signup'] button[type=submit]")
    assert answer.value.status == 422
    expect(page.locator("p.error[role=alert]")).to_have_text("must be at least 8 characters")
    shot(page, "3-signup-error")
    username = sign_up(page)
    expect(page.locator("h1")).to_have_text("My trainings")
    expect(page.locator(".empty")).to_contain_text("You have no trainings yet.")
    expect(page.locator("header nav button")).to_have_text(f"Log out {username}")
    shot(page, "4-empty-list")


def test_create_training_by_form(page: Page, shot: Shot) -> None:
    """The form starts at the CartPole template; a submitted form becomes a queued training."""
    sign_up(page)
    page.goto("/trainings/new")
    expect(page.locator("#f-gym_game_name")).to_have_value("CartPole-v1")
    expect(page.locator("#f-max_number_of_steps")).to_have_value("500")
    shot(page, "1-form")
    training_id = create_by_form(page, generations="25", seed="7")
    expect(page.locator("#status")).to_have_text("queued")
    page.click("details summary")
    expect(config_value(page, "generations")).to_have_text("25")
    expect(config_value(page, "seed")).to_have_text("7")
    shot(page, "2-training")
    page.goto("/trainings")
    row = page.locator("table.list tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("a")).to_have_attribute("href", f"/trainings/{training_id}")
    expect(row.locator(".status")).to_have_text("queued")
    shot(page, "3-list")


def test_create_training_by_upload(page: Page, shot: Shot) -> None:
    """Uploading examples/cartpole.json creates a training with exactly that config."""
    sign_up(page)
    page.goto("/trainings/new")
    page.set_input_files("#file", str(CARTPOLE))
    shot(page, "1-file-chosen")
    page.click("form[action='/trainings/upload'] button[type=submit]")
    page.wait_for_url(TRAINING_URL)
    expect(page.locator("h1")).to_contain_text("CartPole-v1")
    expect(page.locator("#status")).to_have_text("queued")
    page.click("details summary")
    shot(page, "2-training")
    training_id = page.url.rsplit("/", 1)[1]
    stored = page.request.get(f"/api/trainings/{training_id}").json()["config"]
    example = json.loads(CARTPOLE.read_text())
    assert {k: stored[k] for k in example} == example


def test_bad_value_rejected_next_to_its_field(page: Page, shot: Shot, tmp_path: Path) -> None:
    """A bad value is flagged at its field while typing and after submit; nothing is created."""
    sign_up(page)
    page.goto("/trainings/new")
    page.fill("#f-safeness", "2")
    field = page.locator(".field").filter(has=page.locator("#f-safeness"))
    expect(page.locator("#e-safeness")).to_contain_text("less than or equal to 1")
    expect(field).to_have_class(re.compile(r"\binvalid\b"))
    expect(page.locator("#e-generations")).to_have_text("")
    shot(page, "1-inline-error")
    with page.expect_response(posted("/trainings/new")) as answer:
        page.click("#config-form button[type=submit]")
    assert answer.value.status == 422  # refused by the server too, not only by the script
    expect(page.locator("#e-safeness")).to_contain_text("less than or equal to 1")
    expect(page.locator("#f-safeness")).to_have_value("2")
    expect(page.locator(".field.invalid")).to_have_count(1)
    shot(page, "2-submitted-error")
    bad = tmp_path / "bad-config.json"
    bad.write_text(json.dumps(json.loads(EXAMPLE.read_text()) | {"input_size": 0}))
    page.set_input_files("#file", str(bad))
    with page.expect_response(posted("/trainings/upload")) as answer:
        page.click("form[action='/trainings/upload'] button[type=submit]")
    assert answer.value.status == 422
    expect(page.locator("form[action='/trainings/upload'] .error")).to_contain_text(
        "input_size: input should be greater than or equal to 1"
    )
    shot(page, "3-upload-error")
    assert page.request.get("/api/trainings").json()["total"] == 0


def test_chart_grows_as_generations_arrive(page: Page, shot: Shot, live: Live) -> None:
    """Generation reports published to the broker appear live on the training page's chart."""
    feed = live[1]
    sign_up(page)
    training_id = create_by_form(page, generations="100")
    chart = page.locator("#chart")
    expect(page.locator("#chart-empty")).to_be_visible()
    expect(chart).to_be_hidden()
    shot(page, "1-no-generation")
    for gen, best in enumerate((10.0, 12.0)):
        feed.generation(training_id, gen, best=best, mean=best / 2)
    # Finished generations, counted as the list counts them (was the 0-based index).
    expect(page.locator("#s-generation")).to_have_text("2 of 100")
    expect(page.locator("#status")).to_have_text("running")
    expect(chart).to_be_visible()
    expect(page.locator("#chart-empty")).to_be_hidden()
    first = chart.evaluate("c => c.toDataURL()")
    assert page.evaluate(BLUE_PIXELS_JS) > 50
    shot(page, "2-two-generations")
    for gen, best in enumerate((15.0, 21.0, 26.0, 30.0), start=2):
        feed.generation(training_id, gen, best=best, mean=best / 2)
    expect(page.locator("#s-generation")).to_have_text("6 of 100")
    expect(page.locator("#s-best")).to_have_text("30.00")
    assert chart.evaluate("c => c.toDataURL()") != first
    shot(page, "3-six-generations")
    history = page.request.get(f"/api/trainings/{training_id}/generations").json()
    assert [r["best_fitness"] for r in history["items"]] == [10, 12, 15, 21, 26, 30]


def test_stop_training(page: Page, shot: Shot, live: Live) -> None:
    """Stop asks to stop; once confirmed, the page shows stopped, the network SVG and the genome."""
    feed = live[1]
    sign_up(page)
    training_id = create_by_form(page)
    stop = page.locator("#stop-form button")
    expect(stop).to_be_enabled()
    shot(page, "1-before-stop")
    page.once("dialog", lambda dialog: dialog.accept())  # Stop asks first (test_manage.py)
    stop.click()
    page.wait_for_url(f"**/trainings/{training_id}")
    expect(page.locator("#status")).to_have_text("stopping")
    expect(stop).to_be_disabled()
    shot(page, "2-stopping")
    feed.generation(training_id, 0, best=9.0, mean=4.0)
    feed.finished(training_id, 1, best=9.0, reason="stopped")
    expect(page.locator("#status")).to_have_text("stopped")
    expect(page.locator("#stop-form")).to_be_hidden()
    expect(page.locator("#download")).to_be_visible()
    network = page.locator("#network")
    expect(network).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.getElementById('network');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    shot(page, "3-stopped")
    with page.expect_download() as download:
        page.click("#download")
    genome = json.loads(Path(download.value.path()).read_text())
    assert genome["key"] == 7
    assert genome["enabled"] == [True] * 4
