"""The new-training form in real headless Chromium against a real gateway (issue 15, items
1-3 and 9): errors you see, environments and templates, the no-stopping-point question, the
form without JavaScript, and /docs and /redoc with no third-party host.  Every step is saved
as screenshots/<test>-<step>.png.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from tests.e2e.browser.gateway_process import EventFeed, Gateway
from tests.e2e.browser.test_pages import TRAINING_URL, config_value, posted, sign_up

try:  # missing playwright makes the `browser` fixture fail with the install hint
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page, Route

EXAMPLES = Path(__file__).parents[3] / "examples"
Live = tuple[Gateway, EventFeed]
Shot = Callable[["Page", str], Path]
FOCUSED_ID = "() => document.activeElement && document.activeElement.id"


@contextmanager
def tab(browser: Browser, live: Live, **options: Any) -> Iterator[Page]:
    """A fresh context and page on the live gateway with ``options`` (e.g. no scripts)."""
    options = {"viewport": {"width": 1100, "height": 900}} | options
    context = browser.new_context(base_url=live[0].url, **options)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def in_view(page: Page, selector: str) -> bool:
    """Whether the element is inside the viewport as the page stands (no scrolling)."""
    box = page.locator(selector).bounding_box()
    height = page.evaluate("() => window.innerHeight")
    assert box is not None, selector
    return bool(box["y"] >= 0 and box["y"] + box["height"] <= height)


def created_config(page: Page) -> dict[str, Any]:
    """The stored config of the training whose page is open."""
    training_id = page.url.rsplit("/", 1)[1]
    config: dict[str, Any] = page.request.get(f"/api/trainings/{training_id}").json()["config"]
    return config


def test_errors_you_see_with_and_without_javascript(
    browser: Browser, live: Live, shot: Shot
) -> None:
    """crossover_rate 1.5: the page comes back with a focused summary at the top linking to
    the field, which is aria-invalid; the same without JavaScript."""
    for js in (True, False):
        with tab(browser, live, java_script_enabled=js) as page:
            sign_up(page)
            page.goto("/trainings/new")
            page.fill("#f-crossover_rate", "1.5")
            with page.expect_response(posted("/trainings/new")) as answer:
                page.click("#config-form button[type=submit]")
            assert answer.value.status == 422
            summary = page.locator("#error-summary")
            expect(summary).to_be_visible()
            expect(summary).to_have_attribute("role", "alert")
            expect(summary).to_contain_text("crossover_rate: input should be less than or equal")
            page.wait_for_function(f"() => ({FOCUSED_ID})() === 'error-summary'")
            assert in_view(page, "#error-summary")
            expect(page.locator("#f-crossover_rate")).to_have_attribute("aria-invalid", "true")
            expect(page.locator("[aria-invalid=true]")).to_have_count(1)
            label = "js" if js else "no-js"
            shot(page, f"1-{label}-summary-focused")
            summary.locator("a[href='#f-crossover_rate']").click()
            page.wait_for_function(f"() => ({FOCUSED_ID})() === 'f-crossover_rate'")
            assert in_view(page, "#f-crossover_rate")
            assert in_view(page, "label[for=f-crossover_rate]")  # its name shows too
            shot(page, f"2-{label}-field-reached")
            assert page.request.get("/api/trainings").json()["total"] == 0


def test_upload_error_beside_the_upload(page: Page, shot: Shot, tmp_path: Path) -> None:
    """A bad file: its error sits beside the upload near the top, the summary links there,
    and the misspelled key suggests the real ones."""
    sign_up(page)
    page.goto("/trainings/new")
    bad = tmp_path / "typo.json"
    cartpole = json.loads((EXAMPLES / "cartpole.json").read_text())
    bad.write_text(json.dumps(cartpole | {"populaton_size": 150}))
    page.set_input_files("#file", str(bad))
    with page.expect_response(posted("/trainings/upload")) as answer:
        page.click("form[action='/trainings/upload'] button[type=submit]")
    assert answer.value.status == 422
    beside = page.locator("#e-file")
    expect(beside).to_contain_text(
        "populaton_size: unknown key; did you mean 'max_population' or 'initial_population'?"
    )
    assert in_view(page, "#e-file")
    expect(page.locator("#file")).to_have_attribute("aria-invalid", "true")
    link = page.locator("#error-summary a[href='#file']")
    expect(link).to_contain_text("populaton_size")
    shot(page, "1-upload-error")
    link.click()
    page.wait_for_function(f"() => ({FOCUSED_ID})() === 'file'")


def test_templates_and_environment_list_fill_the_form(page: Page, shot: Shot) -> None:
    """The form starts at CartPole with a threshold; Acrobot's template swaps the values;
    picking an environment in the custom template fills in its sizes, and a wrong size is
    flagged as you type."""
    sign_up(page)
    page.goto("/trainings/new")
    expect(page.locator("#f-gym_game_name")).to_have_value("CartPole-v1")
    expect(page.locator("#f-fitness_threshold")).to_have_value("475.0")
    expect(page.locator("#f-generations")).to_have_value("100")
    expect(page.locator("#f-keep_parents")).to_have_js_property("tagName", "SELECT")
    shot(page, "1-cartpole-default")
    page.click(".presets a:has-text('Acrobot')")
    expect(page.locator("#f-gym_game_name")).to_have_value("Acrobot-v1")
    expect(page.locator("#f-fitness_threshold")).to_have_value("-100.0")
    page.click(".presets a:has-text('Your own environment')")
    expect(page.locator("#f-gym_game_name")).to_have_value("")
    expect(page.locator("#f-input_size")).to_have_value("")
    options = page.locator("#environments option")
    assert {"CartPole-v1", "Acrobot-v1"} <= set(options.evaluate_all("os => os.map(o => o.value)"))
    page.fill("#f-gym_game_name", "Acrobot-v1")
    expect(page.locator("#f-input_size")).to_have_value("6")
    expect(page.locator("#f-output_size")).to_have_value("3")
    shot(page, "2-custom-acrobot-sizes-filled")
    page.fill("#f-input_size", "7")  # the inline check knows the environment's sizes too
    expect(page.locator("#e-input_size")).to_contain_text("'Acrobot-v1' observations have 6")
    expect(page.locator("#f-input_size")).to_have_attribute("aria-invalid", "true")
    shot(page, "3-inline-size-error")
    page.fill("#f-input_size", "6")
    expect(page.locator("#e-input_size")).to_have_text("")
    expect(page.locator("#f-input_size")).not_to_have_attribute("aria-invalid", "true")
    page.select_option("#f-keep_parents", "0")
    page.click("#config-form button[type=submit]")
    page.wait_for_url(TRAINING_URL)
    config = created_config(page)
    assert (config["gym_game_name"], config["input_size"], config["output_size"]) == (
        "Acrobot-v1",
        6,
        3,
    )
    assert config["keep_parents"] == 0


def test_no_stopping_point_asks_first(browser: Browser, live: Live, shot: Shot) -> None:
    """20,000 generations and no threshold: with scripts a confirm() (cancel sends nothing),
    without scripts a warning page whose "create anyway" creates it."""
    with tab(browser, live) as page:
        sign_up(page)
        page.goto("/trainings/new")
        page.fill("#f-generations", "20000")
        page.fill("#f-fitness_threshold", "")
        seen: list[str] = []

        def dismiss(dialog: Dialog) -> None:
            seen.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", dismiss)
        page.click("#config-form button[type=submit]")
        page.wait_for_timeout(500)
        assert seen
        assert "no stopping point: 20000 generations" in seen[0]
        assert page.url.endswith("/trainings/new")
        assert page.request.get("/api/trainings").json()["total"] == 0
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#config-form button[type=submit]")
        page.wait_for_url(TRAINING_URL)
        assert created_config(page)["generations"] == 20000
    with tab(browser, live, java_script_enabled=False) as page:
        sign_up(page)
        page.goto("/trainings/new")
        page.fill("#f-generations", "20000")
        page.fill("#f-fitness_threshold", "")
        page.click("#config-form button[type=submit]")
        warning = page.locator("#unbounded-warning")
        expect(warning).to_contain_text("20,000 generations and no fitness_threshold")
        page.wait_for_function(f"() => ({FOCUSED_ID})() === 'unbounded-warning'")
        assert page.request.get("/api/trainings").json()["total"] == 0
        shot(page, "1-no-js-warning")
        page.check("#confirm-unbounded")
        warning.locator("button[type=submit]").click()
        page.wait_for_url(TRAINING_URL)
        page.click("details:has(table.config) summary")
        expect(config_value(page, "generations")).to_have_text("20000")
        shot(page, "2-no-js-created")


def test_form_and_list_work_without_javascript(browser: Browser, live: Live, shot: Shot) -> None:
    """Scripts off: pick a template, name an environment with blank sizes (filled in by the
    server), create, and find the run in the list."""
    with tab(browser, live, java_script_enabled=False) as page:
        sign_up(page)
        page.goto("/trainings/new?template=custom")
        page.fill("#f-gym_game_name", "CartPole-v1")
        expect(page.locator("#f-input_size")).to_have_value("")  # no script fills it
        shot(page, "1-no-js-form")
        page.click("#config-form button[type=submit]")
        page.wait_for_url(TRAINING_URL)
        config = created_config(page)
        assert (config["input_size"], config["output_size"]) == (4, 2)
        training_id = page.url.rsplit("/", 1)[1]
        page.goto("/trainings")
        expect(page.locator(f"a[href='/trainings/{training_id}']").first).to_be_visible()
        shot(page, "2-no-js-list")


def _third_party_guard(page: Page, live: Live) -> list[str]:
    """Abort and record every request to a host other than the gateway's."""
    own = urlparse(live[0].url).netloc
    blocked: list[str] = []

    def route(r: Route) -> None:
        if urlparse(r.request.url).netloc in (own, ""):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route(re.compile(r"^https?://"), route)
    return blocked


def test_docs_and_redoc_without_internet(page: Page, shot: Shot, live: Live) -> None:
    """/docs shows the operations and Authorize (bearer), /redoc the reference, with every
    other host blocked, and the CSP refusing no script or style of theirs."""
    blocked = _third_party_guard(page, live)
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto("/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    authorize = page.locator("button.authorize")
    expect(authorize).to_be_visible()
    shot(page, "1-swagger")
    authorize.click()
    dialog = page.locator(".dialog-ux .modal-ux")
    expect(dialog).to_contain_text("bearerAuth")
    expect(dialog).to_contain_text("Bearer")
    shot(page, "2-authorize")
    page.goto("/redoc")
    expect(page.locator("h1").first).to_contain_text("EzSpark gateway")
    expect(page.get_by_text("Queue a training from a JSON config").first).to_be_attached()
    shot(page, "3-redoc")
    assert blocked == []
    # ReDoc's "API docs by Redocly" footer points an <img> at its maker's host: the CSP
    # stops it before any request (blocked stays empty). Nothing else may be refused.
    assert [v for v in violations if "cdn.redoc.ly/redoc/logo-mini.svg" not in v] == []


def test_form_at_375px_with_and_without_javascript(
    browser: Browser, live: Live, shot: Shot
) -> None:
    """At 375 px the form, its error summary and the upload fit the screen (no sideways
    scroll) with scripts on and off, and inputs are not narrower than their labels need."""
    for js in (True, False):
        options = {"viewport": {"width": 375, "height": 800}, "java_script_enabled": js}
        with tab(browser, live, **options) as phone:
            sign_up(phone)
            phone.goto("/trainings/new")
            phone.fill("#f-crossover_rate", "1.5")
            phone.click("#config-form button[type=submit]")
            expect(phone.locator("#error-summary")).to_be_visible()
            widths = phone.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert widths[0] <= widths[1] == 375, widths
            for selector in ("#error-summary", "#file", "#f-crossover_rate"):
                box = phone.locator(selector).bounding_box()
                assert box is not None, selector
                assert box["x"] >= 0, selector
                assert box["x"] + box["width"] <= 375, (selector, box)
            field = phone.locator("#f-crossover_rate").bounding_box()
            assert field is not None
            assert field["width"] >= 120, field
            shot(phone, f"{'js' if js else 'no-js'}-phone")
