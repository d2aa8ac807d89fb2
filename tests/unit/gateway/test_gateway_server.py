"""The HTTP server's hardening: proxy trust, header timeout, connection limit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request

from ezspark_gateway.server import server_config, server_options
from ezspark_gateway.settings import GatewaySettings


def test_forwarded_headers_are_ignored_without_trusted_proxies() -> None:
    """By default no proxy is trusted: X-Forwarded-For cannot choose the client address."""
    options = server_options(GatewaySettings())
    assert options["proxy_headers"] is False


def test_forwarded_headers_trusted_only_from_the_configured_proxies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FORWARDED_ALLOW_IPS turns proxy headers on for exactly those addresses."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    options = server_options(GatewaySettings())
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == "10.0.0.0/8"


def test_connections_and_idle_time_are_limited() -> None:
    """The server caps concurrent connections and idle keep-alive time."""
    config = server_config(GatewaySettings(max_connections=50, keep_alive_s=3), FastAPI())
    assert config.limit_concurrency == 50
    assert config.timeout_keep_alive == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served() -> Iterator[tuple[int, list[str]]]:
    """A real uvicorn server on loopback with a 0.3 s header timeout; yields its port and
    the client addresses the app saw."""
    seen: list[str] = []
    app = FastAPI()

    @app.get("/who")
    def who(request: Request) -> dict[str, Any]:
        seen.append(request.client.host if request.client else "")
        return {}

    @app.get("/slow")
    def slow() -> dict[str, Any]:
        time.sleep(0.5)  # longer than the header timeout
        return {}

    port = _free_port()
    settings = GatewaySettings(port=port, header_timeout_s=0.3)
    server = uvicorn.Server(server_config(settings, app))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield port, seen
    server.should_exit = True
    thread.join(timeout=10)


def test_connection_that_never_finishes_its_headers_is_closed(
    served: tuple[int, list[str]],
) -> None:
    """A client dribbling an unfinished request line is disconnected by the header timeout."""
    port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /who HTTP/1.1\r\nHost: x\r\n")
        assert sock.recv(1024) == b""  # closed by the server, long before the 10 s timeout


def test_forged_forwarded_for_from_loopback_is_ignored(served: tuple[int, list[str]]) -> None:
    """From loopback, X-Forwarded-For does not change the client address the app sees."""
    port, seen = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET /who HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n"
            b"Connection: close\r\n\r\n"
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    assert seen == ["127.0.0.1"]


def _answer(sock: socket.socket) -> bytes:
    """One whole response with an empty JSON object body."""
    data = b""
    while not data.endswith(b"{}"):
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def test_kept_alive_connection_outlives_the_header_timeout(
    served: tuple[int, list[str]],
) -> None:
    """A kept-alive connection whose handler and idle time exceed the header timeout goes
    on serving: only unfinished headers are cut."""
    port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(0.5)
        sock.sendall(b"GET /who HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(sock).startswith(b"HTTP/1.1 200")
