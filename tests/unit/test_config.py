"""The training config's schema: the spec's 29 keys, the extras, and the environment checks.

Every rule is shown with a good and a bad variant, and every refusal must name the key it
is about and the rule it broke.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ezspark_common.cli.app import main
from ezspark_common.config import (
    EXTRA_KEYS,
    SPEC_KEYS,
    ConfigError,
    TrainingConfig,
    config_with,
    loads_config,
    parse_config,
)
from ezspark_common.evaluation.envs import resolve
from tests.support.configs import REPO

SPEC_EXAMPLE = Path(__file__).resolve().parents[3] / "shared/spec/example-config.json"
REPO_EXAMPLE = REPO / "examples/spec-example.json"

RATE_KEYS = (
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
)
# Integer counts and the smallest value each accepts.
COUNT_KEYS = {
    "input_size": 1,
    "output_size": 1,
    "initial_population": 2,
    "generations": 1,
    "children": 1,
    "saving": 1,
    "limiting_species": 1,
    "limiting_threshold": 1,
    "max_population": 2,
    "same_fitness_limit": 1,
    "max_number_of_games": 1,
    "max_number_of_steps": 1,
    "sub_games": 1,
}
INT_KEYS = (*COUNT_KEYS, "alone_training_iterations", "keep_parents")
FLOAT_KEYS = (*RATE_KEYS, "species_threshold", "percentage_survivors_per_specie", "minimum_reward")


def _example_bytes() -> bytes:
    """The spec's example config, from the shared spec or the repo's byte-identical copy."""
    for path in (SPEC_EXAMPLE, REPO_EXAMPLE):
        if path.exists():
            return path.read_bytes()
    pytest.fail(f"neither {SPEC_EXAMPLE} nor {REPO_EXAMPLE} exists")


def _example() -> dict[str, Any]:
    data = json.loads(_example_bytes())
    assert isinstance(data, dict)
    return data


def _with(**changes: Any) -> dict[str, Any]:
    data = _example()
    data.update(changes)
    return data


def _errors(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.errors, "a ConfigError must carry at least one (key, message)"
    return info.value.errors


def _assert_refused(data: Any, key: str, fragment: str) -> None:
    errors = _errors(data)
    hits = [msg for k, msg in errors if k == key]
    assert hits, f"no error names {key!r}: {errors}"
    assert any(fragment in msg for msg in hits), f"{key!r} errors lack {fragment!r}: {hits}"


def _cartpole(**changes: Any) -> TrainingConfig:
    data = _with(gym_game_name="CartPole-v1")
    data.update(changes)
    return parse_config(data)


# --- the spec's example -------------------------------------------------------------------


def test_spec_example_copies_are_identical() -> None:
    """examples/spec-example.json is a byte-identical copy of the shared spec's example."""
    if not (SPEC_EXAMPLE.exists() and REPO_EXAMPLE.exists()):
        assert SPEC_EXAMPLE.exists() or REPO_EXAMPLE.exists()
        return
    assert SPEC_EXAMPLE.read_bytes() == REPO_EXAMPLE.read_bytes()


def test_spec_example_passes_loads_config() -> None:
    """The spec's example JSON, read as raw bytes, is a valid config with the spec's values."""
    config = loads_config(_example_bytes())
    assert config.gym_game_name == "CartPole-v0"
    assert config.generations == 600000
    assert config.percentage_survivors_per_specie == 0.3
    assert config.minimum_reward == 0


def test_spec_example_passes_cli_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ezspark validate` accepts the spec's example file (environment included) with exit 0."""
    monkeypatch.delenv("EZSPARK_ENV_MODULES", raising=False)
    path = SPEC_EXAMPLE if SPEC_EXAMPLE.exists() else REPO_EXAMPLE
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok: CartPole-v0, 4 inputs, 2 outputs" in result.output
    # Valid, but 600,000 generations and no fitness_threshold: said, not refused.
    assert "warning: this run has no stopping point: 600,000 generations" in result.stderr


def test_cli_validate_refuses_bad_config_naming_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ezspark validate` exits 2 on a bad config and prints the key and the rule."""
    monkeypatch.delenv("EZSPARK_ENV_MODULES", raising=False)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_with(safeness=1.5)), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert "safeness: input should be less than or equal to 1" in result.output


# --- the 29 keys ----------------------------------------------------------------------------


def test_spec_keys_are_the_examples_keys_exactly() -> None:
    """SPEC_KEYS is the example's 29 keys, same spelling and order; the model has just those."""
    assert len(SPEC_KEYS) == 29
    assert tuple(_example()) == SPEC_KEYS
    assert tuple(TrainingConfig.model_fields) == SPEC_KEYS + EXTRA_KEYS
    assert EXTRA_KEYS[:2] == ("seed", "fitness_threshold")
    assert {"target_species", "intraspecies_crossover_rate"} <= set(EXTRA_KEYS)


@pytest.mark.parametrize("key", SPEC_KEYS)
def test_each_missing_key_is_named(key: str) -> None:
    """Leaving out any one of the 29 keys is refused with an error naming that key."""
    data = _example()
    del data[key]
    errors = _errors(data)
    assert (key, "is required") in errors
    assert all(k == key for k, _ in errors)


def test_empty_object_names_all_29_keys() -> None:
    """An empty object is refused with one 'is required' error per spec key."""
    errors = _errors({})
    assert sorted(k for k, _ in errors) == sorted(SPEC_KEYS)


@pytest.mark.parametrize("key", RATE_KEYS)
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (-0.01, "greater than or equal to 0"),
        (1.01, "less than or equal to 1"),
        (2, "less than or equal to 1"),
    ],
)
def test_rates_outside_unit_interval_refused(key: str, value: float, fragment: str) -> None:
    """Every probability key refuses values outside [0, 1]."""
    _assert_refused(_with(**{key: value}), key, fragment)


@pytest.mark.parametrize("key", RATE_KEYS)
@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0])
def test_rates_at_bounds_accepted(key: str, value: float) -> None:
    """0 and 1 (int or float) are valid probabilities."""
    assert getattr(parse_config(_with(**{key: value})), key) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (0, "greater than 0"),
        (0.0, "greater than 0"),
        (-0.3, "greater than 0"),
        (1.5, "less than or equal to 1"),
        (1.0001, "less than or equal to 1"),
    ],
)
def test_percentage_survivors_bad(value: float, fragment: str) -> None:
    """percentage_survivors_per_specie must satisfy 0 < p <= 1."""
    _assert_refused(
        _with(percentage_survivors_per_specie=value), "percentage_survivors_per_specie", fragment
    )


@pytest.mark.parametrize("value", [1, 1.0, 0.001])
def test_percentage_survivors_good(value: float) -> None:
    """percentage_survivors_per_specie accepts 1 and small positive values."""
    config = parse_config(_with(percentage_survivors_per_specie=value))
    assert config.percentage_survivors_per_specie == value


@pytest.mark.parametrize("threshold", [15, 16, 100])
def test_limiting_threshold_not_below_limiting_species_refused(threshold: int) -> None:
    """limiting_threshold >= limiting_species is refused (spec: threshold < limiting_species)."""
    _assert_refused(
        _with(limiting_species=15, limiting_threshold=threshold),
        "limiting_threshold",
        "less than limiting_species",
    )


def test_limiting_threshold_just_below_accepted() -> None:
    """limiting_threshold = limiting_species - 1 is accepted."""
    assert parse_config(_with(limiting_species=15, limiting_threshold=14)).limiting_threshold == 14


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (0, "greater than or equal to 1"),
        (-1, "greater than or equal to 1"),
        (6, "at most max_number_of_games"),
        (50, "at most max_number_of_games"),
    ],
)
def test_sub_games_bad(value: int, fragment: str) -> None:
    """sub_games must be in 1..max_number_of_games (the example has 5 games)."""
    _assert_refused(_with(sub_games=value), "sub_games", fragment)


@pytest.mark.parametrize("value", [1, 3, 5])
def test_sub_games_good(value: int) -> None:
    """sub_games from 1 up to max_number_of_games inclusive is accepted."""
    assert parse_config(_with(sub_games=value)).sub_games == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (2, "less than or equal to 1"),
        (-1, "greater than or equal to 0"),
        (True, "valid integer"),
        (False, "valid integer"),
        (1.0, "valid integer"),
        ("1", "valid integer"),
    ],
)
def test_keep_parents_bad(value: Any, fragment: str) -> None:
    """keep_parents is the integer 0 or 1: 2, -1, booleans, floats and strings are refused."""
    _assert_refused(_with(keep_parents=value), "keep_parents", fragment)


@pytest.mark.parametrize("value", [0, 1])
def test_keep_parents_good(value: int) -> None:
    """keep_parents accepts 0 and 1."""
    assert parse_config(_with(keep_parents=value)).keep_parents == value


def test_saving_zero_refused() -> None:
    """saving must be >= 1 (the spec: 'saving >= 1')."""
    _assert_refused(_with(saving=0), "saving", "greater than or equal to 1")


@pytest.mark.parametrize("initial", [20001, 10**6])
def test_initial_population_above_max_refused(initial: int) -> None:
    """initial_population may not exceed max_population."""
    _assert_refused(
        _with(initial_population=initial, max_population=20000),
        "initial_population",
        "at most max_population",
    )


def test_initial_population_equal_to_max_accepted() -> None:
    """initial_population == max_population is accepted."""
    assert parse_config(_with(initial_population=50, max_population=50)).max_population == 50


@pytest.mark.parametrize("key", list(COUNT_KEYS))
@pytest.mark.parametrize("delta", [1, 2])
def test_counts_below_minimum_refused(key: str, delta: int) -> None:
    """Every count refuses values below its minimum (0 and negatives for most)."""
    minimum = COUNT_KEYS[key]
    _assert_refused(_with(**{key: minimum - delta}), key, f"greater than or equal to {minimum}")


@pytest.mark.parametrize("value", [-1, -100])
def test_alone_training_iterations_negative_refused(value: int) -> None:
    """alone_training_iterations refuses negatives (0 is allowed: join others at once)."""
    _assert_refused(
        _with(alone_training_iterations=value),
        "alone_training_iterations",
        "greater than or equal to 0",
    )
    assert parse_config(_with(alone_training_iterations=0)).alone_training_iterations == 0


@pytest.mark.parametrize("value", [0, 0.0, -3])
def test_species_threshold_non_positive_refused(value: float) -> None:
    """species_threshold must be > 0."""
    _assert_refused(_with(species_threshold=value), "species_threshold", "greater than 0")


def test_minimum_reward_may_be_negative() -> None:
    """minimum_reward has no bound: negative rewards are the point of it."""
    assert parse_config(_with(minimum_reward=-100.5)).minimum_reward == -100.5


def test_minimum_reward_floor_never_overflows() -> None:
    """minimum_reward is bounded so its floor (minimum_reward · steps) is always finite."""
    # Accepted, -1e307 would give reward_floor == -inf and NaN shares in reproduction.
    _assert_refused(
        _with(minimum_reward=-1e307, max_number_of_steps=1000),
        "minimum_reward",
        "greater than or equal",
    )
    extreme = parse_config(_with(minimum_reward=-1e12, max_number_of_steps=10_000_000))
    assert math.isfinite(extreme.reward_floor)


def test_gym_game_name_must_be_non_empty_string() -> None:
    """gym_game_name is a non-empty string."""
    _assert_refused(_with(gym_game_name=""), "gym_game_name", "at least 1 character")
    _assert_refused(_with(gym_game_name=3), "gym_game_name", "valid string")


NON_FINITE = [
    ("NaN", "safeness"),
    ("Infinity", "minimum_reward"),
    ("-Infinity", "species_threshold"),
    ("NaN", "generations"),
    ("Infinity", "fitness_threshold"),
]


def _with_literal(key: str, literal: str) -> str:
    text = json.dumps(_with(**{key: "@@"})).replace('"@@"', literal)
    assert f'"{key}": {literal}' in text
    return text


@pytest.mark.parametrize(("literal", "key"), NON_FINITE)
def test_nan_and_infinity_literals_refused(literal: str, key: str) -> None:
    """NaN / Infinity / -Infinity JSON literals never make a config."""
    with pytest.raises(ConfigError, match=r"finite|valid integer"):
        loads_config(_with_literal(key, literal))


@pytest.mark.parametrize(("literal", "key"), NON_FINITE)
def test_nan_and_infinity_literals_error_names_key(literal: str, key: str) -> None:
    """A NaN / Infinity literal's error names the key holding it (config.py's contract)."""
    with pytest.raises(ConfigError) as info:
        loads_config(_with_literal(key, literal))
    errors = info.value.errors
    assert any(k == key and ("finite" in m or "valid integer" in m) for k, m in errors), errors


@pytest.mark.parametrize("key", INT_KEYS)
def test_true_where_int_meant_refused(key: str) -> None:
    """JSON true is not silently read as 1 for an integer key."""
    _assert_refused(_with(**{key: True}), key, "valid integer")


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", [True, False])
def test_bool_where_number_meant_refused(key: str, value: bool) -> None:
    """JSON true/false are not silently read as 1.0/0.0 for a number key."""
    _assert_refused(_with(**{key: value}), key, "must be a number")


@pytest.mark.parametrize("key", INT_KEYS)
def test_string_where_int_meant_refused(key: str) -> None:
    """A numeric string is refused for an integer key."""
    _assert_refused(_with(**{key: "1"}), key, "valid integer")


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", ["0.5", "abc", None, [0.5]])
def test_non_number_where_number_meant_refused(key: str, value: Any) -> None:
    """Strings, null and lists are refused for a number key."""
    # null reaches pydantic's own check ("valid number"); the rest our "must be a number".
    fragment = "valid number" if value is None else "must be a number"
    _assert_refused(_with(**{key: value}), key, fragment)


@pytest.mark.parametrize("key", ["generations", "children", "max_number_of_steps"])
@pytest.mark.parametrize("value", [1.5, 10.0])
def test_float_where_int_meant_refused(key: str, value: float) -> None:
    """A float (even a whole one) is refused for an integer key."""
    _assert_refused(_with(**{key: value}), key, "valid integer")


@pytest.mark.parametrize("text", ["[]", "[1, 2]", "3", "null", '"config"', "true"])
def test_non_object_json_refused(text: str) -> None:
    """A JSON document that is not an object is refused as a whole config."""
    with pytest.raises(ConfigError) as info:
        loads_config(text)
    assert info.value.errors == [("config", "must be a JSON object")]


@pytest.mark.parametrize("text", ['{"a":', "", "{'gym_game_name': 1}", '{"a": 1,}', b"\xff\xfe{"])
def test_malformed_json_refused(text: str | bytes) -> None:
    """Malformed JSON (text or bytes) is a ConfigError, never a bare exception."""
    with pytest.raises(ConfigError) as info:
        loads_config(text)
    ((key, msg),) = info.value.errors
    assert key == "config"
    assert "is not valid JSON" in msg


def test_several_errors_reported_at_once() -> None:
    """All broken rules are reported together, each under its own key."""
    errors = _errors(_with(safeness=2, saving=0, zzz=1))
    assert {k for k, _ in errors} == {"safeness", "saving", "zzz"}


def test_config_error_string_names_key_and_rule() -> None:
    """str(ConfigError) carries 'key: rule' for display."""
    with pytest.raises(ConfigError, match=r"saving: input should be greater than or equal to 1"):
        parse_config(_with(saving=0))


def test_config_with_rechecks_rules() -> None:
    """config_with applies changes and re-checks every rule."""
    config = parse_config(_example())
    assert config_with(config, seed=7).seed == 7
    with pytest.raises(ConfigError) as info:
        config_with(config, sub_games=99)
    assert info.value.errors == [("sub_games", "must be at most max_number_of_games")]


def test_config_is_frozen() -> None:
    """A validated config cannot be changed in place."""
    config = parse_config(_example())
    with pytest.raises(ValueError, match="frozen"):
        config.saving = 3  # type: ignore[misc]


# --- unknown keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("alone_training_iteration", "alone_training_iterations"),
        ("new_connection_assignement_rate", "new_connection_assignment_rate"),
        ("limiting_specie", "limiting_species"),
        ("samefitness_limit", "same_fitness_limit"),
        ("sead", "seed"),
    ],
)
def test_unknown_key_suggests_the_right_one(typo: str, suggestion: str) -> None:
    """A misspelled key (the spec's own prose misspellings included) gets a did-you-mean."""
    errors = _errors(_with(**{typo: 1}))
    assert errors == [(typo, f"unknown key; did you mean '{suggestion}'?")]


@pytest.mark.parametrize(
    ("typo", "suggestions"),
    [
        ("populaton_size", ["max_population", "initial_population"]),
        ("population_size", ["max_population", "initial_population"]),
        ("max_pop", ["max_population"]),
        ("inputsize", ["input_size"]),
        ("mutation_rate", ["connection_mutation_rate"]),
        ("survivors", ["percentage_survivors_per_specie"]),
    ],
)
def test_did_you_mean_ranks_by_the_meaningful_word(typo: str, suggestions: list[str]) -> None:
    """The long word typed counts more than a shared suffix: populaton_size is no output_size."""
    ((key, msg),) = _errors(_with(**{typo: 1}))
    assert key == typo
    assert msg.split("'")[1::2] == suggestions
    assert "output_size" not in msg


@pytest.mark.parametrize("name", ["add_node_big_specie_rate", "add_node_small_specie_rate"])
def test_spec_prose_misnamed_rate_suggests_a_real_rate(name: str) -> None:
    """The spec's add_node_big/small_specie_rate bullets are refused with a real-key suggestion."""
    ((key, msg),) = _errors(_with(**{name: 0.3}))
    assert key == name
    assert msg.startswith("unknown key; did you mean '")
    suggested = msg.split("'")[1]
    size = name.split("_")[2]
    assert suggested in {"add_node_specie_rate", f"add_connection_{size}_specie_rate"}


@pytest.mark.parametrize("name", ["colour", "learning_rate_schedule", "x"])
def test_unrelated_unknown_key_gets_no_suggestion(name: str) -> None:
    """A key resembling nothing is refused without a did-you-mean."""
    assert _errors(_with(**{name: 1})) == [(name, "unknown key")]


# --- extras -------------------------------------------------------------------------------


def test_extras_default_to_spec_behaviour() -> None:
    """Without extras: seed 0 and no fitness threshold (run all generations)."""
    config = parse_config(_example())
    assert config.seed == 0
    assert config.fitness_threshold is None


def test_extras_accepted_when_given() -> None:
    """seed and fitness_threshold are accepted with valid values."""
    config = parse_config(_with(seed=2**63 - 1, fitness_threshold=-12.5))
    assert config.seed == 2**63 - 1
    assert config.fitness_threshold == -12.5
    assert parse_config(_with(fitness_threshold=None)).fitness_threshold is None
    assert parse_config(_with(fitness_threshold=195)).fitness_threshold == 195


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (-1, "greater than or equal to 0"),
        (2**63, "less than"),
        (True, "valid integer"),
        (1.5, "valid integer"),
        ("7", "valid integer"),
        (None, "valid integer"),
    ],
)
def test_seed_bad(value: Any, fragment: str) -> None:
    """seed is an integer in [0, 2**63)."""
    _assert_refused(_with(seed=value), "seed", fragment)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (True, "must be a number"),
        ("195", "must be a number"),
        ([1], "must be a number"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
    ],
)
def test_fitness_threshold_bad(value: Any, fragment: str) -> None:
    """fitness_threshold is a finite number or null."""
    _assert_refused(_with(fitness_threshold=value), "fitness_threshold", fragment)


# --- environment checks -------------------------------------------------------------------


def test_resolve_accepts_matching_environment() -> None:
    """resolve returns the environment's sizes when they match the config."""
    info = resolve(_cartpole())
    assert (info.input_size, info.output_size, info.max_episode_steps) == (4, 2, 500)


def test_resolve_input_size_mismatch_names_key() -> None:
    """A wrong input_size is refused under input_size, saying what the env has."""
    with pytest.raises(ConfigError) as info:
        resolve(_cartpole(input_size=5))
    assert info.value.errors == [
        ("input_size", "is 5 but 'CartPole-v1' observations have 4 values")
    ]


def test_resolve_output_size_mismatch_names_key() -> None:
    """A wrong output_size is refused under output_size, saying what the env has."""
    with pytest.raises(ConfigError) as info:
        resolve(_cartpole(output_size=3))
    assert info.value.errors == [("output_size", "is 3 but 'CartPole-v1' has 2 discrete actions")]


def test_resolve_unknown_env_lists_close_matches() -> None:
    """An unknown id is refused under gym_game_name with close registered ids listed."""
    with pytest.raises(ConfigError) as info:
        resolve(_cartpole(gym_game_name="CartPole-v9"))
    ((key, msg),) = info.value.errors
    assert key == "gym_game_name"
    assert "unknown environment 'CartPole-v9'" in msg
    assert "close matches:" in msg
    assert "CartPole-v1" in msg


def test_resolve_unknown_env_without_close_match() -> None:
    """A totally unknown id is refused without a close-match list, pointing to the usual
    cause for a user's own id: its package is not in EZSPARK_ENV_MODULES."""
    with pytest.raises(ConfigError) as info:
        resolve(_cartpole(gym_game_name="Qqqqqqqqqqqqqq-v0"))
    ((key, msg),) = info.value.errors
    assert key == "gym_game_name"
    assert "close matches" not in msg
    assert "once EZSPARK_ENV_MODULES lists it" in msg


def test_resolve_refuses_os_system() -> None:
    """'os:system' is refused as a module outside the allow-list."""
    with pytest.raises(ConfigError) as info:
        resolve(_cartpole(gym_game_name="os:system"))
    ((key, msg),) = info.value.errors
    assert key == "gym_game_name"
    assert "'os'" in msg
    assert "not an allowed environment module" in msg
    assert "set EZSPARK_ENV_MODULES=os" in msg  # what a user on their own machine does


def test_resolve_never_imports_a_named_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An importable module named in 'module:Env-v0' is refused without being imported."""
    name = "ezspark_evil_probe_pkg"
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    for env_id in (f"{name}:Env-v0", "evil_pkg:Env-v0"):
        with pytest.raises(ConfigError) as info:
            resolve(_cartpole(gym_game_name=env_id))
        ((key, msg),) = info.value.errors
        assert key == "gym_game_name"
        assert "not an allowed environment module" in msg
    assert name not in sys.modules
    assert "evil_pkg" not in sys.modules
    assert not marker.exists()
    # The module really was importable: the refusal is the allow-list, not a missing file.
    import importlib.util

    assert importlib.util.find_spec(name) is not None


def test_resolve_accepts_a_bounded_box() -> None:
    """Pendulum-v1 (Box action space, 1 value) is accepted with output_size 1."""
    info = resolve(_cartpole(gym_game_name="Pendulum-v1", input_size=3, output_size=1))
    assert (info.input_size, info.output_size) == (3, 1)


def test_resolve_box_output_size_mismatch_names_the_dimension() -> None:
    """A wrong output_size for a Box says it is the flattened action dimension."""
    with pytest.raises(ConfigError) as info:
        resolve(_cartpole(gym_game_name="Pendulum-v1", input_size=3, output_size=2))
    ((key, msg),) = info.value.errors
    assert key == "output_size"
    assert "Box action space of 1 values" in msg


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.json")), ids=lambda p: p.stem)
def test_every_example_passes_cli_validate(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each shipped example has the 29 spec keys and passes `ezspark validate` (rules and
    environment), so a user can start from any of them; one of their own environment
    (``module:Id``) with its example package (``examples/<module>``) on the path."""
    data = json.loads(path.read_text())
    assert set(SPEC_KEYS) <= set(data)
    env: dict[str, str] = {}
    if ":" in data["gym_game_name"]:
        module = data["gym_game_name"].split(":")[0]
        monkeypatch.syspath_prepend(str(REPO / "examples" / module))
        env["EZSPARK_ENV_MODULES"] = module
    result = CliRunner().invoke(main, ["validate", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "not deterministic" not in result.output
