"""Accounts: sign-up, log-in, tokens (hashed, revocable), cookies, brute-force brake."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import pytest

PASSWORD = "s3cret-password"


def _raw_rows(gw: Any, sql: str) -> list[tuple[Any, ...]]:
    """Rows read straight from the SQLite file, bypassing the ORM."""
    con = sqlite3.connect(gw.tmp / "gateway.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_signup_then_login_returns_working_tokens(gw: Any) -> None:
    """Sign-up is accepted without a token; log-in returns one that authenticates /api/auth/me."""
    signup = gw.client.post("/api/auth/signup", json={"username": "Ada", "password": PASSWORD})
    assert signup.status_code == 202
    assert "token" not in signup.json()
    assert "set-cookie" not in signup.headers
    login = gw.client.post("/api/auth/login", json={"username": "ADA", "password": PASSWORD})
    assert login.status_code == 200
    token = login.json()["token"]["token"]
    gw.client.cookies.clear()
    me = gw.client.get("/api/auth/me", headers=gw.auth(token))
    assert me.json()["username"] == "ada"


def test_taken_username_answers_exactly_like_a_free_one(gw: Any) -> None:
    """Sign-up with a taken name (case-insensitively) answers what a free name gets, and
    leaves the existing account's password alone: sign-up reveals no names."""
    gw.signup("grace")
    taken = gw.client.post(
        "/api/auth/signup", json={"username": "Grace", "password": "other-pass-9"}
    )
    free = gw.client.post("/api/auth/signup", json={"username": "hopper", "password": PASSWORD})
    assert (taken.status_code, taken.json()) == (free.status_code, free.json())
    intruder = gw.client.post(
        "/api/auth/login", json={"username": "grace", "password": "other-pass-9"}
    )
    assert intruder.status_code == 401


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [
        ("x", PASSWORD, "username"),
        ("ok_name", "short", "password"),
        ("bad name!", PASSWORD, "username"),
        ("fine", "x" * 300, "password"),
    ],
)
def test_signup_rules_are_422_per_field(gw: Any, username: str, password: str, field: str) -> None:
    """Bad usernames and passwords are 422s naming the field."""
    resp = gw.client.post("/api/auth/signup", json={"username": username, "password": password})
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == [field]


def test_wrong_password_and_unknown_user_look_the_same(gw: Any) -> None:
    """Wrong password and unknown user both answer the same 401."""
    gw.signup("alan")
    wrong = gw.client.post("/api/auth/login", json={"username": "alan", "password": "nope-nope"})
    ghost = gw.client.post("/api/auth/login", json={"username": "ghost", "password": "nope-nope"})
    assert wrong.status_code == ghost.status_code == 401
    assert wrong.json() == ghost.json()


def test_auth_endpoints_want_json(gw: Any) -> None:
    """Sign-up with a form body is 415; malformed or absurdly nested JSON is 4xx, not 500."""
    form = gw.client.post("/api/auth/signup", data={"username": "a", "password": "b"})
    assert form.status_code == 415
    broken = gw.client.post(
        "/api/auth/signup", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    deep = gw.client.post(
        "/api/auth/signup",
        content=b"[" * 30_000 + b"]" * 30_000,
        headers={"Content-Type": "application/json"},
    )
    assert deep.status_code in (400, 422)


def test_invalid_token_is_401(gw: Any) -> None:
    """A made-up bearer token is a 401."""
    resp = gw.client.get("/api/trainings", headers=gw.auth("ezs_not-a-real-token"))
    assert resp.status_code == 401


def test_tokens_are_stored_hashed(gw: Any) -> None:
    """The database holds only SHA-256 digests of tokens, and Argon2 hashes of passwords."""
    session_token = gw.signup("hedy")
    api = gw.client.post("/api/auth/tokens", json={"name": "ci"}, headers=gw.auth(session_token))
    assert api.status_code == 201
    api_token = api.json()["token"]
    rows = _raw_rows(gw, "SELECT token_hash, prefix FROM api_tokens")
    stored = {r[0] for r in rows}
    assert len(rows) == 2
    dump = "\n".join(str(r) for r in _raw_rows(gw, "SELECT * FROM api_tokens"))
    for plain in (session_token, api_token):
        assert plain not in dump
        assert hashlib.sha256(plain.encode()).hexdigest() in stored
    [(password_hash,)] = _raw_rows(gw, "SELECT password_hash FROM users")
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash


def test_api_token_lifecycle(gw: Any) -> None:
    """An API token works, is listed without its secret, and stops working once revoked."""
    session = gw.signup()
    created = gw.client.post(
        "/api/auth/tokens", json={"name": "script"}, headers=gw.auth(session)
    ).json()
    token, token_id = created["token"], created["id"]
    assert gw.client.get("/api/trainings", headers=gw.auth(token)).status_code == 200
    listed = gw.client.get("/api/auth/tokens", headers=gw.auth(session)).json()
    assert [t["name"] for t in listed] == ["script"]
    assert "token" not in listed[0]
    resp = gw.client.delete(f"/api/auth/tokens/{token_id}", headers=gw.auth(session))
    assert resp.status_code == 204
    assert gw.client.get("/api/trainings", headers=gw.auth(token)).status_code == 401
    again = gw.client.delete(f"/api/auth/tokens/{token_id}", headers=gw.auth(session))
    assert again.status_code == 404


def test_cannot_revoke_another_users_token(gw: Any) -> None:
    """Revoking someone else's token id is a 404 and leaves it working."""
    ada, bob = gw.signup(), gw.signup()
    bobs = gw.client.post("/api/auth/tokens", headers=gw.auth(bob)).json()
    resp = gw.client.delete(f"/api/auth/tokens/{bobs['id']}", headers=gw.auth(ada))
    assert resp.status_code == 404
    assert gw.client.get("/api/trainings", headers=gw.auth(bobs["token"])).status_code == 200


def test_session_token_expires(make_gateway: Any) -> None:
    """A session token stops working after session_ttl_s."""
    gw = make_gateway(session_ttl_s=60)
    token = gw.signup()
    assert gw.client.get("/api/auth/me", headers=gw.auth(token)).status_code == 200
    gw.clock.now += 61
    assert gw.client.get("/api/auth/me", headers=gw.auth(token)).status_code == 401


def test_login_sets_httponly_lax_cookie_that_authenticates(gw: Any) -> None:
    """Log-in sets an HttpOnly, SameSite=Lax session cookie that the API accepts."""
    gw.signup("linus")
    resp = gw.client.post("/api/auth/login", json={"username": "linus", "password": PASSWORD})
    cookie = resp.headers["set-cookie"].lower()
    assert "ezspark_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert gw.client.get("/api/trainings").status_code == 200


def test_cookie_cannot_be_used_cross_site(gw: Any, example: bytes) -> None:
    """A state-changing request riding on the cookie from another origin is a 403."""
    gw.signup("mallory")
    gw.client.post("/api/auth/login", json={"username": "mallory", "password": PASSWORD})
    resp = gw.client.post(
        "/api/trainings",
        content=example,
        headers={"Content-Type": "application/json", "Origin": "https://evil.example"},
    )
    assert resp.status_code == 403
    assert gw.publisher.sent == []
    same = gw.client.post(
        "/api/trainings",
        content=example,
        headers={"Content-Type": "application/json", "Origin": "http://testserver"},
    )
    assert same.status_code == 201


def test_logout_revokes_the_session(gw: Any) -> None:
    """After log-out the session token no longer works."""
    token = gw.signup()
    assert gw.client.post("/api/auth/logout", headers=gw.auth(token)).status_code == 204
    assert gw.client.get("/api/auth/me", headers=gw.auth(token)).status_code == 401


def test_login_is_rate_limited_per_ip_and_username(make_gateway: Any) -> None:
    """Past auth_rate_limit attempts per (IP, username) log-in answers 429 with Retry-After."""
    gw = make_gateway(auth_rate_limit=3, auth_rate_window_s=60)
    gw.client.post("/api/auth/signup", json={"username": "target", "password": PASSWORD})
    bad = {"username": "target", "password": "wrong-password"}
    codes = [gw.client.post("/api/auth/login", json=bad).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    blocked = gw.client.post("/api/auth/login", json={"username": "target", "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    other = gw.client.post("/api/auth/login", json={"username": "someone", "password": "x" * 9})
    assert other.status_code == 401  # another username from the same IP still gets through


def test_username_spraying_from_one_ip_is_limited(make_gateway: Any) -> None:
    """Many usernames from one IP hit the wider per-IP budget (5x the per-name limit)."""
    gw = make_gateway(auth_rate_limit=2, auth_rate_window_s=60)
    codes = [
        gw.client.post(
            "/api/auth/login", json={"username": f"u{i}", "password": "whatever1"}
        ).status_code
        for i in range(11)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429


def test_signup_is_rate_limited(make_gateway: Any) -> None:
    """Repeated sign-ups for one name from one IP are braked too."""
    gw = make_gateway(auth_rate_limit=2, auth_rate_window_s=60)
    body = {"username": "bot", "password": "x"}
    codes = [gw.client.post("/api/auth/signup", json=body).status_code for _ in range(3)]
    assert codes == [422, 422, 429]
