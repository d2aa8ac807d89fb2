"""Turn untrusted bytes or form fields into a validated TrainingConfig.

The rules and messages are the shared ``ezspark_common.config`` ones, so the API, the web
form and the CLI refuse the same inputs with the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

from ezspark_common.config import ConfigError, TrainingConfig, loads_config, parse_config

# A training config is one flat object; anything deeper than this is not a config and
# could exhaust the parser's recursion budget.
MAX_JSON_DEPTH = 32
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")
_INT = re.compile(r"[+-]?\d{1,30}")
# Keys typed as text in the model: never coerce them to numbers.
TEXT_KEYS = frozenset(k for k, f in TrainingConfig.model_fields.items() if f.annotation is str)


def json_depth(raw: bytes) -> int:
    """Deepest ``[``/``{`` nesting outside string literals (linear in the bracket count)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    return max(accumulate((1 if c in b"[{" else -1 for c in brackets), initial=0))


def config_from_json(raw: bytes) -> TrainingConfig:
    """Validate a JSON document; ConfigError names every problem."""
    try:
        text = raw.decode("utf-8-sig")  # editors on Windows like to add a BOM
    except UnicodeDecodeError as exc:
        raise ConfigError([("config", f"is not UTF-8 text (byte {exc.start})")]) from None
    if not text.strip():
        raise ConfigError([("config", "is empty; send a JSON object")])
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ConfigError([("config", f"nests deeper than {MAX_JSON_DEPTH} levels")])
    try:
        return loads_config(text)
    except RecursionError:
        raise ConfigError([("config", "nests too deeply")]) from None


def coerce_form_value(key: str, raw: str) -> Any:
    """A form field's text as the JSON value a user would have typed in a file."""
    text = raw.strip()
    if key in TEXT_KEYS:
        return text
    if text.lower() in ("true", "false"):  # the optional switches (see docs/config.md)
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text)
    try:
        # "nan"/"inf" become floats here and are refused by the model with its own message.
        return float(text)
    except ValueError:
        return text


def config_from_form(form: Mapping[str, str]) -> TrainingConfig:
    """Validate form fields; blank optional fields take their defaults."""
    data: dict[str, Any] = {}
    for key, raw in form.items():
        if key.startswith("_") or not isinstance(raw, str):
            continue  # form plumbing (e.g. a CSRF or submit field) is not config
        if raw.strip() == "":
            # A blank field is an absent key: optional ones take their default, required
            # ones get the model's own "is required".
            continue
        data[key] = coerce_form_value(key, raw)
    return parse_config(data)
