"""No module-level mutable state in the library: whoever evaluates owns what it reuses.

The rule: every name a module of ``ezspark_common`` binds at its top level holds a value
that cannot change (numbers, strings, tuples and frozensets of such, read-only mappings,
frozen dataclasses, classes, functions, ...), and no function rebinds a module global
(``global``).  The few exceptions are listed below with the reason each is safe.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import importlib
import inspect
import logging
import pkgutil
import re
import struct
import types
from collections.abc import Iterator
from typing import Any

import click
import numpy as np
import pytest
import structlog

import ezspark_common

_CACHE = "functools.cache of a pure function of the environment id (same answer every time)"
# (module, name) → why the value may stay at module level.
ALLOWED: dict[tuple[str, str], str] = {
    ("ezspark_common.evaluation.games.acrobot", "available"): _CACHE,
    ("ezspark_common.evaluation.games.lunarlander", "available"): _CACHE,
    ("ezspark_common.evaluation.games.mountaincar", "available"): _CACHE,
    ("ezspark_common.evaluation.games.mountaincar", "discrete_available"): _CACHE,
    ("ezspark_common.evaluation.games.pendulum", "available"): _CACHE,
    ("ezspark_common.broker.metrics", "_cache"): (
        "metric objects per CollectorRegistry, keyed weakly by the registry that owns them "
        "(prometheus refuses a second registration of a name in one registry)"
    ),
    ("ezspark_common.broker.metrics", "_lock"): "guards _cache above",
    ("ezspark_common.wire.messages", "_ADAPTER"): "pydantic's compiled validator: read-only",
    ("ezspark_common.neat.packed", "COLUMNS"): (
        "column names and kinds, only read; the NEAT engine is another change's to edit"
    ),
}
# Types whose module-level instances are declarations, complete once the module is imported:
# loggers (configured once per process by ``ezspark_common.logging``) and click commands.
DECLARATION_TYPES: tuple[type, ...] = (logging.Logger, structlog.BoundLoggerBase, click.Command)
IMMUTABLE_ATOMS: tuple[type, ...] = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    range,
    type,
    enum.Enum,
    re.Pattern,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
    types.UnionType,
    types.GenericAlias,
    np.generic,
    np.dtype,
    struct.Struct,
)


def library_modules() -> Iterator[types.ModuleType]:
    """Every module of ``ezspark_common``, imported."""
    yield ezspark_common
    prefix = ezspark_common.__name__ + "."
    for info in pkgutil.walk_packages(ezspark_common.__path__, prefix):
        if info.name.endswith("__main__"):
            continue  # running it starts the CLI
        yield importlib.import_module(info.name)


def top_level_names(tree: ast.Module) -> set[str]:
    """Names the module's own statements bind at its top level (imports excluded)."""
    names: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list:
            names.add(node.name)  # a decorator may wrap it in something stateful
        for target in targets:
            names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def frozen(value: Any) -> bool:
    """True if ``value`` cannot be changed in place."""
    if hasattr(value, "cache_info"):  # functools.cache / lru_cache: a memo that fills up
        return False
    if isinstance(value, IMMUTABLE_ATOMS) or _is_typing_construct(value):
        return True
    if isinstance(value, tuple | frozenset):
        return all(frozen(v) for v in value)
    if isinstance(value, types.MappingProxyType):
        return all(frozen(k) and frozen(v) for k, v in value.items())
    if isinstance(value, np.ndarray):
        return not value.flags.writeable
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        params = getattr(value, "__dataclass_params__", None)
        return bool(params and params.frozen) and all(
            frozen(getattr(value, f.name)) for f in dataclasses.fields(value)
        )
    return isinstance(value, DECLARATION_TYPES) or _is_lazy_logger(value)


def _is_typing_construct(value: Any) -> bool:
    return type(value).__module__ in ("typing", "typing_extensions") or inspect.isroutine(value)


def _is_lazy_logger(value: Any) -> bool:
    return type(value).__name__ == "BoundLoggerLazyProxy"


def global_statements(tree: ast.Module) -> list[str]:
    """Names some function of the module rebinds with ``global``."""
    return [name for n in ast.walk(tree) if isinstance(n, ast.Global) for name in n.names]


def findings() -> list[str]:
    """Every module-level binding that breaks the rule and is not allowed."""
    found = []
    for module in library_modules():
        tree = ast.parse(inspect.getsource(module))
        for name in sorted(top_level_names(tree)):
            if name.startswith("__") or (module.__name__, name) in ALLOWED:
                continue
            value = vars(module).get(name)
            if not frozen(value):
                found.append(f"{module.__name__}.{name}: {type(value).__name__}")
        found += [f"{module.__name__}: global {n}" for n in global_statements(tree)]
    return found


def test_no_module_level_mutable_state_in_the_library() -> None:
    """No module of ezspark_common keeps a mutable value at its top level or uses global."""
    assert findings() == []


def test_every_allowed_exception_still_exists() -> None:
    """The allow-list names only bindings that exist (a stale entry would hide nothing)."""
    for module_name, name in ALLOWED:
        assert hasattr(importlib.import_module(module_name), name), (module_name, name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, False),
        ([], False),
        (set(), False),
        ((1, "a", frozenset({2})), True),
        ((1, []), False),
        (types.MappingProxyType({"a": 1}), True),
        (types.MappingProxyType({"a": []}), False),
        (np.zeros(2), False),
        (np.zeros(2).view(), False),
        (object(), False),
        (functools.cache(lambda: 1), False),
    ],
)
def test_the_rule_tells_mutable_from_frozen(value: object, expected: bool) -> None:
    """The check itself: containers and plain objects are mutable, frozen forms are not."""
    assert frozen(value) is expected


def test_the_scan_catches_a_module_level_dict_and_a_global() -> None:
    """A module binding a dict and rebinding a global is what the scan reports."""
    tree = ast.parse("import os\nCACHE = {}\nX: int = 1\ndef f():\n    global X\n    X = 2\n")
    assert top_level_names(tree) == {"CACHE", "X"}
    assert global_statements(tree) == ["X"]
