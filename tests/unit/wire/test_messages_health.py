"""The run-health additions to the wire format: report shape fields, the champion and
``GenerationProgressed``; old messages (without the fields) still decode."""

from __future__ import annotations

import json

import pytest

from ezspark_common.wire.messages import (
    GenerationFinished,
    GenerationProgressed,
    MessageError,
    SavedGenome,
    WireGenome,
    decode,
    encode,
)

CHAMP = WireGenome(
    key=3,
    node_ids=[0, 1],
    biases=[0.0, 0.5],
    innov=[0],
    src=[-1],
    dst=[1],
    weight=[1.5],
    enabled=[True],
)
OLD_REPORT = {
    "schema_version": 1,
    "kind": "generation_report",
    "training_id": "t-1",
    "generation": 4,
    "best_fitness": 10.0,
    "mean_fitness": 5.0,
    "species": 2,
    "population": 50,
    "evaluations_per_s": 39.8,
    "best_genome_key": 7,
}


def test_old_report_without_new_fields_decodes() -> None:
    """A report from an older evolver (no shape, phase or champion) still decodes."""
    msg = decode(json.dumps(OLD_REPORT).encode())
    assert isinstance(msg, GenerationFinished)
    assert msg.species_sizes is None
    assert msg.phase is None
    assert msg.champion is None
    assert msg.mean_nodes is None
    assert msg.best_connections is None


def test_report_with_shape_phase_and_champion_round_trips() -> None:
    """Every new report field survives encode/decode unchanged."""
    msg = GenerationFinished(
        **{k: v for k, v in OLD_REPORT.items() if k not in ("schema_version", "kind")},
        species_sizes=[30, 15, 5],
        mean_nodes=2.5,
        mean_connections=4.25,
        best_nodes=3,
        best_connections=5,
        phase="local",
        champion=SavedGenome(generation=4, fitness=10.0, returns=[9.0, 11.0], genome=CHAMP),
    )
    back = decode(encode(msg))
    assert back == msg


@pytest.mark.parametrize(
    ("field", "value"),
    [("phase", "cloud"), ("species_sizes", [3, -1]), ("mean_nodes", -0.5), ("best_nodes", 1.5)],
)
def test_report_rejects_bad_new_fields(field: str, value: object) -> None:
    """A wrong phase word, a negative size or a fractional count is a poison message."""
    with pytest.raises(MessageError, match=field):
        decode(json.dumps({**OLD_REPORT, field: value}).encode())


def test_progress_round_trips_and_checks_done_within_total() -> None:
    """GenerationProgressed round-trips; done > total is refused on decode."""
    msg = GenerationProgressed(
        training_id="t-1", generation=9, done=3, total=8, evaluators=2, phase="distributed"
    )
    assert decode(encode(msg)) == msg
    bad = msg.model_dump(mode="json") | {"done": 9}
    with pytest.raises(MessageError, match="exceeds total"):
        decode(json.dumps(bad).encode())


def test_progress_without_phase_decodes() -> None:
    """The phase of a progress event is optional."""
    body = {
        "schema_version": 1,
        "kind": "generation_progressed",
        "training_id": "t",
        "generation": 0,
        "done": 0,
        "total": 4,
        "evaluators": 0,
    }
    msg = decode(json.dumps(body).encode())
    assert isinstance(msg, GenerationProgressed)
    assert msg.phase is None
