"""Password hashing, bearer tokens and the log-in rate limiter."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ezspark_gateway.core.errors import RateLimitedError
from ezspark_gateway.core.ports import Clock

TOKEN_PREFIX = "ezs_"


class Passwords:
    """Argon2id password hashing (memory-hard, salted, parameters stored in the hash)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified when the user does not exist, so response time does not reveal names.
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    def hash(self, password: str) -> str:
        """A self-describing Argon2id hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored``; always costs one hash computation."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with weaker parameters than the current ones."""
        return self._hasher.check_needs_rehash(stored)


@dataclass(frozen=True)
class NewToken:
    """A freshly minted token: ``plain`` is shown once, only ``digest`` is stored."""

    plain: str
    digest: str
    prefix: str


def hash_token(plain: str) -> str:
    """SHA-256 hex of a token.  Enough for 256-bit random tokens: no brute force applies."""
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def new_token() -> NewToken:
    """A random bearer token with 256 bits of entropy."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return NewToken(plain=plain, digest=hash_token(plain), prefix=plain[:10])


class RateLimiter:
    """Sliding-window counter per key, in memory (one gateway process).

    Good enough against password guessing from one place; a multi-replica deployment
    would move this to a shared store.
    """

    def __init__(self, limit: int, window_s: float, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Record an attempt; return seconds to wait when over the limit, else None."""
        now = self._clock()
        with self._lock:
            if len(self._hits) > 100_000:
                self._purge(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1.0, hits[0] + self.window_s - now)
            hits.append(now)
            return None

    def _purge(self, now: float) -> None:
        # Bounds memory when many distinct keys (e.g. random usernames) are tried.
        stale = [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window_s]
        for key in stale:
            del self._hits[key]


class AuthThrottle:
    """Brute-force brake for log-in and sign-up: per (IP, username) and per IP."""

    def __init__(self, limit: int, window_s: float, clock: Clock = time.monotonic) -> None:
        self._per_name = RateLimiter(limit, window_s, clock)
        # Wider per-IP budget: a household behind one NAT can still log in, while one
        # client spraying many usernames is still stopped.
        self._per_ip = RateLimiter(limit * 5, window_s, clock)

    def check(self, action: str, ip: str, username: str) -> None:
        """Count one attempt; raise RateLimitedError when either budget is spent."""
        name = username.strip().lower()[:64]
        wait = self._per_name.hit(f"{action}:{ip}:{name}")
        if wait is None:
            wait = self._per_ip.hit(f"{action}:{ip}")
        if wait is not None:
            raise RateLimitedError(wait)
