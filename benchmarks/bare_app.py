"""The baseline of ``bench_gateway``: a bare FastAPI app, nothing but two endpoints."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """An async endpoint: served on the event loop, no thread hop."""
    return {"status": "ok"}


@app.get("/healthz-sync")
def healthz_sync() -> dict[str, str]:
    """A plain ``def`` endpoint: FastAPI runs it on its thread pool."""
    return {"status": "ok"}
