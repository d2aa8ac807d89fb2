"""A load client that is not the bottleneck: several processes, each holding keep-alive
HTTP/1.1 connections on raw asyncio streams (no HTTP library per request)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class LoadResult:
    """What one load stage measured."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    # Connections still waiting for an answer 10 s after the stage ended (stalls).
    unfinished: int = 0

    @property
    def per_s(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

    def quantile(self, q: float) -> float:
        """Latency quantile in ms (nearest rank)."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _connection(
    port: int, request: bytes, warmup_end: float, end: float, out: dict[str, Any]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (now := time.perf_counter()) < end:
            writer.write(request)
            status = await _read_response(reader)
            done = time.perf_counter()
            if now >= warmup_end:
                out["latencies"].append((done - now) * 1000)
                out["errors"] += status >= 400
    finally:
        writer.close()


async def _client(
    port: int, request: bytes, connections: int, warmup: float, seconds: float
) -> Any:
    out: dict[str, Any] = {"latencies": [], "errors": 0}
    start = time.perf_counter()
    tasks = [
        asyncio.create_task(
            _connection(port, request, start + warmup, start + warmup + seconds, out)
        )
        for _ in range(connections)
    ]
    _, stalled = await asyncio.wait(tasks, timeout=warmup + seconds + 10)
    for task in stalled:
        task.cancel()
    out["unfinished"] = len(stalled)
    return out


def _process(args: tuple[int, bytes, int, float, float], queue: Any) -> None:
    queue.put(asyncio.run(_client(*args)))


def run_load(
    port: int,
    path: str,
    headers: dict[str, str],
    clients: int = 32,
    processes: int = 2,
    warmup: float = 1.0,
    seconds: float = 5.0,
) -> LoadResult:
    """``clients`` concurrent keep-alive connections spread over ``processes`` processes,
    each sending GET ``path`` back to back; measured after ``warmup`` for ``seconds``."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    queue: Any = mp.get_context("spawn").Queue()
    per = [clients // processes + (i < clients % processes) for i in range(processes)]
    procs = [
        mp.get_context("spawn").Process(
            target=_process, args=((port, request, n, warmup, seconds), queue)
        )
        for n in per
    ]
    for p in procs:
        p.start()
    outs = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for o in outs for x in o["latencies"]]
    errors = sum(o["errors"] for o in outs)
    unfinished = sum(o["unfinished"] for o in outs)
    return LoadResult(len(latencies), errors, seconds, latencies, unfinished)
