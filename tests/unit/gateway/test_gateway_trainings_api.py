"""POST/GET /api/trainings: acceptance of the spec example, validation, limits, ownership."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ezspark_common.config import SPEC_KEYS
from ezspark_common.wire.messages import StopRequested, TrainingRequested


def test_spec_example_accepted_as_json_body(gw: Any, example: bytes) -> None:
    """The spec's example JSON, byte for byte, creates a queued training and publishes it."""
    token = gw.signup("ada")
    resp = gw.client.post("/api/trainings", content=example, headers=gw.auth(token, json=True))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "queued"
    assert resp.headers["location"] == f"/api/trainings/{body['id']}"
    [msg] = gw.publisher.sent
    assert isinstance(msg, TrainingRequested)
    assert (msg.training_id, msg.owner) == (body["id"], "ada")
    sent = json.loads(example)
    assert {k: msg.config[k] for k in SPEC_KEYS} == sent


def test_spec_example_accepted_as_file_upload(gw: Any, example: bytes) -> None:
    """The same bytes uploaded as multipart field ``file`` create a training too."""
    token = gw.signup()
    resp = gw.client.post(
        "/api/trainings",
        headers=gw.auth(token),
        files={"file": ("example-config.json", example, "application/json")},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["config"]["gym_game_name"] == "CartPole-v0"
    assert len(gw.publisher.sent) == 1


def test_bad_value_is_422_naming_the_field(gw: Any, example_dict: dict[str, Any]) -> None:
    """An out-of-range rate answers 422 with the field and the rule, and publishes nothing."""
    token = gw.signup()
    example_dict["crossover_rate"] = 1.5
    resp = gw.client.post("/api/trainings", json=example_dict, headers=gw.auth(token))
    assert resp.status_code == 422
    errors = resp.json()["errors"]
    assert errors == [
        {"field": "crossover_rate", "message": "input should be less than or equal to 1"}
    ]
    assert gw.publisher.sent == []


def test_cross_key_rule_names_the_field(gw: Any, example_dict: dict[str, Any]) -> None:
    """A rule between two keys (sub_games <= max_number_of_games) names the offending key."""
    token = gw.signup()
    example_dict["sub_games"] = 9
    resp = gw.client.post("/api/trainings", json=example_dict, headers=gw.auth(token))
    assert resp.status_code == 422
    assert {"field": "sub_games", "message": "must be at most max_number_of_games"} in resp.json()[
        "errors"
    ]


def test_unknown_key_gets_did_you_mean(gw: Any, example_dict: dict[str, Any]) -> None:
    """A misspelt key is refused with a did-you-mean suggestion of the real key."""
    token = gw.signup()
    example_dict["generatons"] = example_dict.pop("generations")
    resp = gw.client.post("/api/trainings", json=example_dict, headers=gw.auth(token))
    assert resp.status_code == 422
    messages = {e["field"]: e["message"] for e in resp.json()["errors"]}
    assert messages["generatons"] == "unknown key; did you mean 'generations'?"
    assert messages["generations"] == "is required"


def test_bad_file_upload_is_422(gw: Any) -> None:
    """An uploaded file that is not valid JSON is a 422 saying so."""
    token = gw.signup()
    resp = gw.client.post(
        "/api/trainings",
        headers=gw.auth(token),
        files={"file": ("c.json", b"{not json", "application/json")},
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "config"
    assert "not valid JSON" in resp.json()["errors"][0]["message"]


def test_multipart_without_file_field_is_422(gw: Any) -> None:
    """A multipart post without the ``file`` field says the file is required."""
    token = gw.signup()
    resp = gw.client.post(
        "/api/trainings",
        headers=gw.auth(token),
        data={"other": "x"},
        files={"nope": ("c.json", b"{}", "application/json")},
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "file"


def test_oversized_declared_body_is_413(make_gateway: Any, example: bytes) -> None:
    """A Content-Length over max_body_bytes is refused with 413."""
    gw = make_gateway(max_body_bytes=2048)
    token = gw.signup()
    resp = gw.client.post(
        "/api/trainings", content=b" " * 5000 + example, headers=gw.auth(token, json=True)
    )
    assert resp.status_code == 413
    assert "2048" in resp.json()["detail"]


def test_oversized_streamed_body_is_413(make_gateway: Any) -> None:
    """A chunked body without Content-Length is cut off at the limit with 413."""
    gw = make_gateway(max_body_bytes=2048)
    token = gw.signup()

    def chunks() -> Any:
        for _ in range(1000):
            yield b" " * 512

    resp = gw.client.post("/api/trainings", content=chunks(), headers=gw.auth(token, json=True))
    assert resp.status_code == 413
    assert gw.publisher.sent == []


def test_oversized_upload_is_413(make_gateway: Any) -> None:
    """A multipart upload over the limit is 413 as well."""
    gw = make_gateway(max_body_bytes=2048)
    token = gw.signup()
    resp = gw.client.post(
        "/api/trainings",
        headers=gw.auth(token),
        files={"file": ("c.json", b" " * 10_000, "application/json")},
    )
    assert resp.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_wrong_content_type_is_415(gw: Any, example: bytes, content_type: str | None) -> None:
    """Bodies that are neither JSON nor multipart are refused with 415."""
    token = gw.signup()
    headers = gw.auth(token)
    if content_type:
        headers["Content-Type"] = content_type
    resp = gw.client.post("/api/trainings", content=example, headers=headers)
    assert resp.status_code == 415
    assert "application/json" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", "is not valid JSON"),
        (b"", "is empty"),
        (b"[1, 2]", "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"\xff\xfe{}", "is not UTF-8"),
        (b"[" * 50_000 + b"]" * 50_000, "nests deeper"),
        (b'{"input_size": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nests deeper"),
        (b'{"input_size": 1' + b"0" * 5000 + b"}", "is not valid JSON"),
    ],
)
def test_malformed_json_is_422_not_500(make_gateway: Any, body: bytes, expected: str) -> None:
    """Malformed, non-object, non-UTF-8, NaN, deeply nested or huge-number JSON is a clear 422."""
    gw = make_gateway(max_body_bytes=200_000)
    token = gw.signup()
    resp = gw.client.post("/api/trainings", content=body, headers=gw.auth(token, json=True))
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == "config"
    assert expected in resp.json()["errors"][0]["message"]


def test_nan_literal_is_422_naming_its_key(make_gateway: Any, example_dict: dict[str, Any]) -> None:
    """A NaN literal (which Python's JSON parser accepts) is refused under its own key."""
    gw = make_gateway()
    token = gw.signup()
    body = json.dumps(example_dict).replace('"safeness": 0.5', '"safeness": NaN')
    resp = gw.client.post(
        "/api/trainings", content=body.encode(), headers=gw.auth(token, json=True)
    )
    assert resp.status_code == 422, resp.text
    errors = resp.json()["errors"]
    assert [e["field"] for e in errors] == ["safeness"]
    assert "finite" in errors[0]["message"]


def test_wrong_types_are_422(gw: Any, example_dict: dict[str, Any]) -> None:
    """Strings, booleans and floats where integers belong are refused per field."""
    token = gw.signup()
    example_dict.update(input_size="4", keep_parents=True, generations=1.5, species_threshold=False)
    resp = gw.client.post("/api/trainings", json=example_dict, headers=gw.auth(token))
    assert resp.status_code == 422
    fields = {e["field"] for e in resp.json()["errors"]}
    assert fields == {"input_size", "keep_parents", "generations", "species_threshold"}


def test_broker_down_is_503_and_marks_training_failed(gw: Any, example: bytes) -> None:
    """When the command cannot be published the client gets 503 and the row says why."""
    token = gw.signup()
    gw.publisher.fail = True
    resp = gw.client.post("/api/trainings", content=example, headers=gw.auth(token, json=True))
    assert resp.status_code == 503
    [item] = gw.client.get("/api/trainings", headers=gw.auth(token)).json()["items"]
    assert item["status"] == "failed"


def test_list_get_and_detail(gw: Any) -> None:
    """The list holds only the caller's trainings; detail has config and no report yet."""
    ada, bob = gw.signup(), gw.signup()
    first, second = gw.create(ada), gw.create(ada)
    gw.create(bob)
    gw.clock.now += 1
    listing = gw.client.get("/api/trainings", headers=gw.auth(ada)).json()
    assert listing["total"] == 2
    assert {i["id"] for i in listing["items"]} == {first, second}
    detail = gw.client.get(f"/api/trainings/{first}", headers=gw.auth(ada)).json()
    assert detail["status"] == "queued"
    assert detail["config"]["max_population"] == 20000
    assert detail["latest_report"] is None
    assert detail["has_best_genome"] is False


def test_stop_publishes_and_sets_stopping(gw: Any) -> None:
    """Stopping publishes StopRequested and the status becomes ``stopping``."""
    token = gw.signup()
    tid = gw.create(token)
    resp = gw.client.post(f"/api/trainings/{tid}/stop", headers=gw.auth(token))
    assert resp.status_code == 202
    assert resp.json()["status"] == "stopping"
    assert isinstance(gw.publisher.sent[-1], StopRequested)
    assert gw.publisher.sent[-1].training_id == tid


def test_another_users_training_is_404(gw: Any) -> None:
    """Another user's training answers 404 for get, stop, best and history alike."""
    owner, intruder = gw.signup(), gw.signup()
    tid = gw.create(owner)
    sent_before = len(gw.publisher.sent)
    h = gw.auth(intruder)
    assert gw.client.get(f"/api/trainings/{tid}", headers=h).status_code == 404
    assert gw.client.post(f"/api/trainings/{tid}/stop", headers=h).status_code == 404
    assert gw.client.get(f"/api/trainings/{tid}/best", headers=h).status_code == 404
    assert gw.client.get(f"/api/trainings/{tid}/generations", headers=h).status_code == 404
    assert len(gw.publisher.sent) == sent_before
    assert gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(owner)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/trainings"),
        ("POST", "/api/trainings"),
        ("GET", "/api/trainings/x"),
        ("POST", "/api/trainings/x/stop"),
        ("GET", "/api/trainings/x/best"),
        ("GET", "/api/trainings/x/generations"),
        ("POST", "/api/auth/tokens"),
    ],
)
def test_no_token_is_401(gw: Any, method: str, path: str) -> None:
    """Every training and token endpoint answers 401 without credentials."""
    resp = gw.client.request(
        method, path, content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"


def test_validate_endpoint_uses_the_same_rules(gw: Any, example_dict: dict[str, Any]) -> None:
    """POST /api/validate accepts the example and refuses a bad value like creation does."""
    ok = gw.client.post("/api/validate", json=example_dict)
    assert ok.status_code == 200
    assert ok.json()["config"]["seed"] == 0
    example_dict["safeness"] = -1
    bad = gw.client.post("/api/validate", json=example_dict)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "safeness"
