"""The ``ezspark`` command: the group and the commands that run here (``app``: train,
validate, play), the remote ones (``remote`` registers ``remote_account`` and
``remote_trainings``, which share ``remote_common``; ``health``), ``train --gateway``
(``hybrid``), ``ezspark evaluator`` (``evaluator``) and the gateway's HTTP client
(``client``).  ``main`` is the console script's entry point (``ezspark_common.cli:main``)."""

from ezspark_common.cli.app import main

__all__ = ["main"]
