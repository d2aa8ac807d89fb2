"""The line printed under a generation whose environment failed, for local and remote runs.

A crashing environment gives its genomes the floor fitness; the progress line counts them.
This line says why, once per new message, so a user debugging their own environment sees
the exception without a line for every generation.
"""

from __future__ import annotations


class EnvErrorLines:
    """Remembers the last message shown; ``line`` is None when there is nothing new."""

    def __init__(self) -> None:
        self._last: str | None = None

    def line(self, errors: int | None, population: int, first_error: str | None) -> str | None:
        """The line for one generation: ``errors`` failed genomes of ``population``."""
        if not errors or not first_error:
            self._last = None  # a clean generation: the same message later is news again
            return None
        if first_error == self._last:
            return None
        self._last = first_error
        return f"      environment failed for {errors} of {population} genomes: {first_error}"
