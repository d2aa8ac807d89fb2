"""healthz, readyz, metrics, OpenAPI, and the raw-stream body limit."""

from __future__ import annotations

import asyncio
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from ezspark_gateway.api.middleware import BodyLimitMiddleware


def test_healthz_and_readyz_ok(gw: Any) -> None:
    """Both probes answer 200 when the database and the broker are up."""
    assert gw.client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = gw.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_reflects_a_broken_database(gw: Any) -> None:
    """With the database file's directory gone, readyz is 503 naming the database."""
    shutil.rmtree(gw.tmp)
    gw.db.dispose()  # drop pooled connections so the next check really reconnects
    resp = gw.client.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("error")
    assert body["checks"]["broker"] == "ok"
    assert gw.client.get("/healthz").status_code == 200


def test_readyz_reflects_a_broken_broker(gw: Any) -> None:
    """With the broker unreachable, readyz is 503 naming the broker."""
    gw.broker.up = False
    resp = gw.client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"]["broker"].startswith("error")


def test_metrics_count_requests_by_route_template(gw: Any) -> None:
    """/metrics exposes request counts labelled by route template, not by raw path."""
    token = gw.signup()
    tid = gw.create(token)
    gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token))
    gw.client.get("/api/trainings/nope", headers=gw.auth(token))
    text = gw.client.get("/metrics").text
    assert 'route="/api/trainings/{training_id}"' in text
    assert tid not in text
    count = gw.registry.get_sample_value(
        "ezspark_gateway_http_requests_total",
        {"method": "GET", "route": "/api/trainings/{training_id}", "status": "404"},
    )
    assert count == 1.0
    assert "ezspark_gateway_http_request_duration_seconds_bucket" in text


def test_many_apps_in_one_process(make_gateway: Any) -> None:
    """Each app has its own metrics registry, so building several never clashes."""
    first, second = make_gateway(), make_gateway()
    first.client.get("/healthz")
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert first.registry.get_sample_value("ezspark_gateway_http_requests_total", labels) == 1
    assert second.registry.get_sample_value("ezspark_gateway_http_requests_total", labels) is None


def test_openapi_docs_served(gw: Any) -> None:
    """/docs renders and the schema lists both accepted bodies of POST /api/trainings."""
    assert gw.client.get("/docs").status_code == 200
    schema = gw.client.get("/openapi.json").json()
    content = schema["paths"]["/api/trainings"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}


def test_unknown_route_is_json_404(gw: Any) -> None:
    """Unknown paths are a JSON 404, not an HTML error page."""
    resp = gw.client.get("/api/nope")
    assert resp.status_code == 404
    assert resp.json() == {"detail": "Not Found"}


def _run(
    app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
) -> tuple[list[Message], int]:
    """Drive ``app`` with a streamed body; return what it sent and how many chunks it read."""
    sent: list[Message] = []
    pulled = 0

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        more = pulled < len(chunks)
        return {"type": "http.request", "body": chunks[pulled - 1], "more_body": more}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    # A thread of its own: another test's library (playwright) may own this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    return sent, pulled


async def _reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_body_limit_stops_reading_the_stream_at_the_limit() -> None:
    """A chunked body is cut off as soon as it passes the limit: the rest is never read."""
    app = BodyLimitMiddleware(_reads_everything, max_bytes=1000)
    sent, pulled = _run(app, [b"x" * 400] * 100, [])
    assert sent[0]["status"] == 413
    assert pulled == 3  # 1200 bytes > 1000: stopped on the third chunk of a hundred


def test_body_limit_refuses_declared_length_without_reading() -> None:
    """A declared Content-Length over the limit is refused before reading any byte."""
    app = BodyLimitMiddleware(_reads_everything, max_bytes=1000)
    sent, pulled = _run(app, [b"x"], [(b"content-length", b"5000")])
    assert sent[0]["status"] == 413
    assert pulled == 0


def test_body_limit_lets_small_bodies_through() -> None:
    """Bodies within the limit reach the app untouched."""
    app = BodyLimitMiddleware(_reads_everything, max_bytes=1000)
    sent, _ = _run(app, [b"x" * 300] * 3, [(b"content-length", b"900")])
    assert sent[0]["status"] == 200
