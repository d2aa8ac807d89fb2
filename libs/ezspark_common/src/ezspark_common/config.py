"""The training config: the spec's 29 keys, exactly as spelled there, plus optional extras.

Every rule lives here once, so the CLI, the gateway form and the API all refuse the same
inputs with the same messages.  A message always names the key and the rule it broke.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ezspark_common import rng as rngs
from ezspark_common.suggest import did_you_mean

# The spec's own names, in the spec's order: the form, the docs and the tests iterate this.
SPEC_KEYS: tuple[str, ...] = (
    "gym_game_name",
    "alone_training_iterations",
    "input_size",
    "output_size",
    "initial_population",
    "species_threshold",
    "generations",
    "percentage_survivors_per_specie",
    "connection_mutation_rate",
    "new_connection_assignment_rate",
    "add_connection_big_specie_rate",
    "add_connection_small_specie_rate",
    "add_node_specie_rate",
    "activate_connection_rate",
    "remove_connection_rate",
    "children",
    "crossover_rate",
    "saving",
    "keep_parents",
    "limiting_species",
    "limiting_threshold",
    "max_population",
    "same_fitness_limit",
    "age_significance",
    "max_number_of_games",
    "max_number_of_steps",
    "safeness",
    "sub_games",
    "minimum_reward",
)

# Keys beyond the spec.  Each default keeps the spec's behaviour, except
# intraspecies_crossover_rate (the NEAT paper's) and the weight scale (docs/config.md).
EXTRA_KEYS: tuple[str, ...] = (
    "seed",
    "fitness_threshold",
    "target_species",
    "intraspecies_crossover_rate",
    "trusted_evaluators_only",
    "recurrent",
    "weight_init_std",
    "weight_mutation_power",
    "novelty_weight",
    "elites_per_species",
    "normalize_inputs",
    "elitism",
    "threshold_games",
)

# Upper bounds keep a config inside what a database column, a message and memory can hold.
BIG = 1_000_000_000
Rate = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
PosInt = Annotated[int, Field(ge=1, le=BIG, strict=True)]
NonNegInt = Annotated[int, Field(ge=0, le=BIG, strict=True)]
PopInt = Annotated[int, Field(ge=2, le=1_000_000, strict=True)]


class ConfigError(ValueError):
    """A config broke a rule; ``errors`` holds one ``(key, message)`` per broken rule."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{key}: {msg}" for key, msg in errors))


class TrainingConfig(BaseModel):
    """A validated training config.  Frozen: engine state never hides on it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    gym_game_name: Annotated[str, Field(min_length=1, max_length=200, strict=True)]
    alone_training_iterations: NonNegInt
    input_size: Annotated[int, Field(ge=1, le=100_000, strict=True)]
    # 1 is a one-dimensional Box (Pendulum); a Discrete space needs 2 (envs.action_size).
    output_size: Annotated[int, Field(ge=1, le=100_000, strict=True)]
    initial_population: PopInt
    species_threshold: Annotated[float, Field(gt=0.0, le=1e9, allow_inf_nan=False)]
    generations: PosInt
    percentage_survivors_per_specie: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]
    connection_mutation_rate: Rate
    new_connection_assignment_rate: Rate
    add_connection_big_specie_rate: Rate
    add_connection_small_specie_rate: Rate
    add_node_specie_rate: Rate
    activate_connection_rate: Rate
    remove_connection_rate: Rate
    children: Annotated[int, Field(ge=1, le=1000, strict=True)]
    crossover_rate: Rate
    saving: PosInt
    keep_parents: Annotated[int, Field(ge=0, le=1, strict=True)]
    limiting_species: PosInt
    limiting_threshold: PosInt
    max_population: PopInt
    same_fitness_limit: PosInt
    age_significance: Rate
    max_number_of_games: Annotated[int, Field(ge=1, le=10_000, strict=True)]
    max_number_of_steps: Annotated[int, Field(ge=1, le=10_000_000, strict=True)]
    safeness: Rate
    sub_games: Annotated[int, Field(ge=1, le=10_000, strict=True)]
    minimum_reward: Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]

    seed: Annotated[int, Field(ge=0, lt=2**63, strict=True)] = 0
    fitness_threshold: Annotated[float | None, Field(allow_inf_nan=False)] = None
    target_species: Annotated[int | None, Field(ge=1, le=1_000_000, strict=True)] = None
    intraspecies_crossover_rate: Rate = 0.75
    # In the service: only the owner's own machines and the operator's evaluators play
    # this training's games, never other users' volunteers (no effect when embedded).
    trusted_evaluators_only: Annotated[bool, Field(strict=True)] = False
    # Networks with memory: cycles allowed, node values carried from step to step.
    recurrent: Annotated[bool, Field(strict=True)] = False
    # The scale of weights and biases, i.e. the networks' steepness (docs/config.md): fresh
    # values ~ N(0, weight_init_std), nudges ~ N(0, weight_mutation_power), clipped to ±30.
    # None: 2.5 and 1.25 feed-forward (softsign networks at the spec era's 1 and 0.5 are
    # nearly linear), 1 and 0.5 recurrent (a steep memory saturates); see the properties.
    weight_init_std: Annotated[float | None, Field(gt=0.0, le=30.0, allow_inf_nan=False)] = None
    weight_mutation_power: Annotated[float | None, Field(ge=0.0, le=30.0, allow_inf_nan=False)] = (
        None
    )
    # Share of selection given to behaviour novelty instead of fitness (neat.novelty); 0 off.
    novelty_weight: Rate = 0.0
    # With keep_parents 1: carry over only each species' best this many survivors; None:
    # every survivor (the spec reading, docs/config.md).
    elites_per_species: Annotated[int | None, Field(ge=1, le=1_000_000, strict=True)] = None
    # Observations centred and scaled by constants from random-action games before they
    # enter the networks (evaluation.scaling); false keeps the raw observations.
    normalize_inputs: Annotated[bool, Field(strict=True)] = False
    # With keep_parents 1: "species" carries over each species' best survivors; "population"
    # carries over as many genomes, the generation's best wherever they are.
    elitism: Literal["species", "population"] = "species"
    # With fitness_threshold: the run stops only when a genome's mean over its latest this
    # many games (those of every generation it was played in: a genome carried over plays
    # the next generation's games too) reaches it; None: one generation's games.
    threshold_games: Annotated[int | None, Field(ge=1, le=1_000_000, strict=True)] = None

    @field_validator(
        "species_threshold",
        "percentage_survivors_per_specie",
        "connection_mutation_rate",
        "new_connection_assignment_rate",
        "add_connection_big_specie_rate",
        "add_connection_small_specie_rate",
        "add_node_specie_rate",
        "activate_connection_rate",
        "remove_connection_rate",
        "crossover_rate",
        "age_significance",
        "safeness",
        "minimum_reward",
        "fitness_threshold",
        "intraspecies_crossover_rate",
        "weight_init_std",
        "weight_mutation_power",
        "novelty_weight",
        mode="before",
    )
    @classmethod
    def _number_not_bool(cls, value: Any) -> Any:
        # JSON true/false would otherwise coerce to 1.0/0.0 and hide a mistake.
        if isinstance(value, bool) or (value is not None and not isinstance(value, int | float)):
            raise ValueError("must be a number")
        return value

    @model_validator(mode="after")
    def _cross_key_rules(self) -> TrainingConfig:
        errors: list[tuple[str, str]] = []
        if self.limiting_threshold >= self.limiting_species:
            errors.append(("limiting_threshold", "must be less than limiting_species"))
        if self.sub_games > self.max_number_of_games:
            errors.append(("sub_games", "must be at most max_number_of_games"))
        if not math.isfinite(self.reward_floor):
            errors.append(("minimum_reward", "times max_number_of_steps must be a finite number"))
        if self.initial_population > self.max_population:
            errors.append(("initial_population", "must be at most max_population"))
        if errors:
            raise ConfigError(errors)
        return self

    @property
    def initial_weight_std(self) -> float:
        """``weight_init_std``, or its default: 2.5 feed-forward, 1 recurrent."""
        if self.weight_init_std is not None:
            return self.weight_init_std
        return 1.0 if self.recurrent else 2.5

    @property
    def weight_nudge_std(self) -> float:
        """``weight_mutation_power``, or its default: 1.25 feed-forward, 0.5 recurrent."""
        if self.weight_mutation_power is not None:
            return self.weight_mutation_power
        return 0.5 if self.recurrent else 1.25

    @property
    def input_scaling_seed(self) -> int | None:
        """With ``normalize_inputs``, the seed of the random-action games that fix the input
        constants (``rng.scaling_seed``, evaluation.scaling); else None."""
        return rngs.scaling_seed(self.seed) if self.normalize_inputs else None

    @property
    def reward_floor(self) -> float:
        """The lowest return a game can give: every step at ``minimum_reward``."""
        return min(0.0, self.minimum_reward) * self.max_number_of_steps


# Past this many generations a run with no fitness_threshold is most likely a slip (the
# spec's own example asks for 600,000): the web form asks before creating it.
UNBOUNDED_GENERATIONS = 10_000


def input_scaling_seed(document: Mapping[str, Any]) -> int | None:
    """:attr:`TrainingConfig.input_scaling_seed` of a config document (a validated config as
    stored or sent as JSON, which the gateway and genome files read)."""
    if document.get("normalize_inputs") is not True:
        return None
    return rngs.scaling_seed(int(document.get("seed", 0)))


def stopping_warning(config: TrainingConfig) -> str | None:
    """Why ``config`` may never end in practice, or None when it has a stopping point."""
    # With keep_parents 0 no genome plays more than one generation's games, so a larger
    # threshold_games can never be held: the threshold stops nothing.
    unholdable = (
        config.threshold_games is not None
        and config.threshold_games > config.max_number_of_games
        and config.keep_parents == 0
    )
    stops = config.fitness_threshold is not None and not unholdable
    if stops or config.generations <= UNBOUNDED_GENERATIONS:
        return None
    return (
        f"this run has no stopping point: {config.generations:,} generations and no "
        "fitness_threshold; set a fitness_threshold or fewer generations"
    )


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    loc = err.get("loc", ())
    key = str(loc[0]) if loc else "config"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return key, did_you_mean(key, SPEC_KEYS + EXTRA_KEYS)
    if kind == "missing":
        return key, "is required"
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    return key, msg[:1].lower() + msg[1:]


def parse_config(data: Any) -> TrainingConfig:
    """Validate a decoded JSON object; raise :class:`ConfigError` naming every bad key."""
    if not isinstance(data, dict):
        raise ConfigError([("config", "must be a JSON object")])
    try:
        return TrainingConfig.model_validate(data)
    except ValidationError as exc:
        errors: list[tuple[str, str]] = []
        for err in exc.errors():
            ctx = err.get("ctx") or {}
            if isinstance(ctx.get("error"), ConfigError):
                errors.extend(ctx["error"].errors)
            else:
                errors.append(_describe(dict(err)))
        raise ConfigError(errors) from None


def loads_config(text: str | bytes) -> TrainingConfig:
    """Parse JSON text into a config; malformed JSON is a ConfigError too."""
    try:
        # NaN/Infinity literals parse to floats and are refused under their own key below.
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError([("config", f"is not valid JSON: {exc}")]) from None
    return parse_config(data)


def load_config(path: str | Path) -> TrainingConfig:
    """Read and validate a config file."""
    return loads_config(Path(path).read_bytes())


def config_with(config: TrainingConfig, **changes: Any) -> TrainingConfig:
    """A copy of ``config`` with ``changes`` applied and every rule re-checked."""
    data = config.model_dump()
    data.update(changes)
    return parse_config(data)
