"""Fixtures for gateway unit tests: an app on SQLite in a tmp dir with in-process fakes."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

with warnings.catch_warnings():
    # Starlette nags about its httpx-based TestClient; irrelevant to these tests.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from ezspark_common.broker import InMemoryBroker
from ezspark_gateway.app import create_app
from ezspark_gateway.core.ports import Command
from ezspark_gateway.core.security import Passwords
from ezspark_gateway.main import build_runtime
from ezspark_gateway.settings import GatewaySettings
from ezspark_gateway.storage import Database

DATA = Path(__file__).parent / "data"
# Cheap Argon2 parameters: the tests check behaviour, not hashing cost.
FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
PASSWORD = "s3cret-password"
# What a browser on the test client's base URL sends with every POST.
ORIGIN = "http://testserver"


@dataclass
class FakePublisher:
    """Records every command; ``fail`` makes it raise like a broker that is down."""

    sent: list[Command] = field(default_factory=list)
    fail: bool = False

    def publish(self, msg: Command) -> None:
        """Record ``msg`` or raise."""
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append(msg)


@dataclass
class FakeBroker:
    """Readiness answer of the broker, switchable by tests."""

    up: bool = True

    def ping(self) -> None:
        """Raise while down."""
        if not self.up:
            raise ConnectionError("broker down")


class Clock:
    """A clock tests can move."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Gateway:
    """One app under test and its fakes."""

    app: FastAPI
    client: TestClient
    db: Database
    publisher: FakePublisher
    broker: FakeBroker
    clock: Clock
    registry: CollectorRegistry
    tmp: Path
    _names: Iterator[int] = field(default_factory=itertools.count)

    def signup(self, username: str | None = None) -> str:
        """Create a user and log in; return a bearer token for it (no cookie kept)."""
        name = username or f"user{next(self._names)}"
        body = {"username": name, "password": PASSWORD}
        resp = self.client.post("/api/auth/signup", json=body)
        assert resp.status_code == 202, resp.text
        resp = self.client.post("/api/auth/login", json=body)
        assert resp.status_code == 200, resp.text
        self.client.cookies.clear()
        token: str = resp.json()["token"]["token"]
        return token

    def browser_login(self, username: str = "web", password: str = PASSWORD) -> None:
        """Sign up and log in through the pages, so the client holds the session cookie."""
        form = {"username": username, "password": password}
        resp = self.client.post("/signup", data=form, follow_redirects=False)
        assert resp.status_code == 303, resp.text
        assert resp.headers["location"] == "/login?signed_up=1"
        resp = self.client.post("/login", data=form, follow_redirects=False)
        assert resp.status_code == 303, resp.text

    def create(self, token: str, config: bytes | None = None) -> str:
        """Create a training from ``config`` (default: the spec example); return its id."""
        resp = self.client.post(
            "/api/trainings", content=config or example_bytes(), headers=self.auth(token, json=True)
        )
        assert resp.status_code == 201, resp.text
        training_id: str = resp.json()["id"]
        return training_id

    @staticmethod
    def auth(token: str, *, json: bool = False) -> dict[str, str]:
        """Headers carrying a bearer token (and a JSON content type)."""
        headers = {"Authorization": f"Bearer {token}"}
        if json:
            headers["Content-Type"] = "application/json"
        return headers


def example_bytes() -> bytes:
    """The spec's example config, byte for byte."""
    return (DATA / "example-config.json").read_bytes()


GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Build gateways on SQLite files in ``tmp_path``; settings overridable by keyword."""
    built: list[Gateway] = []

    def build(**overrides: Any) -> Gateway:
        path = tmp_path / f"gw{len(built)}"
        path.mkdir()
        settings = GatewaySettings(
            database_url=f"sqlite:///{path}/gateway.db",
            max_body_bytes=overrides.pop("max_body_bytes", 64_000),
            **overrides,
        )
        db = Database(settings.database_url)
        db.create_schema()
        publisher, broker, clock, registry = (
            FakePublisher(),
            FakeBroker(),
            Clock(),
            CollectorRegistry(),
        )
        app = create_app(
            settings,
            publisher=publisher,
            broker_ping=broker.ping,
            registry=registry,
            database=db,
            passwords=FAST_PASSWORDS,
            clock=clock,
        )
        gw = Gateway(
            app=app,
            client=TestClient(app, headers={"Origin": ORIGIN}),
            db=db,
            publisher=publisher,
            broker=broker,
            clock=clock,
            registry=registry,
            tmp=path,
        )
        built.append(gw)
        return gw

    yield build
    for gw in built:
        gw.client.close()
        gw.db.dispose()


@pytest.fixture
def gw(make_gateway: GatewayFactory) -> Gateway:
    """A gateway with default settings."""
    return make_gateway()


@pytest.fixture
def example() -> bytes:
    """The spec's example config, byte for byte."""
    return example_bytes()


@pytest.fixture
def example_dict() -> dict[str, Any]:
    """The spec's example config, decoded."""
    import json

    data: dict[str, Any] = json.loads(example_bytes())
    return data


@dataclass
class MemoryRuntime:
    """The gateway as ``main`` builds it, on the in-memory broker, with a signed-up client."""

    broker: InMemoryBroker
    client: TestClient


@pytest.fixture
def memory_runtime(tmp_path: Path) -> Iterator[MemoryRuntime]:
    """``build_runtime`` on ``memory://`` and SQLite; user "ada" is signed up."""
    settings = GatewaySettings(
        broker_url="memory://", database_url=f"sqlite:///{tmp_path}/gateway.db"
    )
    rt = build_runtime(settings, CollectorRegistry())
    assert isinstance(rt.broker, InMemoryBroker)
    try:
        client = TestClient(rt.app, headers={"Origin": ORIGIN})
        body = {"username": "ada", "password": PASSWORD}
        assert client.post("/api/auth/signup", json=body).status_code == 202
        assert client.post("/api/auth/login", json=body).status_code == 200
        yield MemoryRuntime(rt.broker, client)
    finally:
        rt.broker.stop()
        rt.db.dispose()
