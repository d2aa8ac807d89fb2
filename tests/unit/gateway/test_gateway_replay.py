"""GET /api/trainings/{id}/replay(.gif): the best genome playing one game, drawn at the
gateway by Gymnasium once, cached on disk, owner-only, and never a 500."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ezspark_common import rng as rngs
from ezspark_common.evaluation.batch import GameSetup, evaluate_batch
from ezspark_common.neat.genome import Genome
from ezspark_common.wire.messages import TrainingFinished, WireGenome
from ezspark_gateway.core.events import EventApplier
from ezspark_gateway.core.replays import Replays, ReplaySettings
from ezspark_gateway.storage.models import Training
from tests.unit.evaluation.test_replay import BALANCER, dense_genome  # also registers EzReplay/*
from tests.unit.gateway.conftest import example_bytes


def use_cache(gw: Any, path: Path, **settings: Any) -> Replays:
    """Give the app a replay cache in ``path`` (as EZSPARK_REPLAY_* would)."""
    replays = Replays(ReplaySettings(cache_dir=str(path), **settings))
    gw.app.state.replays = replays
    return replays


def finish(gw: Any, training_id: str, genome: dict[str, Any] = BALANCER) -> None:
    """Deliver the evolver's TrainingFinished with ``genome`` as the champion."""
    EventApplier(gw.db.sessions).handle(
        TrainingFinished(
            training_id=training_id,
            generations=4,
            best_fitness=200.0,
            reason="generations",
            best_genome=WireGenome(**genome),
        )
    )


def change(gw: Any, training_id: str, **values: Any) -> None:
    """Overwrite columns of a training row (a state the API cannot produce directly)."""
    with gw.db.sessions() as session:
        training = session.get(Training, training_id)
        for key, value in values.items():
            setattr(training, key, value)
        session.commit()


def started(gw: Any, tmp_path: Path) -> tuple[str, str]:
    """A user's training with the spec example (CartPole-v0) and a replay cache."""
    use_cache(gw, tmp_path / "replays")
    token = gw.signup()
    return token, gw.create(token)


def test_owner_only_and_404_before_a_best_genome(gw: Any, tmp_path: Path) -> None:
    """No credentials: 401; before the best genome: 404 naming why; another user: 404."""
    token, tid = started(gw, tmp_path)
    for path in ("replay", "replay.gif"):
        url = f"/api/trainings/{tid}/{path}"
        assert gw.client.get(url).status_code == 401
        resp = gw.client.get(url, headers=gw.auth(token))
        assert resp.status_code == 404
        assert resp.json() == {"detail": "no best genome yet"}
    finish(gw, tid)
    other = gw.signup()
    assert (
        gw.client.get(f"/api/trainings/{tid}/replay.gif", headers=gw.auth(other)).status_code == 404
    )
    no_such = "/api/trainings/00000000-0000-4000-8000-000000000000/replay"
    assert gw.client.get(no_such, headers=gw.auth(token)).status_code == 404


def test_drawn_once_then_served_from_the_cache(gw: Any, tmp_path: Path) -> None:
    """The first request draws an animated GIF (miss), the next is the same bytes from
    the cache (hit), also for another process sharing the directory; the facts say
    which genome and game, and the return is the one `ezspark play --seed 0` prints."""
    token, tid = started(gw, tmp_path)
    finish(gw, tid)
    url = f"/api/trainings/{tid}/replay.gif"
    first = gw.client.get(url, headers=gw.auth(token))
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/gif"
    assert first.headers["x-replay-cache"] == "miss"
    with Image.open(io.BytesIO(first.content)) as im:
        assert im.is_animated
        assert im.n_frames > 50
    second = gw.client.get(url, headers=gw.auth(token))
    assert second.headers["x-replay-cache"] == "hit"
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    again = {**gw.auth(token), "If-None-Match": first.headers["etag"]}
    assert gw.client.get(url, headers=again).status_code == 304
    facts = gw.client.get(f"/api/trainings/{tid}/replay", headers=gw.auth(token)).json()
    (outcome,) = evaluate_batch(
        [Genome.from_wire(BALANCER)], GameSetup("CartPole-v0", 200, 0.0, 4, 2), [0]
    )
    assert facts["cached"] is True
    assert (facts["best_fitness"], facts["training_games"]) == (200.0, 5)
    assert facts["genome_key"] == BALANCER["key"]
    assert (facts["env_id"], facts["seed"], facts["max_steps"]) == ("CartPole-v0", 0, 200)
    assert facts["episode_return"] == outcome.returns[0]
    assert facts["steps"] == outcome.steps
    assert facts["size_bytes"] == len(first.content)
    assert facts["url"] == f"{url}?genome={BALANCER['key']}"
    use_cache(gw, tmp_path / "replays")  # a fresh process on the same directory
    third = gw.client.get(url, headers=gw.auth(token))
    assert third.headers["x-replay-cache"] == "hit"
    assert third.content == first.content
    assert len(list((tmp_path / "replays").glob("*.gif"))) == 1


def test_a_new_best_genome_replaces_the_cached_replay(gw: Any, tmp_path: Path) -> None:
    """Another best genome is drawn anew (miss) and its predecessor's files are removed."""
    token, tid = started(gw, tmp_path)
    finish(gw, tid)
    url = f"/api/trainings/{tid}/replay.gif"
    old = gw.client.get(url, headers=gw.auth(token))
    change(gw, tid, best_genome={**BALANCER, "key": 99, "weight": [1.0, 0.5, -1.0, -0.5]})
    new = gw.client.get(url, headers=gw.auth(token))
    assert new.headers["x-replay-cache"] == "miss"
    assert new.headers["etag"] != old.headers["etag"]
    facts = gw.client.get(f"/api/trainings/{tid}/replay", headers=gw.auth(token)).json()
    assert facts["genome_key"] == 99
    files = sorted(p.suffix for p in (tmp_path / "replays").iterdir())
    assert files == [".gif", ".json"]


def test_an_environment_the_gateway_cannot_run_is_a_clear_409(gw: Any, tmp_path: Path) -> None:
    """Unknown ids, plug-in modules, a missing package and a crashing environment give
    409 with the reason (and how to draw it elsewhere), never a 500; asked again, the
    remembered reason comes at once."""
    token, tid = started(gw, tmp_path)
    finish(gw, tid)
    url = f"/api/trainings/{tid}/replay"
    config = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()["config"]
    cases = {
        "NoSuchGame-v0": "unknown environment 'NoSuchGame-v0'",
        "my_envs:Foo-v0": "names module 'my_envs', which is not an allowed environment module",
        "EzReplay/Crash-v0": "step raised RuntimeError: boom",
    }
    for env_id, reason in cases.items():
        sizes = {"input_size": 2} if env_id.startswith("EzReplay") else {}
        wire = {**BALANCER, "src": [-1, -2, -1, -2]} if sizes else BALANCER
        change(gw, tid, config={**config, "gym_game_name": env_id, **sizes}, best_genome=wire)
        for _ in range(2):
            resp = gw.client.get(url, headers=gw.auth(token))
            assert resp.status_code == 409, resp.text
            detail = resp.json()["detail"]
            assert detail.startswith("replay unavailable: ")
            assert reason in detail
        if not sizes:
            assert f"ezspark best {tid} -o best.json" in detail
        gif = gw.client.get(f"{url}.gif", headers=gw.auth(token))
        assert gif.status_code == 409
        assert gif.headers["content-type"] == "application/json"


def test_busy_gateway_answers_503_with_retry_after(gw: Any, tmp_path: Path) -> None:
    """With every drawing slot taken, a replay not in the cache is 503 with Retry-After;
    once the slot is free it is drawn."""
    token, tid = started(gw, tmp_path)
    replays: Replays = gw.app.state.replays
    finish(gw, tid)
    url = f"/api/trainings/{tid}/replay.gif"
    assert replays.slots.acquire(blocking=False)
    try:
        resp = gw.client.get(url, headers=gw.auth(token))
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "3"
        assert "another replay is being drawn" in resp.json()["detail"]
    finally:
        replays.slots.release()
    assert gw.client.get(url, headers=gw.auth(token)).status_code == 200


def test_cache_keeps_at_most_cache_entries(gw: Any, tmp_path: Path) -> None:
    """Past ``cache_entries`` replays the oldest files are removed."""
    use_cache(gw, tmp_path / "small", cache_entries=1)
    token = gw.signup()
    first, second = gw.create(token), gw.create(token)
    for tid in (first, second):
        finish(gw, tid)
        assert gw.client.get(f"/api/trainings/{tid}/replay", headers=gw.auth(token)).is_success
    names = [p.name for p in (tmp_path / "small").glob("*.gif")]
    assert len(names) == 1
    assert names[0].startswith(second)


def test_training_page_has_the_replay_section(gw: Any, tmp_path: Path) -> None:
    """The page carries the replay section: heading, the facts URL for replay.js, the
    explanation with the training's games and seed, and a lazy <img> without JavaScript."""
    use_cache(gw, tmp_path / "replays")
    gw.browser_login()
    resp = gw.client.post(
        "/api/trainings", content=example_bytes(), headers={"Content-Type": "application/json"}
    )
    tid = resp.json()["id"]
    before = gw.client.get(f"/trainings/{tid}").text
    assert 'id="replay-heading"' in before
    assert "once the training has a best genome" in before
    assert "<noscript></noscript>" in before  # no image to show yet
    finish(gw, tid)
    page = gw.client.get(f"/trainings/{tid}").text
    assert f'data-facts="/api/trainings/{tid}/replay"' in page
    assert f'<img src="/api/trainings/{tid}/replay.gif" loading="lazy"' in page
    assert "mean return over the 5 games of the generation" in page
    assert "training's seed (0)" in page
    assert '<script src="/static/replay.js" defer></script>' in page
    assert gw.client.get("/static/replay.js").status_code == 200


def test_an_unwritable_cache_still_serves_the_replay(gw: Any, tmp_path: Path) -> None:
    """A cache directory that cannot be created costs a redraw per request, never an error."""
    token, tid = started(gw, tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    use_cache(gw, blocker / "replays")
    finish(gw, tid)
    url = f"/api/trainings/{tid}/replay.gif"
    for _ in range(2):
        resp = gw.client.get(url, headers=gw.auth(token))
        assert resp.status_code == 200
        assert resp.headers["x-replay-cache"] == "miss"


@pytest.mark.parametrize(
    ("env_id", "n_in", "n_out"), [("LunarLander-v3", 8, 4), ("Pendulum-v1", 3, 1)]
)
def test_box2d_and_continuous_actions_replay_too(
    gw: Any, tmp_path: Path, env_id: str, n_in: int, n_out: int
) -> None:
    """LunarLander (Box2D, installed here) and Pendulum (a Box action) are drawn, with the
    return evaluation gives for seed 0."""
    token, tid = started(gw, tmp_path)
    genome = dense_genome(n_in, n_out, seed=3)
    finish(gw, tid, genome.to_wire())
    config = gw.client.get(f"/api/trainings/{tid}", headers=gw.auth(token)).json()["config"]
    sizes = {"input_size": n_in, "output_size": n_out, "max_number_of_steps": 300}
    change(gw, tid, config={**config, "gym_game_name": env_id, **sizes})
    resp = gw.client.get(f"/api/trainings/{tid}/replay", headers=gw.auth(token))
    assert resp.status_code == 200, resp.text
    facts = resp.json()
    (outcome,) = evaluate_batch([genome], GameSetup(env_id, 300, 0.0, n_in, n_out), [0])
    assert (facts["env_id"], facts["episode_return"]) == (env_id, outcome.returns[0])
    gif = gw.client.get(facts["url"], headers=gw.auth(token))
    with Image.open(io.BytesIO(gif.content)) as im:
        assert im.is_animated


def test_a_normalising_training_is_replayed_on_its_own_constants(gw: Any, tmp_path: Path) -> None:
    """With normalize_inputs, the replay feeds the network the observations its evaluators
    fed it (the training's random-action constants): the return is training's, not the
    return on raw observations."""
    use_cache(gw, tmp_path / "replays")
    token = gw.signup()
    doc = {**json.loads(example_bytes()), "normalize_inputs": True, "seed": 5}
    tid = gw.create(token, json.dumps(doc).encode())
    genome = dense_genome(4, 2, 3)
    finish(gw, tid, genome.to_wire())
    facts = gw.client.get(f"/api/trainings/{tid}/replay", headers=gw.auth(token)).json()
    setup = GameSetup("CartPole-v0", 200, 0.0, 4, 2, input_scaling=(rngs.scaling_seed(5), 200))
    (trained,) = evaluate_batch([genome], setup, [0])
    (raw,) = evaluate_batch([genome], dataclasses.replace(setup, input_scaling=None), [0])
    assert (facts["episode_return"], facts["steps"]) == (trained.returns[0], trained.steps)
    assert trained.returns != raw.returns
