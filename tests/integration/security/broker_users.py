"""A RabbitMQ vhost with EzSpark's least-privilege broker users, for the security tests.

Every test gets a fresh vhost and its own service users (``permissions.SERVICE_PERMISSIONS``,
the regexes the deployments use), created through the management API and deleted
afterwards together with every user evaluator issued in it, so nothing leaks between
runs and the tests that use ``guest`` on ``/`` are not touched.  Without the management
plugin the tests fail, saying how to enable it.
"""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from prometheus_client import CollectorRegistry

from ezspark_common.broker import Broker, connect
from ezspark_common.wire.messages import (
    ANNOUNCE_EXCHANGE,
    ANNOUNCE_REQUESTS_EXCHANGE,
    AnnounceRequested,
    encode,
)
from ezspark_common.wire.permissions import SERVICE_PERMISSIONS, user_evaluator_permission
from ezspark_common.wire.routing import account_tag, fronted_queues, user_evaluator_name
from ezspark_gateway.broker_admin import BrokerAdmin
from tests.integration.services.harness import URL, require_rabbitmq

MANAGEMENT_URL = os.environ.get("EZSPARK_TEST_MANAGEMENT_URL", "http://127.0.0.1:15672")
ADMIN = (unquote(urlsplit(URL).username or "guest"), unquote(urlsplit(URL).password or "guest"))


def require_management() -> None:
    """Fail (never skip) unless RabbitMQ's management API answers."""
    require_rabbitmq()
    try:
        httpx.get(f"{MANAGEMENT_URL}/api/overview", auth=ADMIN, timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(
            f"RabbitMQ's management API is not reachable at {MANAGEMENT_URL} ({exc}): "
            "enable it with `rabbitmq-plugins enable rabbitmq_management` (.ci/run does)",
            pytrace=False,
        )


@dataclass
class SecureVhost:
    """A vhost whose services each have their own broker user."""

    vhost: str
    tag: str
    passwords: dict[str, str] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)

    @property
    def admin(self) -> BrokerAdmin:
        """The management API, as the gateway's issuer uses it."""
        return BrokerAdmin(MANAGEMENT_URL, *ADMIN, self.vhost)

    @property
    def public_url(self) -> str:
        """The AMQP URL of the vhost without credentials (what the gateway hands out)."""
        return f"amqp://127.0.0.1:{urlsplit(URL).port or 5672}/{quote(self.vhost, safe='')}"

    def user(self, kind: str) -> str:
        """The broker user of one service kind (evolver, gateway, evaluator)."""
        return f"ezsec-{self.tag}-{kind}"

    def url(self, kind: str) -> str:
        """The AMQP URL of one service kind's broker user."""
        return self._with(self.user(kind), self.passwords[kind])

    def issue(self, username: str, volunteer: bool) -> tuple[str, str]:
        """A user evaluator's broker user, as the gateway issues it: (name, URL)."""
        name = user_evaluator_name(username, volunteer, secrets.token_hex(6))
        password = secrets.token_urlsafe(16)
        self.admin.create_user(
            name, password, user_evaluator_permission(account_tag(username), volunteer)
        )
        self.issued.append(name)
        return name, self._with(name, password)

    def connections(self, user: str) -> list[str]:
        """Open connections of ``user``."""
        return self.admin.connections_of(user)

    def _with(self, user: str, password: str) -> str:
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
        return self.public_url.replace("amqp://", f"amqp://{credentials}@", 1)


@contextmanager
def secure_vhost(usernames: tuple[str, ...] = ()) -> Iterator[SecureVhost]:
    """A fresh vhost with the three service users; everything is deleted on exit,
    including broker users issued for the accounts in ``usernames``."""
    require_management()
    tag = uuid.uuid4().hex[:8]
    sv = SecureVhost(vhost=f"ezspark-sec-{tag}", tag=tag)
    api = httpx.Client(base_url=f"{MANAGEMENT_URL}/api", auth=ADMIN, timeout=10)
    vhost = quote(sv.vhost, safe="")
    try:
        api.put(f"/vhosts/{vhost}").raise_for_status()
        full = {"configure": ".*", "write": ".*", "read": ".*"}
        api.put(f"/permissions/{vhost}/{quote(ADMIN[0], safe='')}", json=full).raise_for_status()
        for kind, permission in SERVICE_PERMISSIONS.items():
            sv.passwords[kind] = secrets.token_urlsafe(16)
            sv.admin.create_user(sv.user(kind), sv.passwords[kind], permission)
        yield sv
    finally:
        doomed = [sv.user(kind) for kind in sv.passwords] + sv.issued
        for username in usernames:
            tag_ = account_tag(username)
            doomed += sv.admin.users(f"evu.{tag_}.") + sv.admin.users(f"evv.{tag_}.")
        for name in doomed:
            sv.admin.delete_user(name)
        api.delete(f"/vhosts/{vhost}")
        api.close()


@contextmanager
def broker(url: str, *, fronted: bool = True, declares: bool = False) -> Iterator[Broker]:
    """A broker as the services connect it (fronted exchanges; declaring only if told)."""
    b = connect(
        url,
        registry=CollectorRegistry(),
        fronted=fronted_queues() if fronted else (),
        declares=declares,
        op_timeout=10.0,
    )
    try:
        yield b
    finally:
        b.stop()


@contextmanager
def running(b: Broker) -> Iterator[None]:
    """Deliver to ``b``'s handlers on a thread until the block ends."""
    thread = threading.Thread(target=b.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        b.stop()
        thread.join(15)


def evolver_topology(sv: SecureVhost, *queues: str) -> None:
    """Declare what the evolver owns: the fronted queues, ``queues`` and the announcement
    exchanges (a broadcast declares its exchange; nobody listens yet, so it is dropped)."""
    with broker(sv.url("evolver"), declares=True) as evo:
        for queue in (*fronted_queues(), *queues):
            evo.declare(queue)
        for exchange in (ANNOUNCE_EXCHANGE, ANNOUNCE_REQUESTS_EXCHANGE):
            evo.broadcast(exchange, encode(AnnounceRequested(requester="test")))
