"""The environment registry fed by evaluator announcements, and checking configs against it."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from ezspark_common.config import parse_config
from ezspark_common.evaluation.envs import EnvInfo, describe
from ezspark_common.wire.messages import ANNOUNCE_EXCHANGE, EnvSpace, EvaluatorAnnounced, encode
from ezspark_gateway.core.env_check import EnvironmentCheck
from ezspark_gateway.core.environments import EnvironmentRegistry
from tests.unit.gateway.conftest import MemoryRuntime

GRID = EnvSpace(
    env_id="EzCustom/Grid-v0",
    input_size=2,
    output_size=3,
    action_space="Discrete(3)",
    observation_space="Box(0, 9, (2,), int64)",
    max_episode_steps=50,
)
CARTPOLE = EnvSpace(
    env_id="CartPole-v1",
    input_size=4,
    output_size=2,
    action_space="Discrete(2)",
    observation_space="Box(-inf, inf, (4,))",
    max_episode_steps=500,
)


def announced(
    evaluator: str, *spaces: EnvSpace, interval: float = 5.0, leaving: bool = False
) -> EvaluatorAnnounced:
    """An announcement as an evaluator sends it."""
    return EvaluatorAnnounced(
        evaluator_id=evaluator, envs=list(spaces), interval_s=interval, leaving=leaving
    )


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_evaluator_expires_after_three_intervals_but_env_stays_known() -> None:
    """An evaluator is live for 3 × interval_s after its last announcement; its env stays known."""
    clock = Clock()
    reg = EnvironmentRegistry(clock)
    assert reg.announce(announced("ev-1", GRID, interval=5.0)) is True
    clock.now += 14.9
    assert reg.live() == ["EzCustom/Grid-v0"]
    clock.now += 0.1
    assert reg.live() == []
    assert reg.live_evaluators() == []
    assert reg.space("EzCustom/Grid-v0") == GRID
    assert [(k.space.env_id, k.evaluators) for k in reg.known()] == [("EzCustom/Grid-v0", 0)]


def test_reannouncing_renews_and_counts_evaluators_per_env() -> None:
    """A repeated announcement pushes the expiry back; each env counts its live evaluators."""
    clock = Clock()
    reg = EnvironmentRegistry(clock)
    reg.announce(announced("ev-1", GRID, CARTPOLE, interval=5.0))
    reg.announce(announced("ev-2", CARTPOLE, interval=60.0))
    clock.now += 10
    assert reg.announce(announced("ev-1", GRID, CARTPOLE, interval=5.0)) is False  # renewal
    clock.now += 10
    assert reg.live_counts() == {"EzCustom/Grid-v0": 1, "CartPole-v1": 2}
    clock.now += 10
    assert reg.live_counts() == {"CartPole-v1": 1}


def test_leaving_removes_the_evaluator_at_once() -> None:
    """``leaving=True`` ends an evaluator's liveness immediately, not after expiry."""
    reg = EnvironmentRegistry(Clock())
    reg.announce(announced("ev-1", GRID))
    reg.announce(announced("ev-2", GRID))
    assert reg.announce(announced("ev-1", GRID, leaving=True)) is True
    assert reg.live_counts() == {"EzCustom/Grid-v0": 1}
    reg.announce(announced("ev-2", GRID, leaving=True))
    assert reg.live() == []
    assert reg.announce(announced("ev-2", GRID, leaving=True)) is False  # already gone
    assert reg.space("EzCustom/Grid-v0") == GRID


def _config(example_dict: dict[str, Any], **changes: Any) -> Any:
    return parse_config(example_dict | changes)


def test_announced_space_refuses_wrong_sizes(example_dict: dict[str, Any]) -> None:
    """A config naming an announced env must match its input_size and output_size."""
    reg = EnvironmentRegistry(Clock())
    reg.announce(announced("ev-1", GRID))
    check = EnvironmentCheck(reg)
    errors = check.errors(_config(example_dict, gym_game_name="EzCustom/Grid-v0"))
    assert [k for k, _ in errors] == ["input_size", "output_size"]
    assert "'EzCustom/Grid-v0' observations have 2 values" in errors[0][1]
    ok = _config(example_dict, gym_game_name="EzCustom/Grid-v0", input_size=2, output_size=3)
    assert check.errors(ok) == []


def test_plain_gymnasium_id_is_described_here_once(example_dict: dict[str, Any]) -> None:
    """An unannounced plain Gymnasium id is described locally, and only once (cached)."""
    calls: list[str] = []

    def counting(env_id: str) -> EnvInfo:
        calls.append(env_id)
        return describe(env_id)

    check = EnvironmentCheck(EnvironmentRegistry(Clock()), counting)
    assert check.errors(_config(example_dict, gym_game_name="CartPole-v1")) == []
    wrong = check.errors(_config(example_dict, gym_game_name="CartPole-v1", input_size=5))
    assert [k for k, _ in wrong] == ["input_size"]
    assert calls == ["CartPole-v1"]


def test_unknown_env_is_refused_naming_served_envs_and_close_matches(
    example_dict: dict[str, Any],
) -> None:
    """An id nobody announced and Gymnasium lacks is refused with what is served now."""
    reg = EnvironmentRegistry(Clock())
    check = EnvironmentCheck(reg)
    [(key, message)] = check.errors(_config(example_dict, gym_game_name="EzCustom/Grid-v1"))
    assert key == "gym_game_name"
    assert message.startswith("no evaluator has announced 'EzCustom/Grid-v1'")
    assert "no evaluator serves any environment right now" in message
    reg.announce(announced("ev-1", GRID, CARTPOLE))
    [(_, message)] = check.errors(_config(example_dict, gym_game_name="EzCustom/Grid-v1"))
    assert "close matches: EzCustom/Grid-v0" in message
    assert "served now: CartPole-v1, EzCustom/Grid-v0" in message


def test_plugin_module_ids_are_never_imported(example_dict: dict[str, Any]) -> None:
    """``module:Id`` that no evaluator announced is refused without importing the module."""
    called: list[str] = []
    check = EnvironmentCheck(
        EnvironmentRegistry(Clock()), lambda e: called.append(e) or describe(e)
    )  # type: ignore[func-returns-value]
    name = "ezspark_not_a_real_plugin"
    [(key, message)] = check.errors(_config(example_dict, gym_game_name=f"{name}:Env-v0"))
    assert key == "gym_game_name"
    assert f"no evaluator has announced '{name}:Env-v0'" in message
    assert called == []
    assert name not in sys.modules


def test_registered_but_unusable_env_says_why(example_dict: dict[str, Any]) -> None:
    """A Gymnasium id the gateway can build but EzSpark cannot use is refused with the reason;
    a bounded Box (Pendulum) is usable and its sizes are checked."""
    import gymnasium as gym
    from gymnasium import spaces

    class Switches(gym.Env[Any, Any]):
        observation_space = spaces.Box(-1.0, 1.0, (4,))
        action_space = spaces.MultiBinary(2)

    check = EnvironmentCheck(EnvironmentRegistry(Clock()))
    gym.register("EzTestSwitches-v0", entry_point=Switches)
    try:
        [(key, message)] = check.errors(_config(example_dict, gym_game_name="EzTestSwitches-v0"))
    finally:
        del gym.registry["EzTestSwitches-v0"]
    assert key == "gym_game_name"
    assert "MultiBinary action space, which EzSpark does not support" in message
    errors = dict(check.errors(_config(example_dict, gym_game_name="Pendulum-v1")))
    assert "Box action space of 1 values" in errors["output_size"]
    ok = _config(example_dict, gym_game_name="Pendulum-v1", input_size=3, output_size=1)
    assert check.errors(ok) == []


def test_api_refuses_wrong_sizes_and_unknown_envs(gw: Any, example_dict: dict[str, Any]) -> None:
    """POST /api/trainings and /api/validate refuse sizes that contradict an announcement."""
    gw.app.state.ctx.environments.announce(announced("ev-1", GRID))
    token = gw.signup()
    bad = example_dict | {"gym_game_name": "EzCustom/Grid-v0"}
    for path in ("/api/trainings", "/api/validate"):
        resp = gw.client.post(path, json=bad, headers=gw.auth(token))
        assert resp.status_code == 422, resp.text
        assert [e["field"] for e in resp.json()["errors"]] == ["input_size", "output_size"]
    unknown = gw.client.post(
        "/api/trainings", json=example_dict | {"gym_game_name": "Nope-v9"}, headers=gw.auth(token)
    )
    assert unknown.status_code == 422
    message = unknown.json()["errors"][0]["message"]
    assert message.startswith("no evaluator has announced 'Nope-v9'")
    assert "served now: EzCustom/Grid-v0" in message
    assert gw.publisher.sent == []


def test_anonymous_validate_does_not_list_served_envs(
    gw: Any, example_dict: dict[str, Any]
) -> None:
    """/api/validate is public, so without credentials it names no served environment."""
    gw.app.state.ctx.environments.announce(announced("ev-1", GRID))
    resp = gw.client.post("/api/validate", json=example_dict | {"gym_game_name": "Nope-v9"})
    assert resp.status_code == 422
    [error] = resp.json()["errors"]
    assert error == {
        "field": "gym_game_name",
        "message": "no evaluator has announced 'Nope-v9'; log in to see the environments served",
    }


def test_known_env_without_live_evaluator_is_accepted(
    gw: Any, example_dict: dict[str, Any]
) -> None:
    """An env announced earlier but served by nobody now is accepted: the training waits."""
    envs = gw.app.state.ctx.environments
    envs.announce(announced("ev-1", GRID, interval=1.0))
    envs.announce(announced("ev-2", GRID, leaving=True))
    gw.clock.now += 10  # ev-1 expired too
    assert envs.live() == []
    token = gw.signup()
    config = example_dict | {"gym_game_name": "EzCustom/Grid-v0", "input_size": 2, "output_size": 3}
    resp = gw.client.post("/api/trainings", json=config, headers=gw.auth(token))
    assert resp.status_code == 201, resp.text
    assert gw.publisher.sent[0].config["gym_game_name"] == "EzCustom/Grid-v0"


def test_environments_endpoint_lists_known_envs_with_live_counts(gw: Any) -> None:
    """GET /api/environments: every known env, its sizes and spaces, and live evaluators."""
    assert gw.client.get("/api/environments").status_code == 401
    envs = gw.app.state.ctx.environments
    envs.announce(announced("ev-1", GRID, CARTPOLE, interval=5.0))
    envs.announce(announced("ev-2", CARTPOLE, interval=100.0))
    gw.clock.now += 20  # ev-1 expired
    token = gw.signup()
    resp = gw.client.get("/api/environments", headers=gw.auth(token))
    assert resp.status_code == 200
    assert resp.json() == {
        "items": [
            {
                "env_id": "CartPole-v1",
                "input_size": 4,
                "output_size": 2,
                "action_space": "Discrete(2)",
                "observation_space": "Box(-inf, inf, (4,))",
                "max_episode_steps": 500,
                "evaluators": 1,
            },
            {
                "env_id": "EzCustom/Grid-v0",
                "input_size": 2,
                "output_size": 3,
                "action_space": "Discrete(3)",
                "observation_space": "Box(0, 9, (2,), int64)",
                "max_episode_steps": 50,
                "evaluators": 0,
            },
        ]
    }


def test_environments_endpoint_is_documented(gw: Any) -> None:
    """The OpenAPI document describes /api/environments with its response model."""
    spec = gw.client.get("/openapi.json").json()
    ok = spec["paths"]["/api/environments"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/EnvironmentList")
    item = spec["components"]["schemas"]["EnvironmentOut"]["properties"]
    assert {
        "env_id",
        "input_size",
        "output_size",
        "action_space",
        "observation_space",
        "max_episode_steps",
        "evaluators",
    } <= set(item)


def test_runtime_learns_envs_from_broadcast_announcements(memory_runtime: MemoryRuntime) -> None:
    """build_runtime subscribes to ANNOUNCE_EXCHANGE; bad broadcasts are dropped harmlessly."""
    broker, client = memory_runtime.broker, memory_runtime.client
    broker.broadcast(ANNOUNCE_EXCHANGE, b"not json")
    broker.broadcast(ANNOUNCE_EXCHANGE, encode(announced("ev-1", GRID)))
    broker.drain()
    items = client.get("/api/environments").json()["items"]
    assert [(i["env_id"], i["evaluators"]) for i in items] == [("EzCustom/Grid-v0", 1)]
    broker.broadcast(ANNOUNCE_EXCHANGE, encode(announced("ev-1", GRID, leaving=True)))
    broker.drain()
    assert client.get("/api/environments").json()["items"][0]["evaluators"] == 0


@pytest.mark.parametrize("source", ["announced", "gymnasium"])
def test_web_form_shows_environment_errors_next_to_the_field(
    gw: Any, example_dict: dict[str, Any], source: str
) -> None:
    """The form shows size mismatches from either source next to the input_size field."""
    name = "EzCustom/Grid-v0" if source == "announced" else "CartPole-v1"
    if source == "announced":
        gw.app.state.ctx.environments.announce(announced("ev-1", GRID))
    gw.browser_login("webby")
    data = {k: str(v) for k, v in example_dict.items()} | {"gym_game_name": name, "input_size": "7"}
    if source == "announced":  # the form offers the announced envs as suggestions
        assert (
            f'<option value="{name}">2 inputs, 3 outputs, 1 evaluator</option>'
            in gw.client.get("/trainings/new").text
        )
    resp = gw.client.post("/trainings/new", data=data)
    assert resp.status_code == 422
    assert json.dumps(name)[1:-1] in resp.text
    assert "observations have" in resp.text
    assert gw.publisher.sent == []
