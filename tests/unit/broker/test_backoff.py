"""Reconnect back-off: growth, cap, jitter and the outage budget."""

from __future__ import annotations

import numpy as np

from ezspark_common.broker._bridge import Backoff


def _delays(backoff: Backoff, n: int) -> list[float]:
    out = []
    for _ in range(n):
        backoff.attempts += 1
        delay = backoff.next_delay()
        assert delay is not None
        out.append(delay)
    return out


def test_delays_double_to_the_cap_within_the_jitter_band() -> None:
    """Attempt k waits between half and all of min(0.5·2^(k-1), 5) seconds."""
    delays = _delays(Backoff(3600.0, np.random.default_rng(1)), 8)
    for k, delay in enumerate(delays, start=1):
        full = min(Backoff.FIRST_S * 2 ** (k - 1), Backoff.MAX_S)
        assert Backoff.JITTER * full <= delay < full


def test_jitter_spreads_evaluators_that_lost_the_broker_together() -> None:
    """Back-offs with different generators pick different delays for the same attempt."""
    firsts = {_delays(Backoff(3600.0, np.random.default_rng(s)), 3)[-1] for s in range(20)}
    assert len(firsts) == 20


def test_gives_up_once_the_outage_exceeds_its_budget() -> None:
    """With the budget spent, next_delay says to stop retrying."""
    backoff = Backoff(0.0)
    backoff.attempts = 1
    assert backoff.next_delay() is None
