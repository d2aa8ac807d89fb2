"""Bring your own machine, end to end: a user's own evaluator serves an environment the
cluster's evaluators lack, and the training completes.

The stack runs as real processes in a fresh vhost where every service has its own
least-privilege broker user (``tests/integration/security/broker_users``): gateway (with
the management-API issuer), evolver, and an operator evaluator that has only CartPole.
The user signs up, mints an API token and starts ``ezspark evaluator --gateway URL`` with
it and the custom environment's module installed; the gateway issues that machine a
broker user, the training of the custom environment runs on it alone and equals the
embedded run, and stopping the machine deletes its broker user again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from ezspark_common.cli.supervise import HUNG_EXIT_CODE
from ezspark_common.trainer.checkpoints import load_checkpoint
from tests.integration.faults.common import logged
from tests.integration.security.broker_users import MANAGEMENT_URL, SecureVhost, secure_vhost
from tests.integration.services import slow_envs
from tests.integration.services.harness import (
    SLOW_ENVS,
    assert_same_run,
    config,
    embedded,
)
from tests.integration.services.procs import Proc, free_port, processes, service_env
from tests.support.waiting import wait_until

FAULT_ENVS = "tests.integration.faults.fault_envs"
USERNAME = "ada"  # its own vhost: no clash with other runs
CFG = config(gym_game_name=slow_envs.ENV_ID, generations=3, safeness=0.0)


def _wait_ready(base: str) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 30, "the gateway to be ready")


def _announced(api: httpx.Client, env_id: str) -> bool:
    return any(
        e["env_id"] == env_id and e["evaluators"] >= 1
        for e in api.get("/api/environments").json()["items"]
    )


def _start_cluster(sv: SecureVhost, tmp: Path, procs: list[Proc]) -> tuple[str, Proc]:
    """Evolver, an operator evaluator with CartPole only, and the gateway with its issuer,
    each on its own broker user; the gateway's URL once ready, and the operator evaluator."""
    evolver = Proc(
        "ezspark-evolver",
        tmp / "evolver.log",
        service_env(broker_url=sv.url("evolver"), data_dir=tmp / "data", metrics_port=0),
    )
    operator = Proc(
        "ezspark-evaluator",
        tmp / "operator.log",
        service_env(
            broker_url=sv.url("evaluator"),
            broker_declares="false",
            evaluator_id="operator-cartpole",
            envs="CartPole-v1",
            env_modules="",
            metrics_port=free_port(),
            announce_interval_s=1.0,
        ),
    )
    procs.extend([evolver, operator])
    evolver.wait_log("evolver_active")
    port = free_port()
    procs.append(
        Proc(
            "ezspark-gateway",
            tmp / "gateway.log",
            service_env(
                broker_url=sv.url("gateway"),
                broker_declares="false",
                broker_admin_url=MANAGEMENT_URL,
                broker_admin_user="guest",
                broker_admin_password="guest",
                evaluator_broker_url=sv.public_url,
                host="127.0.0.1",
                port=port,
                metrics_port=0,
                database_url=f"sqlite:///{tmp / 'gateway.db'}",
            ),
        )
    )
    base = f"http://127.0.0.1:{port}"
    _wait_ready(base)
    return base, operator


def _own_machine(tmp: Path, base: str, token: str, **settings: Any) -> Proc:
    """`ezspark evaluator --gateway` with the API token and the custom env's module."""
    values: dict[str, Any] = {"env_modules": SLOW_ENVS, "envs": slow_envs.ENV_ID, **settings}
    env = service_env(token=token, log_json="true", announce_interval_s=1.0, **values)
    return Proc("ezspark", tmp / "own-machine.log", env, args=("evaluator", "--gateway", base))


def _laptop_token(api: httpx.Client) -> str:
    """Sign up, log in (the client keeps the session) and mint an API token."""
    body = {"username": USERNAME, "password": "byo-laptop-pass"}
    api.post("/api/auth/signup", json=body).raise_for_status()
    signup = api.post("/api/auth/login", json=body)
    api.headers["Authorization"] = f"Bearer {signup.json()['token']['token']}"
    token: str = api.post("/api/auth/tokens", json={"name": "laptop"}).json()["token"]
    return token


def _finished(api: httpx.Client, training_id: str) -> dict[str, Any]:
    """The training's detail once it ended."""

    def ended() -> dict[str, Any] | None:
        detail: dict[str, Any] = api.get(f"/api/trainings/{training_id}").json()
        return detail if detail["status"] in ("finished", "failed", "stopped") else None

    result: dict[str, Any] = wait_until(ended, 120, "the training to end")
    return result


def test_own_machine_serves_an_environment_the_cluster_lacks(tmp_path: Path) -> None:
    """Signed-up user, API token, `ezspark evaluator --gateway` with the custom env's module:
    the gateway lists the environment, the training finishes on that machine only, equals
    the embedded run, and the machine's broker user is gone once it stops."""
    with secure_vhost((USERNAME,)) as sv, processes() as procs:
        base, operator = _start_cluster(sv, tmp_path, procs)
        with httpx.Client(base_url=base, timeout=10) as api:
            token = _laptop_token(api)
            wait_until(lambda: _announced(api, "CartPole-v1"), 30, "the operator's evaluator")
            assert not _announced(api, slow_envs.ENV_ID)  # the cluster lacks it
            mine = _own_machine(tmp_path, base, token)
            procs.append(mine)
            name = mine.wait_log("evaluator_credential_issued")["evaluator_id"]
            assert name.startswith(f"evu.{USERNAME}.")
            wait_until(lambda: _announced(api, slow_envs.ENV_ID), 30, "the own machine's env")
            created = api.post("/api/trainings", json=CFG)
            assert created.status_code == 201, created.text
            tid = created.json()["id"]
            detail = _finished(api, tid)
            assert detail["status"] == "finished", detail
            assert operator.metric("ezspark_evaluator_genomes_total") == 0
            assert mine.stop() == 0
            assert name not in sv.admin.users("evu.")  # it deleted its broker user
    assert_same_run(load_checkpoint(tmp_path / "data" / tid), embedded(CFG))


HUNG_ENV = "EzFault/Hang-v0"  # its 3rd step never returns
HUNG_CFG = config(
    gym_game_name=HUNG_ENV, input_size=2, output_size=2, minimum_reward=-1, safeness=0.0
)


def _first_report(api: httpx.Client, training_id: str) -> dict[str, Any]:
    def reported() -> dict[str, Any] | None:
        items = api.get(f"/api/trainings/{training_id}/generations").json()["items"]
        return dict(items[0]) if items else None

    report: dict[str, Any] = wait_until(reported, 120, "the first generation's report")
    return report


def _stuck_machine(
    api: httpx.Client, tmp: Path, base: str, token: str, procs: list[Proc], **settings: Any
) -> Proc:
    """The own machine serving the environment whose step never returns, and a training on
    it whose first report shows every genome at the floor with "hung"."""
    mine = _own_machine(
        tmp, base, token, env_modules=FAULT_ENVS, envs=HUNG_ENV, task_hang_s=2, **settings
    )
    procs.append(mine)
    wait_until(lambda: _announced(api, HUNG_ENV), 60, "the own machine's env")
    created = api.post("/api/trainings", json=HUNG_CFG)
    assert created.status_code == 201, created.text
    report = _first_report(api, created.json()["id"])
    assert report["errors"] == report["population"]
    assert "hung" in (report["first_error"] or "")
    return mine


def test_own_machine_stuck_in_its_environment_starts_again_without_piling_up_users(
    tmp_path: Path,
) -> None:
    """Playing tasks in its own process (``EZSPARK_ISOLATE_ENVS=false``), a step that never
    returns: after task_hang_s the machine settles its task, deletes its broker user and
    exits 75; `ezspark evaluator` starts it again with a new user, the training moves on
    (its genomes at the floor, the errors counted and explained), and a stop deletes the
    last user too."""
    with secure_vhost((USERNAME,)) as sv, processes() as procs:
        base, _ = _start_cluster(sv, tmp_path, procs)
        with httpx.Client(base_url=base, timeout=10) as api:
            token = _laptop_token(api)
            mine = _stuck_machine(api, tmp_path, base, token, procs, isolate_envs="false")
            names = [r["evaluator_id"] for r in logged(mine, "evaluator_credential_issued")]
            assert len(names) >= 2  # started again after a hang, with a user of its own
            assert len(set(names)) == len(names)
            assert len(logged(mine, "evaluation_hung")) >= len(names) - 1
            live = set(sv.admin.users("evu."))
            assert len([n for n in names if n in live]) <= 1  # the running one, if any
            # A stop during a hang ends with it (75), else cleanly; never a restart after it.
            assert mine.stop() in (0, HUNG_EXIT_CODE)
            assert not set(names) & set(sv.admin.users("evu."))


def test_own_machine_stuck_in_its_environment_goes_on_with_one_broker_user(
    tmp_path: Path,
) -> None:
    """Tasks played in a child process (the default), a step that never returns: after
    task_hang_s the machine settles each stuck task and kills its child, never restarts,
    keeps its one broker user, the training moves on (its genomes at the floor, "hung"),
    and a clean stop deletes the user."""
    with secure_vhost((USERNAME,)) as sv, processes() as procs:
        base, _ = _start_cluster(sv, tmp_path, procs)
        with httpx.Client(base_url=base, timeout=10) as api:
            token = _laptop_token(api)
            mine = _stuck_machine(api, tmp_path, base, token, procs)
            (name,) = [r["evaluator_id"] for r in logged(mine, "evaluator_credential_issued")]
            assert logged(mine, "evaluation_hung")
            assert name in sv.admin.users("evu.")
            assert mine.stop() == 0
            assert name not in sv.admin.users("evu.")
