"""Which evaluators may serve a training, and through which task queue each is reached.

Three pools (``ezspark_common.wire.routing``): the operator's evaluators, the owner's own
machines, and other users' volunteers.  A training with ``trusted_evaluators_only`` uses
only the first two.  Another user's machine that does not volunteer serves nobody else.
Tasks are spread over the pools in proportion to their live evaluation slots; re-checks
and tie-breaks prefer the operator's, then the owner's, then volunteers.  A result is
usable only from an evaluator that could have read a queue the task went to: a broker
user's permissions and the name RabbitMQ stamps on its messages say which those are.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ezspark_common.wire.messages import tasks_queue
from ezspark_common.wire.routing import (
    account_key,
    account_tag,
    avoided,
    identify,
    queues_of,
    user_tasks_queue,
    volunteer_tasks_queue,
)

OPERATOR, OWN, VOLUNTEER = "operator", "own", "volunteer"
_ORDER = (OPERATOR, OWN, VOLUNTEER)  # preference for re-checks and tie-breaks


@dataclass(frozen=True)
class Pools:
    """The pools of one training (owner, environment, policy)."""

    env_id: str
    owner: str
    trusted_only: bool = False
    prefix: str = ""

    def pool_of(self, evaluator_id: str) -> str | None:
        """The pool an evaluator serves this training from (None: it may not)."""
        who = identify(evaluator_id)
        if who.account is None:
            return OPERATOR
        if who.account == account_tag(self.owner):
            return OWN
        return VOLUNTEER if who.volunteer and not self.trusted_only else None

    def queue(self, pool: str) -> str:
        """The task queue that reaches ``pool``."""
        if pool == OWN:
            return user_tasks_queue(account_tag(self.owner), self.env_id, self.prefix)
        if pool == VOLUNTEER:
            return volunteer_tasks_queue(self.env_id, self.prefix)
        return tasks_queue(self.env_id, self.prefix)

    def live(
        self, serving: Mapping[str, int], avoid: Collection[str] = ()
    ) -> dict[str, dict[str, int]]:
        """Live evaluators (with slots) allowed for this training, outside ``avoid``, by pool."""
        skip = frozenset(avoid)
        out: dict[str, dict[str, int]] = {}
        for evaluator_id, slots in serving.items():
            pool = self.pool_of(evaluator_id)
            if pool is not None and not avoided(evaluator_id, skip):
                out.setdefault(pool, {})[evaluator_id] = slots
        return out

    def pick(self, live: Mapping[str, Mapping[str, int]], turn: int, verify: bool) -> str:
        """The queue for the next copy: by slots for tasks (``turn`` counts them), by
        preference for a re-check or tie-break (``verify``); the operator's if none live."""
        pools = [p for p in _ORDER if live.get(p)]
        if not pools:
            return self.queue(OPERATOR)
        if verify:
            return self.queue(pools[0])
        weights = [sum(live[p].values()) for p in pools]
        point = turn % sum(weights)
        for pool, weight in zip(pools, weights, strict=True):
            if point < weight:
                return self.queue(pool)
            point -= weight
        return self.queue(pools[-1])

    def could_receive(self, evaluator_id: str, queues: Collection[str]) -> bool:
        """Whether ``evaluator_id`` may read one of the queues a task was published to."""
        if self.pool_of(evaluator_id) is None:
            return False
        return any(q in queues for q in queues_of(identify(evaluator_id), self.env_id, self.prefix))

    def avoid_keys(self, evaluator_id: str) -> set[str]:
        """What a second opinion must avoid: the evaluator, and every machine of its user
        unless that user is the owner (a volunteer's sibling machine cannot vouch for it)."""
        key = account_key(evaluator_id)
        if key is None or self.pool_of(evaluator_id) == OWN:
            return {evaluator_id}
        return {evaluator_id, key}
