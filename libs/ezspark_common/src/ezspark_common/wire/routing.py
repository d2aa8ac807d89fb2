"""Who may evaluate what: user evaluators' names, their task queues, and attribution.

Three kinds of evaluators serve an environment ``E``, each from its own task queue:

* the operator's: ``ezspark.tasks.E`` (``messages.tasks_queue``);
* a user's own machines: ``ezspark.user.<tag>.tasks.E``, only that user's trainings;
* volunteers (a user's machine started with ``--volunteer``): their own user's queue and
  ``ezspark.volunteer.tasks.E``, where other users' trainings may send tasks.

A user evaluator connects with a broker user of its own, issued by the gateway, named
``evu.<tag>.<random>`` (``evv.`` for a volunteer); that name is also its evaluator id.
RabbitMQ stamps and validates the publishing broker user on every message
(``Delivery.user_id``), so the evolver knows from the name alone whose machine answered,
whether it volunteers, and which task queues it may read.  ``<tag>`` is the account's
username with ``.`` written ``~`` (usernames never contain ``~``), so it has no dot and a
permission regex can anchor on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ezspark_common.wire.messages import (
    COMMANDS_QUEUE,
    EVENTS_QUEUE,
    RESULTS_QUEUE,
    routing_id,
    tasks_queue,
)

OWN_PREFIX = "evu"
VOLUNTEER_PREFIX = "evv"
ACCOUNT_KEY_PREFIX = "account:"
_NAME_RE = re.compile(r"(evu|evv)\.([a-z0-9_~-]{1,64})\.([A-Za-z0-9]{4,64})")


@dataclass(frozen=True)
class EvaluatorIdentity:
    """What an evaluator id says about its machine (``account`` None: the operator's)."""

    evaluator_id: str
    account: str | None = None  # the owner's tag
    volunteer: bool = False

    @property
    def is_user(self) -> bool:
        """A user's machine rather than the operator's."""
        return self.account is not None


def fronted_queues(prefix: str = "") -> list[str]:
    """Queues fed through an exchange of their own name, so that RabbitMQ's write
    permission decides who may publish to them (the gateway commands, the evolver events,
    evaluators results); task queues are fed by the evolver alone, straight."""
    return [prefix + q for q in (COMMANDS_QUEUE, EVENTS_QUEUE, RESULTS_QUEUE)]


def account_tag(username: str) -> str:
    """The dot-free form of a username used in broker names."""
    return username.replace(".", "~")


def user_evaluator_name(username: str, volunteer: bool, suffix: str) -> str:
    """The broker user (and evaluator id) of one of ``username``'s machines."""
    prefix = VOLUNTEER_PREFIX if volunteer else OWN_PREFIX
    return f"{prefix}.{account_tag(username)}.{suffix}"


def identify(evaluator_id: str) -> EvaluatorIdentity:
    """Parse an evaluator id: a user evaluator's broker user name, or an operator's id."""
    m = _NAME_RE.fullmatch(evaluator_id)
    if m is None:
        return EvaluatorIdentity(evaluator_id)
    return EvaluatorIdentity(evaluator_id, m.group(2), m.group(1) == VOLUNTEER_PREFIX)


def account_key(evaluator_id: str) -> str | None:
    """The quarantine / avoid entry that stands for every machine of the same user."""
    account = identify(evaluator_id).account
    return None if account is None else ACCOUNT_KEY_PREFIX + account


def avoided(evaluator_id: str, avoid: set[str] | frozenset[str] | list[str]) -> bool:
    """Whether ``avoid`` names this evaluator or its whole account."""
    return evaluator_id in avoid or account_key(evaluator_id) in avoid


def attributed(user_id: str | None, evaluator_id: str) -> bool:
    """Whether a message claiming ``evaluator_id`` may come from broker user ``user_id``.

    A user evaluator speaks only for itself (its id is its broker user); any other broker
    user is the operator's and may not speak for a user's machine.  A message without a
    validated ``user_id`` is attributable to nobody.
    """
    if user_id is None:
        return False
    if identify(user_id).is_user:
        return evaluator_id == user_id
    return not identify(evaluator_id).is_user


def user_tasks_queue(account: str, env_id: str, prefix: str = "") -> str:
    """The task queue of one user's own machines for ``env_id``."""
    return f"{prefix}ezspark.user.{account}.tasks.{routing_id(env_id)}"


def volunteer_tasks_queue(env_id: str, prefix: str = "") -> str:
    """The task queue volunteers of any user serve for ``env_id``."""
    return f"{prefix}ezspark.volunteer.tasks.{routing_id(env_id)}"


def queues_of(identity: EvaluatorIdentity, env_id: str, prefix: str = "") -> list[str]:
    """The task queues of ``env_id`` an evaluator consumes (and so may answer from)."""
    if identity.account is None:
        return [tasks_queue(env_id, prefix)]
    own = [user_tasks_queue(identity.account, env_id, prefix)]
    return [*own, volunteer_tasks_queue(env_id, prefix)] if identity.volunteer else own
