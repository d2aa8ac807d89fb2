"""Which fanout exchanges a broker has declared, and the broadcasts held for the others.

Used only on the IO thread, independent of the wire library.  A broadcast to an exchange
not yet declared is held until the declare ends, so it is never sent to a missing
exchange (which would close the publish channel).  The declared exchanges are
redeclared after a reconnect, in the order they were first declared.
"""

from __future__ import annotations

from ezspark_common.broker._bridge import resolve
from ezspark_common.broker._confirms import PendingPublish


class ExchangeGate:
    """Declared exchanges (an ordered set) and the broadcasts waiting for a declare."""

    def __init__(self) -> None:
        self._declared: dict[str, None] = {}
        self._held: dict[str, list[PendingPublish]] = {}

    def declared(self) -> list[str]:
        """The exchanges to redeclare after a reconnect, oldest first."""
        return list(self._declared)

    def is_declared(self, exchange: str) -> bool:
        """True once a declare of ``exchange`` succeeded (and it was not forgotten)."""
        return exchange in self._declared

    def forget(self, exchange: str) -> None:
        """``exchange`` was deleted: the next broadcast to it declares it again."""
        self._declared.pop(exchange, None)

    def hold(self, exchange: str, item: PendingPublish) -> bool:
        """Hold ``item`` until ``exchange`` is declared; True if the caller must declare it
        (the first held broadcast: the others wait for the same declare)."""
        held = self._held.setdefault(exchange, [])
        held.append(item)
        return len(held) == 1

    def settle(self, exchange: str, error: BaseException | None) -> list[PendingPublish]:
        """The declare of ``exchange`` ended: the held broadcasts to send now, oldest first.

        With ``error`` (RabbitMQ refused it, e.g. it exists with another type) each held
        broadcast's future fails with it and none is returned.
        """
        held = self._held.pop(exchange, [])
        if error is not None:
            for item in held:
                resolve(item.future, error=error)
            return []
        self._declared[exchange] = None
        return held
