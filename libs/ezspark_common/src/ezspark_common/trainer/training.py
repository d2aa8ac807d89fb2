"""A training run as a state machine: evaluate a generation, then ``advance``.

The state holds everything a resumed run needs; ``advance`` is pure.  Whoever evaluates
(in-process, worker processes, or evaluators over RabbitMQ) only supplies the outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ezspark_common.config import TrainingConfig, input_scaling_seed, parse_config
from ezspark_common.evaluation.batch import Outcome
from ezspark_common.neat.genome import Genome
from ezspark_common.neat.population import (
    Population,
    initial_population,
    next_generation,
    population_from_dict,
    population_to_dict,
)
from ezspark_common.wire.message_columns import outcome_doc, outcome_from_doc

CHECKPOINT_FORMAT = "ezspark-checkpoint"
GENOME_FORMAT = "ezspark-genome"


@dataclass(frozen=True)
class GenerationReport:
    """What happened in one generation (one line of the progress display and history)."""

    generation: int
    best_fitness: float
    mean_fitness: float
    best_genome_key: int
    species: int
    population: int
    evaluations: int
    env_steps: int
    errors: int
    seconds: float
    safeness_checks: int = 0
    safeness_mismatches: int = 0
    # Shape of the population (absent, i.e. empty or None, in reports of older versions):
    # members per species, largest first; node genes and enabled connection genes.
    species_sizes: tuple[int, ...] = ()
    mean_nodes: float | None = None
    mean_connections: float | None = None
    best_nodes: int | None = None
    best_connections: int | None = None
    # What went wrong in the environment for the lowest-keyed failed genome (``errors``
    # counts them), so the owner sees why, not only how many; None when none failed.
    first_error: str | None = None

    @property
    def evaluations_per_s(self) -> float:
        """Genome evaluations (one genome, all its games) per second."""
        return self.evaluations / self.seconds if self.seconds > 0 else 0.0

    @property
    def steps_per_s(self) -> float:
        """Environment steps per second."""
        return self.env_steps / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with the derived rates included."""
        data = dict(self.__dict__)
        data["species_sizes"] = list(self.species_sizes)  # as JSON reads it back
        data["evaluations_per_s"] = self.evaluations_per_s
        data["steps_per_s"] = self.steps_per_s
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> GenerationReport:
        """Inverse of :meth:`to_dict` (derived rates are recomputed)."""
        fields = GenerationReport.__dataclass_fields__
        kept = {k: v for k, v in data.items() if k in fields}
        kept["species_sizes"] = tuple(kept.get("species_sizes") or ())  # JSON gives a list
        return GenerationReport(**kept)


@dataclass(frozen=True)
class BestGenome:
    """The best genome seen so far and where it came from."""

    genome: Genome
    fitness: float
    generation: int
    returns: tuple[float, ...]


@dataclass(frozen=True)
class TrainingState:
    """Everything needed to continue a training: config, population, history, best."""

    config: TrainingConfig
    population: Population
    history: tuple[GenerationReport, ...] = ()
    best: BestGenome | None = None
    finished: str | None = None  # "generations" | "fitness_threshold" | "stopped"
    last_outcomes: Mapping[int, Outcome] = field(default_factory=dict)
    # With threshold_games: the latest returns of the genomes carried over into this
    # population (key -> up to threshold_games games they played, oldest first).
    record: Mapping[int, tuple[float, ...]] = field(default_factory=dict)

    @property
    def generation(self) -> int:
        """The generation to evaluate next (or the last one, once finished)."""
        return self.population.generation


def start(config: TrainingConfig) -> TrainingState:
    """A fresh training at generation 0."""
    return TrainingState(config=config, population=initial_population(config))


def report_for(
    state: TrainingState,
    outcomes: Mapping[int, Outcome],
    seconds: float,
    checks: int = 0,
    mismatches: int = 0,
) -> GenerationReport:
    """Summarise one evaluated generation."""
    pop = state.population
    fitness = {k: outcomes[k].mean for k in pop.genomes}
    best_key = min(fitness, key=lambda k: (-fitness[k], k))
    nodes = [len(g.node_ids) for g in pop.genomes.values()]
    links = [int(np.count_nonzero(g.enabled)) for g in pop.genomes.values()]
    best = pop.genomes[best_key]
    failed = [k for k in sorted(pop.genomes) if outcomes[k].error]
    return GenerationReport(
        generation=pop.generation,
        best_fitness=fitness[best_key],
        mean_fitness=math.fsum(fitness.values()) / len(fitness),
        best_genome_key=best_key,
        species=len(pop.species),
        population=len(pop.genomes),
        evaluations=len(fitness),
        env_steps=sum(outcomes[k].steps for k in pop.genomes),
        errors=len(failed),
        seconds=seconds,
        safeness_checks=checks,
        safeness_mismatches=mismatches,
        species_sizes=tuple(sorted((len(s.members) for s in pop.species), reverse=True)),
        mean_nodes=math.fsum(nodes) / len(nodes),
        mean_connections=math.fsum(links) / len(links),
        best_nodes=len(best.node_ids),
        best_connections=int(np.count_nonzero(best.enabled)),
        first_error=_capped(outcomes[failed[0]].error) if failed else None,
    )


MAX_ERROR_CHARS = 500  # a report travels in every event and checkpoint: keep it small


def _capped(message: str | None) -> str | None:
    if message is None or len(message) <= MAX_ERROR_CHARS:
        return message
    return message[: MAX_ERROR_CHARS - 1] + "…"


def phase_of(config: TrainingConfig, generation: int) -> Literal["local", "distributed"]:
    """Where generation ``generation`` (0-based) belongs: ``"local"`` for the alone phase
    (the first ``alone_training_iterations``), ``"distributed"`` after it."""
    return "local" if generation < config.alone_training_iterations else "distributed"


def advance(
    state: TrainingState, outcomes: Mapping[int, Outcome], report: GenerationReport
) -> TrainingState:
    """Record a generation's outcomes; breed the next one unless the run is over."""
    pop, config = state.population, state.config
    best = state.best
    if best is None or report.best_fitness > best.fitness:
        o = outcomes[report.best_genome_key]
        best = BestGenome(pop.genomes[report.best_genome_key], o.mean, pop.generation, o.returns)
    history = (*state.history, report)
    kept = {k: outcomes[k] for k in pop.genomes}
    reached, best, played = _threshold_stop(state, kept, report, best)
    if reached or pop.generation + 1 >= config.generations:
        reason = "fitness_threshold" if reached else "generations"
        return replace(state, history=history, best=best, finished=reason, last_outcomes=kept)
    fitness = {k: o.mean for k, o in kept.items()}
    # Failed genomes have no behaviour worth comparing: novelty leaves them out.
    behaviour = {k: o.behaviour for k, o in kept.items() if o.behaviour and o.error is None}
    after = next_generation(pop, fitness, config, behaviour)
    return replace(
        state,
        population=after,
        history=history,
        best=best,
        last_outcomes={},
        record={k: played[k] for k in after.genomes if k in played},
    )


def _threshold_stop(
    state: TrainingState,
    kept: Mapping[int, Outcome],
    report: GenerationReport,
    best: BestGenome | None,
) -> tuple[bool, BestGenome | None, dict[int, tuple[float, ...]]]:
    """Whether ``fitness_threshold`` ends the run now, the run's best genome, and (with
    ``threshold_games``) every genome's games so far, which the ones carried over keep."""
    config, pop = state.config, state.population
    threshold = config.fitness_threshold
    if threshold is None:
        return False, best, {}
    if config.threshold_games is None:
        return report.best_fitness >= threshold, best, {}
    # The latest threshold_games games (or this generation's, if more): a bounded record,
    # whatever a genome's age.
    played = {
        k: (*state.record.get(k, ()), *o.returns)[-max(config.threshold_games, len(o.returns)) :]
        for k, o in kept.items()
    }
    holder = held(played, threshold, config.threshold_games)
    if holder is None:
        return False, best, played
    games = played[holder]  # the run's answer is the genome that held, on all its games
    mean = math.fsum(games) / len(games)
    return True, BestGenome(pop.genomes[holder], mean, pop.generation, games), played


def held(played: Mapping[int, tuple[float, ...]], threshold: float, games: int) -> int | None:
    """The genome (lowest key among the best) whose mean over at least ``games`` (≥ 1) of the
    games it has played reaches ``threshold``, or None: a stop that one lucky draw cannot
    make."""
    means = {k: math.fsum(r) / len(r) for k, r in played.items() if len(r) >= games}
    ready = [k for k, m in means.items() if m >= threshold]
    return min(ready, key=lambda k: (-means[k], k)) if ready else None


def genome_header(config: Mapping[str, Any]) -> dict[str, Any]:
    """The first keys of every saved genome file: its format and the game it plays
    (``config`` as a document, so the CLI can pass the gateway's JSON)."""
    return {
        "format": GENOME_FORMAT,
        "version": 1,
        "env_id": config["gym_game_name"],
        "input_size": config["input_size"],
        "output_size": config["output_size"],
        "max_steps": config["max_number_of_steps"],
        **({"recurrent": True} if config.get("recurrent") else {}),  # only then: older files stay
        **(
            {"input_scaling_seed": seed} if (seed := input_scaling_seed(config)) is not None else {}
        ),
    }


def genome_document(best: BestGenome, config: TrainingConfig) -> dict[str, Any]:
    """A saved genome: plain JSON that ``ezspark play`` replays (see docs/genome-format.md)."""
    return {
        **genome_header(config.model_dump()),
        "generation": best.generation,
        "fitness": best.fitness,
        "returns": list(best.returns),
        "genome": best.genome.to_wire(),
    }


def state_to_dict(state: TrainingState) -> dict[str, Any]:
    """The checkpoint document."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "config": state.config.model_dump(),
        "population": population_to_dict(state.population),
        "history": [r.to_dict() for r in state.history],
        "best": None
        if state.best is None
        else {
            "genome": state.best.genome.to_wire(),
            "fitness": state.best.fitness,
            "generation": state.best.generation,
            "returns": list(state.best.returns),
        },
        "finished": state.finished,
        "last_outcomes": [outcome_doc(o) for o in state.last_outcomes.values()],
        # Only with threshold_games; older checkpoints have none (read as empty).
        **({"record": [[k, list(r)] for k, r in state.record.items()]} if state.record else {}),
    }


def state_from_dict(data: Mapping[str, Any]) -> TrainingState:
    """Inverse of :func:`state_to_dict`; refuses documents of another format."""
    if data.get("format") != CHECKPOINT_FORMAT or data.get("version") != 1:
        raise ValueError("not an EzSpark checkpoint (format/version mismatch)")
    best = data.get("best")
    config = parse_config(data["config"])
    return TrainingState(
        config=config,
        population=population_from_dict(data["population"], cycles=config.recurrent),
        history=tuple(GenerationReport.from_dict(r) for r in data["history"]),
        best=None
        if best is None
        else BestGenome(
            Genome.from_wire(best["genome"], cycles=config.recurrent),
            best["fitness"],
            best["generation"],
            tuple(best["returns"]),
        ),
        finished=data.get("finished"),
        last_outcomes={o["key"]: outcome_from_doc(o) for o in data.get("last_outcomes", [])},
        record={int(k): tuple(float(x) for x in r) for k, r in data.get("record", [])},
    )


def fitness_table(state: TrainingState) -> dict[int, float]:
    """Fitness of the last evaluated generation of a finished run (for comparisons)."""
    return {k: o.mean for k, o in state.last_outcomes.items()}
