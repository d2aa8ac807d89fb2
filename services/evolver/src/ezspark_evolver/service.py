"""The evolver service: commands in, trainings run on threads, results routed to them.

Threads: the broker's handler threads run ``_on_command`` (prefetch 1, so commands are
applied in order) and ``_on_result`` (decode and hand over); each running training has its
own thread (``TrainingRunner``), at most ``max_concurrent_trainings`` at once; accepted
trainings beyond that wait in a FIFO.  A training is accepted (its directory and
generation-0 checkpoint written) before its request is acked, so a crash never loses one,
and every unfinished training on disk is resumed at start-up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry

from ezspark_common.broker import Broker, Delivery
from ezspark_common.config import ConfigError, parse_config
from ezspark_common.envs import resolve
from ezspark_common.messages import (
    EvaluationResult,
    Message,
    MessageError,
    StopRequested,
    TrainingFailed,
    TrainingRequested,
    decode,
)
from ezspark_common.training import start
from ezspark_evolver.context import Context, Liveness
from ezspark_evolver.metrics import EvolverMetrics
from ezspark_evolver.settings import EvolverSettings
from ezspark_evolver.store import TrainingStore, valid_training_id
from ezspark_evolver.trainer import TrainingRunner

log = structlog.get_logger("ezspark_evolver")

_JOIN_S = 15.0  # how long a stopping service waits for its training threads


class EvolverService:
    """Owns the trainings; ``run()`` blocks until ``stop()`` (or RabbitMQ is lost)."""

    def __init__(self, settings: EvolverSettings, broker: Broker,
                 registry: CollectorRegistry) -> None:
        self.ctx = Context(
            settings=settings, broker=broker, store=TrainingStore(Path(settings.data_dir)),
            metrics=EvolverMetrics.create(registry),
            liveness=Liveness(settings.evaluator_liveness_s),
        )
        self._lock = threading.Lock()
        self._pending: deque[str] = deque()
        self._running: dict[str, threading.Thread] = {}
        for queue in settings.queues:
            broker.declare(queue)
        broker.consume(self.ctx.commands_queue, self._on_command, prefetch=1)
        broker.consume(self.ctx.results_queue, self._on_result,
                       prefetch=settings.results_prefetch)

    def run(self) -> None:
        """Resume unfinished trainings, then serve until stopped."""
        resumed = self.ctx.store.unfinished()
        with self._lock:
            self._pending.extend(resumed)
        log.info("evolver_started", data_dir=str(self.ctx.store.root), resumed=len(resumed),
                 max_concurrent_trainings=self.ctx.settings.max_concurrent_trainings)
        self._admit()
        try:
            self.ctx.broker.run()
        finally:
            self.ctx.stopping.set()
            self._join()
        log.info("evolver_stopped")

    def stop(self) -> None:
        """Pause every training at its last checkpoint and stop consuming (thread-safe)."""
        self.ctx.stopping.set()
        self.ctx.broker.stop()

    def active(self) -> list[str]:
        """Trainings running now (for tests and logs)."""
        with self._lock:
            return list(self._running)

    # ----- scheduling ---------------------------------------------------------------------

    def _admit(self) -> None:
        """Start waiting trainings while there is room."""
        with self._lock:
            limit = self.ctx.settings.max_concurrent_trainings
            while self._pending and len(self._running) < limit and not self.ctx.stopping.is_set():
                tid = self._pending.popleft()
                thread = threading.Thread(target=self._train, args=(tid,), daemon=True,
                                          name=f"training-{tid[:12]}")
                self._running[tid] = thread
                thread.start()
            self.ctx.metrics.active.set(len(self._running))

    def _train(self, training_id: str) -> None:
        try:
            TrainingRunner(self.ctx, training_id).run()
        finally:
            with self._lock:
                self._running.pop(training_id, None)
            self._admit()

    def _join(self) -> None:
        deadline = time.monotonic() + _JOIN_S
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            log.warning("trainings_still_busy", note="they resume from their checkpoints")

    # ----- commands -----------------------------------------------------------------------

    def _on_command(self, delivery: Delivery) -> None:
        msg = self._decode(delivery, (TrainingRequested, StopRequested))
        if isinstance(msg, TrainingRequested):
            self._accept(msg)
        elif isinstance(msg, StopRequested):
            self._stop_training(msg.training_id)
        else:
            return
        delivery.ack()

    def _decode(self, delivery: Delivery, kinds: tuple[type, ...]) -> Message | None:
        """The message, or None after dead-lettering a poison or unexpected one."""
        try:
            msg = decode(delivery.body)
            if not isinstance(msg, kinds):
                raise MessageError(f"unexpected {msg.kind} on {delivery.queue}")
        except MessageError as exc:
            log.warning("poison_message", queue=delivery.queue, error=str(exc)[:500],
                        message_id=delivery.message_id)
            self.ctx.metrics.bad_messages.labels(queue=delivery.queue).inc()
            delivery.reject(requeue=False)
            return None
        return msg

    def _accept(self, msg: TrainingRequested) -> None:
        """Validate and record a new training, or answer TrainingFailed."""
        tid, store = msg.training_id, self.ctx.store
        bound = log.bind(training_id=tid)
        if not valid_training_id(tid):
            self._refuse(tid, "invalid training id: use 1-128 letters, digits, '.', '_', '-'")
            return
        with self._lock:
            known = tid in self._running or tid in self._pending
        if known or store.exists(tid):
            bound.info("duplicate_training_request")
            return
        try:
            config = parse_config(msg.config)
            resolve(config, self.ctx.settings.env_module_list)
        except ConfigError as exc:
            bound.warning("training_refused", error=str(exc))
            self._refuse(tid, f"invalid config: {exc}")
            return
        meta = {"training_id": tid, "owner": msg.owner, "requested_at": msg.requested_at,
                "accepted_at": time.time()}
        store.create(tid, meta, start(config))
        bound.info("training_accepted", owner=msg.owner, env_id=config.gym_game_name,
                   generations=config.generations)
        with self._lock:
            self._pending.append(tid)
        self._admit()

    def _refuse(self, training_id: str, error: str) -> None:
        self.ctx.publish_event(TrainingFailed(training_id=training_id, error=error),
                               f"training_failed:{training_id}")

    def _stop_training(self, training_id: str) -> None:
        """Stop after the current generation (at once if it is still waiting to run)."""
        store = self.ctx.store
        if not valid_training_id(training_id) or not store.exists(training_id):
            log.warning("stop_for_unknown_training", training_id=training_id)
            return
        store.request_stop(training_id)
        with self._lock:
            waiting = training_id in self._pending
            if waiting:
                self._pending.remove(training_id)
        log.info("stop_requested", training_id=training_id, waiting=waiting)
        if waiting:
            TrainingRunner(self.ctx, training_id).run()  # only marks it stopped and reports

    # ----- results ------------------------------------------------------------------------

    def _on_result(self, delivery: Delivery) -> None:
        msg = self._decode(delivery, (EvaluationResult,))
        if not isinstance(msg, EvaluationResult):
            return
        self.ctx.liveness.seen(msg.evaluator_id)
        reason = self.ctx.route(msg)
        if reason is not None:
            self.ctx.metrics.ignored.labels(reason=reason).inc()
            log.debug("result_ignored", reason=reason, task_id=msg.task_id,
                      evaluator_id=msg.evaluator_id)
        delivery.ack()

