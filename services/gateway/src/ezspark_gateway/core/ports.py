"""What the use cases need from the outside world, as small protocols."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ezspark_common.wire.messages import (
    GenerationFinished,
    GenerationProgressed,
    StopRequested,
    TrainingFailed,
    TrainingFinished,
    TrainingRequested,
    TrainingWaiting,
)

Command = TrainingRequested | StopRequested
Event = (
    GenerationFinished | GenerationProgressed | TrainingFinished | TrainingFailed | TrainingWaiting
)

# Seconds since the epoch; injected so tests can move time.
Clock = Callable[[], float]


class CommandPublisher(Protocol):
    """Sends a command to the evolvers (``COMMANDS_QUEUE`` in production)."""

    def publish(self, msg: Command) -> None:
        """Send ``msg``; raise if it could not be handed to the broker."""


class EventSink(Protocol):
    """Receives events from the evolvers and makes them visible to users."""

    def handle(self, event: Event) -> str:
        """Apply ``event``; return an outcome label ("applied", "duplicate", "unknown")."""


class AttemptStore(Protocol):
    """Counts log-in and sign-up attempts in fixed windows, shared by every process."""

    def hit(self, key: str, now: float, window_s: float) -> tuple[int, float]:
        """Count one attempt; return the window's count (this one included) and its start.
        A window older than ``window_s`` starts afresh."""
