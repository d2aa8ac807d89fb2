"""Users' own evaluators on the real RabbitMQ: issued for a token, gone with it, and
outvoted and quarantined (with every machine of their user) when they lie as volunteers.

Each test has a fresh vhost with the deployments' least-privilege service users
(``broker_users``); the gateway runs in-process with its management-API issuer, the
evaluators as real processes or threads with the broker users they were issued.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from ezspark_common.broker import BrokerError, connect
from ezspark_common.wire.messages import COMMANDS_QUEUE, TrainingRequested, encode
from ezspark_common.wire.routing import account_tag, fronted_queues
from ezspark_evaluator.service import EvaluatorService
from ezspark_evaluator.settings import EvaluatorSettings
from ezspark_evolver.service import EvolverService
from ezspark_evolver.settings import EvolverSettings
from ezspark_gateway.app import create_app
from ezspark_gateway.core.evaluators import EvaluatorIssuer
from ezspark_gateway.main import sweep_once
from ezspark_gateway.settings import GatewaySettings
from tests.integration.security.broker_users import broker, evolver_topology, secure_vhost
from tests.integration.services.harness import (
    InThread,
    assert_same_run,
    config,
    embedded,
    finished,
)
from tests.integration.services.procs import Proc, free_port, processes, service_env
from tests.support.waiting import wait_until

ENV = "CartPole-v1"


class _NoCommands:
    """The gateway's command publisher; these tests post no training through it."""

    def publish(self, msg: object) -> None:
        """Drop it."""


def test_revoked_token_disconnects_its_evaluator(tmp_path: Path) -> None:
    """A machine started with an API token gets a broker user of its own and connects;
    revoking the token deletes that user, RabbitMQ closes the connection, and the
    evaluator stops instead of retrying (its credentials are refused)."""
    username = f"alice{uuid.uuid4().hex[:6]}"
    with secure_vhost((username,)) as sv:
        evolver_topology(sv)
        settings = GatewaySettings(database_url=f"sqlite:///{tmp_path / 'gateway.db'}")
        app = create_app(
            settings,
            publisher=_NoCommands(),
            broker_ping=lambda: None,
            evaluators=EvaluatorIssuer(sv.admin, sv.public_url, 4),
        )
        with TestClient(app) as api:
            body = {"username": username, "password": "pw-123456"}
            api.post("/api/auth/signup", json=body)
            signup = api.post("/api/auth/login", json=body)
            session = {"Authorization": f"Bearer {signup.json()['token']['token']}"}
            token = api.post("/api/auth/tokens", headers=session, json={"name": "laptop"}).json()
            issued = api.post(
                "/api/evaluators", headers={"Authorization": f"Bearer {token['token']}"}
            ).json()
            name = issued["evaluator_id"]
            assert name.startswith(f"evu.{username}.t{token['id']}x")
            registry = CollectorRegistry()
            cfg = EvaluatorSettings(
                broker_url=issued["broker_url"],
                evaluator_id=name,
                envs=ENV,
                metrics_port=0,
                broker_declares=False,
                announce_interval_s=1.0,
            )
            bus = connect(
                cfg.broker_url, registry=registry, fronted=fronted_queues(), declares=False
            )
            service, ended = EvaluatorService(cfg, bus, registry), []

            def serve() -> None:
                try:
                    service.run()
                except BrokerError as exc:  # what revocation must cause
                    ended.append(exc)

            threading.Thread(target=serve, daemon=True).start()
            wait_until(lambda: sv.connections(name), 20, "the machine to connect")
            assert api.get("/api/evaluators", headers=session).json()["items"] == [name]
            revoked = api.delete(f"/api/auth/tokens/{token['id']}", headers=session)
            assert revoked.status_code == 204
            wait_until(lambda: ended, 30, "the evaluator to stop")
            assert "ACCESS_REFUSED" in str(ended[0])  # refused, not retried
            wait_until(lambda: not sv.connections(name), 20, "its connection to be gone")
            assert api.get("/api/evaluators", headers=session).json()["items"] == []


def test_sweep_leaves_the_users_of_another_vhost_alone() -> None:
    """Two installations on one broker (a vhost each): one gateway's sweep deletes its own
    unvouched machine users and never the other installation's."""
    username = f"olga{uuid.uuid4().hex[:6]}"
    with secure_vhost((username,)) as ours, secure_vhost((username,)) as theirs:
        mine, _ = ours.issue(username, volunteer=False)
        other, _ = theirs.issue(username, volunteer=False)
        issuer = EvaluatorIssuer(ours.admin, ours.public_url, 4)
        assert issuer.sweep(lambda ids: set()) == 1  # no token vouches for either name
        tag = account_tag(username)
        assert ours.admin.users(f"evu.{tag}.") == []
        assert theirs.admin.users(f"evu.{tag}.") == [other]
        assert mine != other


def test_expired_token_loses_its_machines_at_the_next_sweep(tmp_path: Path) -> None:
    """A token that expires (nobody revokes it) loses its machines' broker users at the
    gateway's next sweep, and RabbitMQ closes their connections; a live token's machine
    is left alone."""
    username = f"erin{uuid.uuid4().hex[:6]}"
    with secure_vhost((username,)) as sv:
        evolver_topology(sv)
        settings = GatewaySettings(database_url=f"sqlite:///{tmp_path / 'gateway.db'}")
        issuer = EvaluatorIssuer(sv.admin, sv.public_url, 4)
        app = create_app(
            settings, publisher=_NoCommands(), broker_ping=lambda: None, evaluators=issuer
        )
        with TestClient(app) as api:
            body = {"username": username, "password": "pw-123456"}
            api.post("/api/auth/signup", json=body)
            login = api.post("/api/auth/login", json=body)
            session = {"Authorization": f"Bearer {login.json()['token']['token']}"}
            short, long = (
                api.post(
                    "/api/auth/tokens", headers=session, json={"name": n, "expires_in_days": d}
                ).json()
                for n, d in (("short", 1), ("long", 30))
            )
            names = [
                api.post(
                    "/api/evaluators", headers={"Authorization": f"Bearer {t['token']}"}
                ).json()
                for t in (short, long)
            ]
            buses = [
                connect(n["broker_url"], fronted=fronted_queues(), declares=False) for n in names
            ]
            try:
                for n in names:
                    wait_until(lambda n=n: sv.connections(n["evaluator_id"]), 20, "a connection")
                assert sweep_once(issuer, app.state.ctx.db, time.time()) == 0  # both live
                two_days = time.time() + 2 * 24 * 3600
                assert sweep_once(issuer, app.state.ctx.db, two_days) == 1
                expired, live = (n["evaluator_id"] for n in names)
                wait_until(lambda: not sv.connections(expired), 20, "its connection to close")
                assert sv.admin.users(f"evu.{account_tag(username)}.") == [live]
                assert sv.connections(live)
            finally:
                for bus in buses:
                    bus.stop()


def _evaluator(tmp: Path, name: str, url: str, **settings: object) -> Proc:
    """An evaluator process on ``url`` that declares nothing (least privilege)."""
    env = service_env(
        broker_url=url,
        evaluator_id=name,
        broker_declares="false",
        envs=ENV,
        announce_interval_s=1.0,
        metrics_port=free_port(),
        **settings,
    )
    return Proc("ezspark-evaluator", tmp / f"{name}.log", env)


def test_lying_volunteer_is_caught_and_quarantined_with_its_account(tmp_path: Path) -> None:
    """With safeness 1, two operator evaluators and Mallory's volunteer machine that adds
    1.5 to every return: Alice's training sends the volunteer part of its tasks, the
    re-checks catch the lie, a third evaluator outvotes it, the machine and Mallory's whole
    account are quarantined, and the run equals the embedded one."""
    cfg = config(safeness=1.0, generations=4, alone_training_iterations=1)
    tid = "volunteer-liar"
    with secure_vhost() as sv, processes() as procs:
        registry = CollectorRegistry()
        evo_cfg = EvolverSettings(
            broker_url=sv.url("evolver"),
            data_dir=str(tmp_path),
            metrics_port=0,
            task_batch_size=4,
            task_timeout_s=30.0,
            announce_grace_s=2.0,
        )
        bus = connect(evo_cfg.broker_url, registry=registry, fronted=fronted_queues())
        evo = InThread(EvolverService(evo_cfg, bus, registry), registry)
        try:
            liar, liar_url = sv.issue("mallory", volunteer=True)
            procs.append(_evaluator(tmp_path, liar, liar_url, fault_fitness_offset=1.5))
            for honest in ("operator-a", "operator-b"):
                procs.append(_evaluator(tmp_path, honest, sv.url("evaluator")))
            wait_until(
                lambda: len(evo.service.ctx.registry.serving(ENV)) == 3, 30, "three evaluators"
            )
            request = TrainingRequested(
                training_id=tid, owner="alice", config=cfg, requested_at=time.time()
            )
            with broker(sv.url("gateway")) as gateway:
                gateway.publish(COMMANDS_QUEUE, encode(request), message_id=tid)
            state = finished(tmp_path, tid)
            assert evo.metric("ezspark_evolver_safeness_mismatches_total") > 0
        finally:
            evo.stop()
    quarantined = set(json.loads((tmp_path / tid / "quarantine.json").read_text()))
    assert quarantined == {liar, "account:mallory"}
    assert_same_run(state, embedded(cfg))
