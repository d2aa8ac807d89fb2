"""The broker permissions of each kind of EzSpark broker user (least privilege).

RabbitMQ grants per vhost three regular expressions over resource names: *configure*
(declare, delete), *write* (publish to an exchange; bind a queue) and *read* (consume
from a queue; bind to an exchange).  Declaring a queue that dead-letters through the
default exchange also needs write on ``amq.default``, and writing there reaches every
queue, so only the evolver, which owns the topology and publishes tasks, may.  Every
other flow has an exchange of its own (``routing.fronted_queues``): the gateway alone
writes ``ezspark.commands``, the evolver alone ``ezspark.events``, evaluators
``ezspark.results`` and their announcements.  ``amq.gen-…`` are the server-named private
queues of subscriptions (exclusive to their connection).

The deployment definitions (``deploy/rabbitmq``, ``deploy/k8s``) and the gateway's
credential issuer use these; a unit test keeps the definitions equal to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

_PRIVATE = r"amq\.gen-.*"


@dataclass(frozen=True)
class Permission:
    """One user's permission regexes on the EzSpark vhost."""

    configure: str
    write: str
    read: str

    def as_dict(self) -> dict[str, str]:
        """The management API's / definitions' shape."""
        return {"configure": self.configure, "write": self.write, "read": self.read}


def _any(*patterns: str) -> str:
    return "^(" + "|".join(patterns) + ")$"


NOTHING = "^$"

# The services' own broker users (one per kind of process, shared by its replicas).
SERVICE_PERMISSIONS: Mapping[str, Permission] = MappingProxyType(
    {
        "evolver": Permission(
            configure=_any(r"ezspark\..*", _PRIVATE),
            write=_any(r"amq\.default", r"ezspark\..*", _PRIVATE),
            read=_any(r"ezspark\..*", _PRIVATE),
        ),
        "gateway": Permission(
            configure=_any(_PRIVATE),
            write=_any(r"ezspark\.commands", r"ezspark\.evaluators\.requests", _PRIVATE),
            read=_any(r"ezspark\.events", r"ezspark\.evaluators", _PRIVATE),
        ),
        "evaluator": Permission(  # the operator's evaluators
            configure=_any(_PRIVATE),
            write=_any(r"ezspark\.results", r"ezspark\.evaluators", _PRIVATE),
            read=_any(r"ezspark\.tasks\..+", r"ezspark\.evaluators\.requests", _PRIVATE),
        ),
    }
)


def user_evaluator_permission(account: str, volunteer: bool) -> Permission:
    """A user's machine: publish results and announcements, read its owner's task queues
    (and the volunteers' when it volunteers), declare and subscribe to nothing.

    ``account`` is ``routing.account_tag(username)``: letters, digits, ``_``, ``-``, ``~``,
    none of them special in a regex, and no dot, so one user's pattern cannot match
    another's queues.
    """
    reads = [rf"ezspark\.user\.{account}\.tasks\..+"]
    if volunteer:
        reads.append(r"ezspark\.volunteer\.tasks\..+")
    return Permission(
        configure=NOTHING,
        write=_any(r"ezspark\.results", r"ezspark\.evaluators"),
        read=_any(*reads),
    )
