"""The access log's ``http_request`` line: through structlog, or, for the hot read under
the standard configuration, written directly as the very same JSON line.

Under ``ezspark_common.logging.configure_logging``'s JSON configuration, structlog's
chain (context variables, level, ISO timestamp, ``json.dumps`` of the event dict, a
locked print) cost the hot read about 15 µs a request in process, as much as its
database statement.  ``AccessLog.line`` renders the same line with the same key order
and the same escaping when (and only when) structlog is configured exactly that way and
the request's only context variable is its request id (the hot read binds nothing
else); tests compare the two lines.  Any other configuration (console rendering,
another chain, a level above INFO) goes through structlog as before.
"""

from __future__ import annotations

import datetime
import json
import logging
from json.encoder import encode_basestring_ascii as _quote  # json.dumps' own escaping
from typing import Any

import structlog
from structlog.processors import JSONRenderer, TimeStamper

_UTC = datetime.UTC


def _standard_json(config: dict[str, Any]) -> bool:
    """Whether structlog is configured as ``configure_logging(json_logs=True)`` does."""
    chain = config["processors"]
    if len(chain) != 5:
        return False
    merge, level, stamper, exc_info, renderer = chain
    return (
        merge is structlog.contextvars.merge_contextvars
        and level is structlog.processors.add_log_level
        and isinstance(stamper, TimeStamper)
        and (stamper.fmt, stamper.utc, stamper.key) == ("iso", True, "timestamp")
        and exc_info is structlog.processors.format_exc_info
        and type(renderer) is JSONRenderer
        and renderer._dumps is json.dumps
        and list(renderer._dumps_kw) == ["default"]
        and isinstance(config["logger_factory"], structlog.PrintLoggerFactory)
    )


class AccessLog:
    """The access logger, bound once per structlog configuration (``configure_logging``
    caches no loggers: a new bound logger per call cost as much as the line), and
    whether the line may be written directly (``line``)."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._config: tuple[Any, ...] = ()
        self._bound: Any = None
        self._direct: Any = None  # the PrintLogger, when lines may be written directly

    def get(self) -> Any:
        """The bound logger of the current configuration."""
        config = structlog.get_config()
        values = tuple(config.values())
        # Tuples compare item by item, identity first: the same objects, the same logger.
        if values != self._config:
            self._bound = self._logger.bind()
            self._config = values
            enabled = getattr(self._bound, "is_enabled_for", None)
            direct = _standard_json(config) and enabled is not None and enabled(logging.INFO)
            self._direct = self._bound._logger if direct else None
        return self._bound

    def line(self, method: str, path: str, status: int, ms: float, request_id: str) -> bool:
        """Write the INFO line of a request whose only context variable is
        ``request_id`` directly, as structlog would; False when it may not (then log it
        through ``get()``)."""
        self.get()
        if self._direct is None or type(status) is not int or type(ms) is not float:
            return False
        stamp = datetime.datetime.now(tz=_UTC).isoformat().replace("+00:00", "Z")
        self._direct.msg(
            f'{{"method": {_quote(method)}, "path": {_quote(path)}, "status": {status!r}, '
            f'"duration_ms": {float.__repr__(ms)}, "event": "http_request", '
            f'"request_id": {_quote(request_id)}, "level": "info", "timestamp": "{stamp}"}}'
        )
        return True
