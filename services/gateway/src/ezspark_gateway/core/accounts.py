"""Sign-up, log-in and bearer credentials (API tokens and browser sessions)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ezspark_gateway.core.errors import (
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)
from ezspark_gateway.core.password_policy import weakness
from ezspark_gateway.core.security import Passwords, hash_token, new_token
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.models import ApiToken, User

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{2,31}")
MIN_PASSWORD = 8
# Argon2 accepts any length, but hashing megabytes per request would be a cheap DoS.
MAX_PASSWORD = 256
API = "api"
SESSION = "session"
# Last-used times are only rewritten this often, so reads do not turn into writes.
_TOUCH_EVERY_S = 60.0


@dataclass(frozen=True)
class IssuedToken:
    """A credential row plus its plain text, which exists only in this response."""

    row: ApiToken
    plain: str


@dataclass(frozen=True)
class Principal:
    """Who is calling, and with which credential."""

    user: User
    token: ApiToken


def normalize_username(raw: str) -> str:
    """Usernames compare case-insensitively and ignore surrounding spaces."""
    return raw.strip().lower()


def _check_credentials(username: str, password: str) -> None:
    errors: list[tuple[str, str]] = []
    if not USERNAME_RE.fullmatch(username):
        errors.append(("username", "must be 3-32 characters: letters, digits, '_', '.', '-'"))
    if len(password) < MIN_PASSWORD:
        errors.append(("password", f"must be at least {MIN_PASSWORD} characters"))
    elif len(password) > MAX_PASSWORD:
        errors.append(("password", f"must be at most {MAX_PASSWORD} characters"))
    elif (why := weakness(password, username)) is not None:
        errors.append(("password", f"is too easy to guess: it {why}"))
    if errors:
        raise InvalidInputError(errors)


def sign_up(
    repo: Repository, passwords: Passwords, username: str, password: str, now: float
) -> User | None:
    """Create an account; None when the name is taken.

    Both outcomes cost one hash and the callers answer them alike, so sign-up does not
    tell whether a name exists: only a log-in (braked like any guess) can.
    """
    name = normalize_username(username)
    _check_credentials(name, password)
    return repo.add_user(name, passwords.hash(password), now)


def log_in(repo: Repository, passwords: Passwords, username: str, password: str) -> User:
    """The user whose password matches; UnauthorizedError with one message for every failure."""
    name = normalize_username(username)
    # A name that could never have signed up is not looked up (NUL bytes upset PostgreSQL).
    user = repo.user_by_name(name) if USERNAME_RE.fullmatch(name) else None
    # Sign-up never accepts more than MAX_PASSWORD characters, so one extra keeps an
    # overlong guess wrong while capping the hashing work an attacker can ask for.
    password = password[: MAX_PASSWORD + 1]
    if not passwords.verify(user.password_hash if user else None, password) or user is None:
        raise UnauthorizedError("wrong username or password")
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
        repo.commit()
    return user


def issue_token(
    repo: Repository, user: User, *, kind: str, name: str, now: float, ttl_s: float | None = None
) -> IssuedToken:
    """Mint and store (hashed) a new credential for ``user``."""
    minted = new_token()
    label = "".join(ch for ch in name if ch.isprintable()).strip()[:100] or kind
    row = ApiToken(
        user_id=user.id,
        kind=kind,
        name=label,
        token_hash=minted.digest,
        prefix=minted.prefix,
        created_at=now,
        expires_at=None if ttl_s is None else now + ttl_s,
    )
    repo.add_token(row)
    repo.commit()
    return IssuedToken(row=row, plain=minted.plain)


def is_live(revoked_at: float | None, expires_at: float | None, now: float) -> bool:
    """Whether a credential with these times may be used at ``now``: not revoked, and
    not expired (``check_credential``'s rule, for the hot read's plain row)."""
    return revoked_at is None and (expires_at is None or expires_at > now)


def check_credential(found: tuple[ApiToken, User] | None, now: float) -> Principal:
    """The principal of a looked-up credential and its owner; UnauthorizedError when
    unknown (None), revoked or expired at ``now``."""
    if found is None or found[0].revoked_at is not None:
        raise UnauthorizedError("invalid or revoked token")
    token, user = found
    if not is_live(token.revoked_at, token.expires_at, now):
        raise UnauthorizedError("token expired")
    return Principal(user=user, token=token)


def touch_due(last_used_at: float | None, now: float) -> bool:
    """Whether a last-used time is stale enough to rewrite at ``now``."""
    return last_used_at is None or now - last_used_at > _TOUCH_EVERY_S


def needs_touch(token: ApiToken, now: float) -> bool:
    """Whether the credential's last-used time is stale enough to rewrite at ``now``."""
    return touch_due(token.last_used_at, now)


def authenticate(repo: Repository, plain: str, now: float) -> Principal:
    """The owner of a live token; UnauthorizedError when unknown, revoked or expired."""
    principal = check_credential(repo.token_and_user(hash_token(plain)), now)
    if needs_touch(principal.token, now):
        principal.token.last_used_at = now
        repo.commit()
    return principal


def list_tokens(repo: Repository, user: User, now: float, kind: str = API) -> Sequence[ApiToken]:
    """The user's live (unrevoked, unexpired) credentials of one kind."""
    return [t for t in repo.tokens_of(user.id, kind) if t.expires_at is None or t.expires_at > now]


def revoke_token(repo: Repository, user: User, token_id: int, now: float) -> None:
    """Revoke one of the user's credentials; NotFoundError for anyone else's."""
    if not repo.revoke_token(user.id, token_id, now):
        repo.rollback()
        raise NotFoundError("no such token")
    repo.commit()


def revoke_session(repo: Repository, user: User, session_id: int, now: float) -> None:
    """Revoke one of the user's sessions; NotFoundError for API tokens and anyone else's."""
    if not repo.revoke_token(user.id, session_id, now, kind=SESSION):
        repo.rollback()
        raise NotFoundError("no such session")
    repo.commit()
