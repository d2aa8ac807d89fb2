"""The evaluator service: a stateless consumer of the tasks queue.

Scale by starting more processes; each takes ``prefetch`` tasks at a time.  ``stop()``
lets the task in hand finish (its result is published and acked, within
``stop_timeout_s``) while tasks received but not started stay unacked, so RabbitMQ hands
them to another evaluator when the connection closes.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

import structlog
from prometheus_client import CollectorRegistry

from ezspark_common.broker import Broker
from ezspark_evaluator.metrics import EvaluatorMetrics
from ezspark_evaluator.settings import EvaluatorSettings
from ezspark_evaluator.watchdog import Watchdog
from ezspark_evaluator.worker import TaskHandler

log = structlog.get_logger("ezspark_evaluator")


def default_evaluator_id() -> str:
    """Unique per process and readable in logs: host (pod) name, pid and a random tail."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class EvaluatorService:
    """Wires the task handler to the broker; ``run()`` blocks until ``stop()``."""

    def __init__(self, settings: EvaluatorSettings, broker: Broker,
                 registry: CollectorRegistry) -> None:
        self.settings = settings
        self.evaluator_id = settings.evaluator_id or default_evaluator_id()
        self.metrics = EvaluatorMetrics.create(registry)
        self._broker = broker
        self._stopping = threading.Event()
        self.handler = TaskHandler(settings, broker, self.metrics, self.evaluator_id,
                                   self._stopping)
        self.watchdog = Watchdog(self.handler, settings.task_hang_s)
        for queue in (settings.tasks_queue, settings.results_queue):
            broker.declare(queue)
        broker.consume(settings.tasks_queue, self.handler, prefetch=settings.prefetch)

    def run(self) -> None:
        """Consume tasks until ``stop()``; raises BrokerError if RabbitMQ is lost for good."""
        log.info("evaluator_started", evaluator_id=self.evaluator_id,
                 queue=self.settings.tasks_queue, prefetch=self.settings.prefetch,
                 env_modules=self.settings.env_module_list,
                 fault_fitness_offset=self.settings.fault_fitness_offset or None,
                 task_hang_s=self.settings.task_hang_s)
        self.watchdog.start()
        self._broker.run()
        log.info("evaluator_stopped", evaluator_id=self.evaluator_id)

    def stop(self) -> None:
        """Finish the task in hand, leave the others to RabbitMQ, disconnect (thread-safe)."""
        self._stopping.set()
        # The broker refuses publishes once stop() begins, so the result of the task in hand
        # must be out before it is called.
        if not self.handler.wait_idle(self.settings.stop_timeout_s):
            log.warning("stop_timeout", note="the task in hand will be redelivered")
        self._broker.stop()
