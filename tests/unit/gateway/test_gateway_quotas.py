"""Per-user quotas: over-quota configs (422) and too many active trainings (429) are refused
before anything is stored or published, on every create path."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from ezspark_common.broker import InMemoryBroker
from ezspark_common.wire.messages import COMMANDS_QUEUE, EVENTS_QUEUE, TrainingFinished, encode
from ezspark_gateway.main import build_runtime
from ezspark_gateway.settings import GatewaySettings
from ezspark_gateway.storage import Database
from ezspark_gateway.storage.models import Training

PASSWORD = "pw-12345"
# Population 1000 × 5 games × 200 steps = 1,000,000: exactly at the work quota below.
WITHIN = {"initial_population": 100, "max_population": 1000}


@dataclass
class Runtime:
    """The gateway as main() wires it, on the in-memory broker."""

    client: TestClient
    broker: InMemoryBroker
    db: Database

    def signup(self, username: str) -> dict[str, str]:
        """A new user's bearer header."""
        body = {"username": username, "password": PASSWORD}
        assert self.client.post("/api/auth/signup", json=body).status_code == 202
        resp = self.client.post("/api/auth/login", json=body)
        assert resp.status_code == 200, resp.text
        self.client.cookies.clear()
        return {"Authorization": f"Bearer {resp.json()['token']['token']}"}

    def commands(self) -> list[bytes]:
        """What waits on the commands queue for the evolvers."""
        return self.broker.messages(COMMANDS_QUEUE)

    def rows(self) -> int:
        """How many trainings the database holds."""
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(Training)) or 0)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime with small quotas: population 1000, work 1e6, 2 active trainings."""
    settings = GatewaySettings(
        broker_url="memory://",
        database_url=f"sqlite:///{tmp_path}/gateway.db",
        quota_population=1000,
        quota_work_per_generation=1_000_000,
        quota_active_trainings=2,
    )
    runtime = build_runtime(settings, CollectorRegistry())
    assert isinstance(runtime.broker, InMemoryBroker)
    with TestClient(runtime.app) as client:
        yield Runtime(client, runtime.broker, runtime.db)
    runtime.broker.stop()
    runtime.db.dispose()


def test_over_quota_config_is_422_naming_both_limits(
    rt: Runtime, example_dict: dict[str, Any]
) -> None:
    """The spec example (20,000 genomes) breaks both quotas: 422 names each, nothing sent."""
    auth = rt.signup("ada")
    resp = rt.client.post("/api/trainings", json=example_dict, headers=auth)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["detail"] == "invalid training config"
    errors = {e["field"]: e["message"] for e in body["errors"]}
    assert "EZSPARK_QUOTA_POPULATION" in errors["max_population"]
    assert "1,000" in errors["max_population"]
    assert "EZSPARK_QUOTA_WORK_PER_GENERATION" in errors["max_number_of_steps"]
    assert rt.commands() == []
    assert rt.rows() == 0


def test_work_quota_alone_names_its_setting(rt: Runtime, example_dict: dict[str, Any]) -> None:
    """One step over the work quota is refused on max_number_of_steps only, nothing sent."""
    auth = rt.signup("ada")
    config = example_dict | WITHIN | {"max_number_of_steps": 201}
    resp = rt.client.post("/api/trainings", json=config, headers=auth)
    assert resp.status_code == 422
    [error] = resp.json()["errors"]
    assert error["field"] == "max_number_of_steps"
    assert "1,005,000" in error["message"]
    assert "EZSPARK_QUOTA_WORK_PER_GENERATION" in error["message"]
    assert rt.commands() == []
    assert rt.rows() == 0


def test_upload_over_quota_is_422_too(rt: Runtime, example: bytes) -> None:
    """A config uploaded as a file meets the same quotas."""
    auth = rt.signup("ada")
    resp = rt.client.post(
        "/api/trainings", headers=auth, files={"file": ("c.json", example, "application/json")}
    )
    assert resp.status_code == 422
    assert "EZSPARK_QUOTA_POPULATION" in resp.text
    assert rt.commands() == []
    assert rt.rows() == 0


def test_validate_reports_quota_errors_but_not_the_active_count(
    rt: Runtime, example_dict: dict[str, Any]
) -> None:
    """/api/validate gives the quota errors; a user at the active limit still validates."""
    auth = rt.signup("ada")
    over = rt.client.post("/api/validate", json=example_dict, headers=auth)
    assert over.status_code == 422
    assert {e["field"] for e in over.json()["errors"]} == {"max_population", "max_number_of_steps"}
    for _ in range(2):
        assert (
            rt.client.post("/api/trainings", json=example_dict | WITHIN, headers=auth).status_code
            == 201
        )
    assert (
        rt.client.post("/api/validate", json=example_dict | WITHIN, headers=auth).status_code == 200
    )


def test_third_active_training_is_429_until_one_ends(
    rt: Runtime, example_dict: dict[str, Any]
) -> None:
    """With a limit of 2, the third active training gets 429 naming the limit; nothing sent."""
    ada, bob = rt.signup("ada"), rt.signup("bob")
    config = example_dict | WITHIN
    ids = [
        rt.client.post("/api/trainings", json=config, headers=ada).json()["id"] for _ in range(2)
    ]
    rt.client.post(f"/api/trainings/{ids[1]}/stop", headers=ada)  # stopping still counts
    published = rt.commands()
    assert len(published) == 3  # two requests and one stop
    third = rt.client.post("/api/trainings", json=config, headers=ada)
    assert third.status_code == 429, third.text
    assert "EZSPARK_QUOTA_ACTIVE_TRAININGS" in third.json()["detail"]
    assert "limit is 2" in third.json()["detail"]
    assert rt.commands() == published
    assert rt.rows() == 2
    assert rt.client.post("/api/trainings", json=config, headers=bob).status_code == 201
    rt.broker.publish(
        EVENTS_QUEUE,
        encode(
            TrainingFinished(
                training_id=ids[0],
                generations=1,
                best_fitness=1.0,
                reason="generations",
                best_genome=None,
            )
        ),
    )
    rt.broker.drain()
    assert rt.client.post("/api/trainings", json=config, headers=ada).status_code == 201


def _form(example_dict: dict[str, Any], **changes: Any) -> dict[str, str]:
    return {k: str(v) for k, v in (example_dict | changes).items()}


def test_web_form_and_upload_show_quota_errors(
    make_gateway: Any, example_dict: dict[str, Any], example: bytes
) -> None:
    """The form shows quota errors next to their fields, the upload under the file input."""
    gw = make_gateway(quota_population=1000)
    gw.browser_login("web")
    form = gw.client.post("/trainings/new", data=_form(example_dict))
    assert form.status_code == 422
    page = html.unescape(form.text)
    assert 'data-error-for="max_population" aria-live="polite">asks for 20,000 genomes' in page
    assert "EZSPARK_QUOTA_POPULATION" in page
    upload = gw.client.post(
        "/trainings/upload", files={"file": ("c.json", example, "application/json")}
    )
    assert upload.status_code == 422
    assert "max_population: asks for 20,000 genomes" in html.unescape(upload.text)
    assert gw.publisher.sent == []


def test_web_form_at_the_active_limit_says_so(
    make_gateway: Any, example_dict: dict[str, Any]
) -> None:
    """At the active-training limit the form comes back (429) with the reason on top."""
    gw = make_gateway(quota_active_trainings=1)
    gw.browser_login("web")
    bounded = example_dict | {"fitness_threshold": 195}  # no "no stopping point" question
    first = gw.client.post("/trainings/new", data=_form(bounded), follow_redirects=False)
    assert first.status_code == 303
    second = gw.client.post("/trainings/new", data=_form(bounded))
    assert second.status_code == 429
    summary = second.text.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert 'role="alert"' in summary
    assert "you already have 1 active trainings" in summary
    assert "EZSPARK_QUOTA_ACTIVE_TRAININGS" in second.text
    assert len(gw.publisher.sent) == 1
