"""The hot read's short path (``api.hot_read`` in ``EdgeMiddleware``): taken for a valid
bearer token, and answering exactly as the declared route does; everything else is the
route's, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import QueryParams

from ezspark_gateway.api import hot_read, list_query
from ezspark_gateway.core import accounts
from ezspark_gateway.core.errors import UnauthorizedError
from ezspark_gateway.storage import reads
from ezspark_gateway.storage.models import ApiToken, User
from tests.unit.gateway.conftest import ORIGIN

LIST = "/api/trainings"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the short path's reads and the route's parameter parsing (which only the
    declared route does)."""
    calls = {"short": 0, "route": 0}
    short, route = hot_read.caller_and_page, list_query.list_query

    def short_read(*args: Any, **kwargs: Any) -> Any:
        calls["short"] += 1
        return short(*args, **kwargs)

    async def route_params(*args: Any) -> Any:
        calls["route"] += 1
        return await route(*args)

    monkeypatch.setattr(hot_read, "caller_and_page", short_read)
    monkeypatch.setattr(list_query, "list_query", route_params)
    return calls


def test_bearer_read_takes_the_short_path(gw: Any, counted: dict[str, int]) -> None:
    """A valid bearer token's list is answered by the short path, not the route."""
    token = gw.signup()
    gw.create(token)
    resp = gw.client.get(LIST, headers=gw.auth(token))
    assert resp.status_code == 200
    assert resp.json()["total"] == 1
    assert counted == {"short": 1, "route": 0}


@pytest.mark.parametrize("query", ["", "?sort=oldest", "?offset=5"])
def test_short_path_answers_as_the_route(gw: Any, counted: dict[str, int], query: str) -> None:
    """Same body, same headers (but the request id) as the route's answer to the same
    caller through the session cookie, which the short path leaves to the route: the
    plain list, a sorted one (Core SQL) and an empty page past the end."""
    gw.browser_login()
    cookie = gw.client.cookies.get("ezspark_session")
    made = gw.client.post("/api/auth/tokens", json={"name": "cli"}, headers={"Origin": ORIGIN})
    token = made.json()["token"]
    gw.create(token)
    by_route = gw.client.get(f"{LIST}{query}")
    gw.client.cookies.clear()
    short = gw.client.get(f"{LIST}{query}", headers=gw.auth(token))
    assert counted == {"short": 1, "route": 1}
    assert cookie
    assert short.content == by_route.content
    assert [h for h in short.headers.items() if h[0] != "x-request-id"] == [
        h for h in by_route.headers.items() if h[0] != "x-request-id"
    ]
    assert short.headers["x-request-id"] != by_route.headers["x-request-id"]
    assert short.headers["content-security-policy"].endswith("frame-ancestors 'none'")


@pytest.mark.parametrize(
    "auth",
    [None, "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer "],
    ids=["none", "bad", "basic", "empty"],
)
def test_credential_errors_are_the_routes(gw: Any, auth: str | None) -> None:
    """Without a valid bearer token the answer is the route's 401, body and header."""
    headers = {"Authorization": auth} if auth else {}
    resp = gw.client.get(LIST, headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"detail": "missing or invalid credentials"}
    assert resp.headers["www-authenticate"] == "Bearer"


def test_revoked_token_is_refused_on_the_next_read(gw: Any) -> None:
    """A token revoked between two reads is refused at once (nothing cached)."""
    session = gw.signup()
    api = gw.client.post("/api/auth/tokens", json={"name": "x"}, headers=gw.auth(session)).json()
    assert gw.client.get(LIST, headers=gw.auth(api["token"])).status_code == 200
    gone = gw.client.delete(f"/api/auth/tokens/{api['id']}", headers=gw.auth(session))
    assert gone.status_code == 204
    assert gw.client.get(LIST, headers=gw.auth(api["token"])).status_code == 401


def test_bad_parameters_are_the_routes_422(gw: Any, counted: dict[str, int]) -> None:
    """A bad parameter gets the route's 422 naming it; a bad token as well gets the 401."""
    token = gw.signup()
    resp = gw.client.get(f"{LIST}?limit=0&sort=newest", headers=gw.auth(token))
    assert resp.status_code == 422
    assert resp.json()["errors"] == [
        {"field": "limit", "message": "Input should be greater than or equal to 1"}
    ]
    assert counted == {"short": 0, "route": 1}
    both = gw.client.get(f"{LIST}?limit=0", headers=gw.auth("nope"))
    assert both.status_code == 401


def test_short_path_is_counted_under_the_route(gw: Any) -> None:
    """Its requests are counted with the route's template as label."""
    token = gw.signup()
    for _ in range(3):
        gw.client.get(LIST, headers=gw.auth(token))
    labels = {"method": "GET", "route": LIST, "status": "200"}
    assert gw.registry.get_sample_value("ezspark_gateway_http_requests_total", labels) == 3


def test_declared_oversized_body_is_refused_first(gw: Any) -> None:
    """A GET declaring a body over the limit is a 413 before any credential is read."""
    token = gw.signup()
    headers = {**gw.auth(token), "Content-Length": "999999999"}
    resp = gw.client.get(LIST, headers=headers)
    assert resp.status_code == 413


def test_default_parameters_are_the_default_filter() -> None:
    """The short path's prebuilt filter for a list without parameters is the one those
    parameters ask for (and the one whose pages are kept)."""
    assert list_query.DEFAULTS.to_filter() == reads.DEFAULT_FILTER
    assert list_query.parse(QueryParams(b"")).to_filter() == reads.DEFAULT_FILTER


@pytest.mark.parametrize("revoked", [None, 5.0])
@pytest.mark.parametrize("expires", [None, 9.0, 10.0, 11.0])
def test_row_rule_is_check_credentials_rule(revoked: float | None, expires: float | None) -> None:
    """The short path's judgement of a plain credential row (``is_live``) accepts
    exactly the credentials ``check_credential`` accepts, at the expiry's edge too."""
    token = ApiToken(id=1, user_id=2, revoked_at=revoked, expires_at=expires)
    user = User(id=2, username="ada", password_hash="h", created_at=1.0, data_version=0)
    try:
        accounts.check_credential((token, user), 10.0)
        accepted = True
    except UnauthorizedError:
        accepted = False
    assert accounts.is_live(revoked, expires, 10.0) is accepted


def test_expired_token_is_the_routes_401(gw: Any) -> None:
    """A token past its expiry is refused (the route's 401), by the short path's rule."""
    token = gw.signup()
    assert gw.client.get(LIST, headers=gw.auth(token)).status_code == 200
    gw.clock.now += 400 * 24 * 3600.0  # past any session's lifetime
    resp = gw.client.get(LIST, headers=gw.auth(token))
    assert resp.status_code == 401
    assert resp.json() == {"detail": "missing or invalid credentials"}


def test_short_path_records_the_tokens_use_once_a_minute(gw: Any, counted: dict[str, int]) -> None:
    """A read through the short path records the API token's last use, as the route
    does: at the first read, not again within a minute, and again after it."""
    session = gw.signup()
    api = gw.client.post("/api/auth/tokens", json={"name": "x"}, headers=gw.auth(session)).json()

    def last_used() -> float | None:
        listed = gw.client.get("/api/auth/tokens", headers=gw.auth(session)).json()
        return next(t["last_used_at"] for t in listed if t["id"] == api["id"])

    first = gw.clock.now
    assert gw.client.get(LIST, headers=gw.auth(api["token"])).status_code == 200
    assert last_used() == first
    gw.clock.now += 30.0
    gw.client.get(LIST, headers=gw.auth(api["token"]))
    assert last_used() == first
    gw.clock.now += 61.0
    gw.client.get(LIST, headers=gw.auth(api["token"]))
    assert last_used() == gw.clock.now
    assert counted["short"] == 3
