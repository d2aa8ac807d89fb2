"""Continue a user's local run in the cluster (``ezspark train --gateway``).

The body is ``{"config": {...}, "checkpoint": {...}}``: the training config and the local
run's ``checkpoint.json`` after its alone phase.  Both are checked here, with every
problem named by its field (``config.<key>``, ``checkpoint...``), before the ordinary
admission of ``trainings.create_training`` (quotas, environment, active trainings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NoReturn

from ezspark_common.config import ConfigError, TrainingConfig, parse_config
from ezspark_common.handoff import checkpoint_state
from ezspark_common.training import TrainingState
from ezspark_gateway.core.config_input import MAX_JSON_DEPTH, json_depth
from ezspark_gateway.core.errors import InvalidInputError
from ezspark_gateway.core.trainings import get_training
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.models import SavedGenomeRow, User


def _refuse_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity; a checkpoint never holds them.
    raise ValueError(f"{name} is not JSON")


def _document(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; InvalidInputError saying why it is not one."""
    try:
        text = raw.decode("utf-8-sig")
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise ValueError(f"nests deeper than {MAX_JSON_DEPTH} levels")
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError([("body", f"is not valid JSON: {exc!s:.200}")]) from None
    if not isinstance(data, dict):
        raise InvalidInputError([("body", 'must be {"config": {...}, "checkpoint": {...}}')])
    missing = [(k, "is required") for k in ("config", "checkpoint") if k not in data]
    extra = [(k, "is not allowed") for k in data if k not in ("config", "checkpoint")]
    if missing or extra:
        raise InvalidInputError(missing + extra)
    return data


def parse_handoff(raw: bytes) -> tuple[TrainingConfig, TrainingState]:
    """The config and the state to continue it from, or InvalidInputError naming each
    broken rule (a bad config, or a checkpoint that is unreadable or does not fit it)."""
    data = _document(raw)
    try:
        config = parse_config(data["config"])
    except ConfigError as exc:
        raise InvalidInputError(
            [(k if k == "config" else f"config.{k}", m) for k, m in exc.errors]
        ) from None
    state, errors = checkpoint_state(config, data["checkpoint"])
    if errors or state is None:
        raise InvalidInputError(errors)
    return config, state


def saved_genomes(
    repo: Repository, owner: User, training_id: str, since: int, limit: int
) -> Sequence[SavedGenomeRow]:
    """The owner's training's saved genomes from generation ``since`` on, in order."""
    get_training(repo, owner, training_id)
    return repo.saved_genomes(training_id, since, limit)
