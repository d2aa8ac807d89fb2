"""Starting points for the training form: one per shipped example, and one for your own env.

The values are read from the repository's ``examples/*.json`` (the same files ``ezspark
validate``/``train`` are shown with), never restated here.  An installed gateway finds
them through ``EZSPARK_EXAMPLES_DIR`` (the container image sets it); a source checkout
finds them beside ``services/``.  Without them only the "custom" preset is offered, built
from the spec's example (``fields.EXAMPLE``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog

from ezspark_gateway.web.fields import EXAMPLE, form_text

log = structlog.get_logger(__name__)

# Your own environment: the spec's values, the environment and its sizes left to you, and
# a run that ends by itself in minutes rather than after the spec's 600,000 generations.
CUSTOM_CHANGES: dict[str, Any] = {
    "gym_game_name": None,
    "input_size": None,
    "output_size": None,
    "generations": 300,
}
# (slug, title, example file) for the shipped examples, in the order they are offered.
SHIPPED: tuple[tuple[str, str, str], ...] = (
    ("cartpole", "CartPole", "cartpole.json"),
    ("acrobot", "Acrobot", "acrobot.json"),
    ("lunarlander", "LunarLander", "lunarlander.json"),
)
DEFAULT = "cartpole"


@dataclass(frozen=True)
class Preset:
    """A named starting point: the form's text for every key it sets."""

    slug: str
    title: str
    values: dict[str, str]

    @property
    def env_id(self) -> str:
        """The environment it trains on (blank for the custom preset)."""
        return self.values.get("gym_game_name", "")


def _as_form(config: dict[str, Any]) -> dict[str, str]:
    return {k: form_text(v) for k, v in config.items()}


def find_examples(configured: str = "") -> Path | None:
    """``configured`` if given, else the checkout's ``examples/`` (None if neither exists)."""
    if configured:
        path = Path(configured)
        return path if path.is_dir() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "examples"
        if (candidate / "cartpole.json").is_file():
            return candidate
    return None


@lru_cache(maxsize=8)
def presets(examples_dir: Path | None) -> tuple[Preset, ...]:
    """The shipped examples found in ``examples_dir``, then the custom preset."""
    found = []
    for slug, title, filename in SHIPPED:
        path = None if examples_dir is None else examples_dir / filename
        try:
            config = json.loads(path.read_text(encoding="utf-8")) if path else None
        except (OSError, ValueError) as exc:
            log.warning("example_unreadable", path=str(path), error=str(exc))
            config = None
        if isinstance(config, dict):
            found.append(Preset(slug, title, _as_form(config)))
    custom = Preset("custom", "Your own environment", _as_form(EXAMPLE | CUSTOM_CHANGES))
    return (*found, custom)


def pick(all_presets: tuple[Preset, ...], slug: str | None) -> Preset:
    """The preset named ``slug``, else the default one (the first there is)."""
    by_slug = {p.slug: p for p in all_presets}
    return by_slug.get(slug or DEFAULT) or by_slug.get(DEFAULT) or all_presets[0]
