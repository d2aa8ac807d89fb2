"""``ezspark train`` on an environment that raises for some genomes: the progress line
counts them and the exception's message is printed under it, once per new message."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from ezspark_common.cli.app import main
from tests.support import faulty_envs
from tests.support.configs import small_config


def test_train_prints_why_the_environment_failed(tmp_path: Path) -> None:
    """Counts on the generation lines; the message once, not once per generation."""
    faulty_envs.register()
    config = small_config(
        gym_game_name="EzTest/RaiseOnOne-v0", input_size=2, output_size=2, generations=4
    )
    cfg = tmp_path / "raise.json"
    cfg.write_text(json.dumps(config.model_dump()))
    result = CliRunner().invoke(
        main, ["train", str(cfg), "--out", str(tmp_path / "run"), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    gens = [line for line in lines if line.startswith("gen ")]
    assert len(gens) == 4
    assert all(" | errors " in line for line in gens)
    why = [line.strip() for line in lines if "environment failed" in line]
    assert len(why) == 1
    where = r"\(at support/faulty_envs\.py:\d+ in step\)"  # the environment's own code
    assert re.search(rf"genomes: step raised ValueError: action 1 is forbidden {where}$", why[0])
