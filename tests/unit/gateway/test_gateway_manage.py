"""Managing runs through the API: PATCH name/tags/notes/archived, DELETE, list filters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from ezspark_common.wire.messages import GenerationFinished, TrainingFailed, TrainingFinished
from ezspark_gateway.core.events import EventApplier


def _end(gw: Any, tid: str, *, best: float | None = None, failed: bool = False) -> None:
    """Apply evolver events that end the run (a report with ``best``, then the end)."""
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    if best is not None:
        sink.handle(
            GenerationFinished(
                training_id=tid,
                generation=0,
                best_fitness=best,
                mean_fitness=best / 2,
                species=1,
                population=10,
                evaluations_per_s=1.0,
                best_genome_key=1,
            )
        )
    if failed:
        sink.handle(TrainingFailed(training_id=tid, error="boom"))
    else:
        reason = "generations"
        sink.handle(
            TrainingFinished(
                training_id=tid,
                generations=1,
                best_fitness=best or 0.0,
                reason=reason,
                best_genome=None,
            )
        )


def _config(example_dict: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps(example_dict | changes).encode()


def _patch(gw: Any, token: str, tid: str, body: Any) -> Any:
    return gw.client.patch(f"/api/trainings/{tid}", json=body, headers=gw.auth(token))


def test_patch_sets_and_clears_name_tags_notes(gw: Any) -> None:
    """PATCH changes only the fields sent, normalises tags, and null clears a field."""
    token = gw.signup()
    tid = gw.create(token)
    body = {"name": "  baseline  ", "tags": ["CartPole", "seed-1", "cartpole"], "notes": "a\nb"}
    resp = _patch(gw, token, tid, body)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert (got["name"], got["tags"], got["notes"]) == ("baseline", ["cartpole", "seed-1"], "a\nb")
    resp = _patch(gw, token, tid, {"notes": None})
    assert resp.json()["name"] == "baseline"
    assert resp.json()["tags"] == ["cartpole", "seed-1"]
    assert resp.json()["notes"] is None
    listed = gw.client.get("/api/trainings", headers=gw.auth(token)).json()["items"][0]
    assert (listed["name"], listed["tags"]) == ("baseline", ["cartpole", "seed-1"])


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "x" * 101}, "name", "at most 100 characters"),
        ({"name": "two\nlines"}, "name", "one line"),
        ({"tags": ["ok", "not ok"]}, "tags", "is not a tag"),
        ({"tags": ["-dash-first"]}, "tags", "is not a tag"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags", "at most 10 tags"),
        ({"tags": ["x" * 33]}, "tags", "is not a tag"),
        ({"notes": "n" * 10_001}, "notes", "at most 10000 characters"),
        ({"notes": "bell\x07"}, "notes", "printable"),
        ({"tags": "cartpole"}, "tags", "valid list"),
        ({"archived": "maybe"}, "archived", "valid boolean"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_patch_validation_is_422_naming_the_field(
    gw: Any, body: dict[str, Any], field: str, words: str
) -> None:
    """Each broken rule is a 422 whose errors name the field, and nothing changes."""
    token = gw.signup()
    tid = gw.create(token)
    resp = _patch(gw, token, tid, body)
    assert resp.status_code == 422, resp.text
    errors = resp.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    assert words in errors[0]["message"]
    got = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    assert (got["name"], got["tags"], got["notes"]) == (None, None, None)


def test_patch_needs_json_and_the_owner(gw: Any) -> None:
    """A non-JSON PATCH is 415; another user's training is 404 and stays unchanged."""
    owner, intruder = gw.signup(), gw.signup()
    tid = gw.create(owner)
    resp = gw.client.patch(
        f"/api/trainings/{tid}",
        content=b"name=x",
        headers=gw.auth(owner) | {"Content-Type": "text/plain"},
    )
    assert resp.status_code == 415
    assert _patch(gw, intruder, tid, {"name": "mine"}).status_code == 404
    assert _patch(gw, intruder, "not-an-id", {"name": "mine"}).status_code == 404
    assert gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(owner)).json()["name"] is None


def test_archive_hides_an_ended_run_and_refuses_an_active_one(gw: Any) -> None:
    """Archiving an active run is 409; an ended one leaves the default list until restored."""
    token = gw.signup()
    h = gw.auth(token)
    tid = gw.create(token)
    resp = _patch(gw, token, tid, {"archived": True})
    assert resp.status_code == 409
    assert "stop it" in resp.json()["detail"]
    _end(gw, tid)
    resp = _patch(gw, token, tid, {"archived": True})
    assert resp.status_code == 200
    assert resp.json()["archived_at"] == gw.clock.now
    assert gw.client.get("/api/trainings", headers=h).json()["total"] == 0
    only = gw.client.get("/api/trainings?archived=only", headers=h).json()
    assert [t["id"] for t in only["items"]] == [tid]
    assert gw.client.get("/api/trainings?archived=include", headers=h).json()["total"] == 1
    assert _patch(gw, token, tid, {"archived": False}).json()["archived_at"] is None
    assert gw.client.get("/api/trainings", headers=h).json()["total"] == 1


def test_patch_is_all_or_nothing(gw: Any) -> None:
    """A refused archive keeps the name sent with it; a bad tag keeps the archive unchanged."""
    token = gw.signup()
    tid = gw.create(token)
    assert _patch(gw, token, tid, {"name": "n1", "archived": True}).status_code == 409
    _end(gw, tid)
    assert _patch(gw, token, tid, {"tags": ["bad tag"], "archived": True}).status_code == 422
    got = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()
    assert (got["name"], got["archived_at"]) == (None, None)


def test_delete_removes_an_ended_run_with_its_history(gw: Any) -> None:
    """DELETE of an active run is 409 and keeps it; once ended it is gone with its history."""
    token = gw.signup()
    h = gw.auth(token)
    tid = gw.create(token)
    resp = gw.client.delete(f"/api/trainings/{tid}", headers=h)
    assert resp.status_code == 409
    assert "stop it" in resp.json()["detail"]
    assert gw.client.get(f"/api/trainings/{tid}", headers=h).status_code == 200
    _end(gw, tid, best=5.0)
    assert gw.client.get(f"/api/trainings/{tid}/generations", headers=h).json()["items"]
    assert gw.client.delete(f"/api/trainings/{tid}", headers=h).status_code == 204
    assert gw.client.get(f"/api/trainings/{tid}", headers=h).status_code == 404
    assert gw.client.get(f"/api/trainings/{tid}/generations", headers=h).status_code == 404
    assert gw.client.delete(f"/api/trainings/{tid}", headers=h).status_code == 404
    with gw.db.sessions() as session:
        rows = session.execute(
            text("SELECT count(*) FROM generations WHERE training_id = :t"), {"t": tid}
        ).scalar()
    assert rows == 0


def test_delete_is_owner_only(gw: Any) -> None:
    """Another user's DELETE is 404 and the run survives; no credentials is 401."""
    owner, intruder = gw.signup(), gw.signup()
    tid = gw.create(owner)
    _end(gw, tid)
    assert gw.client.delete(f"/api/trainings/{tid}", headers=gw.auth(intruder)).status_code == 404
    assert gw.client.delete(f"/api/trainings/{tid}").status_code == 401
    assert gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(owner)).status_code == 200


def test_list_filters_and_sorts(gw: Any, example_dict: dict[str, Any]) -> None:
    """status, env, tag and q filter the list (combined with AND); sort orders it."""
    token = gw.signup()
    h = gw.auth(token)
    made: dict[str, str] = {}
    specs = [
        ("alpha", "CartPole-v1", ["cartpole", "base_1"], 10.0, False),
        ("Beta run", "CartPole-v1", ["cartpole"], 30.0, True),
        ("gamma", "Acrobot-v1", ["acro"], -80.0, False),
    ]
    for name, env, tags, best, failed in specs:
        sizes = {"input_size": 6, "output_size": 3} if env == "Acrobot-v1" else {}
        tid = gw.create(token, _config(example_dict, gym_game_name=env, **sizes))
        _patch(gw, token, tid, {"name": name, "tags": tags})
        _end(gw, tid, best=best, failed=failed)
        made[name] = tid
        gw.clock.now += 10
    unnamed = gw.create(token)  # active, no name, no fitness

    def ids(query: str) -> list[str]:
        resp = gw.client.get(f"/api/trainings{query}", headers=h)
        assert resp.status_code == 200, resp.text
        return [t["id"] for t in resp.json()["items"]]

    assert ids("") == [unnamed, made["gamma"], made["Beta run"], made["alpha"]]
    assert ids("?sort=oldest") == [made["alpha"], made["Beta run"], made["gamma"], unnamed]
    assert ids("?sort=best") == [made["Beta run"], made["alpha"], made["gamma"], unnamed]
    assert ids("?sort=name") == [made["alpha"], made["Beta run"], made["gamma"], unnamed]
    assert ids("?status=failed") == [made["Beta run"]]
    assert ids("?status=failed&status=queued") == [unnamed, made["Beta run"]]
    assert ids("?env=Acrobot-v1") == [made["gamma"]]
    assert ids("?tag=cartpole") == [made["Beta run"], made["alpha"]]
    assert ids("?tag=CARTPOLE&env=CartPole-v1&status=finished") == [made["alpha"]]
    assert ids("?tag=base_1") == [made["alpha"]]
    assert ids("?tag=base%1") == []  # LIKE wildcards are literal
    assert ids("?tag=cart") == []  # whole tags only
    assert ids("?q=BETA") == [made["Beta run"]]
    assert ids(f"?q={made['gamma'][:8]}") == [made["gamma"]]
    assert ids("?q=%25") == []
    page = gw.client.get("/api/trainings?tag=cartpole&limit=1&offset=1", headers=h).json()
    assert (page["total"], [t["id"] for t in page["items"]]) == (2, [made["alpha"]])


@pytest.mark.parametrize(
    "query", ["?status=done", "?sort=fastest", "?archived=yes", "?q=" + "x" * 101]
)
def test_list_bad_filter_is_422(gw: Any, query: str) -> None:
    """An unknown status, sort or archived value, or an overlong search, is a 422."""
    token = gw.signup()
    resp = gw.client.get(f"/api/trainings{query}", headers=gw.auth(token))
    assert resp.status_code == 422
    assert resp.json()["errors"]
