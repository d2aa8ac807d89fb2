"""The hot read's kept pages (``api.page_cache``): served only while the owner's
``data_version``, read with the credential on every request, is unchanged; every write
to the user's trainings bumps it, so the next read is fresh; revocation is not delayed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from ezspark_common.wire.messages import (
    GenerationProgressed,
    TrainingFailed,
    TrainingFinished,
    TrainingWaiting,
)
from ezspark_gateway.api.page_cache import Owner, PageCache
from ezspark_gateway.core.events import EventApplier
from ezspark_gateway.storage import reads
from tests.unit.gateway.conftest import ORIGIN
from tests.unit.gateway.test_gateway_events import report

LIST = "/api/trainings"


@pytest.fixture
def page_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the short path's page reads (one per page not served from the cache)."""
    calls: list[int] = []
    page_raw = reads.page_raw

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return page_raw(*args, **kwargs)

    monkeypatch.setattr(reads, "page_raw", counted)
    return calls


def _version(gw: Any, username: str) -> int:
    with gw.db.engine.connect() as conn:
        found = conn.execute(
            text("SELECT data_version FROM users WHERE username = :u"), {"u": username}
        )
        return int(found.scalar_one())


def test_unchanged_page_is_served_without_reading_it(gw: Any, page_reads: list[int]) -> None:
    """A second read of an unchanged list answers the same bytes without reading the page."""
    token = gw.signup()
    gw.create(token)
    first = gw.client.get(LIST, headers=gw.auth(token))
    second = gw.client.get(LIST, headers=gw.auth(token))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert len(page_reads) == 1
    other = gw.client.get(f"{LIST}?limit=5", headers=gw.auth(token))  # another page
    assert other.json()["limit"] == 5
    assert len(page_reads) == 2


def test_revoked_token_is_refused_although_its_page_is_kept(gw: Any) -> None:
    """A kept page does not outlive its credential: revoked, the next read is a 401."""
    session = gw.signup()
    api = gw.client.post("/api/auth/tokens", json={"name": "x"}, headers=gw.auth(session)).json()
    for _ in range(2):
        assert gw.client.get(LIST, headers=gw.auth(api["token"])).status_code == 200
    gone = gw.client.delete(f"/api/auth/tokens/{api['id']}", headers=gw.auth(session))
    assert gone.status_code == 204
    assert gw.client.get(LIST, headers=gw.auth(api["token"])).status_code == 401


def test_another_users_page_is_never_served(gw: Any) -> None:
    """Two users reading the same page each get their own trainings."""
    ada, bob = gw.signup("ada"), gw.signup("bob")
    gw.create(ada)
    for _ in range(2):
        assert gw.client.get(LIST, headers=gw.auth(ada)).json()["total"] == 1
        assert gw.client.get(LIST, headers=gw.auth(bob)).json()["total"] == 0


def _patch(**body: Any) -> Callable[[Any, str, str], None]:
    def write(gw: Any, token: str, tid: str) -> None:
        resp = gw.client.patch(f"{LIST}/{tid}", json=body, headers=gw.auth(token))
        assert resp.status_code == 200, resp.text

    return write


def _event(make: Callable[[str], Any]) -> Callable[[Any, str, str], None]:
    def write(gw: Any, _token: str, tid: str) -> None:
        assert EventApplier(gw.db.sessions, clock=gw.clock).handle(make(tid)) == "applied"

    return write


def _stop(gw: Any, token: str, tid: str) -> None:
    assert gw.client.post(f"{LIST}/{tid}/stop", headers=gw.auth(token)).status_code == 202


def _create(gw: Any, token: str, _tid: str) -> None:
    gw.create(token)


def _finish_then(then: Callable[[Any, str, str], None]) -> Callable[[Any, str, str], None]:
    def write(gw: Any, token: str, tid: str) -> None:
        done = TrainingFinished(
            training_id=tid, generations=1, best_fitness=2.0, reason="generations", best_genome=None
        )
        EventApplier(gw.db.sessions, clock=gw.clock).handle(done)
        gw.client.get(LIST, headers=gw.auth(token))  # kept again, after the finish
        then(gw, token, tid)

    return write


def _delete(gw: Any, token: str, tid: str) -> None:
    assert gw.client.delete(f"{LIST}/{tid}", headers=gw.auth(token)).status_code == 204


WRITES: dict[str, Callable[[Any, str, str], None]] = {
    "create": _create,
    "report": _event(lambda tid: report(tid, 0, 3.5)),
    "progress": _event(
        lambda tid: GenerationProgressed(
            training_id=tid, generation=0, done=1, total=4, evaluators=1
        )
    ),
    "waiting": _event(lambda tid: TrainingWaiting(training_id=tid, waiting=True, reason="none")),
    "finished": _event(
        lambda tid: TrainingFinished(
            training_id=tid, generations=1, best_fitness=2.0, reason="generations", best_genome=None
        )
    ),
    "failed": _event(lambda tid: TrainingFailed(training_id=tid, error="boom")),
    "stop": _stop,
    "rename": _patch(name="run one"),
    "tags": _patch(tags=["a", "b"]),
    "notes": _patch(notes="noted"),
    "archive": _finish_then(_patch(archived=True)),
    "delete": _finish_then(_delete),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_write_bumps_the_version_and_the_next_read_is_fresh(
    gw: Any, write: Callable[[Any, str, str], None]
) -> None:
    """After each kind of write to the user's trainings (API, evolver events), the
    user's data_version has grown and the short path answers exactly what the route
    (which keeps nothing) answers."""
    gw.browser_login()
    made = gw.client.post("/api/auth/tokens", json={"name": "cli"}, headers={"Origin": ORIGIN})
    token = made.json()["token"]
    cookies = dict(gw.client.cookies)
    gw.client.cookies.clear()
    tid = gw.create(token)
    assert gw.client.get(LIST, headers=gw.auth(token)).status_code == 200  # kept
    before = _version(gw, "web")
    write(gw, token, tid)
    assert _version(gw, "web") > before
    short = gw.client.get(LIST, headers=gw.auth(token))
    gw.client.cookies.update(cookies)
    by_route = gw.client.get(LIST)
    assert short.status_code == by_route.status_code == 200
    assert short.content == by_route.content


def _user(uid: int, version: int, name: str = "ada", created: float = 1.0) -> Owner:
    return uid, name, created, version


def test_cache_checks_version_and_owner() -> None:
    """A kept page is given only for the same user (id, name, creation time) at the same
    version, and only for its limit and offset."""
    cache = PageCache()
    cache.put(_user(1, 5), 100, 0, b"page")
    assert cache.get(_user(1, 5), 100, 0) == b"page"
    assert cache.get(_user(1, 6), 100, 0) is None
    assert cache.get(_user(1, 5, name="eve"), 100, 0) is None
    assert cache.get(_user(1, 5, created=2.0), 100, 0) is None
    assert cache.get(_user(2, 5), 100, 0) is None
    assert cache.get(_user(1, 5), 10, 0) is None
    cache.put(_user(1, 6), 100, 0, b"newer")
    assert cache.get(_user(1, 6), 100, 0) == b"newer"
    assert len(cache) == 1


def test_cache_is_bounded_in_bytes() -> None:
    """Past its byte budget the oldest pages go first; a page over the budget is not kept."""
    cache = PageCache(max_bytes=3 * (1000 + 256))
    for uid in range(5):
        cache.put(_user(uid, 0), 100, 0, bytes(1000))
    assert len(cache) == 3
    assert cache.get(_user(0, 0), 100, 0) is None
    assert cache.get(_user(4, 0), 100, 0) == bytes(1000)
    cache.put(_user(9, 0), 100, 0, bytes(10_000))
    assert cache.get(_user(9, 0), 100, 0) is None
    assert len(cache) == 3
