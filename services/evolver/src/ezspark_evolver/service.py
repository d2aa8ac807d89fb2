"""The evolver service: commands in, trainings run on threads, results routed to them.

Only the evolver holding the data directory's leader lock is active; another one waits
as a hot standby (``leader.py``) and only then starts consuming.  Threads: the broker's
handler threads run ``_on_command`` (prefetch 1, so commands are applied in order),
``_on_result`` (decode and hand over) and ``_on_announce`` (the evaluator registry); each
running training has its own thread (``TrainingRunner``), at most
``max_concurrent_trainings`` at once and ``user_max_running`` per user, admitted fairly
between users (``admission.py``).  A training is accepted (its directory and
generation-0 checkpoint written) before its request is acked, so a crash never loses one,
and every unfinished training on disk is resumed when the evolver becomes active.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry

from ezspark_common.broker import Broker, Delivery
from ezspark_common.config import ConfigError, TrainingConfig, parse_config
from ezspark_common.quotas import quota_errors
from ezspark_common.service.announce import ask_evaluators
from ezspark_common.trainer.handoff import checkpoint_state
from ezspark_common.trainer.training import TrainingState, start
from ezspark_common.wire.messages import (
    EvaluationResult,
    EvaluatorAnnounced,
    Message,
    MessageError,
    StopRequested,
    TrainingFailed,
    TrainingRequested,
    decode,
)
from ezspark_common.wire.routing import attributed
from ezspark_evolver.admission import Admissions
from ezspark_evolver.context import Context
from ezspark_evolver.fairshare import Scheduler
from ezspark_evolver.leader import LeaderLock
from ezspark_evolver.metrics import EvolverMetrics
from ezspark_evolver.registry import EvaluatorRegistry
from ezspark_evolver.settings import EvolverSettings
from ezspark_evolver.store import TrainingStore, valid_training_id
from ezspark_evolver.trainer import TrainingRunner

log = structlog.get_logger("ezspark_evolver")

_JOIN_S = 15.0  # how long a stopping service waits for its training threads


class EvolverService:
    """Owns the trainings; ``run()`` blocks until ``stop()`` (or RabbitMQ is lost)."""

    def __init__(
        self, settings: EvolverSettings, broker: Broker, registry: CollectorRegistry
    ) -> None:
        evaluators = EvaluatorRegistry(settings.evaluator_liveness_s)
        self.ctx = Context(
            settings=settings,
            broker=broker,
            store=TrainingStore(Path(settings.data_dir)),
            metrics=EvolverMetrics.create(registry),
            registry=evaluators,
            scheduler=Scheduler(evaluators, settings.window_per_slot),
        )
        self._lock = threading.Lock()  # guards the admissions and the threads
        self._admissions = Admissions(settings.max_concurrent_trainings, settings.user_max_running)
        self._threads: dict[str, threading.Thread] = {}  # running training id → its thread
        self.leader = LeaderLock(settings.leader_lock_path)
        for queue in settings.queues:
            broker.declare(queue)
        broker.subscribe(settings.announce_exchange, self._on_announce)

    def run(self) -> None:
        """Wait to become the active evolver, resume unfinished trainings, serve until
        stopped."""
        leading = threading.Thread(target=self._lead, name="leader", daemon=True)
        leading.start()
        ask_evaluators(
            self.ctx.broker, self.ctx.settings.requests_exchange, "evolver", self.ctx.stopping
        )
        try:
            self.ctx.broker.run()
        finally:
            self.ctx.stopping.set()
            leading.join(5.0)
            self._join()
            self.leader.release()
            self.ctx.metrics.leader.set(0)
        log.info("evolver_stopped")

    def _lead(self) -> None:
        """Take the leader lock (blocking while another evolver is active), then work."""
        if not self.leader.try_acquire():
            log.info("evolver_standby", lock=str(self.leader.path))
            if not self.leader.wait(self.ctx.stopping):
                return
        self.ctx.metrics.leader.set(1)
        settings, broker = self.ctx.settings, self.ctx.broker
        resumed = self.ctx.store.unfinished()
        with self._lock:
            for requested_at, tid, owner in resumed:
                self._admissions.add(requested_at, tid, owner)
        log.info(
            "evolver_active",
            data_dir=str(self.ctx.store.root),
            resumed=len(resumed),
            max_concurrent_trainings=settings.max_concurrent_trainings,
        )
        try:
            broker.consume(self.ctx.commands_queue, self._on_command, prefetch=1)
            broker.consume(
                self.ctx.results_queue, self._on_result, prefetch=settings.results_prefetch
            )
        except Exception as exc:  # the broker is stopping: nothing to lead
            log.info("evolver_not_started", error=str(exc))
            return
        self._admit()

    def stop(self) -> None:
        """Pause every training at its last checkpoint and stop consuming (thread-safe)."""
        self.ctx.stopping.set()
        self.ctx.broker.stop()

    def active(self) -> list[str]:
        """Trainings running now (for tests and logs)."""
        with self._lock:
            return list(self._admissions.running)

    # ----- scheduling ---------------------------------------------------------------------

    def _admit(self) -> None:
        """Start waiting trainings while there is room, fairly between users."""
        with self._lock:
            if not self.ctx.stopping.is_set():
                for picked in self._admissions.admit():
                    tid = picked.training_id
                    thread = threading.Thread(
                        target=self._train, args=(tid,), daemon=True, name=f"training-{tid[:12]}"
                    )
                    self._threads[tid] = thread
                    thread.start()
            self.ctx.metrics.active.set(len(self._admissions.running))

    def _train(self, training_id: str) -> None:
        try:
            TrainingRunner(self.ctx, training_id).run()
        finally:
            with self._lock:
                self._admissions.ended(training_id)
                self._threads.pop(training_id, None)
            self._admit()

    def _join(self) -> None:
        deadline = time.monotonic() + _JOIN_S
        with self._lock:
            threads = list(self._threads.values())
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
            log.warning(
                "poison_message",
                queue=delivery.queue,
                error=str(exc)[:500],
                message_id=delivery.message_id,
            )
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
            known = self._admissions.knows(tid)
        if known or store.exists(tid):
            bound.info("duplicate_training_request")
            return
        try:
            config = parse_config(msg.config)
            # Checked again here (the gateway checks first) so that no request, however
            # it got onto the queue, makes this process build a population over quota.
            over = quota_errors(config, self.ctx.settings.quotas)
            if over:
                raise ConfigError(over)
            state = start(config) if msg.checkpoint is None else _handed_over(config, msg)
        except ConfigError as exc:
            bound.warning("training_refused", error=str(exc))
            self._refuse(tid, f"invalid config: {exc}")
            return
        meta = {
            "training_id": tid,
            "owner": msg.owner,
            "requested_at": msg.requested_at,
            "accepted_at": time.time(),
        }
        store.create(tid, meta, state)
        bound.info(
            "training_accepted",
            owner=msg.owner,
            env_id=config.gym_game_name,
            generations=config.generations,
            from_generation=state.generation,
        )
        with self._lock:
            self._admissions.add(msg.requested_at, tid, msg.owner)
        self._admit()

    def _refuse(self, training_id: str, error: str) -> None:
        self.ctx.publish_event(
            TrainingFailed(training_id=training_id, error=error), f"training_failed:{training_id}"
        )

    def _stop_training(self, training_id: str) -> None:
        """Stop after the current generation (at once if it is still waiting to run)."""
        store = self.ctx.store
        if not valid_training_id(training_id) or not store.exists(training_id):
            log.warning("stop_for_unknown_training", training_id=training_id)
            return
        store.request_stop(training_id)
        with self._lock:
            waiting = self._admissions.withdraw(training_id)
        log.info("stop_requested", training_id=training_id, waiting=waiting)
        if waiting:
            TrainingRunner(self.ctx, training_id).run()  # only marks it stopped and reports

    # ----- results ------------------------------------------------------------------------

    def _on_result(self, delivery: Delivery) -> None:
        msg = self._decode(delivery, (EvaluationResult,))
        if not isinstance(msg, EvaluationResult):
            return
        # RabbitMQ vouches for user_id: a user's machine cannot answer as another evaluator.
        unattributed = not attributed(delivery.user_id, msg.evaluator_id)
        reason = "unattributed" if unattributed else self.ctx.route(msg)
        if reason is not None:
            self.ctx.metrics.ignored.labels(reason=reason).inc()
            log.debug(
                "result_ignored", reason=reason, task_id=msg.task_id, evaluator_id=msg.evaluator_id
            )
        delivery.ack()

    def _on_announce(self, delivery: Delivery) -> None:
        """An evaluator said which environments it serves (or that it leaves)."""
        try:
            msg = decode(delivery.body)
        except MessageError as exc:
            log.warning("bad_announcement", error=str(exc)[:300])
            delivery.ack()  # a private broadcast queue: nothing to dead-letter it to
            return
        if isinstance(msg, EvaluatorAnnounced):
            if attributed(delivery.user_id, msg.evaluator_id):
                self.ctx.registry.announced(msg)
                self.ctx.declare_for(msg)
            else:
                log.warning("unattributed_announcement", evaluator_id=msg.evaluator_id)
        delivery.ack()


def _handed_over(config: TrainingConfig, msg: TrainingRequested) -> TrainingState:
    """The state a user's local run handed over (``ezspark train --gateway``); it already
    had its alone phase, so the training continues where it stopped."""
    state, errors = checkpoint_state(config, msg.checkpoint)
    if errors or state is None:
        raise ConfigError(errors)
    return state
