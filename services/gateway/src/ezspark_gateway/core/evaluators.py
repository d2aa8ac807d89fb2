"""Users' own evaluators: a broker user per machine, issued for an API token.

``ezspark evaluator`` presents the user's token; the gateway creates a broker user named
``evu.<tag>.t<token id>x<random>`` (``evv.`` for a volunteer, see ``routing``) whose
permissions (``permissions.user_evaluator_permission``) let it read only its owner's task
queues (and the volunteers' ones) and publish only results and announcements, and
returns its password once.  No credential of the cluster's own leaves the gateway.
Revoking the token deletes every broker user issued for it; RabbitMQ then closes their
connections at once.  A token can also just expire: ``sweep`` (run by every gateway every
``evaluator_sweep_s``) deletes the broker users of tokens that are no longer live.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ezspark_common.wire.permissions import Permission, user_evaluator_permission
from ezspark_common.wire.routing import (
    OWN_PREFIX,
    VOLUNTEER_PREFIX,
    account_tag,
    user_evaluator_name,
)
from ezspark_gateway.core.errors import NotFoundError, RateLimitedError, UnavailableError
from ezspark_gateway.storage.models import User


class BrokerUsers(Protocol):
    """What issuing needs from the broker (the management API in production)."""

    def create_user(self, name: str, password: str, permission: Permission) -> None:
        """Create ``name`` with ``permission`` on the EzSpark vhost."""

    def users(self, prefix: str) -> list[str]:
        """Broker users whose name starts with ``prefix``."""

    def delete_user(self, name: str) -> bool:
        """Delete ``name`` and so close its connections; False if it did not exist."""


@dataclass(frozen=True)
class IssuedEvaluator:
    """A new broker user: its name (the evaluator id) and the URL with its password."""

    evaluator_id: str
    broker_url: str
    volunteer: bool


@dataclass(frozen=True)
class EvaluatorIssuer:
    """Issues and revokes users' evaluator credentials."""

    users: BrokerUsers
    public_url: str  # amqp://host:port/vhost the user's machines reach, no credentials
    limit: int  # broker users one account may hold at once

    def issue(self, user: User, token_id: int, volunteer: bool) -> IssuedEvaluator:
        """Create a broker user for one of ``user``'s machines."""
        if not self.public_url:
            raise UnavailableError("this gateway does not accept users' own evaluators")
        if len(self.of_user(user)) >= self.limit:
            raise RateLimitedError(60.0)
        name = user_evaluator_name(user.username, volunteer, f"t{token_id}x{secrets.token_hex(8)}")
        password = secrets.token_urlsafe(24)
        permission = user_evaluator_permission(account_tag(user.username), volunteer)
        self.users.create_user(name, password, permission)
        return IssuedEvaluator(name, _with_credentials(self.public_url, name, password), volunteer)

    def of_user(self, user: User) -> list[str]:
        """The broker users issued to ``user``'s machines."""
        tag = account_tag(user.username)
        return sorted(
            self.users.users(f"{OWN_PREFIX}.{tag}.")
            + self.users.users(f"{VOLUNTEER_PREFIX}.{tag}.")
        )

    def revoke(self, user: User, evaluator_id: str) -> None:
        """Delete one of ``user``'s evaluators; NotFoundError for anyone else's."""
        if evaluator_id not in self.of_user(user) or not self.users.delete_user(evaluator_id):
            raise NotFoundError("no such evaluator")

    def revoke_token(self, user: User, token_id: int) -> int:
        """Delete every broker user issued for the token; how many there were."""
        marker = f".t{token_id}x"
        doomed = [name for name in self.of_user(user) if marker in name]
        return sum(self.users.delete_user(name) for name in doomed)

    def sweep(self, live: Callable[[set[int]], set[int]]) -> int:
        """Delete every issued broker user whose token ``live`` no longer vouches for
        (revoked, expired or deleted; a name with no token id is never vouched for).
        ``live`` maps token ids to those still live.  How many were deleted."""
        names = self.users.users(f"{OWN_PREFIX}.") + self.users.users(f"{VOLUNTEER_PREFIX}.")
        ids = {t for t in map(token_of, names) if t is not None}
        alive = live(ids) if ids else set()
        return sum(self.users.delete_user(n) for n in names if token_of(n) not in alive)


_TOKEN_ID = re.compile(r"\.t(\d+)x")


def token_of(name: str) -> int | None:
    """The id of the token a broker user was issued for (``…t<id>x…``), if it names one."""
    match = _TOKEN_ID.search(name)
    return int(match.group(1)) if match else None


def _with_credentials(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` in front of its host."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
