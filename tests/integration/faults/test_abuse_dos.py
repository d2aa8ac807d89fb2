"""Denial of service against a REAL gateway process: log-in bursts, invented methods,
connections that never finish their headers (issue 14)."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.faults.common import alive, record_figures, start_gateway
from tests.integration.services.procs import processes

pytestmark = [pytest.mark.faults, pytest.mark.slow]
MIB = 1024 * 1024


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM) so far, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def test_fifty_concurrent_logins_stay_under_400_mib(tmp_path: Path) -> None:
    """50 simultaneous log-ins with made-up names keep the gateway's peak memory < 400 MiB
    (Argon2 memory per hash times the bounded hashing pool)."""
    with processes() as procs:
        gw = start_gateway(tmp_path, procs, "memory://", auth_rate_limit=1000)
        before = _peak_rss_mib(gw.proc.popen.pid)

        def login(n: int) -> int:
            body = {"username": f"ghost{n:03d}", "password": "made-up-password"}
            with httpx.Client(base_url=gw.base, timeout=120) as api:
                return api.post("/api/auth/login", json=body).status_code

        with ThreadPoolExecutor(50) as pool:
            codes = list(pool.map(login, range(50)))
        peak = _peak_rss_mib(gw.proc.popen.pid)
        record_figures("login_burst", {"logins": 50, "rss_before_mib": before, "peak_mib": peak})
        assert codes == [401] * 50
        assert peak < 400
        assert alive(gw.proc)


def test_invented_methods_do_not_grow_metrics(tmp_path: Path) -> None:
    """300 requests with random 8,000-letter methods leave /metrics about its size."""
    with processes() as procs:
        gw = start_gateway(tmp_path, procs, "memory://")
        with httpx.Client(base_url=gw.base, timeout=10) as api:
            size = len(api.get("/metrics").content)
            for n in range(300):
                api.request(f"M{n:03d}" + "X" * 8000, "/api/trainings")
            grown = len(api.get("/metrics").content)
        assert grown < size + 20_000
        assert alive(gw.proc)


def test_unfinished_headers_are_cut_off(tmp_path: Path) -> None:
    """A connection that never finishes its headers is closed after EZSPARK_HEADER_TIMEOUT_S."""
    with processes() as procs:
        gw = start_gateway(tmp_path, procs, "memory://", header_timeout_s=1)
        parts = urlsplit(gw.base)
        with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            assert sock.recv(1024) == b""
        assert alive(gw.proc)
