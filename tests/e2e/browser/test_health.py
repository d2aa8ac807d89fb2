"""Run health and the live best network in real Chromium (issue 15, items 4 and 8).

Evolver events (progress, reports with a champion, waiting, finished, failed) go through
RabbitMQ to a real gateway process; the page must show the phase, generations done of the
total, tasks done of total, evaluators, ETA, the age of the last update, created/elapsed/
finished times and the finish reason, say "stalled" once the evolver is silent past the
rule (the gateway's ``stall_min_s``, 15 s here), and draw the best network with named
inputs and outputs and a legend while the run goes on.  Screenshots go to screenshots/.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.browser.gateway_process import EventFeed, Gateway, api, gateway_with_feed
from tests.e2e.browser.test_pages import EXAMPLE, sign_up

try:  # missing playwright makes the `browser` fixture fail with the install hint
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Page

Live = tuple[Gateway, EventFeed]
Shot = Callable[["Page", str], Path]
# The gateway's stall_min_s here (default 60 s): the generations below are much shorter,
# and the checks of the other runs' states all come within seconds of their last event.
STALL_S = 15.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The browser tests' live gateway, flagging a run stalled after ``STALL_S``."""
    with gateway_with_feed(tmp_path_factory.mktemp("gw-health"), stall_min_s=STALL_S) as pair:
        yield pair


def _create(page: Page, live: Live) -> str:
    """Create a 100-generation training through the API (the form is tested elsewhere)
    with the browser's session, and open its page."""
    config = json.loads(EXAMPLE.read_text()) | {"generations": 100}
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "ezspark_session")
    tid = str(api(live[0].url, "POST", "/api/trainings", config, token)["id"])
    page.goto(f"/trainings/{tid}")
    return tid


def _network_drawn(page: Page) -> None:
    page.wait_for_function(
        "() => { const i = document.getElementById('network');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )


def test_health_live_and_network_during_the_run(page: Page, shot: Shot, live: Live) -> None:
    """Progress, reports, waiting and the end show up in the health panel; the network
    with CartPole's names and a legend appears while running; a silent run turns stalled."""
    feed = live[1]
    # Counts training.js's "a best genome arrived" announcements (replay.js listens).
    page.add_init_script(
        "window.bestEvents = 0;"
        " document.addEventListener('ezspark:best', () => { window.bestEvents += 1; });"
    )
    sign_up(page)
    # A run that goes silent after two generations: checked for "stalled" at the end.
    silent = _create(page, live)
    feed.generation(silent, 0, best=5.0, mean=2.0)
    feed.generation(silent, 1, best=6.0, mean=3.0)
    expect(page.locator("#s-generation")).to_have_text("2 of 100")
    silent_since = time.monotonic()

    tid = _create(page, live)
    expect(page.locator("#h-state")).to_have_text("queued")
    expect(page.locator("#h-generations")).to_have_text("0 done of 100")
    expect(page.locator("#h-age")).to_have_text("none yet")
    expect(page.locator("#network-empty")).to_contain_text("as soon as the first generation")
    shot(page, "1-queued")

    feed.progress(tid, 0, done=3, total=8, evaluators=2)
    expect(page.locator("#status")).to_have_text("running")
    expect(page.locator("#h-running")).to_have_text("generation 1: 3 of 8 tasks")
    expect(page.locator("#h-tasks")).to_be_visible()
    expect(page.locator("#h-phase")).to_contain_text("local (alone phase: generations 1–60)")
    expect(page.locator("#h-evaluators")).to_have_text(
        re.compile(r"^2 answering, 0 serving CartPole-v\d$")
    )
    expect(page.locator("#h-age")).to_have_text(re.compile(r"^\d+ s ago$"))
    shot(page, "2-progress")

    for gen, best in enumerate((10.0, 12.0, 15.0)):
        feed.champion(tid, gen, best)
        time.sleep(1.0)  # a measurable generation time, for the ETA
    expect(page.locator("#h-generations")).to_have_text("3 done of 100")
    expect(page.locator("#s-generation")).to_have_text("3 of 100")
    expect(page.locator("#h-running")).to_have_text(re.compile(r"^generation 4"))
    expect(page.locator("#h-eta")).to_have_text(re.compile(r"^\d+ (s|min \d+ s)"))
    # The best network is there during the run, named, with its legend.
    expect(page.locator("#network-figure")).to_be_visible()
    _network_drawn(page)
    # ... announced to the replay section, which no longer says it waits for one.
    assert page.evaluate("() => window.bestEvents") >= 1
    expect(page.locator("#replay-empty")).to_be_hidden()
    svg = page.request.get(f"/api/trainings/{tid}/best.svg").text()
    for word in ("cart position", "pole angular velocity", "push left", "push right"):
        assert word in svg
    assert "positive weight" in svg
    assert "negative weight" in svg
    assert page.request.get(f"/api/trainings/{tid}/best").json()["key"] == 7
    page.locator("#network-figure").scroll_into_view_if_needed()
    shot(page, "3-running-with-network")

    feed.waiting(tid, "no evaluator serves CartPole-v0")
    expect(page.locator("#h-state")).to_have_text("waiting")
    expect(page.locator("#state-tag")).to_have_text("waiting")
    expect(page.locator("#s-eps-note")).to_have_text("(last measured)")
    shot(page, "4-waiting")

    feed.finished(tid, 3, best=15.0, reason="fitness_threshold")
    expect(page.locator("#status")).to_have_text("finished")
    expect(page.locator("#h-state")).to_have_text("finished")
    expect(page.locator("#h-reason")).to_contain_text("a genome reached the fitness threshold")
    expect(page.locator("#h-finished")).not_to_have_text("–")
    expect(page.locator("#h-elapsed")).to_have_text(re.compile(r"^\d+ s$"))
    expect(page.locator("#h-created")).not_to_be_empty()
    shot(page, "5-finished")

    failed = _create(page, live)
    feed.failed(failed, "ValueError: environment CartPole-v0 crashed")
    expect(page.locator("#h-reason")).to_have_text(
        "failed: ValueError: environment CartPole-v0 crashed"
    )
    expect(page.locator("#network-empty")).to_have_text(
        "This training ended without a best genome."
    )
    expect(page.get_by_text("once the training has finished")).to_have_count(0)
    shot(page, "6-failed")

    page.goto(f"/trainings/{silent}")
    left = STALL_S + 2 - (time.monotonic() - silent_since)
    expect(page.locator("#h-state")).to_have_text("stalled", timeout=max(left, 0) * 1000 + 15_000)
    expect(page.locator("#h-stalled")).to_be_visible()
    expect(page.locator("#h-stalled")).to_contain_text("nothing has come from the evolver")
    expect(page.locator("#state-tag")).to_have_text("stalled")
    expect(page.locator("#s-eps-note")).to_have_text("(last measured)")
    expect(page.locator("#h-eta")).to_have_text("–")
    shot(page, "7-stalled")
