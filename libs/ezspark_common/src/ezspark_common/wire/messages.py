"""The wire messages exchanged between the gateway, the evolver and the evaluators.

Every top-level message is a frozen pydantic model with ``schema_version`` (always 1 for
now) and a ``kind`` discriminator; ``encode`` turns one into bytes and ``decode`` turns
bytes back into the right class.  Most messages travel as compact JSON.  Tasks and results,
which are mostly numbers, travel as binary frames (``frames``): the same JSON with their
gene and return columns replaced by descriptors into raw little-endian arrays, which is
several times cheaper to write and read (see docs/services.md, "Wire format").  ``decode``
accepts both forms for every message.  ``decode`` validates strictly (no
``"1"`` → ``1`` coercion, no NaN/Infinity, no unknown fields) and raises ``MessageError``
for anything else: that is how a consumer recognises a poison message and dead-letters it
instead of requeueing it forever.  Python-side construction is lax on purpose, so numpy
scalars and arrays from the NEAT engine are accepted and converted to plain values.

Queues (all created with ``Broker.declare``):

* ``TASKS_QUEUE``    evolver → evaluators: ``EvaluationTask``
* ``RESULTS_QUEUE``  evaluators → evolver: ``EvaluationResult``
* ``COMMANDS_QUEUE`` gateway → evolver: ``TrainingRequested``, ``StopRequested``
* ``EVENTS_QUEUE``   evolver → gateway: ``GenerationFinished``, ``GenerationProgressed``,
  ``TrainingFinished``, ``TrainingFailed``, ``TrainingWaiting``

New optional fields keep old messages valid (they decode with the field absent); a
consumer refuses fields and kinds it does not know, so gateways are upgraded before the
evolvers that send them.

Tasks are routed by environment: each environment has its own task queue,
``tasks_queue(env_id)``, consumed only by evaluators that serve it.  Evaluators announce
what they serve (``EvaluatorAnnounced``) on the fanout exchange ``ANNOUNCE_EXCHANGE``; the
evolver and every gateway subscribe to it, and ask for a fresh round of announcements at
start-up (``AnnounceRequested`` on ``ANNOUNCE_REQUESTS_EXCHANGE``).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from ezspark_common.evaluation.envs import EnvInfo
from ezspark_common.wire import frames
from ezspark_common.wire.message_columns import (
    GenomeOutcome,
    Genomes,
    Outcomes,
    WireGenome,
    WireModel,
)

__all__ = ["GenomeOutcome", "WireGenome"]  # re-exported: part of the message vocabulary


TASKS_QUEUE = "ezspark.tasks"
RESULTS_QUEUE = "ezspark.results"
COMMANDS_QUEUE = "ezspark.commands"
EVENTS_QUEUE = "ezspark.events"
ANNOUNCE_EXCHANGE = "ezspark.evaluators"
ANNOUNCE_REQUESTS_EXCHANGE = "ezspark.evaluators.requests"

SCHEMA_VERSION = 1

NonEmptyStr = Annotated[str, Field(min_length=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosInt = Annotated[int, Field(ge=1)]
NonNegFloat = Annotated[float, Field(ge=0.0)]


def dead_letter_queue(name: str) -> str:
    """The queue where messages from ``name`` go once rejected or over the delivery limit."""
    return f"{name}.dead"


def is_results_queue(name: str) -> bool:
    """Whether ``name`` is a results queue (any prefix): a classic queue, for latency."""
    return name.endswith(RESULTS_QUEUE)


def routing_id(env_id: str) -> str:
    """The id tasks are routed by: the registry id, without a plug-in's ``module:`` prefix
    (``pkg.envs:Maze-v0`` and ``Maze-v0`` are one environment once ``pkg.envs`` is loaded)."""
    return env_id.split(":", 1)[-1]


def tasks_queue(env_id: str, prefix: str = "") -> str:
    """The task queue of one environment (``TASKS_QUEUE.<routing id>``, after ``prefix``)."""
    return f"{prefix}{TASKS_QUEUE}.{routing_id(env_id)}"


def _is_false(value: object) -> bool:
    return value is False


def _is_none(value: object) -> bool:
    return value is None


class MessageError(ValueError):
    """A body is not a valid EzSpark message; the text says why (poison message)."""


class TrainingRequested(WireModel):
    """Gateway → evolver: start a training run with this (already validated) config."""

    schema_version: Literal[1] = 1
    kind: Literal["training_requested"] = "training_requested"
    training_id: NonEmptyStr
    owner: str
    config: dict[str, Any]
    requested_at: float
    # ``ezspark train --gateway``: the local run's checkpoint (``training.state_to_dict``)
    # after its alone phase; the evolver continues from it instead of generation 0.
    checkpoint: dict[str, Any] | None = None


class StopRequested(WireModel):
    """Gateway → evolver: stop a training run at the next generation boundary."""

    schema_version: Literal[1] = 1
    kind: Literal["stop_requested"] = "stop_requested"
    training_id: NonEmptyStr


class EvaluationTask(WireModel):
    """Evolver → evaluator: play every genome on the same games (index + seed pairs)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    schema_version: Literal[1] = 1
    kind: Literal["evaluation_task"] = "evaluation_task"
    task_id: NonEmptyStr
    training_id: NonEmptyStr
    generation: NonNegInt
    attempt: NonNegInt = 0
    env_id: NonEmptyStr
    game_indices: Annotated[list[NonNegInt], Field(min_length=1)]
    game_seeds: Annotated[list[NonNegInt], Field(min_length=1)]
    max_steps: PosInt
    reward_floor: float
    input_size: PosInt
    output_size: PosInt
    # Recurrent networks (config key ``recurrent``): genomes may have cycles, and networks
    # keep their node values from step to step.  Before ``genomes``: their check reads it.
    # Both flags are sent only when set: an evaluator from before them refuses unknown
    # fields, and so still serves every training that uses neither.
    recurrent: StrictBool = Field(default=False, exclude_if=_is_false)
    # Also return each game's behaviour (config key ``novelty_weight``; evaluation.batch).
    behaviour: StrictBool = Field(default=False, exclude_if=_is_false)
    # Config key ``normalize_inputs``: the seed of the random-action games that fix the
    # input constants (evaluation.scaling); sent only when set, like the flags above.
    input_scaling_seed: NonNegInt | None = Field(default=None, exclude_if=_is_none)
    genomes: Genomes
    # Safeness routing: evaluators listed here decline the task instead of running it
    # (a re-check must come from another evaluator; quarantined ones are kept away).
    avoid_evaluators: list[NonEmptyStr] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_seed_per_game(self) -> Self:
        if len(self.game_indices) != len(self.game_seeds):
            raise ValueError(
                f"game_indices ({len(self.game_indices)}) and game_seeds "
                f"({len(self.game_seeds)}) differ in length"
            )
        return self


class EvaluationResult(WireModel):
    """Evaluator → evolver: the outcome of every genome of one task."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    schema_version: Literal[1] = 1
    kind: Literal["evaluation_result"] = "evaluation_result"
    task_id: NonEmptyStr
    training_id: NonEmptyStr
    generation: NonNegInt
    evaluator_id: NonEmptyStr
    outcomes: Outcomes
    duration_s: NonNegFloat
    attempt: NonNegInt = 0  # echo of the task's attempt, for logs
    # True (with no outcomes) when the evaluator gave the task back unevaluated because
    # the task told it to avoid it; the evolver decides where the task goes next.
    declined: bool = False


class EnvSpace(WireModel):
    """One environment an evaluator can run, with the sizes a config must match."""

    env_id: NonEmptyStr
    input_size: PosInt
    output_size: PosInt
    action_space: str  # Gymnasium's repr, e.g. "Discrete(2)", for people
    observation_space: str
    max_episode_steps: PosInt | None = None

    @staticmethod
    def of(info: EnvInfo) -> EnvSpace:
        """How an evaluator announces an environment it resolved."""
        return EnvSpace(**dataclasses.asdict(info))

    def info(self) -> EnvInfo:
        """The engine's ``EnvInfo`` of an announced environment (for ``envs.size_errors``)."""
        return EnvInfo(**self.model_dump())


class EvaluatorAnnounced(WireModel):
    """Evaluator → evolver and gateways (fanout): I am alive and serve these environments.

    Sent at start, every ``interval_s`` seconds, and with ``leaving`` when it stops.
    """

    schema_version: Literal[1] = 1
    kind: Literal["evaluator_announced"] = "evaluator_announced"
    evaluator_id: NonEmptyStr
    envs: list[EnvSpace]
    slots: PosInt = 1  # evaluations it runs at once
    prefetch: PosInt = 1  # tasks it holds at once per environment
    interval_s: Annotated[float, Field(gt=0.0)]
    leaving: bool = False


class AnnounceRequested(WireModel):
    """Evolver or gateway → every evaluator (fanout): announce yourselves now (sent at
    start-up, so a restarted service need not wait a whole announce interval)."""

    schema_version: Literal[1] = 1
    kind: Literal["announce_requested"] = "announce_requested"
    requester: NonEmptyStr


class TrainingWaiting(WireModel):
    """Evolver → gateway: a training waits (``waiting``) or goes on again (not ``waiting``)."""

    schema_version: Literal[1] = 1
    kind: Literal["training_waiting"] = "training_waiting"
    training_id: NonEmptyStr
    waiting: bool
    reason: str  # e.g. "no evaluator serves X"; empty when running again


class SavedGenome(WireModel):
    """A genome as the embedded trainer saves it (``training.genome_document``)."""

    generation: NonNegInt
    fitness: float
    returns: list[float]
    genome: WireGenome


Phase = Literal["local", "distributed"]


class GenerationFinished(WireModel):
    """Evolver → gateway: statistics of one finished generation.

    Its ``kind`` is still ``generation_report`` (the class's name until events were all
    named in the past tense), so messages of older evolvers decode unchanged.

    Every ``saving`` generations it carries the generation's best genome, and then and at
    the end the best so far, so ``ezspark train --gateway`` can save them locally.
    ``champion`` is the best so far whenever this generation improved it, so the gateway
    can show and serve the best network while the run goes on.  The population's shape
    (species sizes, genome sizes), the ``phase``, the environment's ``errors`` and the
    ``safeness`` counts came later: None from older evolvers.
    """

    schema_version: Literal[1] = 1
    kind: Literal["generation_report"] = "generation_report"
    training_id: NonEmptyStr
    generation: NonNegInt
    best_fitness: float
    mean_fitness: float
    species: NonNegInt
    population: NonNegInt
    evaluations_per_s: NonNegFloat
    best_genome_key: int
    generation_best: SavedGenome | None = None
    best_so_far: SavedGenome | None = None
    species_sizes: list[NonNegInt] | None = None  # members per species, largest first
    mean_nodes: NonNegFloat | None = None  # node genes per genome (outputs and hidden)
    mean_connections: NonNegFloat | None = None  # enabled connection genes per genome
    best_nodes: NonNegInt | None = None
    best_connections: NonNegInt | None = None
    phase: Phase | None = None  # "local": within alone_training_iterations
    champion: SavedGenome | None = None
    errors: NonNegInt | None = None  # genomes whose environment failed (the floor fitness)
    first_error: Annotated[str, Field(max_length=1000)] | None = None  # the first one's why
    safeness_checks: NonNegInt | None = None  # genomes evaluated twice and compared
    safeness_mismatches: NonNegInt | None = None  # of those, whose two answers differed


class GenerationProgressed(WireModel):
    """Evolver → gateway: how far the running generation is (at most about once a second,
    and only when something changed): primary tasks answered of the total, and how many
    evaluators answered them.  ``generation`` is 0-based, like the reports'."""

    schema_version: Literal[1] = 1
    kind: Literal["generation_progressed"] = "generation_progressed"
    training_id: NonEmptyStr
    generation: NonNegInt
    done: NonNegInt
    total: NonNegInt
    evaluators: NonNegInt
    phase: Phase | None = None

    @model_validator(mode="after")
    def _done_within_total(self) -> Self:
        if self.done > self.total:
            raise ValueError(f"done ({self.done}) exceeds total ({self.total})")
        return self


class TrainingFinished(WireModel):
    """Evolver → gateway: a run ended normally; carries the champion when there is one."""

    schema_version: Literal[1] = 1
    kind: Literal["training_finished"] = "training_finished"
    training_id: NonEmptyStr
    generations: NonNegInt
    best_fitness: float
    reason: Literal["generations", "fitness_threshold", "stopped"]
    best_genome: WireGenome | None


class TrainingFailed(WireModel):
    """Evolver → gateway: a run died; ``error`` is meant for the user."""

    schema_version: Literal[1] = 1
    kind: Literal["training_failed"] = "training_failed"
    training_id: NonEmptyStr
    error: str


Message = Annotated[
    TrainingRequested
    | StopRequested
    | EvaluationTask
    | EvaluationResult
    | GenerationFinished
    | GenerationProgressed
    | TrainingFinished
    | TrainingFailed
    | TrainingWaiting
    | EvaluatorAnnounced
    | AnnounceRequested,
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)

# How many validation errors a MessageError spells out; the rest are only counted.
_MAX_REPORTED_ERRORS = 3


def encode(msg: Message) -> bytes:
    """Serialise a message: a binary frame if it carries arrays, else compact JSON (floats
    in the shortest exact repr)."""
    payload = frames.Payload()
    header = _ADAPTER.dump_json(msg, context={"payload": payload})
    return frames.join(header, payload) if payload.chunks else header


def to_json(msg: Message) -> bytes:
    """A message as plain JSON, arrays spelled out (for logs, files and people)."""
    return _ADAPTER.dump_json(msg)


def decode(body: bytes) -> Message:
    """Parse and strictly validate a body; raise ``MessageError`` saying why it is invalid."""
    context: dict[str, Any] = {}
    try:
        if frames.is_frame(body):
            body, context["payload"] = frames.split(body)
        return _ADAPTER.validate_json(body, strict=True, context=context)
    except ValidationError as exc:
        raise MessageError(_explain(exc.errors(include_url=False))) from None
    except ValueError as exc:
        raise MessageError(f"invalid message: {exc}") from None


def _explain(errors: list[ErrorDetails]) -> str:
    """Turn pydantic's errors into one line naming the field and the rule broken."""
    parts: list[str] = []
    for err in errors[:_MAX_REPORTED_ERRORS]:
        kind = err["type"]
        loc = ".".join(str(p) for p in err["loc"])
        if kind == "json_invalid":
            parts.append("malformed JSON: " + err["msg"].removeprefix("Invalid JSON: "))
        elif kind == "union_tag_not_found":
            parts.append("missing 'kind' field")
        elif kind == "union_tag_invalid":
            parts.append(f"unknown kind {err['input'].get('kind')!r}")
        elif kind in ("dict_type", "model_type", "model_attributes_type") and not err["loc"]:
            parts.append("body is not a JSON object")
        elif err["loc"][-1:] == ("schema_version",):
            parts.append(f"unsupported schema_version {err['input']!r} (expected {SCHEMA_VERSION})")
        else:
            parts.append(f"{loc}: {err['msg']}")
    more = len(errors) - _MAX_REPORTED_ERRORS
    if more > 0:
        parts.append(f"and {more} more error(s)")
    return "invalid message: " + "; ".join(parts)
