"""Training configs for tests: the repository's examples, shrunk for speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ezspark_common.config import TrainingConfig, config_with, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def example(name: str, **overrides: Any) -> dict[str, Any]:
    """``examples/<name>.json`` as the raw document a user sends, with ``overrides``."""
    return {**json.loads((EXAMPLES / f"{name}.json").read_text()), **overrides}


def example_config(name: str, **changes: Any) -> TrainingConfig:
    """``examples/<name>.json`` parsed, with ``changes`` (checked like any config)."""
    return config_with(load_config(EXAMPLES / f"{name}.json"), **changes)


def small_config(**changes: Any) -> TrainingConfig:
    """The spec's example on CartPole-v1, shrunk so a run takes about a second."""
    values: dict[str, Any] = {
        "gym_game_name": "CartPole-v1",
        "initial_population": 40,
        "max_population": 120,
        "generations": 6,
        "max_number_of_games": 3,
        "sub_games": 2,
        "max_number_of_steps": 120,
        "seed": 3,
        "safeness": 0.25,
    }
    return example_config("spec-example", **{**values, **changes})
