"""The library's layers (``ezspark_common/__init__.py``): imports only flow downwards."""

from __future__ import annotations

import ast
from pathlib import Path

import ezspark_common

SRC = Path(ezspark_common.__file__).parent
# Lowest first: a module may import from its own layer and the ones listed before it.
LAYERS = (
    ("config", "suggest", "quotas", "settings", "logging", "rng"),
    ("neat",),
    ("evaluation",),
    ("wire",),
    ("trainer",),
    ("cli",),  # below broker: the embedded trainer installs without the broker extra
    ("broker",),
    ("service",),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _part(module: str) -> str:
    """The top-level part of ``ezspark_common.<part>...`` (a subpackage or a module)."""
    return module.split(".")[1]


def _imports(path: Path) -> list[str]:
    """Every ``ezspark*`` module named by an import in ``path``, at any depth."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "ezspark_common":
                names += [f"ezspark_common.{a.name}" for a in node.names]
            else:
                names.append(node.module)
    return [n for n in names if n.startswith("ezspark")]


def test_every_part_has_a_layer() -> None:
    """Each subpackage and top-level module of the library is placed in a layer."""
    parts = {p.stem for p in SRC.glob("*.py")} | {p.parent.name for p in SRC.glob("*/__init__.py")}
    assert parts - {"__init__", "__main__"} == set(RANK)


def test_imports_flow_downwards() -> None:
    """No library module imports a higher layer, and none imports a service."""
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        own = path.relative_to(SRC).parts[0].removesuffix(".py")
        if own in ("__init__", "__main__"):
            continue
        for name in _imports(path):
            if not name.startswith("ezspark_common.") or RANK[_part(name)] > RANK[own]:
                wrong.append(f"{path.relative_to(SRC)} imports {name}")
    assert wrong == []
