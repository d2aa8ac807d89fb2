"""The evaluator service: a stateless consumer of the task queues of its environments.

At start it lists the environments it can run (``envs.catalogue``: installed, allowed,
Discrete actions, or the ``EZSPARK_ENVS`` subset), consumes each one's task queue, and
announces them with their spaces on the announce exchange, again every
``announce_interval_s``, and a last time (``leaving``) when it stops.  Scale by starting
more processes; each takes ``prefetch`` tasks per environment at a time.  ``stop()``
lets the task in hand finish (its result is published and acked, within
``stop_timeout_s``) while tasks received but not started stay unacked, so RabbitMQ hands
them to another evaluator when the connection closes.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry

from ezspark_common.broker import Broker, BrokerError, Delivery
from ezspark_common.evaluation.envs import catalogue
from ezspark_common.wire.messages import EnvSpace, EvaluatorAnnounced, encode
from ezspark_common.wire.routing import identify, queues_of
from ezspark_evaluator.metrics import EvaluatorMetrics
from ezspark_evaluator.settings import EvaluatorSettings
from ezspark_evaluator.watchdog import Watchdog
from ezspark_evaluator.worker import TaskHandler

log = structlog.get_logger("ezspark_evaluator")
_MIN_ANSWER_S = 1.0  # announce-now requests answered at most this often


def default_evaluator_id() -> str:
    """Unique per process and readable in logs: host (pod) name, pid and a random tail."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class EvaluatorService:
    """Wires the task handler to the broker; ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        settings: EvaluatorSettings,
        broker: Broker,
        registry: CollectorRegistry,
        before_hung_exit: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.evaluator_id = settings.evaluator_id or default_evaluator_id()
        self.metrics = EvaluatorMetrics.create(registry)
        self._broker = broker
        self._stopping = threading.Event()
        self.envs = catalogue(settings.env_module_list, settings.env_list)
        missing = sorted(set(settings.env_list) - {e.env_id for e in self.envs})
        if missing:  # asked for but not runnable here: say so, serve the rest
            log.warning("envs_unavailable", envs=missing)
        self.handler = TaskHandler(
            settings,
            broker,
            self.metrics,
            self.evaluator_id,
            self._stopping,
            {e.env_id for e in self.envs},
        )
        self.watchdog = Watchdog(self.handler, settings.task_hang_s, before_exit=before_hung_exit)
        self.handler.player.start()  # before any task arrives: the first one is not slower
        broker.declare(settings.results_queue)
        # A user's machine (its id is its broker user, see routing.py) reads its owner's
        # queues, and the volunteers' if it volunteers; the operator's read the shared ones.
        who = identify(self.evaluator_id)
        for env in self.envs:
            for queue in queues_of(who, env.env_id, settings.queue_prefix):
                broker.declare(queue)
                broker.consume(queue, self.handler, prefetch=settings.prefetch)
        self._announcer = threading.Thread(
            target=self._announce_loop, name="announcer", daemon=True
        )
        self._last_answer = -1e9
        if not who.is_user:  # a user's machine may not subscribe: it announces on its timer
            broker.subscribe(settings.requests_exchange, self._on_request)

    def announcement(self, leaving: bool = False) -> EvaluatorAnnounced:
        """What this evaluator tells the evolver and the gateways about itself."""
        return EvaluatorAnnounced(
            evaluator_id=self.evaluator_id,
            envs=[EnvSpace.of(e) for e in self.envs],
            slots=1,
            prefetch=self.settings.prefetch,
            interval_s=self.settings.announce_interval_s,
            leaving=leaving,
        )

    def announce(self, leaving: bool = False) -> None:
        """Broadcast the announcement; a failure is only logged (the next one may pass)."""
        try:
            self._broker.broadcast(
                self.settings.announce_exchange, encode(self.announcement(leaving))
            )
        except BrokerError as exc:
            log.warning("announce_failed", error=str(exc))

    def _on_request(self, delivery: Delivery) -> None:
        """A service asked for announcements now: answer, at most once a second (whatever
        the body: a request carries nothing we need)."""
        delivery.ack()
        now = time.monotonic()
        if now - self._last_answer >= _MIN_ANSWER_S and not self._stopping.is_set():
            self._last_answer = now
            self.announce()

    def _announce_loop(self) -> None:
        while not self._stopping.is_set():
            self.announce()
            self._stopping.wait(self.settings.announce_interval_s)

    def run(self) -> None:
        """Consume tasks until ``stop()``; raises BrokerError if RabbitMQ is lost for good."""
        log.info(
            "evaluator_started",
            evaluator_id=self.evaluator_id,
            envs=[e.env_id for e in self.envs],
            prefetch=self.settings.prefetch,
            env_modules=self.settings.env_module_list,
            fault_fitness_offset=self.settings.fault_fitness_offset or None,
            task_hang_s=self.settings.task_hang_s,
        )
        self.watchdog.start()
        self._announcer.start()
        self._broker.run()
        log.info("evaluator_stopped", evaluator_id=self.evaluator_id)

    def stop(self) -> None:
        """Finish the task in hand, leave the others to RabbitMQ, disconnect (thread-safe)."""
        self._stopping.set()
        self.announce(leaving=True)  # the evolver stops counting on it at once
        # The broker refuses publishes once stop() begins, so the result of the task in hand
        # must be out before it is called.
        idle = self.handler.wait_idle(self.settings.stop_timeout_s)
        if not idle:
            log.warning("stop_timeout", note="the task in hand will be redelivered")
        self._broker.stop()
        if idle:  # else the child is still playing: it ends with this process
            self.handler.player.close()
