"""Schemathesis against a REAL gateway process: no request may cause a server error.

The gateway runs on loopback with PostgreSQL (the production database, the stricter one:
NUL bytes, 32-bit integers) and an in-memory broker (commands go nowhere; this is about
the HTTP surface).  Schemathesis (``requirements-faults.txt``) reads ``/openapi.json`` and
runs all four phases (examples, coverage, fuzzing, stateful) with a real bearer token, so
the training endpoints are exercised with valid and invalid data.  The gateway only accepts
a config whose environment it can describe, so a hook (``schemathesis_hooks.py``) points
the configs sent to ``POST /api/trainings`` at CartPole-v1 (every other field stays
generated; ``/api/validate`` still gets arbitrary environment ids), and the user's quota
of active trainings is lifted, as nothing ever trains here.  Bounded by
``--max-examples``; the seed is fixed (``EZSPARK_FUZZ_SEED`` overrides it) so CI is
reproducible.  Only ``not_a_server_error`` is asserted: other conformance findings are
printed for the reader, not failed on.

Log-out and token deletion would revoke the token the run uses, so they get their own
short runs at the end, each with a fresh token.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.faults.common import (
    GatewayProc,
    alive,
    private_database,
    record_figures,
    require_tool,
    start_gateway,
)
from tests.integration.security.broker_users import ADMIN, MANAGEMENT_URL, secure_vhost
from tests.integration.services.procs import processes
from tests.support.configs import REPO

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SEED = os.environ.get("EZSPARK_FUZZ_SEED", "20261125")
MAX_EXAMPLES = os.environ.get("EZSPARK_FUZZ_EXAMPLES", "30")
# Each may revoke the fuzzer's own credential: run alone, with a token of their own.
REVOKING = ("/api/auth/tokens/{token_id}", "/api/auth/sessions/{session_id}", "/api/auth/logout")
HOOKS = "tests.integration.faults.schemathesis_hooks"


def schemathesis(base: str, token: str, report: Path, *selection: str) -> tuple[int, str]:
    """Run the schemathesis CLI against the gateway; exit code and output."""
    command = [
        require_tool_in_venv("schemathesis"),
        "run",
        f"{base}/openapi.json",
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        *selection,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCHEMATHESIS_HOOKS": HOOKS}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, cwd=REPO, env=env
    )
    return done.returncode, done.stdout + done.stderr


def successes(gw: GatewayProc) -> dict[str, float]:
    """2xx answers per "METHOD route" from the gateway's own request counter."""
    text = httpx.get(f"{gw.base}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ezspark_gateway_http_requests_total" and sample.labels[
                "status"
            ].startswith("2"):
                key = f"{sample.labels['method']} {sample.labels['route']}"
                out[key] = out.get(key, 0.0) + sample.value
    return out


def require_tool_in_venv(name: str) -> str:
    """The tool installed next to this interpreter (or on PATH); FAIL if missing."""
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() else require_tool(name)


def test_schemathesis_finds_no_server_error_in_the_gateway_api(tmp_path: Path) -> None:
    """Schemathesis (all phases, real token) gets no 5xx from a real gateway on PostgreSQL."""
    fuzzers = ("fuzzer", *(f"fuzzer-{n}" for n in range(len(REVOKING))))
    # /api/evaluators issues broker users through RabbitMQ's management API: a throw-away
    # vhost, whose users (those the fuzzer's accounts got included) are deleted afterwards.
    with private_database() as db_url, processes() as procs, secure_vhost(fuzzers) as sv:
        # Fuzz the handlers, not the brakes: no log-in limit, no limit of active trainings.
        gw = start_gateway(
            tmp_path,
            procs,
            "memory://",
            database_url=db_url,
            auth_rate_limit=1_000_000,
            quota_active_trainings=1_000_000,
            broker_admin_url=MANAGEMENT_URL,
            broker_admin_user=ADMIN[0],
            broker_admin_password=ADMIN[1],
            evaluator_broker_url=sv.public_url,
        )
        started = time.monotonic()
        code, output = schemathesis(
            gw.base,
            gw.signup(fuzzers[0]),
            tmp_path / "main.xml",
            *(arg for path in REVOKING for arg in ("--exclude-path", path)),
        )
        print(output[-6000:])
        assert code == 0, f"schemathesis found server errors:\n{output[-20000:]}"
        revoking = ""
        for n, path in enumerate(REVOKING):
            code, out = schemathesis(
                gw.base,
                gw.signup(fuzzers[n + 1]),
                tmp_path / f"revoking-{n}.xml",
                "--include-path",
                path,
            )
            print(out[-3000:])
            assert code == 0, f"schemathesis found server errors:\n{out[-20000:]}"
            assert "returned only 401" not in out, "the token was revoked before the run"
            revoking += out
        seconds = time.monotonic() - started
        reached = successes(gw)
        # The training endpoints were really exercised, not only refused with 401/404/422.
        for operation in (
            "POST /api/trainings",
            "GET /api/trainings/{training_id}",
            "GET /api/trainings/{training_id}/generations",
            "POST /api/evaluators",
        ):
            assert reached.get(operation, 0) >= 1, (operation, reached)
        errors = [
            line
            for line in gw.proc.log_path.read_text().splitlines()
            if '"unhandled_error"' in line
        ]
        assert errors == [], errors[:5]
        assert alive(gw.proc)
        assert gw.proc.stop() == 0
    cases = [line for line in (output + revoking).splitlines() if "generated," in line]
    record_figures(
        "schemathesis",
        {
            "seed": SEED,
            "max_examples": MAX_EXAMPLES,
            "seconds": round(seconds, 1),
            "test_cases": cases,
            "successful_requests": reached,
        },
    )
