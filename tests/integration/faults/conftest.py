"""Fault, abuse and load tests: real processes, real RabbitMQ and PostgreSQL.

Every test here carries the ``faults`` marker (``pytest -m faults`` selects them, ``-m "not
faults"`` leaves them out); the marker is registered here so this directory works on its
own, whatever the root configuration says.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``faults`` marker."""
    config.addinivalue_line(
        "markers", "faults: fault, abuse and load tests against real processes (make test-faults)"
    )
