"""Several gateway worker processes (EZSPARK_WORKERS): one brute-force budget, summed
metrics, and every worker serving (issue 14)."""

from __future__ import annotations

from pathlib import Path

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
