"""A module in EZSPARK_ENV_MODULES that is missing or raises on import: every ``ezspark``
command stops with one line naming the module, the exception and where in the module's
own code it was raised, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ezspark_common.cli.app import main
from ezspark_common.evaluation.envs import EnvModuleError, load_env_modules


def test_a_missing_module_is_named_without_a_traceback() -> None:
    """Exit 1 and one line: which module, ModuleNotFoundError; no location of ours."""
    result = CliRunner().invoke(
        main, ["validate", "x.json"], env={"EZSPARK_ENV_MODULES": "ezspark_no_such_module"}
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.strip() == (
        "error: EZSPARK_ENV_MODULES names 'ezspark_no_such_module', which cannot be imported: "
        "ModuleNotFoundError: No module named 'ezspark_no_such_module'"
    )


def test_a_module_that_raises_is_shown_where_it_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plug-in's own file and line are named, for any command (here `evaluator`)."""
    (tmp_path / "ezspark_broken_plugin.py").write_text("x = 1\nraise RuntimeError('bad import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ezspark_broken_plugin", raising=False)
    result = CliRunner().invoke(
        main, ["evaluator", "--help"], env={"EZSPARK_ENV_MODULES": "ezspark_broken_plugin"}
    )
    assert result.exit_code == 1
    where = tmp_path / "ezspark_broken_plugin.py"
    assert f"RuntimeError: bad import (at {where}:2)" in result.stderr
    assert "Traceback" not in result.output


def test_the_error_keeps_its_cause_for_the_services_logs() -> None:
    """EnvModuleError chains the import's own exception (the services log the message)."""
    with pytest.raises(EnvModuleError) as info:
        load_env_modules(["ezspark_no_such_module"])
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
