"""Password hashing, bearer tokens and the log-in rate limiter."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ezspark_gateway.core.errors import RateLimitedError
from ezspark_gateway.core.ports import AttemptStore, Clock

TOKEN_PREFIX = "ezs_"


# OWASP's Argon2id minimum (19 MiB, 2 passes): argon2-cffi's default 64 MiB per hash let
# a burst of log-ins take the gateway past its memory limit.
DEFAULT_MEMORY_KIB = 19 * 1024
DEFAULT_TIME_COST = 2


class Passwords:
    """Argon2id password hashing (memory-hard, salted, parameters stored in the hash).

    Hashes run on a pool of ``concurrency`` threads of their own, whatever the number of
    request threads: extra log-ins queue, and memory stays under ``concurrency`` x the
    hash's memory.  Only those threads allocate Argon2 blocks, so glibc keeps at most
    their few malloc arenas' worth, not one 19 MiB block per request thread.
    """

    def __init__(self, hasher: PasswordHasher | None = None, concurrency: int = 2) -> None:
        self._hasher = hasher or PasswordHasher(
            time_cost=DEFAULT_TIME_COST, memory_cost=DEFAULT_MEMORY_KIB, parallelism=1
        )
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="argon2")
        # Verified when the user does not exist, so response time does not reveal names.
        self._dummy = self.hash(secrets.token_hex(16))

    @property
    def memory_kib(self) -> int:
        """Memory one hash takes, in KiB."""
        return int(self._hasher.memory_cost)

    def hash(self, password: str) -> str:
        """A self-describing Argon2id hash of ``password``."""
        return self._pool.submit(self._hasher.hash, password).result()

    def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored``; always costs one hash computation."""
        try:
            ok = self._pool.submit(self._hasher.verify, stored or self._dummy, password)
            return ok.result() and stored is not None
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


class MemoryAttempts:
    """An ``AttemptStore`` in one process's memory (tests, and a single-process embed)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float, window_s: float) -> tuple[int, float]:
        """Count one attempt in ``key``'s fixed window; return (count, window start)."""
        with self._lock:
            start, count = self._buckets.get(key, (now, 0))
            if start <= now - window_s:
                start, count = now, 0
            self._buckets[key] = (start, count + 1)
            return count + 1, start


class AuthThrottle:
    """Brute-force brake for log-in and sign-up: per (client, username) and per client.

    The counts live in an ``AttemptStore`` (the database in production), so every worker
    process and replica spends the same budget.
    """

    def __init__(
        self, limit: int, window_s: float, store: AttemptStore, clock: Clock = time.time
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._store = store
        self._clock = clock

    def _wait(self, key: str, limit: int, now: float) -> float | None:
        count, start = self._store.hit(key[:200], now, self.window_s)
        return max(1.0, start + self.window_s - now) if count > limit else None

    def check(self, action: str, ip: str, username: str) -> None:
        """Count one attempt; raise RateLimitedError when either budget is spent."""
        name = username.strip().lower()[:64].replace("\x00", "")  # PostgreSQL text has no NUL
        now = self._clock()
        wait = self._wait(f"{action}:{ip}:{name}", self.limit, now)
        if wait is None:
            # Wider per-client budget: a household behind one NAT can still log in, while
            # one client spraying many usernames is still stopped.
            wait = self._wait(f"{action}:{ip}", self.limit * 5, now)
        if wait is not None:
            raise RateLimitedError(wait)
