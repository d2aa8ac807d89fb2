"""The training page's charts and the compare page in real headless Chromium.

Generation reports go through RabbitMQ into a real gateway (EventFeed), exactly as the
evolver sends them.  What each canvas shows is read from ``EzCharts.model()`` (ticks,
titles, series, threshold) and checked against the pixels where it matters.  Every step
is saved under screenshots/.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ezspark_common.wire.messages import GenerationFinished
from tests.e2e.browser.gateway_process import EventFeed, Gateway
from tests.e2e.browser.test_pages import sign_up

try:  # missing playwright makes the `browser` fixture fail with the install hint
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

EXAMPLE = Path(__file__).parents[3] / "examples" / "spec-example.json"
Live = tuple[Gateway, EventFeed]
Shot = Callable[["Page", str], Path]
BANDS = ["#2563eb", "#dc6803", "#039855"]  # the first species bands, largest first
THRESHOLD_GREEN = "#067647"
SIZES = [[30, 20, 10], [28, 18, 9, 5], [25, 20, 10, 5]]  # species sizes per generation


def create(page: Page, **changes: Any) -> str:
    """Create a training through the API with the page's session cookie; its id."""
    config = json.loads(EXAMPLE.read_text()) | {"generations": 100} | changes
    origin = re.match(r"https?://[^/]+", page.url)
    assert origin is not None
    resp = page.request.post(
        "/api/trainings",
        data=json.dumps(config),
        headers={"Origin": origin.group(0), "Content-Type": "application/json"},
    )
    assert resp.status == 201, resp.text()
    training_id: str = resp.json()["id"]
    return training_id


def full_report(training_id: str, gen: int) -> GenerationFinished:
    """A report as current evolvers send it: species sizes and genome sizes included."""
    sizes = SIZES[gen % len(SIZES)]
    return GenerationFinished(
        training_id=training_id,
        generation=gen,
        best_fitness=20.0 + 8.5 * gen,
        mean_fitness=10.0 + 3.25 * gen,
        species=len(sizes),
        population=sum(sizes),
        evaluations_per_s=300.0,
        best_genome_key=gen,
        species_sizes=sizes,
        mean_nodes=2.0 + gen * 0.5,
        mean_connections=8.0 + gen,
        best_nodes=3 + gen,
        best_connections=9 + 2 * gen,
        phase="distributed",
    )


def old_report(training_id: str, gen: int, species: int) -> GenerationFinished:
    """A report as older evolvers sent it: no species sizes, no genome sizes."""
    return GenerationFinished(
        training_id=training_id,
        generation=gen,
        best_fitness=5.0 + gen,
        mean_fitness=2.0,
        species=species,
        population=60,
        evaluations_per_s=300.0,
        best_genome_key=gen,
    )


def open_with_reports(page: Page, feed: EventFeed, reports: list[GenerationFinished]) -> str:
    """Open a new training's page, publish ``reports`` and wait until all are drawn."""
    training_id = reports[0].training_id
    page.goto(f"/trainings/{training_id}")
    for r in reports:
        feed.report(r)
    wait_drawn(page, "chart", len(reports))
    return training_id


def wait_drawn(page: Page, chart: str, points: int) -> None:
    """Wait until ``chart``'s first series has ``points`` points."""
    page.wait_for_function(
        "([id, n]) => { const m = window.EzCharts && EzCharts.model()[id];"
        " return !!m && m.series[0].points.length === n; }",
        arg=[chart, points],
    )


def wait_stored(page: Page, training_id: str, count: int) -> None:
    """Wait until the gateway stored ``count`` generations of a training."""
    url = f"/api/trainings/{training_id}/generations"
    for _ in range(150):
        if len(page.request.get(url).json()["items"]) == count:
            return
        page.wait_for_timeout(100)
    pytest.fail(f"{training_id} never reached {count} stored generations")


def model(page: Page, chart: str) -> dict[str, Any]:
    """What charts.js drew on canvas ``chart``."""
    drawn: dict[str, Any] = page.evaluate("id => EzCharts.model()[id]", chart)
    return drawn


def pixel(page: Page, chart: str, gen: float, value: float, dx: float = 0) -> str:
    """The colour (#rrggbb) the canvas shows at (generation, value), ``dx`` CSS px aside."""
    colour: str = page.evaluate(
        """([id, g, v, dx]) => {
          const c = document.getElementById(id), p = EzCharts.toPixel(id, g, v);
          const r = c.width / c.clientWidth;
          const d = c.getContext('2d').getImageData(Math.round((p.x + dx) * r),
                                                    Math.round(p.y * r), 1, 1).data;
          return '#' + [d[0], d[1], d[2]].map(x => x.toString(16).padStart(2, '0')).join('');
        }""",
        [chart, gen, value, dx],
    )
    return colour


def dashed_line_at(page: Page, chart: str, gen: float, value: float, colour: str) -> bool:
    """Whether a dashed line of ``colour`` passes (gen, value): some pixel of the 12 CSS px
    to its right (longer than a dash's gap) has that colour."""
    return any(near(pixel(page, chart, gen, value, dx), colour) for dx in range(12))


def near(colour: str, target: str, tolerance: int = 24) -> bool:
    """Whether two #rrggbb colours differ by at most ``tolerance`` in every channel."""
    a, b = bytes.fromhex(colour[1:]), bytes.fromhex(target[1:])
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def luminance(colour: str) -> float:
    """WCAG relative luminance of #rrggbb."""
    channels = [c / 255 for c in bytes.fromhex(colour[1:])]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def round_step(ticks: list[dict[str, Any]]) -> float:
    """The step between ticks, checked to be 1, 2, 2.5 or 5 times a power of ten."""
    values = [t["value"] for t in ticks]
    steps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
    assert len(steps) == 1, values
    step = float(steps.pop())
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 2.5, 5), values
    return step


@pytest.fixture
def phone(browser: Browser, live: Live) -> Iterator[Page]:
    """A 375 px wide phone screen at device pixel ratio 3."""
    context = browser.new_context(
        base_url=live[0].url,
        viewport={"width": 375, "height": 812},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def test_fitness_chart_has_ticks_titles_threshold_and_hover_values(
    page: Page, shot: Shot, live: Live
) -> None:
    """Round ticks and axis titles; the threshold drawn at its value; pointer and keys read
    out the generation's values."""
    sign_up(page)
    tid = create(page, fitness_threshold=190)
    open_with_reports(page, live[1], [full_report(tid, g) for g in range(12)])
    fit = model(page, "chart")
    assert (fit["x"]["title"], fit["y"]["title"]) == ("generation", "fitness")
    assert round_step(fit["x"]["ticks"]) >= 1
    assert fit["x"]["ticks"][0]["label"] == "0"
    assert all(re.fullmatch(r"\d+", t["label"]) for t in fit["x"]["ticks"])
    y_step = round_step(fit["y"]["ticks"])
    assert fit["y"]["lo"] <= 10.0
    assert fit["y"]["hi"] >= 190  # the threshold is on the chart, so is the distance to it
    assert [t["label"] for t in fit["y"]["ticks"]][:2] == [
        f"{v:g}" for v in (fit["y"]["lo"], fit["y"]["lo"] + y_step)
    ]
    assert fit["threshold"] == {"value": 190, "label": "threshold 190"}
    shot(page, "1-chart")
    assert dashed_line_at(page, "chart", 5.5, 190, THRESHOLD_GREEN)
    assert not dashed_line_at(page, "chart", 5.5, 150, THRESHOLD_GREEN)
    assert near(pixel(page, "chart", 3, 20 + 8.5 * 3), "#2563eb", 40)  # the best curve

    canvas = page.locator("#chart")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    at = page.evaluate("() => EzCharts.toPixel('chart', 4, 0)")
    page.mouse.move(box["x"] + at["x"] + 2, box["y"] + box["height"] / 2)
    tip = page.locator("#chart-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("Generation 4")
    expect(tip).to_contain_text("best: 54")
    expect(tip).to_contain_text("mean: 23")
    shot(page, "2-hover")
    page.mouse.move(0, 0)
    expect(tip).to_be_hidden()

    canvas.focus()
    expect(tip).to_contain_text("Generation 11")  # focus starts at the latest generation
    page.keyboard.press("Home")
    expect(tip).to_contain_text("Generation 0")
    page.keyboard.press("ArrowRight")
    expect(tip).to_contain_text("Generation 1best: 28.5mean: 13.25")
    assert model(page, "chart")["cursor"] == 1
    shot(page, "3-keyboard")


def test_one_generation_of_negative_fitness_is_drawn(page: Page, shot: Shot, live: Live) -> None:
    """A first generation with negative fitness (Acrobot-like) and a negative threshold
    gets a visible point, negative round ticks and an x axis from generation 0."""
    sign_up(page)
    tid = create(page, fitness_threshold=-100)
    report = old_report(tid, 0, 1).model_copy(
        update={"best_fitness": -312.5, "mean_fitness": -480.0}
    )
    open_with_reports(page, live[1], [report])
    fit = model(page, "chart")
    assert fit["y"]["lo"] <= -480
    assert fit["y"]["hi"] >= -100
    assert all(re.fullmatch(r"-?\d+", t["label"]) for t in fit["y"]["ticks"])
    assert any(t["label"].startswith("-") for t in fit["y"]["ticks"])
    assert fit["x"]["ticks"][0]["label"] == "0"
    assert near(pixel(page, "chart", 0, -312.5), "#2563eb", 40)  # the best point
    assert dashed_line_at(page, "chart", 0.3, -100, THRESHOLD_GREEN)
    page.locator("#chart").focus()
    expect(page.locator("#chart-tip")).to_have_text("Generation 0best: -312.5mean: -480")
    shot(page, "1-one-generation")


def test_species_are_stacked_and_genome_size_drawn(page: Page, shot: Shot, live: Live) -> None:
    """Species sizes stack by rank up to the population (largest at the bottom) on integer
    ticks; genome sizes get four lines."""
    sign_up(page)
    tid = create(page)
    open_with_reports(page, live[1], [full_report(tid, g) for g in range(9)])
    wait_drawn(page, "species-chart", 9)
    species = model(page, "species-chart")
    assert species["kind"] == "stacked"
    assert species["y"]["title"] == "genomes"
    assert species["y"]["lo"] == 0
    assert species["y"]["hi"] >= 60
    assert all(re.fullmatch(r"\d+", t["label"]) for t in species["y"]["ticks"])
    assert [s["name"] for s in species["series"]] == [f"species {i}" for i in range(1, 5)]
    # Generation 3 has sizes 30, 20, 10: sample the middle of each band.
    for rank, (lower, upper) in enumerate([(0, 30), (30, 50), (50, 60)]):
        assert near(pixel(page, "species-chart", 3, (lower + upper) / 2), BANDS[rank])
    assert near(pixel(page, "species-chart", 3, 64), "#ffffff")  # above the stack
    page.locator("#species-chart").focus()
    page.keyboard.press("Home")
    expect(page.locator("#species-chart-tip")).to_contain_text("3 species: 30, 20, 10")

    size = model(page, "size-chart")
    assert [s["name"] for s in size["series"]] == [
        "mean nodes",
        "best nodes",
        "mean connections",
        "best connections",
    ]
    assert size["series"][3]["points"][-1] == [8, 25]
    assert size["series"][0]["points"][2] == [2, 3]
    expect(page.locator("#size-empty")).to_be_hidden()
    page.locator("#size-chart").focus()
    expect(page.locator("#size-chart-tip")).to_contain_text("mean nodes: 6best nodes: 11")
    page.locator("#species-chart").scroll_into_view_if_needed()
    shot(page, "1-species-and-size")


def test_old_reports_show_species_counts_as_integers(page: Page, shot: Shot, live: Live) -> None:
    """Reports without sizes fall back to a species count line with integer ticks and
    values ("2", not "2.000"), and say that genome sizes are missing."""
    sign_up(page)
    tid = create(page)
    open_with_reports(page, live[1], [old_report(tid, g, 2 + g % 3) for g in range(7)])
    species = model(page, "species-chart")
    assert species["kind"] == "lines"
    assert species["y"]["title"] == "species"
    assert species["y"]["lo"] == 0
    assert [t["label"] for t in species["y"]["ticks"]] == [
        str(int(t["value"])) for t in species["y"]["ticks"]
    ]
    page.locator("#species-chart").focus()
    page.keyboard.press("Home")
    expect(page.locator("#species-chart-tip")).to_have_text("Generation 0species: 2")
    expect(page.locator("#s-species")).to_have_text("2")
    expect(page.locator("#size-empty")).to_be_visible()
    expect(page.locator("#size-chart")).to_be_hidden()
    shot(page, "1-old-reports")


def test_charts_are_images_with_a_summary_and_a_table(page: Page, shot: Shot, live: Live) -> None:
    """Each canvas is role=img with a summary of the numbers, and a table of the last 20
    generations; marks and text are at least 3:1 against the background, as drawn."""
    sign_up(page)
    tid = create(page, fitness_threshold=300)
    open_with_reports(page, live[1], [full_report(tid, g) for g in range(25)])
    for chart in ("chart", "species-chart", "size-chart"):
        expect(page.locator(f"#{chart}")).to_have_attribute("role", "img")
    label = page.locator("#chart").get_attribute("aria-label") or ""
    assert "generations 0 to 24" in label
    assert "best 224" in label
    assert "Threshold 300" in label
    species_label = page.locator("#species-chart").get_attribute("aria-label") or ""
    assert "3 species of sizes 30, 20, 10" in species_label
    page.locator("#chart-figure details summary").click()
    table = page.locator("#chart-table")
    expect(table.locator("caption")).to_have_text("The last 20 of 25 rows")
    expect(table.locator("thead th")).to_have_text(["generation", "best", "mean"])
    expect(table.locator("tbody tr")).to_have_count(20)
    expect(table.locator("tbody tr").last.locator("td")).to_have_text(["24", "224", "88"])
    shot(page, "1-table")

    colours: list[tuple[str, str]] = []
    for chart in ("chart", "species-chart", "size-chart"):
        drawn = model(page, chart)
        background = drawn["colors"]["background"]
        for s in drawn["series"]:
            colours.append((f"{chart} {s['name']}", s["color"]))
        colours += [(f"{chart} text", drawn["colors"]["text"])]
    colours.append(("threshold", model(page, "chart")["colors"]["threshold"]))
    # Bands and run colours not drawn here (more species, the compare page) count too.
    colours += [(f"palette {c}", c) for c in model(page, "chart")["colors"]["palette"]]
    ratios = {name: round(contrast(c, background), 2) for name, c in colours}
    assert min(ratios.values()) >= 3.0, ratios
    # The colours checked are the colours drawn: the mean line at generation 12.
    mean = next(s for s in model(page, "chart")["series"] if s["name"] == "mean")
    assert near(pixel(page, "chart", 12, 10 + 3.25 * 12), mean["color"], 40)


def test_csv_download_holds_every_generation(page: Page, live: Live) -> None:
    """The page's CSV link downloads all generations with every column."""
    sign_up(page)
    tid = create(page)
    open_with_reports(page, live[1], [full_report(tid, g) for g in range(5)])
    with page.expect_download() as download:
        page.click("#csv-link")
    assert download.value.suggested_filename == f"ezspark-{tid}-generations.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["generation"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert rows[4]["best_fitness"] == "54.0"
    assert rows[4]["species_sizes"] == "28 18 9 5"
    assert rows[4]["best_connections"] == "17"


def test_compare_overlays_the_runs_of_its_owner_only(
    page: Page, browser: Browser, shot: Shot, live: Live
) -> None:
    """The list links to a picker of the user's runs; ticked runs get their best-fitness
    curves overlaid, one colour each, with a read-out of each run's value and a table;
    another user gets 404 for those ids."""
    feed = live[1]
    sign_up(page)
    a, b = create(page, fitness_threshold=150), create(page, fitness_threshold=150)
    create(page)  # a third run, offered but not ticked
    for gen in range(10):
        feed.report(full_report(a, gen))
    for gen in range(6):
        feed.report(old_report(b, gen, 2))
    page.goto("/trainings")
    page.click("#compare-trainings")
    page.wait_for_url("**/trainings/compare")
    expect(page.locator("#compare-pick input[type=checkbox]")).to_have_count(3)
    shot(page, "1-picker")
    page.goto(f"/trainings/{a}")
    wait_drawn(page, "chart", 10)
    wait_stored(page, b, 6)  # the compare page draws what is stored when it loads
    page.click("#compare-link")
    page.wait_for_url(re.compile(rf"/trainings/compare\?ids={a}$"))
    page.locator(f"#compare-pick input[value='{b}']").check()
    page.click("#compare-pick button[type=submit]")
    page.wait_for_url(re.compile(r"/trainings/compare\?ids="))
    expect(page.locator("#compare-runs tbody tr")).to_have_count(2)
    page.wait_for_function(
        "() => { const m = window.EzCharts && EzCharts.model()['compare-chart'];"
        " return !!m && m.series.length === 2; }"
    )
    drawn = model(page, "compare-chart")
    assert drawn["y"]["title"] == "best fitness"
    assert drawn["threshold"]["value"] == 150
    runs = {s["name"]: s for s in drawn["series"]}  # in the picker's order, newest first
    assert {n: len(s["points"]) for n, s in runs.items()} == {
        f"CartPole-v0 {a[:8]}": 10,
        f"CartPole-v0 {b[:8]}": 6,
    }
    assert len({s["color"] for s in drawn["series"]}) == 2
    a_colour = runs[f"CartPole-v0 {a[:8]}"]["color"]
    assert near(pixel(page, "compare-chart", 7, 20 + 8.5 * 7), a_colour, 40)
    expect(page.locator("#compare-chart-legend li")).to_have_count(2)
    canvas = page.locator("#compare-chart")
    canvas.focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    tip = page.locator("#compare-chart-tip")
    expect(tip).to_contain_text("Generation 2")
    expect(tip).to_contain_text(": 37")  # run a: 20 + 8.5 * 2
    expect(tip).to_contain_text(": 7")  # run b: 5 + 2
    page.keyboard.press("End")
    expect(tip).to_contain_text("Generation 9")
    expect(tip).to_contain_text(": –")  # run b ended at generation 5
    shot(page, "2-compare")
    page.locator("#compare-chart-figure details summary").click()
    table = page.locator("#compare-chart-table")
    expect(table.locator("thead th")).to_have_count(3)  # generation and one column per run
    expect(table.locator("tbody tr")).to_have_count(10)
    url = page.url

    other = browser.new_context(base_url=live[0].url)
    try:
        intruder = other.new_page()
        sign_up(intruder)
        assert intruder.goto(url.replace(live[0].url, "")).status == 404  # type: ignore[union-attr]
        expect(intruder.locator("h1")).to_have_text("Not found")
    finally:
        other.close()


def test_training_page_fits_a_375px_phone(phone: Page, shot: Shot, live: Live) -> None:
    """At 375 px nothing scrolls sideways, canvases match their box at the device pixel
    ratio, and the chart labels are drawn at 12 CSS px (not shrunk with the canvas)."""
    sign_up(phone)
    tid = create(phone, fitness_threshold=190)
    open_with_reports(phone, live[1], [full_report(tid, g) for g in range(30)])
    wait_drawn(phone, "size-chart", 30)
    for selector in ("#chart-figure details summary", "#species-chart-figure details summary"):
        phone.locator(selector).click()
    widths = phone.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 375, widths
    for chart in ("chart", "species-chart", "size-chart"):
        drawn = model(phone, chart)
        assert drawn["dpr"] == 3
        assert drawn["fontPx"] >= 11
        assert drawn["width"] <= 375 - 2 * 16
        assert drawn["backing"] == [round(drawn["width"] * 3), round(drawn["height"] * 3)]
        assert len(drawn["x"]["ticks"]) >= 2
    shot(phone, "1-phone")
