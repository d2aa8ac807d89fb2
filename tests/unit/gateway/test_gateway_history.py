"""Long runs: the gateway keeps recent generations and a thinned, bounded older history."""

from __future__ import annotations

from typing import Any

from ezspark_gateway.core.events import EventApplier, history_stride
from tests.unit.gateway.test_gateway_events import report


def test_stride_doubles_as_the_run_grows() -> None:
    """The stride is 1 while the old part fits, then the power of two that keeps it bounded."""
    assert history_stride(50, 100) == 1
    assert history_stride(200, 100) == 1
    assert history_stride(201, 100) == 2
    assert history_stride(10_100, 100) == 128


def test_long_run_keeps_recent_rows_and_a_bounded_downsampled_past(gw: Any) -> None:
    """After 1,200 reports with 20 recent kept, the newest 20 are all there, older ones are
    evenly spread multiples of one stride (generation 0 included), and the rows stay bounded."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock, history_recent=20)
    for gen in range(1200):
        sink.handle(report(tid, gen))
    url = f"/api/trainings/{tid}/generations?limit=1000"
    kept = [r["generation"] for r in gw.client.get(url, headers=gw.auth(token)).json()["items"]]
    assert kept[-20:] == list(range(1180, 1200))
    # Thinning runs every 16 generations: the newest 16 older ones may still wait for it.
    older = [g for g in kept if g < 1180 - 16]
    assert older[0] == 0
    stride = older[1] - older[0]
    assert stride > 1
    assert all(g % stride == 0 for g in older)
    assert len(kept) <= 2 * 20 + 16 + 1
