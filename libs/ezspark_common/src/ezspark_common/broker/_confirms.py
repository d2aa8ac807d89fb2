"""Publisher-confirm bookkeeping: which messages wait to be sent and which to be confirmed.

Used only on the IO thread.  Delivery tags are per channel and restart at 1 on each new
publish channel.  RabbitMQ sends ``basic.return`` (unroutable) before the ``basic.ack``
of the same message, so a returned message is failed when its ack arrives.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ezspark_common.broker._bridge import resolve
from ezspark_common.broker.base import BrokerError


@dataclass(eq=False)
class PendingPublish:
    """One message on its way: what to send and the future its publisher waits on."""

    queue: str
    body: bytes
    message_id: str | None
    future: Future[Any]
    returned: str | None = None  # reply text when RabbitMQ could not route it


class ConfirmTracker:
    """Outbox (not sent yet) and unconfirmed (sent, awaiting ack/nack) messages."""

    def __init__(self) -> None:
        self._outbox: deque[PendingPublish] = deque()
        self._unconfirmed: dict[int, PendingPublish] = {}  # insertion order = tag order
        self._next_tag = 1

    def add(self, item: PendingPublish) -> None:
        """Queue a message for sending."""
        self._outbox.append(item)

    def new_channel(self) -> None:
        """A fresh confirm-mode channel numbers its deliveries from 1 again."""
        self._next_tag = 1

    def take(self) -> tuple[int, PendingPublish] | None:
        """The next message to send and its delivery tag (skips abandoned ones)."""
        while self._outbox:
            item = self._outbox.popleft()
            if not item.future.done():  # done here means the publisher gave up on it
                return self._next_tag, item
        return None

    def sent(self, tag: int, item: PendingPublish) -> None:
        """``item`` went out with ``tag``."""
        self._next_tag = tag + 1
        self._unconfirmed[tag] = item

    def put_back(self, item: PendingPublish) -> None:
        """Sending failed; try ``item`` first next time."""
        self._outbox.appendleft(item)

    def returned(self, tag: int, reply_text: str) -> None:
        """RabbitMQ could not route message ``tag``."""
        item = self._unconfirmed.get(tag)
        if item is not None:
            item.returned = reply_text

    def confirm(self, tag: int, *, multiple: bool, nacked: bool) -> None:
        """Settle ``tag`` (and every earlier tag if ``multiple``) from a basic.ack/nack."""
        settled: list[PendingPublish] = []
        if multiple:
            while self._unconfirmed:
                first = next(iter(self._unconfirmed))
                if first > tag:
                    break
                settled.append(self._unconfirmed.pop(first))
        elif tag in self._unconfirmed:
            settled.append(self._unconfirmed.pop(tag))
        for item in settled:
            if nacked:
                resolve(item.future, error=BrokerError("RabbitMQ refused the message (nack)"))
            elif item.returned is not None:
                reason = f"unroutable ({item.returned}); was the queue declared?"
                resolve(item.future, error=BrokerError(reason))
            else:
                resolve(item.future)

    def resend_unconfirmed(self) -> None:
        """The connection died: whatever was unconfirmed goes out again (at least once)."""
        self._outbox.extendleft(reversed(list(self._unconfirmed.values())))
        self._unconfirmed.clear()

    def fail_unconfirmed(self, error: BrokerError) -> None:
        """The channel died of an error caused by what was in flight: fail it, don't loop."""
        for item in self._unconfirmed.values():
            resolve(item.future, error=error)
        self._unconfirmed.clear()
