"""Handing a local run over to the cluster (``ezspark train --gateway``).

The user's machine runs the alone phase with the embedded trainer and sends its checkpoint
(``training.state_to_dict``); the gateway and the evolver both check it with
``checkpoint_state`` and the evolver continues from it.  Generation-best and best-so-far
genomes travel back on ``GenerationFinished`` as ``SavedGenome``, and ``genome_file`` turns
one into the very document the embedded trainer writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ezspark_common.config import ConfigError, TrainingConfig
from ezspark_common.trainer.training import TrainingState, genome_header, state_from_dict
from ezspark_common.wire.messages import SavedGenome, WireGenome

# Keys of a checkpoint that a caller may not leave out (``state_from_dict`` needs them).
_FIELDS = ("format", "version", "config", "population", "history")


def checkpoint_state(
    config: TrainingConfig, checkpoint: Any
) -> tuple[TrainingState | None, list[tuple[str, str]]]:
    """The state to continue ``config`` from, or ``(field, message)`` pairs saying why not."""
    if not isinstance(checkpoint, Mapping):
        return None, [("checkpoint", "must be a JSON object: a run's checkpoint.json")]
    missing = [k for k in _FIELDS if k not in checkpoint]
    if missing:
        return None, [("checkpoint", f"is not an EzSpark checkpoint: no {', '.join(missing)}")]
    try:
        state = state_from_dict(checkpoint)
    except ConfigError as exc:
        return None, [(f"checkpoint.config.{k}", m) for k, m in exc.errors]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        return None, [("checkpoint", f"is not a readable EzSpark checkpoint ({exc!s:.300})")]
    return state, _state_errors(config, state)


def _state_errors(config: TrainingConfig, state: TrainingState) -> list[tuple[str, str]]:
    """What makes a readable checkpoint unfit to continue ``config``."""
    mine, theirs = config.model_dump(), state.config.model_dump()
    differ = sorted(k for k in mine if mine[k] != theirs.get(k))
    if differ:
        return [("checkpoint.config", f"differs from the training config in {differ}")]
    gen, alone = state.generation, config.alone_training_iterations
    errors: list[tuple[str, str]] = []
    if state.finished:
        errors.append(
            (
                "checkpoint.finished",
                f"the run already ended ({state.finished}): nothing to continue",
            )
        )
    elif gen < alone:
        errors.append(
            (
                "checkpoint.population.generation",
                f"is {gen}, before the end of the alone phase (alone_training_iterations "
                f"= {alone}): finish it locally first",
            )
        )
    if len(state.history) != gen:
        errors.append(
            ("checkpoint.history", f"has {len(state.history)} reports for generation {gen}")
        )
    size = len(state.population.genomes)
    if not 0 < size <= config.max_population:
        errors.append(
            (
                "checkpoint.population.genomes",
                f"holds {size} genomes; between 1 and max_population ({config.max_population})",
            )
        )
    return errors + _population_errors(config, state)


def _population_errors(config: TrainingConfig, state: TrainingState) -> list[tuple[str, str]]:
    """Genomes that do not fit the config's inputs and outputs, or species naming genomes
    the population lacks: such a state would fail in the evaluators or the breeder."""
    pop, outputs = state.population, set(range(config.output_size))
    for key, genome in pop.genomes.items():
        src, nodes = genome.src.tolist(), set(genome.node_ids.tolist())
        if not outputs <= nodes or any(s < -config.input_size for s in src) or min(nodes) < 0:
            return [
                (
                    "checkpoint.population.genomes",
                    f"genome {key} does not fit {config.input_size} inputs and "
                    f"{config.output_size} outputs",
                )
            ]
    if not {k for s in pop.species for k in s.members} <= set(pop.genomes):
        return [("checkpoint.population.species", "name genomes the population lacks")]
    return []


def saved_genome(document: Mapping[str, Any]) -> SavedGenome:
    """A saved genome file (``training.genome_document``) as it travels on the wire."""
    return SavedGenome(
        generation=document["generation"],
        fitness=document["fitness"],
        returns=document["returns"],
        genome=WireGenome(**document["genome"]),
    )


def genome_file(saved: SavedGenome, config: Mapping[str, Any]) -> dict[str, Any]:
    """The document the embedded trainer writes for ``saved`` (same keys, same order)."""
    return {
        **genome_header(config),
        "generation": saved.generation,
        "fitness": saved.fitness,
        "returns": list(saved.returns),
        "genome": saved.genome.model_dump(mode="json"),
    }
