"""Browser fixtures: Debian's headless Chromium driven by playwright, a live gateway.

Chromium (``/usr/bin/chromium``, or ``$EZSPARK_CHROMIUM``) and the playwright package come
from ``scripts/ci-browser-deps.sh``; if either is missing the tests FAIL with that hint.
Playwright never downloads a browser here: it launches the system Chromium by path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.browser.gateway_process import EventFeed, Gateway, gateway_with_feed

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("EZSPARK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
HINT = "install the browser test dependencies with `bash scripts/ci-browser-deps.sh`"


# Module scope: playwright keeps an event loop running on this thread while it is alive,
# which would break later tests that call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium; FAILS (never skips) when it or playwright is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium not found at {CHROMIUM}: {HINT}", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:
        pytest.fail(f"the playwright package is not installed ({missing}): {HINT}", pytrace=False)
    from playwright.sync_api import expect

    # The training page polls every 2 s and events cross RabbitMQ: allow for a busy machine.
    expect.set_options(timeout=15_000)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, EventFeed]]:
    """A gateway on a private RabbitMQ vhost, and a feed of evolver events into it."""
    with gateway_with_feed(tmp_path_factory.mktemp("gw-browser")) as live_pair:
        yield live_pair


@pytest.fixture
def page(browser: Browser, live: tuple[Gateway, EventFeed]) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the live gateway."""
    context = browser.new_context(
        base_url=live[0].url, viewport={"width": 1100, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Any:
    """``shot(page, step)`` saves a full-page screenshot as screenshots/<test>-<step>.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name.removeprefix("test_"))

    def take(tab: Page, step: str) -> Path:
        path = SCREENSHOTS / f"{test}-{step}.png"
        # A full page of ReDoc is thousands of pixels tall: on a slow, loaded machine it
        # takes longer than the context's 10 s for actions (seen at 10 s in a CI run).
        tab.screenshot(path=str(path), full_page=True, timeout=60_000)
        return path

    return take
