"""Request and response bodies of the JSON API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FieldError(BaseModel):
    """One broken rule: which field, and what the rule says."""

    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error response: a summary, and per-field details for 422s."""

    detail: str
    errors: list[FieldError] | None = None


SIGNUP_DETAIL = "If this username was free, the account now exists: log in to continue."


class Credentials(BaseModel):
    """Username and password for sign-up and log-in."""

    username: str = Field(max_length=200, examples=["ada"])
    password: str = Field(max_length=4096, examples=["correct horse battery staple"])


class UserOut(_Out):
    """A public view of an account."""

    id: int
    username: str
    created_at: float


class TokenCreate(BaseModel):
    """A label to recognise the new API token by, and its lifetime."""

    name: str = Field(default="api", min_length=1, max_length=100)
    # None: the gateway's EZSPARK_API_TOKEN_TTL_S.  Every API token expires.
    expires_in_days: int | None = Field(default=None, ge=1, le=366)


class SignupOut(BaseModel):
    """The same answer whether the name was free or taken, so sign-up reveals no names."""

    status: Literal["accepted"] = "accepted"
    detail: str = SIGNUP_DETAIL


class SessionOut(_Out):
    """A browser or API log-in session (never its secret)."""

    id: int
    name: str
    prefix: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    current: bool = False


class TokenOut(_Out):
    """A credential's metadata (never its secret)."""

    id: int
    kind: str
    name: str
    prefix: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None


class NewTokenOut(TokenOut):
    """A credential just created: ``token`` is shown this once and never stored."""

    token: str
    token_type: Literal["bearer"] = "bearer"


class LoginOut(BaseModel):
    """A successful sign-up or log-in: the user and a session token (also set as cookie)."""

    user: UserOut
    token: NewTokenOut


class ReportOut(_Out):
    """Statistics of one generation."""

    generation: int
    best_fitness: float
    mean_fitness: float
    species: int
    population: int
    evaluations_per_s: float
    best_genome_key: int
    received_at: float
    species_sizes: list[int] | None = Field(
        default=None, description="members of each species, largest first (newer evolvers)"
    )
    mean_nodes: float | None = Field(default=None, description="mean node genes per genome")
    mean_connections: float | None = Field(
        default=None, description="mean enabled connection genes per genome"
    )
    best_nodes: int | None = Field(default=None, description="node genes of the best genome")
    best_connections: int | None = Field(
        default=None, description="enabled connection genes of the best genome"
    )
    phase: Literal["local", "distributed"] | None = Field(
        default=None, description="where the generation ran: the owner's machine or the service"
    )
    errors: int | None = Field(
        default=None, description="genomes whose environment failed (they get the floor fitness)"
    )
    first_error: str | None = Field(
        default=None, description="what went wrong for the first of them (lowest genome key)"
    )
    safeness_checks: int | None = Field(
        default=None, description="genomes evaluated a second time and compared (safeness)"
    )
    safeness_mismatches: int | None = Field(
        default=None, description="re-checked genomes whose two answers differed"
    )


class TrainingSummary(_Out):
    """A training in a list."""

    id: str
    status: Literal["queued", "running", "stopping", "finished", "failed", "stopped"]
    gym_game_name: str
    created_at: float
    updated_at: float
    generations: int
    best_fitness: float | None
    waiting: str | None = Field(
        default=None,
        description="why the training waits (e.g. no evaluator serves its "
        "environment); null while it runs or once it ended",
    )
    name: str | None = Field(default=None, description="what the owner calls the run")
    tags: list[str] | None = Field(default=None, description="the owner's labels, lower-case")
    notes: str | None = Field(default=None, description="the owner's free-text notes")
    archived_at: float | None = Field(
        default=None, description="when the run was archived (hidden from the default list)"
    )


class HealthOut(BaseModel):
    """How a run is doing, computed when asked (rules: docs/services.md, "Run health")."""

    state: Literal[
        "queued", "running", "waiting", "stalled", "stopping", "finished", "failed", "stopped"
    ] = Field(description="the status, but 'stalled' or 'waiting' when an active run is")
    stalled: bool = Field(description="active, and no evolver event for stalled_after_s")
    stalled_after_s: float = Field(description="max(60 s, 5 x the typical generation time)")
    phase: Literal["local", "distributed"] | None = Field(
        description="local: within alone_training_iterations; null before any event"
    )
    generations_done: int = Field(description="finished generations (as in the list)")
    generations_total: int | None = Field(description="the config's generations")
    running_generation: int | None = Field(
        description="1-based number of the generation being evaluated; null once ended"
    )
    tasks_done: int | None = Field(description="tasks of the running generation answered")
    tasks_total: int | None = Field(description="tasks of the running generation")
    evaluators_answering: int | None = Field(
        description="evaluators that answered the running generation's tasks"
    )
    evaluators_serving: int | None = Field(
        description="live evaluators announcing the run's environment (this gateway's view)"
    )
    generation_s: float | None = Field(description="typical seconds per generation, recently")
    eta_s: float | None = Field(
        description="seconds until the last generation; an upper bound with a "
        "fitness_threshold; null while stalled or waiting or before two reports"
    )
    last_event_at: float | None = Field(description="when the evolver last told us anything")
    last_event_age_s: float | None
    created_at: float
    finished_at: float | None
    elapsed_s: float = Field(description="from creation to the end (or to now)")
    finish_reason_text: str | None = Field(description="why the run ended, in words")
    env_errors_text: str | None = Field(
        default=None,
        description="the newest generation's environment failures and the first one's "
        "message, in words; null when none failed",
    )
    safeness_text: str | None = Field(
        default=None,
        description="the newest generation's safeness re-checks that got two different "
        "answers, and what that usually means; null when none did",
    )


class TrainingDetail(TrainingSummary):
    """A training with its config, outcome and latest report."""

    config: dict[str, Any]
    finish_reason: str | None
    error: str | None
    has_best_genome: bool
    latest_report: ReportOut | None
    health: HealthOut | None = Field(default=None, description="run health (newer gateways)")


class TrainingPatch(BaseModel):
    """Fields to change on a training; absent ones stay, null or "" clears one.

    ``name``: at most 100 characters, one line.  ``tags``: at most 10, each up to 32
    characters of letters, digits, ``_ . : -`` (stored lower-case, duplicates dropped).
    ``notes``: at most 10,000 characters.  ``archived``: hide an ended run from the
    default list (true) or show it again (false).
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, examples=["baseline, seed 1"])
    tags: list[str] | None = Field(default=None, examples=[["cartpole", "baseline"]])
    notes: str | None = Field(default=None, examples=["first try with the spec's rates"])
    archived: bool | None = None


class TrainingList(BaseModel):
    """One page of the caller's trainings."""

    items: list[TrainingSummary]
    total: int
    limit: int
    offset: int


class GenerationsOut(BaseModel):
    """A page of generation history; poll again with ``since=next_since``."""

    training_id: str
    items: list[ReportOut]
    next_since: int


class ValidationOut(BaseModel):
    """A config that passed every rule, normalised (optional keys filled in)."""

    valid: Literal[True] = True
    config: dict[str, Any]
    warnings: list[str] = Field(
        default_factory=list,
        description="valid, but worth a second look: e.g. a run with no stopping point "
        "(the web form asks before creating it; the API does not)",
    )


class EnvironmentOut(BaseModel):
    """An environment evaluators announced, with the sizes a config must match."""

    env_id: str
    input_size: int
    output_size: int
    action_space: str = Field(description="Gymnasium's repr, e.g. Discrete(2)")
    observation_space: str
    max_episode_steps: int | None
    evaluators: int = Field(
        description="live evaluators serving it now (0: trainings on "
        "it are accepted and wait for one)"
    )


class EnvironmentList(BaseModel):
    """Every environment announced since the gateway started, by id."""

    items: list[EnvironmentOut]


class Status(BaseModel):
    """Health and readiness answers."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entry documenting ErrorOut bodies for ``codes``."""
    return {code: {"model": ErrorOut} for code in codes}
