"""Per-user quotas set by the operator, checked by the gateway and again by the evolver.

The gateway refuses an over-quota config before anything reaches the queue; the evolver
checks again before it builds a population, so a request that bypassed the gateway can
never make it allocate memory that the quota forbids.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ezspark_common.config import TrainingConfig


class Quotas(BaseModel):
    """Limits per user; the setting names are ``EZSPARK_QUOTA_*``."""

    model_config = ConfigDict(frozen=True)

    # Trainings one user may have queued or running at once.
    active_trainings: int = Field(default=4, ge=1)
    # Largest population (initial or max) a config may ask for.
    population: int = Field(default=20_000, ge=2)
    # Largest population × games × steps of one generation (environment steps at most).
    work_per_generation: int = Field(default=100_000_000, ge=1)


def population_cap(config: TrainingConfig) -> int:
    """The most genomes one generation of ``config`` can hold."""
    return max(config.initial_population, config.max_population)


def work_per_generation(config: TrainingConfig) -> int:
    """Most environment steps one generation can take: population × games × steps."""
    return population_cap(config) * config.max_number_of_games * config.max_number_of_steps


def quota_errors(config: TrainingConfig, quotas: Quotas) -> list[tuple[str, str]]:
    """One ``(key, message)`` per quota the config exceeds; each message names the limit."""
    errors: list[tuple[str, str]] = []
    population = population_cap(config)
    if population > quotas.population:
        key = (
            "max_population"
            if config.max_population >= config.initial_population
            else "initial_population"
        )
        errors.append(
            (
                key,
                f"asks for {population:,} genomes, over the quota of "
                f"{quotas.population:,} (EZSPARK_QUOTA_POPULATION)",
            )
        )
    work = work_per_generation(config)
    if work > quotas.work_per_generation:
        errors.append(
            (
                "max_number_of_steps",
                (
                    f"population × games × steps = {population:,} × {config.max_number_of_games:,}"
                    f" × {config.max_number_of_steps:,} = {work:,} per generation, over the quota "
                    f"of {quotas.work_per_generation:,} (EZSPARK_QUOTA_WORK_PER_GENERATION)"
                ),
            )
        )
    return errors
