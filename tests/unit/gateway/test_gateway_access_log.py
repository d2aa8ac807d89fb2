"""The access line written directly (``api.access_log``) is the line structlog writes
under the standard JSON configuration, byte for byte but the timestamp's value; under
any other configuration the line goes through structlog."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from ezspark_common.logging import configure_logging
from ezspark_gateway.api.access_log import AccessLog
from tests.unit.gateway.conftest import ORIGIN

STAMP = re.compile(r'"timestamp": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"')


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """The standard JSON configuration, printing to a buffer; restored afterwards."""
    saved = structlog.get_config()
    configure_logging("INFO")
    out = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=out))
    structlog.contextvars.clear_contextvars()
    yield out
    structlog.contextvars.clear_contextvars()
    structlog.configure(**saved)


def _lines(out: io.StringIO) -> list[str]:
    return [STAMP.sub('"timestamp": "T"', line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("method", "path", "status", "ms"),
    [
        ("GET", "/api/trainings", 200, 0.4),
        ("GET", '/a"b\\c\u00e9\u2603\x01', 200, 12.0),
        ("BREW", "/", 418, 1234.5),
    ],
)
def test_direct_line_is_structlogs_line(
    output: io.StringIO, method: str, path: str, status: int, ms: float
) -> None:
    """Same keys, order, escaping and number format as structlog's own rendering."""
    logger = structlog.get_logger("ezspark_gateway.api.middleware")
    access = AccessLog(logger)
    structlog.contextvars.bind_contextvars(request_id="00ab")
    assert access.line(method, path, status, ms, "00ab")
    access.get().info("http_request", method=method, path=path, status=status, duration_ms=ms)
    direct, through = _lines(output)
    assert direct == through
    assert json.loads(direct)["path"] == path
    assert STAMP.search(output.getvalue().splitlines()[0])


def _reconfigure(kind: str) -> None:
    if kind == "console":
        configure_logging("INFO", json_logs=False)
    elif kind == "warning":
        configure_logging("WARNING")
    else:
        chain = [*structlog.get_config()["processors"]]
        structlog.configure(processors=[structlog.processors.add_log_level, *chain])


@pytest.mark.parametrize("kind", ["console", "warning", "another chain"])
def test_other_configurations_go_through_structlog(output: io.StringIO, kind: str) -> None:
    """Console rendering, a level above INFO or another processor chain: not direct."""
    _reconfigure(kind)
    access = AccessLog(structlog.get_logger("x"))
    assert not access.line("GET", "/api/trainings", 200, 0.1, "00ab")


def test_short_path_line_matches_the_routes(gw: Any, output: io.StringIO) -> None:
    """The hot read's access line (direct) has the route's line's form (through
    structlog): same keys in the same order, same values but the request id."""
    gw.browser_login()
    made = gw.client.post("/api/auth/tokens", json={"name": "cli"}, headers={"Origin": ORIGIN})
    token = made.json()["token"]
    cookies = dict(gw.client.cookies)
    gw.client.cookies.clear()
    output.truncate(0)
    output.seek(0)
    assert gw.client.get("/api/trainings", headers=gw.auth(token)).status_code == 200
    gw.client.cookies.update(cookies)
    assert gw.client.get("/api/trainings").status_code == 200
    short, by_route = (json.loads(line) for line in _lines(output) if "http_request" in line)
    assert list(short) == list(by_route)
    assert short["request_id"] != by_route["request_id"]
    assert {**short, "request_id": "", "duration_ms": 0} == {
        **by_route,
        "request_id": "",
        "duration_ms": 0,
    }
