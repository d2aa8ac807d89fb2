"""The array-heavy parts of messages: genomes, and outcomes, as they travel.

A task's genomes are a ``PackedGenomes`` and a result's outcomes an ``OutcomeTable``.  In a
binary frame (``frames``) their columns are raw arrays; in plain JSON, and when a message is
built from Python objects, they are lists of genome or outcome documents.  Either way they
are checked as a whole with array operations, and a bad one is a ``ValueError`` that
``decode`` reports as a poison message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    ValidationInfo,
    model_validator,
)

from ezspark_common.evaluation.batch import Outcome, OutcomeTable
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.packed import COLUMNS, PackedGenomes
from ezspark_common.wire import frames

NonNegInt = Annotated[int, Field(ge=0)]


class WireModel(BaseModel):
    # allow_inf_nan=False: JSON cannot carry NaN/inf, so refuse them when building a message
    # rather than silently sending ``null``.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class WireGenome(WireModel):
    """A genome in column form: nodes (id, bias) and connections (innov, src, dst, ...)."""

    key: int
    node_ids: list[int]
    biases: list[float]
    innov: list[int]
    src: list[int]
    dst: list[int]
    weight: list[float]
    enabled: list[bool]

    @model_validator(mode="after")
    def _columns_line_up(self) -> Self:
        if len(self.node_ids) != len(self.biases):
            raise ValueError(
                f"node columns differ in length: node_ids={len(self.node_ids)}, "
                f"biases={len(self.biases)}"
            )
        lengths = {
            name: len(getattr(self, name)) for name in ("innov", "src", "dst", "weight", "enabled")
        }
        if len(set(lengths.values())) > 1:
            raise ValueError(f"connection columns differ in length: {lengths}")
        return self


class GenomeOutcome(WireModel):
    """How one genome did: one return per game played, steps taken, or why it failed."""

    key: int
    returns: list[float]
    steps: NonNegInt
    error: str | None = None
    # One list per game, when the task asked for behaviour (``novelty_weight``).
    behaviour: list[list[float]] | None = None


def _payload(info: ValidationInfo | SerializationInfo) -> Any:
    context = info.context
    return context.get("payload") if isinstance(context, dict) else None


def _genomes_in(value: Any, info: ValidationInfo) -> PackedGenomes:
    """Genomes from a frame's column descriptors, or from genome documents (JSON or
    Python: dicts, ``WireGenome`` or ``Genome``), checked and packed."""
    payload = _payload(info)
    cycles = info.data.get("recurrent") is True  # a recurrent task's genomes may loop
    if isinstance(value, PackedGenomes):
        packed = value
    elif isinstance(value, dict) and payload is not None:
        cols = value.get("columns")
        if not isinstance(cols, dict):
            raise ValueError("expected {'columns': {name: [offset, dtype, count]}}")
        packed = PackedGenomes.from_columns(
            {name: frames.read(payload, cols.get(name)) for name in COLUMNS}, cycles=cycles
        )
    elif isinstance(value, list):
        packed = PackedGenomes.pack([_one_genome(g, info, cycles) for g in value])
    else:
        raise ValueError("expected a list of genomes")
    if not len(packed):
        raise ValueError("a task needs at least one genome")
    return packed


def _one_genome(value: Any, info: ValidationInfo, cycles: bool = False) -> Genome:
    if isinstance(value, Genome):
        return value
    if not isinstance(value, WireGenome):
        value = WireGenome.model_validate(value, strict=info.mode == "json")
    return Genome.from_wire(value.model_dump(), cycles=cycles)


def _genomes_out(value: PackedGenomes, info: SerializationInfo) -> Any:
    payload = _payload(info)
    if isinstance(payload, frames.Payload):
        return {
            "columns": {
                name: payload.add(column, integer=COLUMNS[name] == "i")
                for name, column in value.columns().items()
            }
        }
    return [g.to_wire() for g in value.genomes()]


def _outcomes_in(value: Any, info: ValidationInfo) -> OutcomeTable:
    """Outcomes from a frame's descriptors, or from outcome documents, as one table."""
    payload = _payload(info)
    if isinstance(value, OutcomeTable):
        table = value
    elif isinstance(value, dict) and payload is not None:
        rows, games = value.get("rows"), value.get("games")
        if not (isinstance(rows, int) and isinstance(games, int) and rows >= 0 and games >= 0):
            raise ValueError("expected 'rows' and 'games' counts")
        errors = value.get("errors", [])
        if not isinstance(errors, list) or not all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], int) and isinstance(e[1], str)
            for e in errors
        ):
            raise ValueError("expected 'errors' as [row, message] pairs")
        table = OutcomeTable(
            keys=frames.read(payload, value.get("keys"), (rows,)).astype(np.int64),
            returns=frames.read(payload, value.get("returns"), (rows, games)),
            steps=frames.read(payload, value.get("steps"), (rows,)).astype(np.int64),
            errors=dict(errors),
            behaviour=_behaviour_in(payload, value, rows, games),
        )
    elif isinstance(value, list):
        docs = [
            v if isinstance(v, GenomeOutcome) else GenomeOutcome.model_validate(v) for v in value
        ]
        # Checked before the table is built: numpy would refuse ragged rows less clearly.
        if len({len(d.returns) for d in docs}) > 1:
            raise ValueError("every outcome of a result must have one return per game")
        if len({_shape(d.behaviour) for d in docs}) > 1:
            raise ValueError("every outcome of a result must have the same behaviour shape")
        table = OutcomeTable.of(
            [Outcome(d.key, tuple(d.returns), d.steps, d.error, _tuples(d.behaviour)) for d in docs]
        )
    else:
        raise ValueError("expected a list of outcomes")
    table.check()
    return table


def _behaviour_in(payload: Any, value: dict[str, Any], rows: int, games: int) -> Any:
    """A frame's optional behaviour column, ``(rows, games, values)``."""
    if "behaviour" not in value:
        return None
    width = value.get("behaviour_values")
    if not (isinstance(width, int) and width >= 0):
        raise ValueError("expected a 'behaviour_values' count with 'behaviour'")
    return frames.read(payload, value["behaviour"], (rows, games, width)).astype(np.float64)


def _shape(behaviour: list[list[float]] | None) -> tuple[int, ...] | None:
    if behaviour is None:
        return None
    return (len(behaviour), *sorted({len(b) for b in behaviour}))


def _tuples(behaviour: list[list[float]] | None) -> tuple[tuple[float, ...], ...]:
    return () if behaviour is None else tuple(tuple(b) for b in behaviour)


def _outcomes_out(value: OutcomeTable, info: SerializationInfo) -> Any:
    payload = _payload(info)
    if isinstance(payload, frames.Payload):
        doc = {
            "rows": len(value),
            "games": int(value.returns.shape[1]),
            "keys": payload.add(value.keys, integer=True),
            "returns": payload.add(value.returns),
            "steps": payload.add(value.steps, integer=True),
            "errors": [[i, m] for i, m in value.errors.items()],
        }
        if value.behaviour is not None:  # only then: results without it stay as they were
            doc["behaviour"] = payload.add(value.behaviour)
            doc["behaviour_values"] = int(value.behaviour.shape[2])
        return doc
    return [outcome_doc(o) for o in value]


def outcome_doc(o: Outcome) -> dict[str, Any]:
    """An outcome as a JSON document (behaviour only when it has one)."""
    doc: dict[str, Any] = {
        "key": o.key,
        "returns": list(o.returns),
        "steps": o.steps,
        "error": o.error,
    }
    if o.behaviour:
        doc["behaviour"] = [list(b) for b in o.behaviour]
    return doc


def outcome_from_doc(doc: Mapping[str, Any]) -> Outcome:
    """Inverse of :func:`outcome_doc` (a document already checked, e.g. a checkpoint's)."""
    key, returns, steps, error = doc["key"], doc["returns"], doc["steps"], doc["error"]
    return Outcome(key, tuple(returns), steps, error, _tuples(doc.get("behaviour")))


# Genes and outcomes: arrays inside, genome/outcome documents in plain JSON (and on input).
Genomes = Annotated[PackedGenomes, BeforeValidator(_genomes_in), PlainSerializer(_genomes_out)]
Outcomes = Annotated[OutcomeTable, BeforeValidator(_outcomes_in), PlainSerializer(_outcomes_out)]
