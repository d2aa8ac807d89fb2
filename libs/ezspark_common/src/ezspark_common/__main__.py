"""``python -m ezspark_common`` runs the ``ezspark`` command."""

from ezspark_common.cli.app import main

main()
