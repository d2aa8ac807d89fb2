"""Managing runs through the pages (no JavaScript): list filters, labels, archive, delete,
stop and revoke confirmations, clone, and the API tokens page."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from ezspark_common.wire.messages import StopRequested, TrainingFinished
from ezspark_gateway.core.events import EventApplier
from tests.unit.gateway.conftest import example_bytes


def _login(gw: Any) -> str:
    """Log the test client in through the pages, and mint an API token for the same user."""
    gw.browser_login("web")
    token = gw.client.post("/api/auth/tokens", json={"name": "setup"}).json()["token"]
    return str(token)


def _create(gw: Any, token: str, **changes: Any) -> str:
    """Create a training from the spec example with ``changes``; its id."""
    body = json.dumps(json.loads(example_bytes()) | changes).encode()
    return str(gw.create(token, body))


def _end(gw: Any, tid: str, best: float = 1.0) -> None:
    """Apply the evolver's "finished" event for ``tid``."""
    EventApplier(gw.db.sessions, clock=gw.clock).handle(
        TrainingFinished(
            training_id=tid,
            generations=1,
            best_fitness=best,
            reason="generations",
            best_genome=None,
        )
    )


def _names(page: str) -> list[str]:
    """The names shown in the list's rows, in order."""
    cells = re.findall(r'<td class="name-cell" data-label="Name"><a href="[^"]+">([^<]*)</a>', page)
    return [html.unescape(c) for c in cells]


def test_list_filters_and_sorts_by_query_parameters(gw: Any) -> None:
    """The list page filters by tag, status and search, and sorts, from its query alone."""
    token = _login(gw)
    for name, tags, best in (("alpha", "x", 3.0), ("beta", "x y", 9.0), ("gamma", "y", 5.0)):
        tid = _create(gw, token)
        gw.client.post(f"/trainings/{tid}/labels", data={"name": name, "tags": tags})
        _end(gw, tid, best)
        gw.clock.now += 1
    assert _names(gw.client.get("/trainings").text) == ["gamma", "beta", "alpha"]
    assert _names(gw.client.get("/trainings?sort=best").text) == ["beta", "gamma", "alpha"]
    assert _names(gw.client.get("/trainings?sort=name&tag=x").text) == ["alpha", "beta"]
    assert _names(gw.client.get("/trainings?q=AMM").text) == ["gamma"]
    assert _names(gw.client.get("/trainings?status=active").text) == []
    assert "No training matches these filters" in gw.client.get("/trainings?status=active").text
    # Unknown values fall back to the defaults instead of failing.
    page = gw.client.get("/trainings?sort=bogus&status=nope&archived=maybe&page=x")
    assert page.status_code == 200
    assert _names(page.text) == ["gamma", "beta", "alpha"]
    assert "<option selected>x</option>" in gw.client.get("/trainings?tag=x").text


def test_list_form_query_is_tidied_and_times_need_no_script(gw: Any) -> None:
    """The filter form's blank and default fields redirect to a short link; dates are text."""
    token = _login(gw)
    _create(gw, token)
    resp = gw.client.get(
        "/trainings?q=&status=&env=&tag=X&sort=newest&archived=hide", follow_redirects=False
    )
    assert (resp.status_code, resp.headers["location"]) == (303, "/trainings?tag=x")
    tidy = gw.client.get("/trainings?tag=x&notice=deleted", follow_redirects=False)
    assert tidy.status_code == 200
    page = gw.client.get("/trainings").text
    assert f'data-epoch="{gw.clock.now}">2023-11-14 22:13 UTC</time>' in page


def test_labels_form_saves_and_shows_errors_by_field(gw: Any) -> None:
    """The labels form saves name, tags and notes; a bad tag comes back marked, nothing saved."""
    token = _login(gw)
    tid = _create(gw, token)
    resp = gw.client.post(
        f"/trainings/{tid}/labels",
        data={"name": "run one", "tags": "a, b", "notes": "line 1\r\nline 2"},
        follow_redirects=False,
    )
    assert (resp.status_code, resp.headers["location"]) == (303, f"/trainings/{tid}")
    page = gw.client.get(f"/trainings/{tid}").text
    assert '<p class="run-name" id="run-name">run one</p>' in page
    assert 'href="/trainings?tag=a"' in page
    assert "line 1\nline 2" in page
    bad = gw.client.post(
        f"/trainings/{tid}/labels", data={"name": "renamed", "tags": "ok b@d", "notes": ""}
    )
    assert bad.status_code == 422
    assert "is not a tag" in bad.text
    assert 'id="l-tags" name="tags" value="ok b@d"' in bad.text
    assert 'aria-invalid="true"' in bad.text
    got = gw.client.get(f"/api/trainings/{tid}").json()
    assert (got["name"], got["tags"]) == ("run one", ["a", "b"])


def test_stop_asks_first_without_javascript(gw: Any) -> None:
    """The Stop form GETs a confirmation page; only its POST stops the training."""
    token = _login(gw)
    tid = _create(gw, token)
    page = gw.client.get(f"/trainings/{tid}").text
    assert f'<form method="get" action="/trainings/{tid}/stop"' in page
    assert "data-confirm=" in page
    confirm = gw.client.get(f"/trainings/{tid}/stop")
    assert confirm.status_code == 200
    assert "Stop this training?" in confirm.text
    assert f'<form method="post" action="/trainings/{tid}/stop"' in confirm.text
    assert gw.client.get(f"/api/trainings/{tid}").json()["status"] == "queued"
    gw.client.post(f"/trainings/{tid}/stop")
    assert gw.client.get(f"/api/trainings/{tid}").json()["status"] == "stopping"
    assert isinstance(gw.publisher.sent[-1], StopRequested)


def test_archive_and_delete_from_the_page(gw: Any) -> None:
    """An ended run can be archived (hidden), restored, and deleted after a confirmation."""
    token = _login(gw)
    tid = _create(gw, token)
    active_page = gw.client.get(f"/trainings/{tid}").text
    assert 'id="delete-form"' not in active_page
    refused = gw.client.post(f"/trainings/{tid}/delete")
    assert refused.status_code == 409
    assert "stop it" in refused.text
    _end(gw, tid)
    gw.client.post(f"/trainings/{tid}/archive")
    assert _names(gw.client.get("/trainings").text) == []
    assert len(_names(gw.client.get("/trainings?archived=only").text)) == 1
    assert 'action="/trainings/' + tid + '/unarchive"' in gw.client.get(f"/trainings/{tid}").text
    gw.client.post(f"/trainings/{tid}/unarchive")
    assert len(_names(gw.client.get("/trainings").text)) == 1
    confirm = gw.client.get(f"/trainings/{tid}/delete")
    assert "Delete this training?" in confirm.text
    assert gw.client.get(f"/api/trainings/{tid}").status_code == 200
    done = gw.client.post(f"/trainings/{tid}/delete", follow_redirects=False)
    assert done.headers["location"] == "/trainings?notice=deleted"
    assert gw.client.get(f"/api/trainings/{tid}").status_code == 404
    assert "was deleted" in gw.client.get(done.headers["location"]).text


def test_clone_fills_the_form_with_the_runs_config(gw: Any) -> None:
    """/trainings/new?from=<id> starts from that run's config; someone else's id does not."""
    other = gw.signup()  # first: signing up through the API forgets the client's cookie
    foreign = _create(gw, other, generations=33)
    token = _login(gw)
    tid = _create(gw, token, generations=77, fitness_threshold=150.5)
    form = gw.client.get(f"/trainings/new?from={tid}").text
    assert re.search(r'name="generations"[^>]*value="77"', form)
    assert re.search(r'name="fitness_threshold"[^>]*value="150.5"', form)
    form = gw.client.get(f"/trainings/new?from={foreign}").text
    assert not re.search(r'name="generations"[^>]*value="33"', form)
    assert f'href="/trainings/new?from={tid}"' in gw.client.get(f"/trainings/{tid}").text


def test_tokens_page_shows_a_new_token_once_and_revokes(gw: Any) -> None:
    """A token made on the page is shown once and works; revoking asks, then it stops working."""
    _login(gw)
    made = gw.client.post("/account/tokens", data={"name": "laptop", "expires_in_days": "30"})
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"
    plain = re.search(r'id="new-token" value="([^"]+)"', made.text)
    assert plain
    secret = plain.group(1)
    assert gw.client.get("/api/auth/me", headers=gw.auth(secret)).status_code == 200
    listing = gw.client.get("/account/tokens").text
    assert secret not in listing
    assert "laptop" in listing
    assert f"<code>{secret[:8]}" in listing
    token_id = next(
        t["id"] for t in gw.client.get("/api/auth/tokens").json() if t["name"] == "laptop"
    )
    assert "Revoke this token?" in gw.client.get(f"/account/tokens/{token_id}/revoke").text
    gone = gw.client.post(f"/account/tokens/{token_id}/revoke", follow_redirects=False)
    assert gone.headers["location"] == "/account/tokens?revoked=1"
    assert gw.client.get("/api/auth/me", headers=gw.auth(secret)).status_code == 401
    bad = gw.client.post("/account/tokens", data={"name": "x" * 101, "expires_in_days": "400"})
    assert bad.status_code == 422
    assert bad.text.count('aria-invalid="true"') == 2


def test_tokens_page_cannot_revoke_sessions_or_others_tokens(gw: Any) -> None:
    """The page revokes only the caller's API tokens: a session id or another user's is 404."""
    other = gw.signup()  # first: signing up through the API forgets the client's cookie
    theirs = gw.client.post("/api/auth/tokens", json={}, headers=gw.auth(other)).json()
    _login(gw)
    session_id = gw.client.get("/api/auth/sessions").json()[0]["id"]
    assert gw.client.post(f"/account/tokens/{session_id}/revoke").status_code == 404
    assert gw.client.get("/api/auth/me").status_code == 200
    assert gw.client.post(f"/account/tokens/{theirs['id']}/revoke").status_code == 404
    assert gw.client.get("/api/auth/me", headers=gw.auth(theirs["token"])).status_code == 200
