"""Issue 14's findings: hashing memory, metric labels, headers, origins, passwords, sessions."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ezspark_gateway.app import create_app, settings_passwords
from ezspark_gateway.core.security import Passwords
from ezspark_gateway.settings import GatewaySettings
from tests.unit.gateway.conftest import FAST_PASSWORDS, PASSWORD


def test_argon2_memory_per_hash_is_bounded_by_default() -> None:
    """The default Argon2id hash takes 19 MiB, not argon2-cffi's 64 MiB."""
    passwords = settings_passwords(GatewaySettings())
    assert passwords.memory_kib == 19 * 1024
    assert settings_passwords(GatewaySettings(argon2_memory_kib=12288)).memory_kib == 12288


class _CountingHasher:
    """A hasher that records how many hashes run at the same time."""

    memory_cost = 64

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def _work(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.02)
        with self._lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._work()
        return "$argon2id$fake"

    def verify(self, stored: str, password: str) -> bool:
        self._work()
        return False


def test_concurrent_hashes_never_exceed_the_pool() -> None:
    """Twenty simultaneous log-ins run at most ``concurrency`` hashes at once."""
    hasher = _CountingHasher()
    passwords = Passwords(hasher, concurrency=2)  # type: ignore[arg-type]
    threads = [threading.Thread(target=passwords.verify, args=(None, "x")) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hasher.peak == 2


def test_made_up_methods_share_one_metrics_label(gw: Any) -> None:
    """A request with an invented method is counted as method "other", not by its name."""
    method = "Q" * 2000
    gw.client.request(method, "/no/such/path")
    metrics = gw.client.get("/metrics").text
    assert method not in metrics
    assert 'method="other",route="<unmatched>"' in metrics


def test_readyz_does_not_show_exception_text(gw: Any) -> None:
    """A failing probe answers "error" without the exception's class or message."""
    gw.broker.up = False
    resp = gw.client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"] == {"database": "ok", "broker": "error"}
    assert "ConnectionError" not in resp.text
    assert "broker down" not in resp.text


def test_pages_and_api_carry_security_headers(gw: Any) -> None:
    """CSP with frame-ancestors, nosniff, DENY framing and a referrer policy everywhere;
    no HSTS over plain HTTP."""
    for path in ("/login", "/api/environments", "/healthz"):
        headers = gw.client.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in headers


def test_hsts_behind_tls(make_gateway: Any) -> None:
    """HSTS is sent over HTTPS, and always when the gateway is configured for TLS."""
    gw = make_gateway()
    tls = TestClient(gw.app, base_url="https://testserver")
    assert "max-age=" in tls.get("/healthz").headers["strict-transport-security"]
    secure = make_gateway(cookie_secure=True)
    assert "strict-transport-security" in secure.client.get("/healthz").headers


def test_token_answers_are_not_cached(gw: Any) -> None:
    """Log-in and token answers carry Cache-Control: no-store."""
    session = gw.signup("cachy")
    login = gw.client.post("/api/auth/login", json={"username": "cachy", "password": PASSWORD})
    assert login.headers["cache-control"] == "no-store"
    token = gw.client.post("/api/auth/tokens", headers=gw.auth(session))
    assert token.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/login", "/signup"])
def test_login_and_signup_forms_refuse_other_origins(gw: Any, path: str) -> None:
    """A log-in or sign-up form posted from another site (login CSRF) is a 403."""
    form = {"username": "victim", "password": PASSWORD}
    resp = gw.client.post(path, data=form, headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert "set-cookie" not in resp.headers
    api = gw.client.post(f"/api/auth{path}", json=form, headers={"Origin": "https://evil.example"})
    assert api.status_code == 403


def test_api_origin_check_includes_the_scheme(gw: Any, example: bytes) -> None:
    """With the session cookie, an Origin differing only in scheme is refused."""
    gw.browser_login("schemer")
    resp = gw.client.post(
        "/api/trainings",
        content=example,
        headers={"Content-Type": "application/json", "Origin": "https://testserver"},
    )
    assert resp.status_code == 403
    assert gw.publisher.sent == []


def test_cookie_request_without_origin_is_refused(gw: Any, example: bytes) -> None:
    """A state-changing request on the session cookie without Origin is a 403; the same
    request with a bearer token (not a browser) goes through."""
    gw.browser_login("noorigin")
    cookies = dict(gw.client.cookies)
    bare = TestClient(gw.app, cookies=cookies)
    refused = bare.post(
        "/api/trainings", content=example, headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 403
    token = gw.signup("scripted")
    ok = TestClient(gw.app).post(
        "/api/trainings", content=example, headers=gw.auth(token, json=True)
    )
    assert ok.status_code == 201


@pytest.mark.parametrize(
    "password", ["12345678", "password", "Password1!", "qwertyuiop", "aaaaaaaaaa", "alice-alice"]
)
def test_common_and_weak_passwords_are_refused(gw: Any, password: str) -> None:
    """Common passwords, runs, repetitions and the username itself are 422 on password."""
    body = {"username": "alice", "password": password}
    resp = gw.client.post("/api/auth/signup", json=body)
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["password"]


def test_sessions_are_listed_and_revocable(gw: Any) -> None:
    """A user sees their sessions (the current one marked) and can log another one out."""
    gw.signup("multi")
    body = {"username": "multi", "password": PASSWORD}
    first = gw.client.post("/api/auth/login", json=body).json()["token"]
    second = gw.client.post("/api/auth/login", json=body).json()["token"]
    gw.client.cookies.clear()
    listed = gw.client.get("/api/auth/sessions", headers=gw.auth(second["token"])).json()
    assert {s["id"] for s in listed} >= {first["id"], second["id"]}
    assert [s["current"] for s in listed if s["id"] == second["id"]] == [True]
    assert all("token" not in s for s in listed)
    gone = gw.client.delete(f"/api/auth/sessions/{first['id']}", headers=gw.auth(second["token"]))
    assert gone.status_code == 204
    assert gw.client.get("/api/auth/me", headers=gw.auth(first["token"])).status_code == 401
    assert gw.client.get("/api/auth/me", headers=gw.auth(second["token"])).status_code == 200


def test_api_tokens_expire(make_gateway: Any) -> None:
    """API tokens expire after api_token_ttl_s, or after expires_in_days when asked."""
    gw = make_gateway(api_token_ttl_s=3600)
    session = gw.signup()
    default = gw.client.post("/api/auth/tokens", headers=gw.auth(session)).json()
    week = gw.client.post(
        "/api/auth/tokens", json={"name": "ci", "expires_in_days": 7}, headers=gw.auth(session)
    ).json()
    assert default["expires_at"] == pytest.approx(gw.clock.now + 3600)
    assert week["expires_at"] == pytest.approx(gw.clock.now + 7 * 86400)
    gw.clock.now += 3601
    assert gw.client.get("/api/auth/me", headers=gw.auth(default["token"])).status_code == 401
    assert gw.client.get("/api/auth/me", headers=gw.auth(week["token"])).status_code == 200


def test_brake_holds_across_processes_sharing_the_database(make_gateway: Any) -> None:
    """Two gateway apps (worker processes) on one database spend one brute-force budget."""
    gw = make_gateway(auth_rate_limit=2, auth_rate_window_s=60)
    other = create_app(
        gw.app.state.ctx.settings,
        publisher=gw.publisher,
        broker_ping=gw.broker.ping,
        database=gw.db,
        passwords=FAST_PASSWORDS,
        clock=gw.clock,
    )
    bad = {"username": "target", "password": "wrong-password"}
    first = gw.client.post("/api/auth/login", json=bad).status_code
    second = TestClient(other).post("/api/auth/login", json=bad).status_code
    third = gw.client.post("/api/auth/login", json=bad).status_code
    assert (first, second, third) == (401, 401, 429)
