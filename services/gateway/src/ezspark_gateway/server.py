"""The HTTP server's configuration: proxy trust, timeouts and the connection limit."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ezspark_gateway.settings import GatewaySettings


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that do not finish their first
    request's headers within ``header_timeout_s`` (uvicorn itself waits for ever:
    slowloris).  Later requests on a kept-alive connection are not timed: re-arming the
    clock between requests stalled busy connections under load (bench_gateway), and
    ``max_connections`` still bounds what such a client can hold."""

    header_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Stop the clock once the first request's headers are in."""
        super().data_received(data)
        if self._header_timer is not None and self.conn.their_state is not h11.IDLE:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the clock with the connection."""
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def server_options(settings: GatewaySettings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.Config`` that harden the server.

    X-Forwarded-For/-Proto are believed only from ``forwarded_allow_ips``: with none set
    (the default) the peer is the client, so no header can move a client to another
    brute-force bucket.
    """
    trusted = settings.forwarded_allow_ips.strip()
    # A class attribute, not a subclass made here: worker processes get the configuration
    # pickled, and only module-level classes pickle.  One server per process.
    HeaderTimeoutH11Protocol.header_timeout_s = settings.header_timeout_s
    return {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "http": HeaderTimeoutH11Protocol,
        "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": 16 * 1024,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        # With several workers the supervisor pings each and kills one that has not
        # answered within this many seconds.  uvicorn's 5 s killed workers that were still
        # starting on a busy 2-core machine, over and over (test_gateway_workers).
        "timeout_worker_healthcheck": 30,
    }


def server_config(settings: GatewaySettings, app: Any) -> uvicorn.Config:
    """The uvicorn configuration of ``app`` under ``settings``."""
    return uvicorn.Config(app, **server_options(settings))
