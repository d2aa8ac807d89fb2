"""The whole HTTP flow on each database: sign up, create, events, history, best, readiness."""

from __future__ import annotations

import json
from pathlib import Path

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ezspark_common.wire.messages import GenerationFinished, TrainingFinished, WireGenome
from ezspark_gateway.app import create_app
from ezspark_gateway.core.events import EventApplier
from ezspark_gateway.core.ports import Command
from ezspark_gateway.core.security import Passwords
from ezspark_gateway.settings import GatewaySettings
from ezspark_gateway.storage import Database

EXAMPLE = Path(__file__).parents[2] / "unit" / "gateway" / "data" / "example-config.json"


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[Command] = []

    def publish(self, msg: Command) -> None:
        self.sent.append(msg)


def _app(database: Database, recorder: _Recorder) -> FastAPI:
    return create_app(
        GatewaySettings(database_url=database.url),
        publisher=recorder,
        broker_ping=lambda: None,
        database=database,
        passwords=Passwords(PasswordHasher(time_cost=1, memory_cost=64)),
    )


def test_full_flow(database: Database) -> None:
    """Example config → 201 → reports and finish applied → history and genome download."""
    recorder = _Recorder()
    with TestClient(_app(database, recorder)) as client:
        body = {"username": "ada", "password": "pw-12345"}
        client.post("/api/auth/signup", json=body)
        signup = client.post("/api/auth/login", json=body)
        headers = {"Authorization": f"Bearer {signup.json()['token']['token']}"}
        client.cookies.clear()
        created = client.post(
            "/api/trainings",
            content=EXAMPLE.read_bytes(),
            headers=headers | {"Content-Type": "application/json"},
        )
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        assert recorder.sent[0].training_id == tid
        sink = EventApplier(database.sessions)
        for gen in range(3):
            sink.handle(
                GenerationFinished(
                    training_id=tid,
                    generation=gen,
                    best_fitness=gen * 10.0,
                    mean_fitness=gen * 5.0,
                    species=2,
                    population=100,
                    evaluations_per_s=50.0,
                    best_genome_key=gen,
                )
            )
        genome = WireGenome(
            key=2, node_ids=[0], biases=[0.0], innov=[], src=[], dst=[], weight=[], enabled=[]
        )
        sink.handle(
            TrainingFinished(
                training_id=tid,
                generations=3,
                best_fitness=20.0,
                reason="generations",
                best_genome=genome,
            )
        )
        detail = client.get(f"/api/trainings/{tid}", headers=headers).json()
        assert (detail["status"], detail["generations"]) == ("finished", 3)
        history = client.get(f"/api/trainings/{tid}/generations", headers=headers).json()
        assert [r["best_fitness"] for r in history["items"]] == [0.0, 10.0, 20.0]
        best = client.get(f"/api/trainings/{tid}/best", headers=headers)
        assert WireGenome.model_validate_json(best.content) == genome
        assert client.get("/readyz").status_code == 200


def test_hostile_inputs_never_500(database: Database) -> None:
    """NUL bytes, huge numbers and junk ids get 4xx answers on every database, never 500."""
    recorder = _Recorder()
    with TestClient(_app(database, recorder), raise_server_exceptions=False) as client:
        body = {"username": "eve", "password": "pw-12345"}
        client.post("/api/auth/signup", json=body)
        signup = client.post("/api/auth/login", json=body)
        h = {"Authorization": f"Bearer {signup.json()['token']['token']}"}
        client.cookies.clear()
        config = json.loads(EXAMPLE.read_bytes()) | {"gym_game_name": "Cart\x00Pole"}
        probes = [
            ("GET", "/api/trainings/%00", {}),
            ("GET", "/api/trainings/" + "a" * 5000, {}),
            ("POST", "/api/trainings/%00/stop", {}),
            ("GET", "/api/trainings/%00/best", {}),
            ("GET", "/api/trainings?offset=" + "9" * 30, {}),
            ("GET", "/api/trainings/x/generations?since=" + "9" * 30, {}),
            ("DELETE", "/api/auth/tokens/" + "9" * 30, {}),
            ("POST", "/api/auth/login", {"json": {"username": "a\x00", "password": "x"}}),
            ("POST", "/api/auth/signup", {"json": {"username": "a\x00", "password": "x" * 9}}),
            ("POST", "/api/auth/tokens", {"json": {"name": "a\x00b"}}),
            ("POST", "/api/trainings", {"json": config}),
            ("GET", "/trainings/%00", {}),
        ]
        for method, path, kwargs in probes:
            resp = client.request(method, path, headers=h, **kwargs)
            assert resp.status_code < 500, (method, path, resp.text)
        web = client.post("/login", data={"username": "a\x00", "password": "whatever"})
        assert web.status_code == 401
