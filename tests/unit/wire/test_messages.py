"""Wire messages: every kind round-trips exactly and every kind of poison body is refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from ezspark_common.evaluation.envs import describe
from ezspark_common.wire.messages import (
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    RESULTS_QUEUE,
    TASKS_QUEUE,
    EnvSpace,
    EvaluationResult,
    EvaluationTask,
    EvaluatorAnnounced,
    GenerationFinished,
    GenomeOutcome,
    Message,
    MessageError,
    StopRequested,
    TrainingFailed,
    TrainingFinished,
    TrainingRequested,
    WireGenome,
    dead_letter_queue,
    decode,
    encode,
    to_json,
)

# Floats whose shortest decimal form is long or awkward: they must survive JSON exactly.
TRICKY = [0.1 + 0.2, 1 / 3, -2.5e-308, 5e-324, 1.7976931348623157e308, -0.0, 123456789.123456789]


def genome(key: int = 7) -> WireGenome:
    return WireGenome(
        key=key,
        node_ids=[0, 1, 5],
        biases=[0.0, TRICKY[0], TRICKY[1]],
        innov=[1, 2],
        src=[-1, 5],
        dst=[5, 0],
        weight=[TRICKY[2], TRICKY[4]],
        enabled=[True, False],
    )


def task(**overrides: object) -> EvaluationTask:
    fields: dict[str, object] = {
        "task_id": "t-1",
        "training_id": "run-1",
        "generation": 3,
        "env_id": "CartPole-v1",
        "game_indices": [0, 1],
        "game_seeds": [11, 12],
        "max_steps": 500,
        "reward_floor": -100.0,
        "input_size": 4,
        "output_size": 2,
        "genomes": [genome(1), genome(2)],
    }
    fields.update(overrides)
    return EvaluationTask.model_validate(fields)


ALL_MESSAGES: list[Message] = [
    TrainingRequested(
        training_id="run-1",
        owner="alice",
        config={"generations": 10, "rate": 0.25, "nested": {"a": [1, 2]}},
        requested_at=1_700_000_000.123456,
    ),
    StopRequested(training_id="run-1"),
    task(),
    EvaluationResult(
        task_id="t-1",
        training_id="run-1",
        generation=3,
        evaluator_id="eval-a",
        outcomes=[
            GenomeOutcome(key=1, returns=TRICKY, steps=42),
            GenomeOutcome(key=2, returns=[-100.0] * len(TRICKY), steps=0, error="env crashed"),
        ],
        duration_s=0.75,
    ),
    GenerationFinished(
        training_id="run-1",
        generation=3,
        best_fitness=TRICKY[1],
        mean_fitness=-12.5,
        species=4,
        population=150,
        evaluations_per_s=1234.5,
        best_genome_key=17,
    ),
    TrainingFinished(
        training_id="run-1",
        generations=10,
        best_fitness=500.0,
        reason="fitness_threshold",
        best_genome=genome(),
    ),
    TrainingFinished(
        training_id="run-1", generations=0, best_fitness=0.0, reason="stopped", best_genome=None
    ),
    TrainingFailed(training_id="run-1", error="gym env not found"),
]


@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda m: m.kind)
def test_round_trip(msg: Message) -> None:
    """Every message kind decodes back to an equal object of the same class."""
    back = decode(encode(msg))
    assert type(back) is type(msg)
    assert back == msg
    assert back.schema_version == 1


def test_encoding_is_compact_json() -> None:
    """encode emits JSON without whitespace padding, tagged with kind and schema_version."""
    body = encode(StopRequested(training_id="r"))
    assert body == b'{"schema_version":1,"kind":"stop_requested","training_id":"r"}'


def test_floats_round_trip_bit_exactly() -> None:
    """Awkward floats (subnormals, max, -0.0, 0.1+0.2) survive encode/decode bit for bit."""
    back = decode(encode(ALL_MESSAGES[3]))
    assert isinstance(back, EvaluationResult)
    for sent, got in zip(TRICKY, back.outcomes[0].returns, strict=True):
        assert got.hex() == sent.hex()
    assert math.copysign(1.0, back.outcomes[0].returns[5]) == -1.0


def test_numpy_values_are_accepted_when_building() -> None:
    """Producers may pass numpy scalars/arrays; they become plain Python values."""
    g = WireGenome(
        key=np.int64(3),
        node_ids=np.array([0, 1]),
        biases=np.array([0.5, -0.5]),
        innov=np.array([], dtype=np.int64),
        src=[],
        dst=[],
        weight=[],
        enabled=[],
    )
    assert g.key == 3
    assert type(g.biases[0]) is float
    assert decode(encode(task(genomes=[g]))) == task(genomes=[g])


def test_models_are_frozen() -> None:
    """Messages are immutable once built."""
    msg = StopRequested(training_id="r")
    with pytest.raises(ValidationError):
        msg.training_id = "other"  # type: ignore[misc]


def test_queue_names() -> None:
    """Queue constants and the dead-letter naming rule are what other services expect."""
    assert (TASKS_QUEUE, RESULTS_QUEUE, COMMANDS_QUEUE, EVENTS_QUEUE) == (
        "ezspark.tasks",
        "ezspark.results",
        "ezspark.commands",
        "ezspark.events",
    )
    assert dead_letter_queue(TASKS_QUEUE) == "ezspark.tasks.dead"


def _task_json(**changes: object) -> bytes:
    data = json.loads(to_json(task()))
    data.update(changes)
    return json.dumps(data).encode()


POISON: dict[str, tuple[bytes, str]] = {
    "not json": (b"{oops", "malformed JSON"),
    "empty body": (b"", "malformed JSON"),
    "not utf-8": (b"\xff\xfe\x00", "malformed JSON"),
    "json array": (b"[1, 2]", "not a JSON object"),
    "json string": (b'"stop"', "not a JSON object"),
    "no kind": (b'{"training_id": "r"}', "missing 'kind'"),
    "unknown kind": (b'{"kind": "reboot", "training_id": "r"}', "unknown kind 'reboot'"),
    "future schema": (_task_json(schema_version=2), "unsupported schema_version 2"),
    "schema as string": (_task_json(schema_version="1"), "unsupported schema_version '1'"),
    "missing field": (b'{"kind": "stop_requested"}', "training_id: Field required"),
    "extra field": (_task_json(priority=9), "priority: Extra inputs are not permitted"),
    "string for int": (_task_json(generation="3"), "generation: Input should be a valid integer"),
    "float for int": (_task_json(max_steps=500.5), "max_steps"),
    "bool for float": (_task_json(reward_floor=True), "reward_floor"),
    "NaN": (_task_json().replace(b"-100.0", b"NaN"), "reward_floor"),
    "Infinity": (_task_json().replace(b"-100.0", b"-Infinity"), "reward_floor"),
    "negative generation": (_task_json(generation=-1), "generation"),
    "seeds mismatch": (_task_json(game_seeds=[1, 2, 3]), "differ in length"),
    "no games": (_task_json(game_indices=[], game_seeds=[]), "game_indices"),
    "no genomes": (_task_json(genomes=[]), "genomes"),
    "bad reason": (
        encode(ALL_MESSAGES[5]).replace(b"fitness_threshold", b"bored"),
        "reason",
    ),
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_poison_bodies_raise_message_error(case: str) -> None:
    """Each kind of malformed body raises MessageError whose text names the problem."""
    body, reason = POISON[case]
    with pytest.raises(MessageError, match="invalid message") as info:
        decode(body)
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)


def test_genome_columns_must_line_up() -> None:
    """A genome whose node or connection columns differ in length is refused."""
    good = genome().model_dump()
    with pytest.raises(ValidationError, match="node columns differ"):
        WireGenome.model_validate({**good, "biases": [0.0]})
    with pytest.raises(ValidationError, match="connection columns differ"):
        WireGenome.model_validate({**good, "enabled": [True]})
    bad = json.loads(to_json(task()))
    bad["genomes"][0]["weight"] = [1.0]
    with pytest.raises(MessageError, match="connection columns differ"):
        decode(json.dumps(bad).encode())


def test_non_finite_floats_refused_when_building() -> None:
    """NaN/inf cannot be put into a message (JSON could not carry them)."""
    with pytest.raises(ValidationError, match="finite"):
        GenomeOutcome(key=1, returns=[float("nan")], steps=1)
    with pytest.raises(ValidationError, match="finite"):
        WireGenome.model_validate({**genome().model_dump(), "biases": [0.0, math.inf, 1.0]})


def test_long_error_lists_are_summarised() -> None:
    """A body with many errors names the first few and counts the rest."""
    with pytest.raises(MessageError, match=r"and \d+ more error\(s\)"):
        decode(b'{"kind": "evaluation_task"}')


def test_a_generation_report_of_an_older_evolver_decodes_as_generation_finished() -> None:
    """The event's kind stayed ``generation_report`` when the class was renamed: an old
    message decodes to GenerationFinished, and a new one is sent with the old kind."""
    old = (
        b'{"schema_version": 1, "kind": "generation_report", "training_id": "run-1", '
        b'"generation": 3, "best_fitness": 1.5, "mean_fitness": 0.5, "species": 2, '
        b'"population": 10, "evaluations_per_s": 100.0, "best_genome_key": 7}'
    )
    msg = decode(old)
    assert isinstance(msg, GenerationFinished)
    assert (msg.generation, msg.best_genome_key, msg.champion) == (3, 7, None)
    assert json.loads(encode(msg))["kind"] == "generation_report"


def test_env_space_carries_everything_the_engine_knows_of_an_environment() -> None:
    """An evaluator's announced ``EnvSpace`` turns back into the very ``EnvInfo`` it
    resolved, so the gateway checks sizes against what the evaluator saw."""
    for env_id in ("CartPole-v1", "Pendulum-v1"):
        info = describe(env_id)
        sent = EvaluatorAnnounced(evaluator_id="e1", envs=[EnvSpace.of(info)], interval_s=5)
        got = decode(encode(sent))
        assert isinstance(got, EvaluatorAnnounced)
        assert got.envs[0].info() == info
