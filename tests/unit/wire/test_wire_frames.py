"""Binary frames: tasks and results travel as raw columns, exactly, and corrupt ones are poison."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from ezspark_common.evaluation.batch import GameSetup, OutcomeTable, evaluate_batch, evaluate_table
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.packed import PackedGenomes
from ezspark_common.trainer.tasks import evaluate_task
from ezspark_common.wire import frames
from ezspark_common.wire.messages import (
    EvaluationResult,
    EvaluationTask,
    MessageError,
    decode,
    encode,
    to_json,
)
from tests.support.genomes import random_genome

AWKWARD = [-0.0, 5e-324, 0.1 + 0.2, -1.7976931348623157e308]


def genomes(count: int = 6, seed: int = 3) -> list[Genome]:
    return [random_genome(k, 4, 2, seed + k) for k in range(count)]


def task(gs: list[Genome] | None = None) -> EvaluationTask:
    return EvaluationTask(
        task_id="t",
        training_id="r",
        generation=2,
        env_id="CartPole-v1",
        game_indices=[0, 1],
        game_seeds=[5, 6],
        max_steps=60,
        reward_floor=-3.0,
        input_size=4,
        output_size=2,
        genomes=PackedGenomes.pack(gs if gs is not None else genomes()),
    )


def reframed(body: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The same frame with its JSON header edited by ``change``."""
    header, payload = frames.split(body)
    doc = json.loads(header)
    change(doc)
    rest = frames.Payload()
    rest.chunks, rest.size = [bytes(payload)], len(payload)
    return frames.join(json.dumps(doc).encode(), rest)


def test_tasks_travel_as_frames_that_are_smaller_than_json_and_exact() -> None:
    """A task encodes to a binary frame (well under its JSON size) that decodes to the
    bit-identical genomes, awkward floats included."""
    gs = genomes()
    odd = gs[0]
    gs[0] = odd.with_weights(
        np.resize(np.array(AWKWARD), odd.weight.shape[0]), np.resize(AWKWARD, odd.biases.shape[0])
    )
    sent = task(gs)
    body = encode(sent)
    assert frames.is_frame(body)
    assert len(body) < 0.8 * len(to_json(sent))
    back = decode(body)
    assert isinstance(back, EvaluationTask)
    assert back == sent
    for a, b in zip(back.genomes.genomes(), gs, strict=True):
        assert a.key == b.key
        assert a.same_genes(b)


def test_large_innovation_numbers_travel_as_int64() -> None:
    """Integers beyond int32 are sent 64 bits wide, not truncated."""
    g = genomes(1)[0]
    big = Genome.build(
        g.key, g.node_ids, g.biases, g.innov + 2**40, g.src, g.dst, g.weight, g.enabled
    )
    back = decode(encode(task([big])))
    assert isinstance(back, EvaluationTask)
    assert back.genomes.innov.tolist() == big.innov.tolist()


def test_plain_json_tasks_are_still_accepted() -> None:
    """The JSON form (genome documents) decodes to the same task as the frame."""
    sent = task()
    assert decode(to_json(sent)) == decode(encode(sent)) == sent


def test_decoded_task_evaluates_like_the_genomes_themselves() -> None:
    """Evaluating the decoded columns gives exactly what evaluating the genomes gives."""
    gs = genomes(12)
    back = decode(encode(task(gs)))
    assert isinstance(back, EvaluationTask)
    table = evaluate_table(back.genomes, GameSetup("CartPole-v1", 60, -3.0, 4, 2), [5, 6])
    assert list(table) == evaluate_batch(gs, GameSetup("CartPole-v1", 60, -3.0, 4, 2), [5, 6])


def _corrupt_column(doc: dict[str, Any], name: str, descriptor: Any) -> None:
    doc["genomes"]["columns"][name] = descriptor


POISON: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "cut short": (lambda b: b[:-16], "outside the payload"),
    "header past end": (lambda b: b[:4] + (10**6).to_bytes(4, "little") + b[8:], "cut short"),
    "bad dtype": (
        lambda b: reframed(b, lambda d: _corrupt_column(d, "weight", [0, "f2", 1])),
        "bad array descriptor",
    ),
    "offset outside": (
        lambda b: reframed(b, lambda d: _corrupt_column(d, "weight", [10**9, "f8", 1])),
        "outside the payload",
    ),
    "missing column": (
        lambda b: reframed(b, lambda d: d["genomes"]["columns"].pop("src")),
        "bad array descriptor",
    ),
    "counts disagree": (
        lambda b: reframed(b, lambda d: _corrupt_column(d, "node_counts", [0, "i4", 5])),
        "node_counts must hold one count",
    ),
}


@pytest.mark.parametrize("name", list(POISON))
def test_corrupt_frames_are_refused_with_a_reason(name: str) -> None:
    """A frame cut short, with a bad header, descriptor or column, is a MessageError."""
    corrupt, reason = POISON[name]
    with pytest.raises(MessageError, match=reason):
        decode(corrupt(encode(task())))


def _spoiled(column: str, index: int, value: float) -> Genome:
    """A well-formed genome (key 41) with one value of one column replaced."""
    g = genomes(1)[0]
    values = getattr(g, column).copy()
    values[index] = value
    return Genome(41, *[values if name == column else getattr(g, name) for name in _GENE_COLUMNS])


_GENE_COLUMNS = ("node_ids", "biases", "innov", "src", "dst", "weight", "enabled")


@pytest.mark.parametrize(
    ("column", "index", "value", "reason"),
    [
        ("weight", 0, np.nan, "finite"),
        ("innov", 1, 0, "duplicate innovation"),
        ("dst", 0, 999, "ends at an unknown node"),
    ],
    ids=["nan weight", "duplicate innovation", "unknown node"],
)
def test_malformed_genomes_in_a_frame_are_refused_naming_the_genome(
    column: str, index: int, value: float, reason: str
) -> None:
    """Genome checks run on the packed columns and name the offending genome's key."""
    good = genomes(2)
    packed = PackedGenomes.pack([good[0], _spoiled(column, index, value), good[1]])
    header, _ = frames.split(encode(task([good[0]])))
    doc = json.loads(header)
    payload = frames.Payload()
    doc["genomes"] = {"columns": {k: payload.add(v) for k, v in packed.columns().items()}}
    with pytest.raises(MessageError, match=f"genome 41: .*{reason}"):
        decode(frames.join(json.dumps(doc).encode(), payload))


def test_a_cycle_among_disabled_connections_is_found_and_named() -> None:
    """Packed checks find a cycle even through disabled connections (it could be re-enabled)."""
    cyclic = Genome.build(
        9,
        [0, 1, 2, 3],
        [0.0] * 4,
        [1, 2, 3],
        [-1, 2, 3],
        [2, 3, 2],
        [1.0, 1.0, 1.0],
        [True, True, False],
    )
    packed = PackedGenomes.pack([genomes(1)[0], cyclic])
    with pytest.raises(ValueError, match="genome 9: connections form a cycle"):
        packed.check()


def result(table: OutcomeTable) -> EvaluationResult:
    return EvaluationResult(
        task_id="t",
        training_id="r",
        generation=2,
        evaluator_id="e",
        outcomes=table,
        duration_s=0.5,
    )


def test_results_travel_as_frames_with_errors_and_exact_returns() -> None:
    """A result's returns, steps and per-genome errors survive the frame bit for bit."""
    table = OutcomeTable(
        keys=np.array([4, 9, 2**35]),
        returns=np.array([AWKWARD[:2], AWKWARD[2:], [-3.0, -3.0]]),
        steps=np.array([7, 0, 3]),
        errors={1: "env crashed: ValueError"},
    )
    body = encode(result(table))
    assert frames.is_frame(body)
    back = decode(body)
    assert isinstance(back, EvaluationResult)
    assert back.outcomes == table
    assert back.outcomes[1].error == "env crashed: ValueError"
    assert decode(to_json(result(table))) == back


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["outcomes"].update(games=3), "cannot have shape"),
        (lambda d: d["outcomes"].update(errors=[[7, "x"]]), "outside 0..2"),
        (lambda d: d["outcomes"].update(errors={"0": "x"}), "row, message"),
    ],
    ids=["shape", "error row", "errors type"],
)
def test_corrupt_result_frames_are_refused(
    change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    """A result frame whose shape or error rows do not fit its arrays is a MessageError."""
    table = OutcomeTable(np.array([1, 2, 3]), np.zeros((3, 2)), np.array([1, 2, 3]))
    with pytest.raises(MessageError, match=reason):
        decode(reframed(encode(result(table)), change))


def test_non_finite_returns_are_refused_when_building() -> None:
    """A result cannot carry NaN returns (JSON could not, and a frame must not either)."""
    table = OutcomeTable(np.array([1]), np.array([[np.nan]]), np.array([1]))
    with pytest.raises(ValueError, match="finite"):
        result(table)


def described_table() -> OutcomeTable:
    """Three genomes × two games with a behaviour of three values per game."""
    behaviour = np.arange(18, dtype=np.float64).reshape(3, 2, 3) / 7.0
    behaviour[0, 0, 0] = AWKWARD[2]
    return OutcomeTable(
        keys=np.array([4, 9, 11]),
        returns=np.array([[1.0, 2.0], [3.0, 4.0], [-3.0, -3.0]]),
        steps=np.array([7, 2, 3]),
        errors={2: "env crashed"},
        behaviour=behaviour,
    )


def test_behaviour_travels_exactly_in_frames_and_in_json() -> None:
    """A result's behaviour (novelty_weight) survives a frame and plain JSON bit for bit;
    a result without one still decodes without one."""
    table = described_table()
    back = decode(encode(result(table)))
    assert isinstance(back, EvaluationResult)
    assert back.outcomes == table
    assert back.outcomes[0].behaviour[0][0] == AWKWARD[2]
    assert decode(to_json(result(table))) == back
    plain = OutcomeTable(table.keys, table.returns, table.steps)
    again = decode(encode(result(plain)))
    assert isinstance(again, EvaluationResult)
    assert again.outcomes.behaviour is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["outcomes"].update(behaviour_values=4), "cannot have shape"),
        (lambda d: d["outcomes"].pop("behaviour_values"), "behaviour_values"),
    ],
    ids=["width", "no width"],
)
def test_corrupt_behaviour_is_refused(
    change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    """A behaviour column that does not fit its table is a MessageError (poison)."""
    with pytest.raises(MessageError, match=reason):
        decode(reframed(encode(result(described_table())), change))


def test_ragged_behaviour_in_json_is_refused() -> None:
    """Plain-JSON outcomes whose behaviours differ in shape are a MessageError."""
    doc = json.loads(to_json(result(described_table())))
    doc["outcomes"][1]["behaviour"] = [[1.0], [2.0]]
    with pytest.raises(MessageError, match="behaviour"):
        decode(json.dumps(doc).encode())


def test_a_behaviour_task_evaluates_with_behaviour() -> None:
    """A task with ``behaviour`` set round-trips and its evaluation returns behaviours."""
    asked = task().model_copy(update={"behaviour": True})
    back = decode(encode(asked))
    assert isinstance(back, EvaluationTask)
    assert back.behaviour is True
    table = evaluate_task(back)
    assert table.behaviour is not None
    assert table.behaviour.shape == (6, 2, 8)
    assert evaluate_task(task()).behaviour is None


def test_unset_task_flags_are_left_out_so_older_evaluators_accept_the_task() -> None:
    """``recurrent`` and ``behaviour`` go on the wire only when true: a plain task's header
    has neither key (an evaluator from before them refuses unknown fields), and both
    round-trip when set."""
    for body in (encode(task()), to_json(task())):
        header = frames.split(body)[0] if frames.is_frame(body) else body
        doc = json.loads(header)
        assert "recurrent" not in doc
        assert "behaviour" not in doc
        assert doc["env_id"] == "CartPole-v1"
    flagged = task().model_copy(update={"behaviour": True, "recurrent": True})
    header = json.loads(frames.split(encode(flagged))[0])
    assert header["behaviour"] is True
    assert header["recurrent"] is True
    back = decode(encode(flagged))
    assert isinstance(back, EvaluationTask)
    assert (back.behaviour, back.recurrent) == (True, True)
