"""The training page's replay in real headless Chromium against a real gateway process:
the best genome (delivered through RabbitMQ as the evolver does) plays CartPole in an
animated GIF drawn by the gateway, with its return, seed and why they differ from the
best fitness; an environment the gateway cannot run says so instead of a broken image.
Screenshots go to screenshots/."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.e2e.browser.gateway_process import CHAMPION, EventFeed, Gateway
from tests.e2e.browser.test_pages import sign_up

try:  # missing playwright makes the `browser` fixture fail with the install hint
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Page

CARTPOLE = Path(__file__).parents[3] / "examples" / "cartpole.json"
Live = tuple[Gateway, EventFeed]
Shot = Callable[["Page", str], Path]
GIF_SHOWN_JS = """() => {
  const img = document.getElementById('replay');
  return img.complete && img.naturalWidth > 0 && img.currentSrc.includes('/replay.gif');
}"""


def create(page: Page, live: Live) -> str:
    """Create a CartPole-v1 training with the browser's session; its id."""
    resp = page.request.post(
        "/api/trainings",
        data=CARTPOLE.read_text(encoding="utf-8"),
        headers={"Content-Type": "application/json", "Origin": live[0].url},
    )
    assert resp.status == 201, resp.text()
    training_id: str = resp.json()["id"]
    return training_id


def wait_for_genome(page: Page, training_id: str) -> dict[str, Any]:
    """Poll the API until the gateway stored the best genome the feed sent."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        detail: dict[str, Any] = page.request.get(f"/api/trainings/{training_id}").json()
        if detail["has_best_genome"]:
            return detail
        time.sleep(0.2)
    raise AssertionError("the best genome never reached the gateway")


def test_training_page_shows_the_best_agent_playing(page: Page, shot: Shot, live: Live) -> None:
    """Before a best genome the replay says when it comes; after one, the page shows an
    animated GIF that really loaded (naturalWidth > 0), its genome, seed and return next
    to the best fitness, and the explanation of the difference."""
    sign_up(page)
    training_id = create(page, live)
    page.goto(f"/trainings/{training_id}")
    expect(page.locator("#replay-heading")).to_contain_text("Replay")
    expect(page.locator("#replay-empty")).to_be_visible()
    expect(page.locator("#replay-figure")).to_be_hidden()
    live[1].finished(training_id, 4, best=487.5)
    wait_for_genome(page, training_id)
    page.goto(f"/trainings/{training_id}")
    page.locator("#replay-section").scroll_into_view_if_needed()
    page.wait_for_function(GIF_SHOWN_JS, timeout=60_000)
    img = page.locator("#replay")
    expect(img).to_have_attribute("loading", "lazy")
    expect(img).to_have_attribute(
        "alt", "Animated replay: the best genome playing one game of CartPole-v1"
    )
    facts = page.request.get(f"/api/trainings/{training_id}/replay").json()
    assert facts["cached"] is True  # the page's request drew it; the image came from the cache
    expect(page.locator("#replay-caption")).to_contain_text(
        f"Genome #{CHAMPION.key} playing CartPole-v1, game seed 0: return "
        f"{facts['episode_return']:.2f} in {facts['steps']} steps"
    )
    expect(page.locator("#replay-return")).to_have_text(f"{facts['episode_return']:.2f}")
    expect(page.locator("#replay-fitness")).to_have_text("487.50")
    explain = page.locator("#replay-explain")
    expect(explain).to_contain_text("Why the two differ")
    expect(explain).to_contain_text("mean return over the 5 games")
    expect(explain).to_contain_text("seed 0, that the genome never trained on")
    expect(explain).to_contain_text(f"ezspark best {training_id} -o best.json")
    expect(page.locator("#replay-status")).to_have_text("")
    width = page.evaluate("() => document.getElementById('replay').naturalWidth")
    assert width == 300  # 600-pixel frames at half scale
    full = shot(page, "1-page")
    section = full.with_name(full.name.replace("1-page", "2-section"))
    page.locator("#replay-section").screenshot(path=str(section))


def test_environment_the_gateway_cannot_run_says_why(page: Page, shot: Shot, live: Live) -> None:
    """A run whose environment the gateway cannot build shows "replay unavailable: <why>"
    and no image at all (not a broken one)."""
    sign_up(page)
    training_id = create(page, live)
    live[1].finished(training_id, 4, best=99.0)
    detail = wait_for_genome(page, training_id)
    # A plug-in environment only the user's evaluators have: the gateway never imports it.
    config = {**detail["config"], "gym_game_name": "my_envs:Hidden-v0"}
    with sqlite3.connect(live[0].log.parent / "gateway.db") as db:
        db.execute(
            "UPDATE trainings SET config = ? WHERE id = ?", (json.dumps(config), training_id)
        )
    page.goto(f"/trainings/{training_id}")
    page.locator("#replay-section").scroll_into_view_if_needed()
    status = page.locator("#replay-status")
    expect(status).to_contain_text("replay unavailable: 'my_envs:Hidden-v0' names module 'my_envs'")
    expect(status).to_contain_text("ezspark play best.json --episodes 1 --record replay.gif")
    expect(page.locator("#replay-figure")).to_be_hidden()
    expect(page.locator("#replay-facts")).to_be_hidden()
    expect(page.locator("#replay-explain")).to_contain_text("To draw the same game yourself")
    assert page.evaluate("() => document.getElementById('replay').getAttribute('src')") is None
    shot(page, "1-unavailable")
