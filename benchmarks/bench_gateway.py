"""Gateway reads against a bare FastAPI app: same load client, same machine, same run.

Starts the bare app (``bare_app.py``, served by ``bare_server.py`` with the gateway's own
uvicorn options and supervisor) and the gateway (in-memory broker, SQLite or
PostgreSQL, its production log level: one access line per request) side by side with
the same number of worker processes, then loads each endpoint in turn, in rounds, with
each client of ``load_client``: several Python processes of raw keep-alive connections,
and ``wrk`` when it is installed.  Each stage records the client's own CPU, so a run
shows whether the client was part of the ceiling, and with wrk the server's CPU per
request.  ``python -m benchmarks.bench_gateway`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.load_client import LoadResult, have_wrk, run_load, run_wrk

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PASSWORD = "bench-gateway-secret"
GOAL_RATIO, GOAL_P99_MS = 0.8, 100.0
READ = "gateway GET /api/trainings (authenticated)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _call(port: int, method: str, path: str, body: Any = None, token: str = "") -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # a busy 2-core machine starts slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            _call(port, "GET", "/healthz")
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("server not ready")


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its live descendants (Linux)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])))
    tick = os.sysconf("SC_CLK_TCK")
    tree, total = {pid}, 0.0
    for _ in range(4):  # supervisor, workers, their helpers
        tree |= {p for p, (ppid, _) in stats.items() if ppid in tree}
    for p in tree:
        total += stats.get(p, (0, 0))[1] / tick
    return total


@contextmanager
def _server(cmd: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    """The server's process id, once it answers."""
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_ready(port, proc)
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _gateway_env(port: int, workers: int, database_url: str) -> dict[str, str]:
    return {
        "EZSPARK_PORT": str(port),
        "EZSPARK_BROKER_URL": "memory://",
        "EZSPARK_DATABASE_URL": database_url,
        "EZSPARK_WORKERS": str(workers),
        # Production's level: the gateway logs one access line per request (written to
        # /dev/null here); the bare app logs none.
        "EZSPARK_LOG_LEVEL": "INFO",
        "EZSPARK_MAX_CONNECTIONS": "4096",
        "EZSPARK_AUTH_RATE_LIMIT": "1000",
        "PYTHONPATH": str(REPO),
    }


def _token(port: int) -> str:
    body = {"username": "reader", "password": PASSWORD}
    _call(port, "POST", "/api/auth/signup", body)
    token: str = _call(port, "POST", "/api/auth/login", body)["token"]["token"]
    config = json.loads((REPO / "examples" / "spec-example.json").read_text())
    for _ in range(3):  # a list with rows in it (creation may be refused: still a read)
        try:
            _call(port, "POST", "/api/trainings", config, token)
        except OSError:
            break
    return token


def _stage(name: str, client: str, result: LoadResult) -> dict[str, Any]:
    return {
        "name": name,
        "client": client,
        "requests": result.requests,
        "errors": result.errors,
        "unfinished": result.unfinished,
        "per_s": round(result.per_s, 1),
        "p50_ms": round(result.quantile(0.5), 2),
        "p99_ms": round(result.quantile(0.99), 2),
        "client_cpu_s": round(result.client_cpu_s, 2),
        "client_cores": round(result.client_cores, 2),
        "server_cpu_ms_per_request": (
            None
            if result.server_cpu_s is None or not result.requests
            else round(result.server_cpu_s / result.requests * 1000, 3)
        ),
    }


def _clients(server: int) -> dict[str, Any]:
    """The load clients, wrk reading ``server``'s CPU around its measured run."""
    clients: dict[str, Any] = {"python": run_load}
    if have_wrk():
        clients["wrk"] = partial(run_wrk, server_cpu=partial(tree_cpu, server))
    return clients


def _round(
    bare: tuple[int, int], gateways: list[tuple[str, int, int]], auth: dict[str, str], load: Any
) -> list[dict[str, Any]]:
    """One round: each client loads the bare app's endpoints (port, pid), then each
    gateway's (label, port, pid): the first one's /healthz and read, the others' read."""
    stages = []
    for client, loader in _clients(bare[1]).items():
        for path in ("/healthz", "/healthz-sync"):
            result = loader(bare[0], path, {}, **load)
            stages.append(_stage(f"bare FastAPI {path}", client, result))
        for i, (label, port, pid) in enumerate(gateways):
            loader = _clients(pid)[client]
            if i == 0:
                result = loader(port, "/healthz", {}, **load)
                stages.append(_stage("gateway /healthz", client, result))
            read = loader(port, "/api/trainings", auth, **load)
            stages.append(_stage(READ if i == 0 else f"{READ} [{label}]", client, read))
    return stages


def run(
    quick: bool = False,
    workers: int = 2,
    clients: int = 32,
    database_url: str = "",
    rounds: int = 2,
    compare_src: str = "",
) -> dict[str, Any]:
    """Measure the bare app's endpoints and the gateway's; figures per stage and client.

    The servers run side by side and are loaded in turn, ``rounds`` times (once when
    ``quick``), so that all see the same spells of a busy machine; ``rows`` compares
    the best round of each.  ``compare_src``: another gateway's source directory (its
    ``services/gateway/src``), served as well, its read measured as "[compare]"."""
    seconds = 3.0 if quick else 6.0
    ports = [_free_port() for _ in range(3)]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"ezspark-bench-gw-{os.getpid()}.db"
    url = database_url or f"sqlite:///{tmp}"
    bare = [str(BIN / "python"), "-m", "benchmarks.bare_server"]
    gateway = [str(BIN / "ezspark-gateway")]
    stages = []
    load = {"clients": clients, "seconds": seconds}
    load_before = os.getloadavg()
    with ExitStack() as servers:
        bare_pid = servers.enter_context(
            _server(bare, _gateway_env(ports[0], workers, url), ports[0])
        )
        gw_pid = servers.enter_context(
            _server(gateway, _gateway_env(ports[1], workers, url), ports[1])
        )
        gateways = [("gateway", ports[1], gw_pid)]
        auth = {"Authorization": f"Bearer {_token(ports[1])}"}
        if compare_src:
            env = {**_gateway_env(ports[2], workers, url), "PYTHONPATH": f"{compare_src}:{REPO}"}
            pid = servers.enter_context(_server(gateway, env, ports[2]))
            gateways.append(("compare", ports[2], pid))
        for _ in range(1 if quick else rounds):
            stages += _round((ports[0], bare_pid), gateways, auth, load)
    tmp.unlink(missing_ok=True)
    return {
        "workers": workers,
        "clients": clients,
        "database": url.split(":")[0],
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "stages": stages,
    }


def rows(result: dict[str, Any]) -> list[str]:
    """Table rows for ``benchmarks.run``, one per load client: the read's best round
    against the faster bare endpoint's best round, measured with the same client."""
    out = []
    for client in dict.fromkeys(s["client"] for s in result["stages"]):
        stages = [s for s in result["stages"] if s["client"] == client]
        read = max((s for s in stages if s["name"] == READ), key=lambda s: s["per_s"])
        bare = max((s for s in stages if s["name"].startswith("bare")), key=lambda s: s["per_s"])
        ratio = read["per_s"] / bare["per_s"]
        met = ratio >= GOAL_RATIO and read["p99_ms"] < GOAL_P99_MS
        met = met and read["errors"] == read["unfinished"] == 0
        where = f"{result['clients']} clients, {result['workers']} workers, {result['database']}"
        cpu = ""
        if read["server_cpu_ms_per_request"] is not None:
            cpu = (
                f", server CPU {read['server_cpu_ms_per_request']:.2f} ms/request "
                f"(bare {bare['server_cpu_ms_per_request']:.2f})"
            )
        out.append(
            f"| gateway authenticated read ({where}, {client} client at "
            f"{read['client_cores']:.2f} cores) | {read['per_s']:.0f} req/s, p99 "
            f"{read['p99_ms']:.0f} ms{cpu} | {bare['name']}: {bare['per_s']:.0f} req/s | "
            f"{ratio:.2f}× | ≥ {GOAL_RATIO}× and p99 < {GOAL_P99_MS:.0f} ms | "
            f"{'met' if met else 'NOT met'} |"
        )
    return out


def main() -> None:
    """Run alone and print every stage."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all stages")
    parser.add_argument("--compare-src", default="", help="another gateway source to read")
    args = parser.parse_args()
    result = run(
        args.quick, args.workers, args.clients, args.database_url, args.rounds, args.compare_src
    )
    print(json.dumps({"load_average (1, 5, 15 min; before, after)": result["load_average"]}))
    for stage in result["stages"]:
        print(json.dumps(stage))
    print("\n".join(rows(result)))


if __name__ == "__main__":
    main()
