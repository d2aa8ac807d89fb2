"""Several gateway worker processes (EZSPARK_WORKERS): one brute-force budget, summed
metrics, every worker serving, and a revoked token refused by every worker at once
(issue 14)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from tests.integration.faults.common import alive, start_gateway
from tests.integration.services.procs import processes

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_two_workers_share_the_brake_and_sum_their_metrics(tmp_path: Path) -> None:
    """With 2 workers: two worker processes serve, failed log-ins hitting either worker
    spend one budget, and /metrics counts every worker's requests."""
    with processes() as procs:
        gw = start_gateway(tmp_path, procs, "memory://", workers=2, auth_rate_limit=3)
        assert len(_children(gw.proc.popen.pid)) >= 2
        gw.signup("target")  # one log-in attempt on target's budget
        bad = {"username": "target", "password": "wrong-password"}
        codes = []
        for _ in range(3):  # a fresh connection each time: either worker may answer
            with httpx.Client(base_url=gw.base, timeout=10) as api:
                codes.append(api.post("/api/auth/login", json=bad).status_code)
        assert codes == [401, 401, 429]
        for _ in range(40):
            with httpx.Client(base_url=gw.base, timeout=10) as api:
                assert api.get("/healthz").status_code == 200
        served = gw.metric(
            "ezspark_gateway_http_requests_total",
            {"method": "GET", "route": "/healthz", "status": "200"},
        )
        assert served >= 40
        assert alive(gw.proc)
        assert gw.proc.stop() == 0


def _get(conn: socket.socket, reader: BinaryIO, path: str, token: str) -> int:
    """One GET on a kept-alive connection; its status."""
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    conn.sendall(head.encode())
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    reader.read(length)
    return status


def _server_sockets(port: int) -> dict[int, int]:
    """Socket inode of each accepted loopback connection to ``port``, by client port."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(a.split(":")[1], 16) for a in fields[1:3])
        if local == port:
            found[remote] = int(fields[9])
    return found


def _holder(inode: int, workers: list[int]) -> int | None:
    """The worker process holding the socket ``inode``."""
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
    return None


def test_revoked_token_refused_at_once_by_every_worker(tmp_path: Path) -> None:
    """With 2 workers, each holding kept-alive connections that have just read with a
    token: after the token is revoked, the very next read on every connection, in either
    worker, is refused (nothing cached, no stale read snapshot)."""
    with processes() as procs:
        gw = start_gateway(tmp_path, procs, "memory://", workers=2, keep_alive_s=60)
        workers = [  # not multiprocessing's resource tracker
            pid
            for pid in _children(gw.proc.popen.pid)
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(workers) == 2
        port = int(gw.base.rsplit(":", 1)[1])
        token = gw.signup("reader")
        held: dict[int, list[tuple[socket.socket, BinaryIO]]] = {}
        # The kernel picks the worker: open until both hold some.  On a busy machine the
        # second worker may still be starting (the gateway answered through the first), so
        # after a quick burst keep trying for about 20 s.
        for attempt in range(400):
            if attempt >= 32:
                time.sleep(0.05)
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            reader: BinaryIO = conn.makefile("rb")
            assert _get(conn, reader, "/api/trainings", token) == 200
            inode = _server_sockets(port)[conn.getsockname()[1]]
            held.setdefault(_holder(inode, workers) or 0, []).append((conn, reader))
            if len(set(held) & set(workers)) == 2 and all(len(v) >= 2 for v in held.values()):
                break
        assert set(workers) <= set(held), (
            f"connections per worker: { {k: len(v) for k, v in held.items()} }"
        )
        with gw.client(token) as api:
            assert api.post("/api/auth/logout").status_code == 204
        statuses = {
            pid: [_get(c, r, "/api/trainings", token) for c, r in conns]
            for pid, conns in held.items()
        }
        for conns in held.values():
            for conn, reader in conns:
                reader.close()
                conn.close()
        assert all(codes and set(codes) == {401} for codes in statuses.values()), statuses
        assert gw.proc.stop() == 0
