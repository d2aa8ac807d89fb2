"""Remote ``ezspark`` commands: log in to a gateway, submit, follow, stop, fetch the best genome.

The account commands are in ``remote_account``, the training ones in ``remote_trainings``
and what they share (failure messages and exit codes, polling) in ``remote_common``.
"""

from __future__ import annotations

import click

from ezspark_common.cli.remote_account import login, logout, signup
from ezspark_common.cli.remote_trainings import best, status, stop, submit, watch


def register(group: click.Group) -> None:
    """Add the remote commands to the ``ezspark`` group."""
    for command in (signup, login, logout, submit, status, watch, stop, best):
        group.add_command(command)
