"""Domain errors; the API layer maps each to one HTTP status."""

from __future__ import annotations


class CoreError(Exception):
    """Base of every error a use case raises on purpose."""


class NotFoundError(CoreError):
    """No such object, or it belongs to someone else (never tell which)."""


class ConflictError(CoreError):
    """The request clashes with the current state (name taken, training already over)."""


class UnauthorizedError(CoreError):
    """Missing, wrong, expired or revoked credentials."""


class RateLimitedError(CoreError):
    """Too many attempts; ``retry_after`` seconds until the next one is allowed."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many attempts; retry in {retry_after:.0f}s")


class InvalidInputError(CoreError):
    """Input broke a rule; ``errors`` holds ``(field, message)`` pairs like ConfigError."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {m}" for k, m in errors))


class QuotaExceededError(CoreError):
    """The user is at one of the operator's per-user limits (``EZSPARK_QUOTA_*``)."""


class UnavailableError(CoreError):
    """A dependency (the broker) could not be reached; the client may retry."""


class ForbiddenError(CoreError):
    """Authenticated, but this request may not do that (e.g. a cross-site form post)."""
