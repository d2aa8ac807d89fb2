"""Abuse against a REAL gateway process over real HTTP (uvicorn, not the in-process client).

``tests/unit/gateway`` already covers, in process: 413 (declared, streamed, multipart),
415, malformed / non-UTF-8 / NaN / deeply nested / huge-number JSON (422), brute-force
brakes on log-in and sign-up (429 + Retry-After), cross-user 404 and hashed tokens.  Here
the parts that depend on the real server: the brakes keyed on the peer address uvicorn
reports (and not fooled by a forged ``X-Forwarded-For`` from an untrusted peer), and the
body limits, nesting and junk on a real socket, with the process still healthy after.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.faults.common import PASSWORD, alive, start_gateway
from tests.integration.services.procs import processes
from tests.support.configs import REPO

pytestmark = [pytest.mark.faults, pytest.mark.slow]

LIMIT = 3  # EZSPARK_AUTH_RATE_LIMIT for this gateway; per IP: 5x


def test_login_and_signup_brakes_hold_on_a_real_server_and_ignore_forged_forwarding(
    tmp_path: Path,
) -> None:
    """Log-in/sign-up brakes hold over real HTTP; a forged X-Forwarded-For cannot reset them."""
    untrusted = {"FORWARDED_ALLOW_IPS": "10.255.255.1"}  # the loopback peer is not a proxy
    with processes() as procs:
        gw = start_gateway(
            tmp_path,
            procs,
            "memory://",
            auth_rate_limit=LIMIT,
            auth_rate_window_s=600,
            os_env=untrusted,
        )
        gw.signup("victim")
        with gw.client() as api:

            def login(name: str, password: str, n: int) -> int:
                forged = {"X-Forwarded-For": f"203.0.113.{n}"}  # a new "client" every time
                return api.post(
                    "/api/auth/login", headers=forged, json={"username": name, "password": password}
                ).status_code

            # gw.signup logged in once: that attempt counts too.
            codes = [login("victim", "wrong-password", n) for n in range(LIMIT)]
            assert codes == [401] * (LIMIT - 1) + [429]
            right = api.post("/api/auth/login", json={"username": "victim", "password": PASSWORD})
            assert right.status_code == 429
            assert int(right.headers["retry-after"]) >= 1
            # Spraying other names from the same peer: the per-IP budget (5 x LIMIT) runs out.
            spray = [login(f"name{n:02d}", "wrong-password", n) for n in range(5 * LIMIT)]
            # The victim's LIMIT counted tries used part of the per-IP budget already.
            assert spray == [401] * (4 * LIMIT) + [429] * LIMIT
            signups = [
                api.post("/api/auth/signup", json={"username": "bot", "password": "x"}).status_code
                for _ in range(LIMIT + 1)
            ]
            assert signups == [422] * LIMIT + [429]
        assert alive(gw.proc)
        assert gw.proc.stop() == 0


def raw_request(base: str, request: bytes) -> bytes:
    """Send raw bytes over a socket; the start of the answer (status line and headers)."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        try:
            while b"\r\n\r\n" not in received and (chunk := sock.recv(65536)):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def test_hostile_bodies_on_a_real_socket_get_4xx_and_the_server_stays_healthy(
    tmp_path: Path,
) -> None:
    """Hostile bodies on a real socket get 4xx, never 5xx, and the gateway stays healthy."""
    example = json.loads((REPO / "examples" / "spec-example.json").read_text())
    with processes() as procs:
        gw = start_gateway(tmp_path, procs, "memory://", max_body_bytes=64_000)
        token = gw.signup("hostile")
        auth = f"Authorization: Bearer {token}\r\n".encode()
        host = f"Host: {urlsplit(gw.base).netloc}\r\n".encode()
        with gw.client(token) as api:
            cases = {
                "deep": (b"[" * 10_000 + b"]" * 10_000, "application/json", 422),
                "bad utf-8": (b'{"gym_game_name": "\xff\xfe"}', "application/json", 422),
                "NaN": (
                    json.dumps(example).replace('"safeness": 0.5', '"safeness": NaN').encode(),
                    "application/json",
                    422,
                ),
                "junk": (b"\x00" * 100, "application/json", 422),
                "xml": (b"<config/>", "application/xml", 415),
                "bad multipart": (b"--x\r\n\r\n", "multipart/form-data; boundary=x", 400),
            }
            for name, (body, ctype, want) in cases.items():
                resp = api.post("/api/trainings", content=body, headers={"Content-Type": ctype})
                assert resp.status_code == want, (name, resp.status_code, resp.text[:300])
        # 1 GB declared: refused from the headers alone, the body is never sent.
        huge = raw_request(
            gw.base,
            b"POST /api/trainings HTTP/1.1\r\n"
            + host
            + auth
            + b"Content-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n",
        )
        assert huge.startswith(b"HTTP/1.1 413"), huge[:200]
        # Chunked, no length: cut off once past the limit.
        chunk = b"%x\r\n%s\r\n" % (8192, b" " * 8192)
        streamed = raw_request(
            gw.base,
            b"POST /api/trainings HTTP/1.1\r\n"
            + host
            + auth
            + b"Content-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 10,
        )
        assert streamed.startswith(b"HTTP/1.1 413"), streamed[:200]
        lying = raw_request(
            gw.base,
            b"POST /api/validate HTTP/1.1\r\n"
            + host
            + b"Content-Type: application/json\r\nContent-Length: 12x\r\n\r\n{}",
        )
        assert lying.startswith(b"HTTP/1.1 400"), lying[:200]
        assert gw.ready()
        with gw.client(token) as api:
            assert api.post("/api/trainings", json=example).status_code == 201
        errors = [
            line
            for line in gw.proc.log_path.read_text().splitlines()
            if '"unhandled_error"' in line
        ]
        assert errors == []
        assert alive(gw.proc)
        assert gw.proc.stop() == 0
