"""Load clients that are not the bottleneck: several Python processes, each holding
keep-alive HTTP/1.1 connections on raw asyncio streams (no HTTP library per request),
or ``wrk`` (compiled, Debian package ``wrk``) when it is installed.  Both report the CPU
they used, so a run can tell whether the client was part of the ceiling."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
    # CPU seconds the client itself used while measuring (all its processes).
    client_cpu_s: float = 0.0
    # Quantiles a tool reported itself (wrk), in ms, when there are no latencies.
    reported: dict[float, float] = field(default_factory=dict)
    # CPU seconds the server used over the measured run, when a meter was given (wrk).
    server_cpu_s: float | None = None

    @property
    def per_s(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

    @property
    def client_cores(self) -> float:
        """How many cores the client kept busy on average (2.0: both of a 2-core box)."""
        return self.client_cpu_s / self.seconds

    def quantile(self, q: float) -> float:
        """Latency quantile in ms (nearest rank)."""
        if not self.latencies_ms:
            return self.reported.get(q, 0.0)
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _cpu_window(warmup_end: float, end: float, out: dict[str, Any]) -> None:
    """This process's CPU seconds between ``warmup_end`` and ``end``."""
    await asyncio.sleep(max(0.0, warmup_end - time.perf_counter()))
    before = _cpu()
    await asyncio.sleep(max(0.0, end - time.perf_counter()))
    out["cpu_s"] = _cpu() - before


async def _client(
    port: int, request: bytes, connections: int, warmup: float, seconds: float
) -> Any:
    out: dict[str, Any] = {"latencies": [], "errors": 0, "cpu_s": 0.0}
    start = time.perf_counter()
    meter = asyncio.create_task(_cpu_window(start + warmup, start + warmup + seconds, out))
    tasks = [
        asyncio.create_task(
            _connection(port, request, start + warmup, start + warmup + seconds, out)
        )
        for _ in range(connections)
    ]
    _, stalled = await asyncio.wait(tasks, timeout=warmup + seconds + 10)
    for task in stalled:
        task.cancel()
    await meter
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
    try:  # a client process that died never answers: fail instead of waiting for ever
        outs = [queue.get(timeout=warmup + seconds + 60) for _ in procs]
    except Exception as exc:
        codes = [p.exitcode for p in procs]
        for p in procs:
            p.kill()
        raise RuntimeError(f"a load client process failed (exit codes {codes})") from exc
    for p in procs:
        p.join()
    latencies = [x for o in outs for x in o["latencies"]]
    errors = sum(o["errors"] for o in outs)
    unfinished = sum(o["unfinished"] for o in outs)
    cpu = sum(o["cpu_s"] for o in outs)
    return LoadResult(len(latencies), errors, seconds, latencies, unfinished, cpu)


def have_wrk() -> bool:
    """Whether ``wrk`` is on the PATH."""
    return shutil.which("wrk") is not None


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    port: int,
    path: str,
    headers: dict[str, str],
    clients: int = 32,
    threads: int = 2,
    warmup: float = 1.0,
    seconds: float = 5.0,
    server_cpu: Callable[[], float] | None = None,
) -> LoadResult:
    """The same stage driven by ``wrk`` (``clients`` keep-alive connections on
    ``threads`` threads): a warm-up run, then the measured one.  ``server_cpu``: the
    server's CPU seconds so far, read around the measured run."""
    cmd = ["wrk", f"-t{threads}", f"-c{clients}", "--latency"]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    url = f"http://127.0.0.1:{port}{path}"
    subprocess.run([*cmd, f"-d{max(1, round(warmup))}s", url], capture_output=True, check=True)
    served = server_cpu() if server_cpu else 0.0
    before = os.times()
    done = subprocess.run([*cmd, f"-d{round(seconds)}s", url], capture_output=True, check=True)
    after = os.times()
    served = server_cpu() - served if server_cpu else 0.0
    text = done.stdout.decode()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    count, took = re.search(r"(\d+) requests in (\S+),", text).groups()  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    errors = (int(bad.group(1)) if bad else 0) + (
        sum(int(socket.group(i)) for i in (1, 2, 3)) if socket else 0
    )
    quantiles = {
        int(pct) / 100: _wrk_ms(value)
        for pct, value in re.findall(r"^\s+(50|99)%\s+(\S+)$", text, re.MULTILINE)
    }
    timeouts = int(socket.group(4)) if socket else 0
    result = LoadResult(int(count), errors, _wrk_ms(took) / 1000, [], timeouts, cpu, quantiles)
    result.server_cpu_s = served if server_cpu else None
    return result
