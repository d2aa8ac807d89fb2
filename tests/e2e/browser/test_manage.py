"""Managing runs in real headless Chromium against a real gateway (issue 15, item 7).

Name, tag and annotate a run; clone a failed run into the form and resubmit it; archive and
delete with a confirmation; filter and sort the list; create and revoke API tokens; stop
with a confirmation; the list at 375 px and with JavaScript disabled.  Every step is saved
as screenshots/<test>-<step>.png.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.e2e.browser.gateway_process import EventFeed, Gateway
from tests.e2e.browser.test_pages import TRAINING_URL, config_value, sign_up

try:  # missing playwright makes the `browser` fixture fail with the install hint
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page

EXAMPLE = Path(__file__).parents[3] / "examples" / "cartpole.json"
Live = tuple[Gateway, EventFeed]
Shot = Callable[["Page", str], Path]


def create(page: Page, **changes: Any) -> str:
    """Create a training through the API with the page's session; its id."""
    config = json.loads(EXAMPLE.read_text()) | changes
    origin = re.match(r"https?://[^/]+", page.url)
    assert origin, page.url
    resp = page.request.post(
        "/api/trainings",
        data=json.dumps(config),
        headers={"Content-Type": "application/json", "Origin": origin.group(0)},
    )
    assert resp.status == 201, resp.text()
    return str(resp.json()["id"])


def api(page: Page, method: str, path: str, body: Any = None) -> Any:
    """One same-origin API call with the page's session cookie; the response."""
    origin = re.match(r"https?://[^/]+", page.url)
    assert origin, page.url
    headers = {"Content-Type": "application/json", "Origin": origin.group(0)}
    return page.request.fetch(
        path, method=method, headers=headers, data=None if body is None else json.dumps(body)
    )


def answer(page: Page, accept: bool, seen: list[str]) -> None:
    """Answer the next dialog (accept or dismiss), recording its message."""

    def handle(dialog: Dialog) -> None:
        seen.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.once("dialog", handle)


def wait_status(page: Page, tid: str, status: str) -> None:
    """Wait until the API reports ``status`` (events cross RabbitMQ asynchronously)."""
    for _ in range(100):
        if api(page, "GET", f"/api/trainings/{tid}").json()["status"] == status:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"training {tid} never became {status}")


def row_names(page: Page) -> list[str]:
    """The names the list shows, in order."""
    return page.locator("#trainings-list td.name-cell > a").all_inner_texts()


@contextmanager
def tab(browser: Browser, live: Live, **options: Any) -> Iterator[Page]:
    """A fresh context and page on the live gateway with ``options`` (viewport, scripts)."""
    context = browser.new_context(base_url=live[0].url, **options)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_name_tags_and_notes(page: Page, shot: Shot) -> None:
    """Name, tags and notes are edited on the training page and shown there and in the list."""
    sign_up(page)
    tid = create(page)
    page.goto(f"/trainings/{tid}")
    page.click("#meta details summary")
    page.fill("#l-name", "Baseline run")
    page.fill("#l-tags", "CartPole, seed-7 baseline")
    page.fill("#l-notes", "spec rates\nsecond line")
    shot(page, "1-editing")
    page.click("#labels-form button[type=submit]")
    page.wait_for_url(f"**/trainings/{tid}")
    expect(page.locator("#run-name")).to_have_text("Baseline run")
    expect(page.locator("#run-tags .tag")).to_have_text(["cartpole", "seed-7", "baseline"])
    expect(page.locator("#run-notes")).to_have_text("spec rates\nsecond line")
    shot(page, "2-saved")
    page.click("#meta details summary")
    page.fill("#l-tags", "ok, not/ok")
    page.click("#labels-form button[type=submit]")
    expect(page.locator("#le-tags")).to_contain_text("'not/ok' is not a tag")
    expect(page.locator("#l-tags")).to_have_attribute("aria-invalid", "true")
    shot(page, "3-bad-tag")
    page.goto("/trainings")
    expect(page.locator("#trainings-list td.name-cell > a")).to_have_text("Baseline run")
    page.click("#trainings-list a.tag:text('seed-7')")
    page.wait_for_url("**/trainings?tag=seed-7")
    expect(page.locator("#trainings-list tbody tr")).to_have_count(1)
    shot(page, "4-list")


def test_clone_a_failed_run(page: Page, shot: Shot, live: Live) -> None:
    """A failed run's Clone opens the form with its config; the edited copy is a new run."""
    sign_up(page)
    tid = create(page, generations=123, seed=5)
    live[1].failed(tid, "evaluator crashed")
    wait_status(page, tid, "failed")
    page.goto(f"/trainings/{tid}")
    expect(page.locator("#status")).to_have_text("failed")
    expect(page.locator("#no-genome")).to_have_text("This training ended without a best genome.")
    shot(page, "1-failed")
    page.click("#clone")
    page.wait_for_url(f"**/trainings/new?from={tid}")
    expect(page.locator("#f-generations")).to_have_value("123")
    expect(page.locator("#f-seed")).to_have_value("5")
    expect(page.locator("#f-gym_game_name")).to_have_value("CartPole-v1")
    page.fill("#f-generations", "124")
    shot(page, "2-cloned-form")
    page.click("#config-form button[type=submit]")
    page.wait_for_url(TRAINING_URL)
    assert page.url.rsplit("/", 1)[1] != tid
    page.click("details:has(table.config) summary")
    expect(config_value(page, "generations")).to_have_text("124")
    expect(config_value(page, "seed")).to_have_text("5")
    shot(page, "3-resubmitted")


def test_archive_and_delete_with_confirmation(page: Page, shot: Shot, live: Live) -> None:
    """Archive hides an ended run (a filter shows it); Delete asks, and only yes deletes."""
    sign_up(page)
    tid = create(page)
    api(page, "PATCH", f"/api/trainings/{tid}", {"name": "old run"})
    live[1].generation(tid, 0, best=20.0, mean=10.0)
    live[1].finished(tid, 1, best=20.0)
    wait_status(page, tid, "finished")
    page.goto(f"/trainings/{tid}")
    page.click("#archive-form button")
    page.wait_for_url(f"**/trainings/{tid}")
    expect(page.locator("#archive-form button")).to_have_text("Unarchive")
    page.goto("/trainings")
    expect(page.locator("#trainings-list")).to_have_count(0)
    page.select_option("select[name=archived]", "only")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/trainings?archived=only")
    expect(page.locator("#trainings-list .badge")).to_have_text("archived")
    shot(page, "1-archived-filter")
    page.goto(f"/trainings/{tid}")
    seen: list[str] = []
    answer(page, False, seen)
    page.click("#delete-form button")
    page.wait_for_timeout(300)
    assert seen == ["Delete this training with its history and best genome? This cannot be undone."]
    assert page.url.endswith(f"/trainings/{tid}")
    assert api(page, "GET", f"/api/trainings/{tid}").status == 200
    shot(page, "2-delete-dismissed")
    answer(page, True, seen)
    page.click("#delete-form button")
    page.wait_for_url("**/trainings?notice=deleted")
    expect(page.locator(".notice")).to_have_text("The training was deleted, with its history.")
    assert api(page, "GET", f"/api/trainings/{tid}").status == 404
    shot(page, "3-deleted")


def test_filter_and_sort_the_list(page: Page, shot: Shot, live: Live) -> None:
    """The filter form narrows the list by status, tag and search, and sorts by fitness."""
    sign_up(page)
    for name, tags, best in (
        ("alpha", ["x"], 30.0),
        ("beta", ["x", "y"], 90.0),
        ("gamma", ["y"], 60.0),
    ):
        tid = create(page)
        api(page, "PATCH", f"/api/trainings/{tid}", {"name": name, "tags": tags})
        live[1].generation(tid, 0, best=best, mean=best / 2)
        live[1].finished(tid, 1, best=best)
        wait_status(page, tid, "finished")
    running = create(page)
    api(page, "PATCH", f"/api/trainings/{running}", {"name": "delta"})
    page.goto("/trainings")
    expect(page.locator("#list-count")).to_have_text("4 trainings.")
    assert row_names(page) == ["delta", "gamma", "beta", "alpha"]
    page.select_option("select[name=sort]", "best")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/trainings?sort=best")
    assert row_names(page) == ["beta", "gamma", "alpha", "delta"]
    page.select_option("select[name=tag]", "x")
    page.select_option("select[name=status]", "finished")
    page.click("#filters button[type=submit]")
    expect(page.locator("#list-count")).to_have_text("2 trainings match.")
    assert row_names(page) == ["beta", "alpha"]
    shot(page, "1-tag-and-status")
    page.goto("/trainings")
    page.fill("input[name=q]", "AMM")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/trainings?q=AMM")
    assert row_names(page) == ["gamma"]
    page.fill("input[name=q]", "nothing-like-it")
    page.press("input[name=q]", "Enter")
    expect(page.locator("#no-match")).to_contain_text("No training matches these filters.")
    shot(page, "2-no-match")


def test_api_tokens_page(page: Page, shot: Shot) -> None:
    """A new token is shown once with a Copy button and works; revoking asks, then it fails."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_up(page)
    page.goto("/account/tokens")
    expect(page.locator("#no-tokens")).to_be_visible()
    page.fill("#t-name", "laptop")
    page.select_option("#t-days", "30")
    page.click("#token-form button[type=submit]")
    secret = page.locator("#new-token").input_value()
    assert len(secret) > 20
    copy = page.locator("button[data-copy=new-token]")
    expect(copy).to_be_visible()
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shot(page, "1-created")
    me = page.request.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status == 200
    page.goto("/account/tokens")
    expect(page.locator("#token-created")).to_have_count(0)
    assert secret not in page.content()
    row = page.locator("#tokens-list tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").first).to_have_text("laptop")
    expect(row.locator("code")).to_have_text(f"{secret[:10]}…")
    shot(page, "2-listed")
    seen: list[str] = []
    answer(page, True, seen)
    row.locator("button").click()
    page.wait_for_url("**/account/tokens?revoked=1")
    assert [m.split("?")[0] for m in seen] == ["Revoke the token “laptop”"]
    expect(page.locator("#no-tokens")).to_be_visible()
    shot(page, "3-revoked")
    me = page.request.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status == 401


def test_stop_asks_for_confirmation(page: Page, shot: Shot) -> None:
    """Stop asks first: dismissing keeps the run going, accepting asks the evolver to stop."""
    sign_up(page)
    tid = create(page)
    page.goto(f"/trainings/{tid}")
    seen: list[str] = []
    answer(page, False, seen)
    page.click("#stop-form button")
    page.wait_for_timeout(300)
    assert seen == ["Stop this training? It cannot be resumed (clone it to start it again)."]
    assert api(page, "GET", f"/api/trainings/{tid}").json()["status"] == "queued"
    answer(page, True, seen)
    page.click("#stop-form button")
    expect(page.locator("#status")).to_have_text("stopping")
    shot(page, "1-stopping")


def test_list_at_375px_with_and_without_javascript(
    browser: Browser, live: Live, shot: Shot
) -> None:
    """At 375 px the list is cards with no horizontal overflow, with scripts on and off."""
    with tab(browser, live, viewport={"width": 1100, "height": 900}) as setup:
        username = sign_up(setup)
        for i in range(3):
            tid = create(setup)
            name = f"A rather long run name number {i} to wrap on a phone screen"
            api(
                setup, "PATCH", f"/api/trainings/{tid}", {"name": name, "tags": ["phone", "t" * 30]}
            )
        cookies = setup.context.cookies()
    for js in (True, False):
        options = {"viewport": {"width": 375, "height": 800}, "java_script_enabled": js}
        with tab(browser, live, **options) as phone:
            phone.context.add_cookies(cookies)
            phone.goto("/trainings")
            expect(phone.locator("#trainings-list tbody tr")).to_have_count(3)
            widths = phone.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert widths[0] <= widths[1] == 375, widths
            head = phone.locator("#trainings-list thead").bounding_box()
            card = phone.locator("#trainings-list tbody tr").first.bounding_box()
            assert head is not None
            assert card is not None
            assert head["width"] <= 1  # the header row is for screen readers only
            assert 0 <= card["x"] < card["x"] + card["width"] <= 375
            expect(phone.locator("header nav button")).to_have_text(f"Log out {username}")
            shot(phone, f"{'1-js' if js else '2-no-js'}-375px")


def test_list_and_actions_without_javascript(browser: Browser, live: Live, shot: Shot) -> None:
    """With scripts off: filter the list, label a run, stop and delete via confirmation pages."""
    with tab(browser, live, java_script_enabled=False) as page:
        sign_up(page)
        keep, gone = create(page), create(page)
        page.goto(f"/trainings/{keep}")
        page.click("#meta details summary")  # <details> opens without scripts
        page.fill("#l-name", "kept")
        page.fill("#l-tags", "nojs")
        page.click("#labels-form button[type=submit]")
        page.wait_for_url(f"**/trainings/{keep}")
        expect(page.locator("#run-name")).to_have_text("kept")
        page.goto(f"/trainings/{gone}")
        page.click("#stop-form button")
        page.wait_for_url(f"**/trainings/{gone}/stop?")
        expect(page.locator("h1")).to_have_text("Stop this training?")
        shot(page, "1-stop-confirm-page")
        page.click("main form button[type=submit]")
        page.wait_for_url(f"**/trainings/{gone}")
        expect(page.locator("#status")).to_have_text("stopping")
        live[1].finished(gone, 0, best=1.0, reason="stopped")
        wait_status(page, gone, "stopped")
        page.reload()
        page.click("#delete-form button")
        expect(page.locator("h1")).to_have_text("Delete this training?")
        shot(page, "2-delete-confirm-page")
        page.click("main form button[type=submit]")
        page.wait_for_url("**/trainings?notice=deleted")
        assert row_names(page) == ["kept"]
        page.select_option("select[name=tag]", "nojs")
        page.click("#filters button[type=submit]")
        page.wait_for_url("**/trainings?tag=nojs")
        assert row_names(page) == ["kept"]
        shot(page, "3-filtered-list")
