"""structlog set-up shared by the CLI and the services: JSON for machines, text for people."""

from __future__ import annotations

import faulthandler
import logging
import sys

import structlog


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    """Route structlog (and stdlib logging) to stderr at ``level``."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s")
    # pika narrates every connection step at INFO; our broker adapter logs what matters.
    logging.getLogger("pika").setLevel(max(numeric, logging.WARNING))
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def report_native_crashes() -> None:
    """On a native crash (a segfault in an environment's C code), print the Python stack
    that led into it to stderr: the process cannot log anything then, and the stack names
    the environment's line.  Leaves an earlier set-up (pytest's, ``PYTHONFAULTHANDLER``)."""
    stream = sys.__stderr__
    if faulthandler.is_enabled() or stream is None:
        return
    try:
        faulthandler.enable(file=stream)
    except (AttributeError, OSError, ValueError):  # a stderr without a file descriptor
        return
