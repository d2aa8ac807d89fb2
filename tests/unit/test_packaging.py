"""The library's install footprint: pika and prometheus-client are the `broker` extra."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import ezspark_common
from tests.support.configs import REPO

SERVICE_ONLY = ("pika", "prometheus_client")
# Library packages only the services use: they talk to the broker, so they need the extra.
SERVICE_PACKAGES = ("ezspark_common.broker", "ezspark_common.service")
MAIN = "ezspark_common.__main__"  # runs the CLI on import
# Runs the code after it in an interpreter where importing pika or prometheus_client fails,
# as in an install of the library without its `broker` extra.
BLOCK = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None\n"


def _run_blocked(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    program = BLOCK.format(names=SERVICE_ONLY) + code
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO,
    )


def _project(path: str) -> dict[str, object]:
    with (REPO / path / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def test_pika_and_prometheus_are_the_broker_extra() -> None:
    """The library's own dependencies leave pika and prometheus-client to the extra."""
    project = _project("libs/ezspark_common")
    base = " ".join(str(d) for d in project["dependencies"])  # type: ignore[attr-defined]
    assert "pika" not in base
    assert "prometheus" not in base
    extra = " ".join(project["optional-dependencies"]["broker"])  # type: ignore[index]
    assert "pika" in extra
    assert "prometheus-client" in extra


def test_every_service_asks_for_the_broker_extra() -> None:
    """The three services install the library with its broker extra."""
    for service in ("evaluator", "evolver", "gateway"):
        deps = _project(f"services/{service}")["dependencies"]
        assert "ezspark-common[broker]" in deps, service  # type: ignore[operator]


def test_library_modules_import_without_the_extra() -> None:
    """Every library module outside the broker and service packages imports without pika
    and prometheus-client."""
    names = [
        m.name
        for m in pkgutil.walk_packages(ezspark_common.__path__, "ezspark_common.")
        if not m.name.startswith(SERVICE_PACKAGES) and m.name != MAIN
    ]
    assert len(names) > 30
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    done = _run_blocked(code, *names)
    assert done.returncode == 0, done.stderr


def test_broker_without_the_extra_names_it() -> None:
    """Importing the broker package without the extra fails with the install command."""
    done = _run_blocked("import ezspark_common.broker\n")
    assert done.returncode != 0
    assert "pip install 'ezspark-common[broker]'" in done.stderr


def test_embedded_training_runs_without_the_extra(tmp_path: Path) -> None:
    """`ezspark train` runs a real (two-generation) training without pika or prometheus."""
    config = json.loads((REPO / "examples" / "cartpole.json").read_text())
    config.update(generations=2, max_population=30, initial_population=30)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    cli = "from ezspark_common.cli import main\nsys.exit(main())\n"
    done = _run_blocked(cli, "train", str(path), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "best.json").is_file()
