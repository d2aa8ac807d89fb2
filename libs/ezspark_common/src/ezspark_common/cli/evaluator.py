"""``ezspark evaluator``: this machine plays your trainings' games (and, with
``--volunteer``, other users' of the same environments).

It hands over to the evaluator service (``ezspark-evaluator``, from the
``ezspark-evaluator`` package), which trades your API token for a broker user of this
machine's own; see ``ezspark_evaluator.byo``.  The library never imports the service.
"""

from __future__ import annotations

import os
import shutil
import sys

import click

from ezspark_common.cli.client import URL_ENV, gateway_url
from ezspark_common.cli.supervise import supervise


@click.command("evaluator")
@click.option(
    "--gateway", "url", default=None, help="Gateway URL (default: the one you logged in to)."
)
@click.option("--volunteer", is_flag=True, help="Also serve other users' trainings.")
@click.option("--envs", default="", help="Environment ids to serve (default: all installed).")
def evaluator(url: str | None, volunteer: bool, envs: str) -> None:
    """Serve trainings' games on this machine, for the environments installed here.

    Log in first (`ezspark login`) or set EZSPARK_TOKEN; custom environments need their
    module in EZSPARK_ENV_MODULES.  Ctrl-C stops it and deletes its broker user.  After
    ending an evaluation stuck in your environment (EZSPARK_TASK_HANG_S) it starts again.
    """
    # The service installed next to this interpreter (the same venv) first, then PATH.
    search = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    program = shutil.which("ezspark-evaluator", path=search)
    if program is None:
        click.echo("ezspark-evaluator is not installed: pip install ezspark-evaluator", err=True)
        sys.exit(1)
    _warn_nondeterministic(envs or os.environ.get("EZSPARK_ENVS", ""))  # what it will serve
    target = gateway_url(url)
    env = dict(os.environ, EZSPARK_GATEWAY=target, EZSPARK_VOLUNTEER=str(volunteer).lower())
    env[URL_ENV] = target
    env.setdefault("EZSPARK_LOG_JSON", "false")
    env.setdefault("EZSPARK_METRICS_PORT", "0")  # a laptop needs no scrape port
    if envs:
        env["EZSPARK_ENVS"] = envs
    sys.exit(supervise([program], env, say=lambda text: click.echo(text, err=True)))


def own_env_ids(modules: list[str]) -> list[str]:
    """The registered ids whose entry point lies in one of ``modules`` (the user's own
    environments, as opposed to Gymnasium's)."""
    import gymnasium as gym

    ids = []
    for env_id, spec in gym.registry.items():
        entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
        if any(entry.startswith((f"{m}.", f"{m}:")) for m in modules):
            ids.append(env_id)
    return sorted(ids)


def _warn_nondeterministic(envs: str) -> None:
    """Probe the user's own environments (or those of ``--envs``) before serving them: a
    non-deterministic one gets this machine quarantined in shared trainings."""
    from ezspark_common.evaluation.determinism import warning
    from ezspark_common.settings import CommonSettings

    modules = CommonSettings().env_module_list
    named = [e.strip() for e in envs.split(",") if e.strip()]
    for env_id in named or own_env_ids(modules):
        if text := warning(env_id, env_modules=modules):
            click.echo(f"warning: {text}", err=True)


def register(group: click.Group) -> None:
    """Add ``evaluator`` to the ``ezspark`` command group."""
    group.add_command(evaluator)
