"""Pure ASGI middleware: ``EdgeMiddleware``, the one layer every request passes through
(request id and access log, metrics, security headers, body size limit, and the hot
read's short path), and ``BodyLimitMiddleware``, the body limit alone."""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ezspark_gateway.api.access_log import AccessLog
from ezspark_gateway.api.headers import security_headers
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
        if not await _refused_declared(send, declared, max_bytes, detail):
            await _run_limited(self.app, scope, receive, send, max_bytes, detail)


async def _refused_declared(
    send: Send, declared: bytes | None, max_bytes: int, detail: str
) -> bool:
    """Answer 400 for a Content-Length that is not a number and 413 for one over
    ``max_bytes`` (before reading a byte); whether it did."""
    if declared is None:
        return False
    if not declared.isdigit():
        await _send_json(send, 400, {"detail": "invalid Content-Length header"})
        return True
    if int(declared) > max_bytes:
        await _send_json(send, 413, {"detail": detail})
        return True
    return False


async def _run_limited(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, max_bytes: int, detail: str
) -> None:
    """Run ``app`` with its body counted as it arrives: past ``max_bytes`` the read raises,
    whatever the app then sends is dropped and the client gets 413."""
    stream = _Stream(receive, send, max_bytes)
    with contextlib.suppress(_BodyTooLargeError):
        await app(scope, stream.receive, stream.send)
    if stream.exceeded and not stream.started:
        await _send_json(send, 413, {"detail": detail})


# A short path for one route: the answer's JSON body, or None to hand the request to
# the app (which then answers it, errors included, exactly as for any other route).
HotRead = Callable[[Scope, bytes | None], Awaitable[bytes | None]]
_JSON_HEADERS = (b"content-type", b"application/json")


class _Exchange:
    """One request's answer on its way out: security headers and the request id added,
    the status kept for the metrics and the access log."""

    __slots__ = ("_send", "https", "label", "path", "request_id", "status", "tag")

    def __init__(self, send: Send, path: str, https: bool, request_id: str) -> None:
        self._send = send
        self.path = path
        self.https = https
        self.request_id = request_id
        self.tag = (b"x-request-id", request_id.encode())
        self.status = 500
        self.label: str | None = None  # the route template, when the short path answered

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = list(message.get("headers", ()))
            present = {name.lower() for name, _ in headers}
            headers.extend(security_headers(self.path, self.https, present))
            headers.append(self.tag)
            message = {**message, "headers": headers}
        await self._send(message)


class _Stream:
    """One request's body, counted as it arrives; past ``max_bytes`` reading raises and
    whatever the app then sends is dropped (``BodyLimitMiddleware``)."""

    __slots__ = ("_receive", "_send", "exceeded", "max_bytes", "received", "started")

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive, self._send, self.max_bytes = receive, send, max_bytes
        self.received = 0
        self.exceeded = self.started = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                self.exceeded = True
                raise _BodyTooLargeError
        return message

    async def send(self, message: Message) -> None:
        # Whatever the app makes of the interrupted read (400, 500...) is replaced.
        if self.exceeded:
            return
        self.started = True
        await self._send(message)


def _scan(headers: list[tuple[bytes, bytes]]) -> tuple[bytes | None, bytes | None]:
    """The declared Content-Length (the last one, as ``dict`` would keep) and the first
    Authorization header (as Starlette's ``Headers.get``)."""
    length = authorization = None
    for name, value in headers:
        if name == b"content-length":
            length = value
        elif name == b"authorization" and authorization is None:
            authorization = value
    return length, authorization


class EdgeMiddleware:
    """Every HTTP request's way in and out, in one layer (four used to cost a request
    about 0.1 ms): a request id bound to every log line of the request and sent back as
    X-Request-Id, one access log line, the request counter and latency histogram by route
    template, the security headers (``headers.security_headers``), the body size limit
    (as ``BodyLimitMiddleware``), and ``hot``: short paths for GET routes (path: handler)
    that answer without FastAPI's routing and dependency solving, or hand the request on.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: GatewayMetrics,
        max_bytes: int,
        per_path: Mapping[str, tuple[int, str]] = {},
        hsts: bool = False,
        hot: Mapping[str, HotRead] = {},
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = (max_bytes, f"request body exceeds {max_bytes} bytes")
        # Paths with their own limit and what its 413 says (e.g. an uploaded checkpoint).
        self.per_path = dict(per_path)
        self.hsts = hsts
        self.hot = dict(hot)
        # Each label set's children, looked up once: ``labels()`` checks and locks on
        # every call.  Bounded like the labels themselves (methods x routes x statuses).
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # Request ids need to be unique, not secret: a private generator seeded from the
        # system's entropy, instead of a uuid4 (a system call) per request.
        self._ids = random.Random(secrets.randbits(128))
        self._log = AccessLog(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = f"{self._ids.getrandbits(64):016x}"
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        https = self.hsts or scope.get("scheme") == "https"
        exchange = _Exchange(send, scope.get("path", ""), https, request_id)
        try:
            await self._serve(scope, receive, exchange)
        finally:
            self._record(scope, exchange, time.perf_counter() - start)
            structlog.contextvars.clear_contextvars()

    async def _serve(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        """The body limit's checks, then the short path or the app."""
        max_bytes, detail = self.per_path.get(exchange.path, self.limit)
        declared, authorization = _scan(scope["headers"])
        if await _refused_declared(exchange.send, declared, max_bytes, detail):
            return
        hot = self.hot.get(exchange.path)
        if hot is not None and scope.get("method") == "GET":
            body = await hot(scope, authorization)
            if body is not None:
                exchange.label = exchange.path
                headers = [(b"content-length", str(len(body)).encode()), _JSON_HEADERS]
                await exchange.send(
                    {"type": "http.response.start", "status": 200, "headers": headers}
                )
                await exchange.send({"type": "http.response.body", "body": body})
                return
        await _run_limited(self.app, scope, receive, exchange.send, max_bytes, detail)

    def _record(self, scope: Scope, exchange: _Exchange, seconds: float) -> None:
        """Count and time the request, and log its access line."""
        # Raw paths would put every training id in a label: use the template instead.
        label = exchange.label or getattr(scope.get("route"), "path", None) or "<unmatched>"
        method = scope.get("method", "GET")
        key = (method if method in _METHODS else "other", label, exchange.status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.metrics.requests.labels(key[0], label, str(exchange.status)),
                self.metrics.latency.labels(key[0], label),
            )
        children[0].inc()
        children[1].observe(seconds)
        line = (str(method)[:16], exchange.path, exchange.status, round(seconds * 1000, 1))
        # The short path binds no context but the request id: its line may be written
        # directly (``access_log``), the same line structlog would write.
        if exchange.label is not None and self._log.line(*line, exchange.request_id):
            return
        # Probes and scrapes arrive every few seconds: keep them out of info logs.
        access = self._log.get()
        emit = access.debug if exchange.path in _QUIET_PATHS else access.info
        emit("http_request", method=line[0], path=line[1], status=line[2], duration_ms=line[3])
