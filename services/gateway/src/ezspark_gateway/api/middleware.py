"""Pure ASGI middleware: body size limit, metrics, per-request log context."""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import time
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ezspark_gateway.api.metrics import GatewayMetrics

log = structlog.get_logger(__name__)
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Methods get a label of their own; anything else a client invents is "other", so
# made-up methods cannot grow /metrics.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _BodyTooLargeError(Exception):
    """Raised from ``receive`` once the stream passes the limit."""


async def _send_json(send: Send, status: int, payload: dict[str, object]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``, counted on the raw stream as it arrives.

    A declared Content-Length over the limit is refused before reading a byte; a chunked
    or lying client is cut off as soon as the running count passes the limit, whatever
    handler is reading, so nothing ever buffers more than the limit.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, per_path: Mapping[str, tuple[int, str]] = {}
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Paths with their own limit and what its 413 says (e.g. an uploaded checkpoint).
        self.per_path = dict(per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, detail = self.per_path.get(
            scope["path"], (self.max_bytes, f"request body exceeds {self.max_bytes} bytes")
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _send_json(send, 400, {"detail": "invalid Content-Length header"})
                return
            if int(declared) > max_bytes:
                await _send_json(send, 413, {"detail": detail})
                return
        state = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > max_bytes:
                    state["exceeded"] = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            # Whatever the app makes of the interrupted read (400, 500...) is replaced.
            if state["exceeded"]:
                return
            state["started"] = True
            await send(message)

        with contextlib.suppress(_BodyTooLargeError):
            await self.app(scope, limited_receive, guarded_send)
        if state["exceeded"] and not state["started"]:
            await _send_json(send, 413, {"detail": detail})


class MetricsMiddleware:
    """Counts requests and observes latency, labelled by route template (bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # Each label set's children, looked up once: ``labels()`` checks and locks on
        # every call.  Bounded like the labels themselves (methods x routes x statuses).
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _record(self, method: str, label: str, status: int, seconds: float) -> None:
        key = (method, label, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.metrics.requests.labels(method, label, str(status)),
                self.metrics.latency.labels(method, label),
            )
        children[0].inc()
        children[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}
        start = time.perf_counter()

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            # Raw paths would put every training id in a label: use the template instead.
            label = getattr(route, "path", None) or "<unmatched>"
            method = scope.get("method", "GET")
            method = method if method in _METHODS else "other"
            self._record(method, label, status["code"], time.perf_counter() - start)


class RequestContextMiddleware:
    """Binds a request id to every log line of the request and logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Request ids need to be unique, not secret: a private generator seeded from the
        # system's entropy, instead of a uuid4 (a system call) per request.
        self._ids = random.Random(secrets.randbits(128))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        request_id = f"{self._ids.getrandbits(64):016x}"
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = {"code": 500}
        start = time.perf_counter()

        async def tagging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, tagging_send)
        finally:
            # Probes and scrapes arrive every few seconds: keep them out of info logs.
            path = scope.get("path", "")
            emit = log.debug if path in _QUIET_PATHS else log.info
            emit(
                "http_request",
                method=str(scope.get("method", ""))[:16],
                path=path,
                status=status["code"],
                duration_ms=round((time.perf_counter() - start) * 1000, 1),
            )
            structlog.contextvars.clear_contextvars()
