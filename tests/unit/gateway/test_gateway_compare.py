"""The compare page (/trainings/compare): the caller's trainings only, a picker, a cap."""

from __future__ import annotations

import json
import re
from typing import Any

from ezspark_gateway.web.pages_compare import MAX_RUNS, requested_ids
from tests.unit.gateway.conftest import example_bytes


def create(gw: Any, **changes: Any) -> str:
    """Create a training with the browser's cookie; its id."""
    config = json.loads(example_bytes()) | changes
    resp = gw.client.post(
        "/api/trainings", content=json.dumps(config), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 201, resp.text
    training_id: str = resp.json()["id"]
    return training_id


def test_ids_come_comma_separated_or_repeated() -> None:
    """``ids=a,b`` and ``ids=a&ids=b`` give the same ids, in order, without repeats or blanks."""
    assert requested_ids(["a,b", "c", "a", " ", "b , d"]) == ["a", "b", "c", "d"]


def test_compare_lists_the_chosen_runs_and_offers_the_rest(gw: Any) -> None:
    """Chosen runs get a row (label, CSV link) and a ticked box; the others an unticked box."""
    gw.browser_login("cmp")
    a, b, c = create(gw, fitness_threshold=190), create(gw, fitness_threshold=190), create(gw)
    page = gw.client.get(f"/trainings/compare?ids={a},{b}")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-id="([0-9a-f-]+)"', page.text)
    assert rows == [a, b]
    assert f'href="/api/trainings/{a}/generations.csv"' in page.text
    ticked = re.findall(r'value="([0-9a-f-]+)" checked', page.text)
    assert sorted(ticked) == sorted([a, b])
    assert re.search(rf'value="{c}"\s*>', page.text)  # offered, not ticked
    assert 'data-threshold="190.0"' in page.text  # both share it, so it is drawn
    mixed = gw.client.get(f"/trainings/compare?ids={a}&ids={c}")
    assert re.findall(r'<tr data-id="([0-9a-f-]+)"', mixed.text) == [a, c]
    assert "data-threshold" not in mixed.text  # thresholds differ: none drawn


def test_compare_refuses_other_users_trainings(gw: Any) -> None:
    """Someone else's id (or an unknown one) among the ids makes the page 404."""
    gw.browser_login("owner")
    theirs = create(gw)
    gw.client.cookies.clear()
    gw.browser_login("intruder")
    mine = create(gw)
    assert gw.client.get(f"/trainings/compare?ids={mine},{theirs}").status_code == 404
    assert gw.client.get("/trainings/compare?ids=nope").status_code == 404
    picker = gw.client.get("/trainings/compare")
    assert picker.status_code == 200
    assert theirs not in picker.text
    assert mine in picker.text


def test_compare_caps_the_number_of_runs(gw: Any) -> None:
    """More than MAX_RUNS ids is refused with a message, not a chart nobody can read."""
    gw.browser_login("many")
    ids = ",".join(f"{i:08d}-0000-4000-8000-000000000000" for i in range(MAX_RUNS + 1))
    resp = gw.client.get(f"/trainings/compare?ids={ids}")
    assert resp.status_code == 422
    assert f"Choose at most {MAX_RUNS} trainings" in resp.text


def test_compare_needs_a_login(gw: Any) -> None:
    """An anonymous visitor is sent to log in."""
    resp = gw.client.get("/trainings/compare?ids=x", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/login?next=")
