"""Pure helpers of the core layer: JSON depth, form coercion, security primitives."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from argon2 import PasswordHasher

from ezspark_gateway.core.config_input import (
    coerce_form_value,
    config_from_json,
    json_depth,
)
from ezspark_gateway.core.errors import RateLimitedError
from ezspark_gateway.core.security import (
    AuthThrottle,
    MemoryAttempts,
    Passwords,
    hash_token,
    new_token,
)


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [[1]]}', 3),
        (b'{"a": "[[[[[[["}', 1),
        (b'{"a": "\\"[[["}', 1),
        (b"[" * 40 + b"]" * 40, 40),
        (b"1", 0),
        (b'[{"a": 1}, {"b": [2]}]', 3),
    ],
)
def test_json_depth_ignores_brackets_in_strings(raw: bytes, depth: int) -> None:
    """Depth counts real nesting only, not brackets inside string literals."""
    assert json_depth(raw) == depth


def test_config_with_brackets_in_name_is_fine(example_dict: dict[str, Any]) -> None:
    """A game name full of brackets is not mistaken for deep nesting."""
    example_dict["gym_game_name"] = "[" * 100
    assert config_from_json(json.dumps(example_dict).encode()).gym_game_name == "[" * 100


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("input_size", "4", 4),
        ("input_size", " -3 ", -3),
        ("safeness", "0.5", 0.5),
        ("safeness", "abc", "abc"),
        ("gym_game_name", "123", "123"),
        ("safeness", "1e3", 1000.0),
    ],
)
def test_form_values_become_json_values(key: str, raw: str, value: Any) -> None:
    """Form text turns into the JSON value a user would have typed; names stay text."""
    got = coerce_form_value(key, raw)
    assert got == value
    assert type(got) is type(value)


def test_random_bytes_never_escape_as_other_errors() -> None:
    """Random bodies only ever raise ConfigError (which the API turns into 422)."""
    from ezspark_common.config import ConfigError

    rng = random.Random(1234)
    alphabet = b'{}[]":,0123456789.eE-+ntrufalsNI\\ \xff'
    for _ in range(2000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        with pytest.raises(ConfigError):
            config_from_json(raw)


def test_attempt_window_starts_afresh_after_it_passes() -> None:
    """Attempts count up inside a window; once it passes, the count starts again."""
    store = MemoryAttempts()
    assert store.hit("k", 0.0, 10.0) == (1, 0.0)
    assert store.hit("k", 5.0, 10.0) == (2, 0.0)
    assert store.hit("other", 5.0, 10.0) == (1, 5.0)
    assert store.hit("k", 10.5, 10.0) == (1, 10.5)


def test_auth_throttle_raises_rate_limited_with_the_wait() -> None:
    """The throttle turns an exhausted budget into RateLimitedError with the rest of the window."""
    now = [0.0]
    throttle = AuthThrottle(2, 10.0, MemoryAttempts(), clock=lambda: now[0])
    throttle.check("login", "1.2.3.4", "ada")
    throttle.check("login", "1.2.3.4", "ada")
    now[0] = 4.0
    with pytest.raises(RateLimitedError) as caught:
        throttle.check("login", "1.2.3.4", "ada")
    assert caught.value.retry_after == pytest.approx(6.0)
    now[0] = 10.5
    throttle.check("login", "1.2.3.4", "ada")


def test_auth_throttle_raises_rate_limited() -> None:
    """The throttle turns an exhausted budget into RateLimitedError."""
    throttle = AuthThrottle(1, 60.0, MemoryAttempts(), clock=lambda: 0.0)
    throttle.check("login", "1.2.3.4", "Ada")
    with pytest.raises(RateLimitedError):
        throttle.check("login", "1.2.3.4", " ada ")


def test_passwords_hash_verify_and_rehash() -> None:
    """Argon2 hashes verify the right password only, and weak parameters ask for a rehash."""
    weak = Passwords(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    stored = weak.hash("hunter22")
    assert weak.verify(stored, "hunter22")
    assert not weak.verify(stored, "hunter23")
    assert not weak.verify(None, "hunter22")
    assert not weak.verify("not-a-hash", "hunter22")
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=128, parallelism=1))
    assert stronger.needs_rehash(stored)


def test_tokens_are_random_and_hashed() -> None:
    """New tokens differ, carry 256 bits, and their digest is SHA-256 of the text."""
    a, b = new_token(), new_token()
    assert a.plain != b.plain
    assert len(a.plain) >= 40
    assert a.digest == hash_token(a.plain)
    assert len(a.digest) == 64
    assert a.plain.startswith(a.prefix)
