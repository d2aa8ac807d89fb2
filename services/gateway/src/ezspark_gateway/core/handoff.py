"""Continue a user's local run in the cluster (``ezspark train --gateway``).

The body is ``{"config": {...}, "checkpoint": {...}, "handoff_id": "..."}``: the training
config, the local run's ``checkpoint.json`` after its alone phase, and an optional id the
client chose, so that retrying after a lost answer returns the training already created.
They are checked here, each problem named by its field (``config.<key>``,
``checkpoint...``), before the ordinary admission of ``trainings.create_training``
(quotas, environment, active trainings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ezspark_common.config import ConfigError, TrainingConfig, parse_config
from ezspark_common.trainer.handoff import checkpoint_state
from ezspark_common.trainer.training import TrainingState
from ezspark_gateway.core.config_input import MAX_JSON_DEPTH, json_depth
from ezspark_gateway.core.errors import InvalidInputError
from ezspark_gateway.core.trainings import FAILED, get_training
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.models import SavedGenomeRow, Training, User


def _refuse_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity; a checkpoint never holds them.
    raise ValueError(f"{name} is not JSON")


_KEYS = ("config", "checkpoint", "handoff_id")
# A client-chosen id: bounded, and plain enough to log.
_HANDOFF_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


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
    extra = [(k, "is not allowed") for k in data if k not in _KEYS]
    ref = data.get("handoff_id")
    if ref is not None and not (isinstance(ref, str) and _HANDOFF_ID.fullmatch(ref)):
        extra.append(("handoff_id", "must be 8-64 letters, digits, '_' or '-'"))
    if missing or extra:
        raise InvalidInputError(missing + extra)
    return data


@dataclass(frozen=True)
class Handoff:
    """A checked hand-over: the config, the state to continue it from, the client's id."""

    config: TrainingConfig
    state: TrainingState
    handoff_id: str | None


def parse_handoff(raw: bytes) -> Handoff:
    """The checked hand-over, or InvalidInputError naming each broken rule (a bad config,
    or a checkpoint that is unreadable or does not fit it)."""
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
    return Handoff(config, state, data.get("handoff_id"))


def earlier(repo: Repository, owner: User, handoff_id: str | None) -> Training | None:
    """The training an earlier request with this ``handoff_id`` created (not one that
    failed to reach the broker), so a retry after a lost answer gets it back."""
    if handoff_id is None:
        return None
    training = repo.training_by_handoff(owner.id, handoff_id)
    return None if training is None or training.status == FAILED else training


def saved_genomes(
    repo: Repository, owner: User, training_id: str, since: int, limit: int
) -> Sequence[SavedGenomeRow]:
    """The owner's training's saved genomes from generation ``since`` on, in order."""
    get_training(repo, owner, training_id)
    return repo.saved_genomes(training_id, since, limit)
