"""Handling one task delivery: decode, maybe pass it on, evaluate, publish the result, ack.

Settlement rules (the broker redelivers anything left unsettled):

* undecodable body, wrong message kind or malformed genome → rejected without requeue, so
  RabbitMQ dead-letters it (``<tasks>.dead``); logged and counted as ``poison``.
* this evaluator is listed in ``avoid_evaluators`` → held about ``avoid_delay_s`` (which
  caps how fast it can bounce tasks), then answered with a ``declined`` result (no
  outcomes) and acked; the evolver decides where the task goes next (another try, or it
  evaluates it itself), so nothing loops for ever.
* an environment the operator did not allow (or an unknown id) → every genome gets an error
  outcome at the reward floor, the task succeeds.
* the evaluation itself raises (a bug or a broken plug-in) → requeued for another try; on
  the last delivery the genomes get error outcomes instead, so the training moves on.
* the result is acked only after RabbitMQ confirmed the result publish.
* stopping: the task being evaluated finishes and its result is published; a task not
  started yet is left unsettled, so RabbitMQ gives it to another evaluator once this
  connection closes (rejecting it would only bring it straight back here).
* the evaluation hangs (an environment stuck in ``step``) → after ``task_hang_s`` the
  watchdog settles it as failed on this thread's behalf (:meth:`TaskHandler.abandon`),
  then kills the child playing it (``free_stuck``) or, playing in this process, ends the
  process (see ``watchdog.py``).
* the environment crashes natively → only the child process playing it ends (``player``):
  the genomes that crash it get the floor and an error, the task succeeds.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from ezspark_common.broker import Broker, Delivery
from ezspark_common.evaluation.batch import OutcomeTable
from ezspark_common.evaluation.envs import EnvError, check_env_id
from ezspark_common.trainer.workers import JobAbortedError
from ezspark_common.wire.messages import (
    EvaluationResult,
    EvaluationTask,
    MessageError,
    decode,
    encode,
    routing_id,
)
from ezspark_common.wire.routing import avoided
from ezspark_evaluator.metrics import EvaluatorMetrics
from ezspark_evaluator.player import Player
from ezspark_evaluator.settings import EvaluatorSettings

log = structlog.get_logger("ezspark_evaluator")


def error_outcomes(task: EvaluationTask, message: str) -> OutcomeTable:
    """Every genome of ``task`` failed: reward floor on every game, as evaluation does."""
    keys = task.genomes.keys
    return OutcomeTable(
        keys=keys,
        returns=np.full((keys.shape[0], len(task.game_indices)), task.reward_floor),
        steps=np.zeros(keys.shape[0], dtype=np.int64),
        errors=dict.fromkeys(range(keys.shape[0]), message),
    )


@dataclass(frozen=True)
class InHand:
    """The evaluation running right now, for the watchdog."""

    task: EvaluationTask
    delivery: Delivery
    bound: Any
    started: float  # time.monotonic()


class TaskHandler:
    """The broker handler for the tasks queue (runs on the broker's handler threads)."""

    def __init__(
        self,
        settings: EvaluatorSettings,
        broker: Broker,
        metrics: EvaluatorMetrics,
        evaluator_id: str,
        stopping: threading.Event,
        served: set[str],
    ) -> None:
        self._settings = settings
        self._broker = broker
        self._metrics = metrics
        self.evaluator_id = evaluator_id
        self._stopping = stopping
        self._allowed = settings.env_module_list
        self._served = served  # environments announced; anything else is declined
        self._busy = 0  # deliveries between "taken in hand" and "settled"
        self._idle = threading.Condition()
        self._in_hand: InHand | None = None
        self._abandoned = False  # set by the watchdog: the stuck evaluation settles nothing
        self._hand_lock = threading.Lock()
        self._rng = np.random.default_rng()  # timing jitter only, never training results
        # One evaluation at a time, by this handler's own player (a child process unless
        # isolate_envs is off); prefetch > 1 overlaps one result publish with the next task.
        self._evaluating = threading.Lock()
        self.player = Player(settings.env_module_list, isolate=settings.isolate_envs)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no task is in hand (evaluated or being published); False on timeout.

        Call after setting ``stopping``: no task starts once that is set.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def __call__(self, delivery: Delivery) -> None:
        """Handle one delivery; settles it on every path except an unexpected exception."""
        self._metrics.in_flight.inc()
        try:
            self._handle(delivery)
        finally:
            self._metrics.in_flight.dec()

    def _handle(self, delivery: Delivery) -> None:
        task = self._decode(delivery)
        if task is None:
            return
        bound = log.bind(
            training_id=task.training_id,
            generation=task.generation,
            task_id=task.task_id,
            attempt=task.attempt,
            evaluator_id=self.evaluator_id,
        )
        if not self._take():
            return
        try:
            if (
                avoided(self.evaluator_id, task.avoid_evaluators)
                or routing_id(task.env_id) not in self._served
            ):
                # Not ours to run (avoid list, or a task that reached the wrong queue): give
                # it back unevaluated rather than answer floor fitness for every genome.
                self._pass_on(task, delivery, bound)
                return
            with self._evaluating:
                if self._stopping.is_set():
                    # Waited for the lock while a stop began: leave it unsettled, RabbitMQ
                    # gives it to another evaluator once this connection closes.
                    bound.info("task_left_for_others", reason="stopping")
                    return
                started = time.perf_counter()
                with self._hand_lock:
                    self._in_hand = InHand(task, delivery, bound, time.monotonic())
                    self._abandoned = False
                outcomes = self._evaluate(task, delivery, bound)
                seconds = time.perf_counter() - started
                with self._hand_lock:
                    self._in_hand = None
                    if self._abandoned:
                        return  # the watchdog already settled it as hung
            if outcomes is None:
                return
            # Counted before the result goes out, so whoever has the result (the evolver,
            # a test) also sees it in the metrics.
            self._metrics.task_seconds.observe(seconds)
            self._metrics.genomes.inc(len(outcomes))
            self._metrics.env_steps.inc(int(outcomes.steps.sum()))
            self._publish(task, outcomes, seconds, bound)
            delivery.ack()
        finally:
            self._release()
        bound.debug("task_done", genomes=len(outcomes), seconds=round(seconds, 4))

    def hung(self, limit_s: float) -> InHand | None:
        """The evaluation in hand if it has run longer than ``limit_s``."""
        with self._hand_lock:
            hand = self._in_hand
        if hand is not None and time.monotonic() - hand.started > limit_s:
            return hand
        return None

    def abandon(self, hand: InHand, limit_s: float) -> bool:
        """Settle a hung evaluation as failed: floor outcomes published, delivery acked.

        Returns False if it finished meanwhile (nothing done).  Every genome of the task
        gets the error: a lockstep batch cannot tell which one's game hung.
        """
        with self._hand_lock:
            if self._in_hand is not hand:
                return False
            self._abandoned = True
        seconds = time.monotonic() - hand.started
        hand.bound.error("evaluation_hung", seconds=round(seconds, 1), limit_s=limit_s)
        self._metrics.errors.labels(kind="hung").inc()
        message = (
            f"evaluation hung: no result after {limit_s:g} s (task_hang_s); "
            "the environment stopped responding"
        )
        try:
            self._publish(hand.task, error_outcomes(hand.task, message), seconds, hand.bound)
            hand.delivery.ack()
        except Exception:  # RabbitMQ redelivers it; the delivery limit bounds the retries
            hand.bound.exception("hung_task_not_settled")
        return True

    def free_stuck(self, hand: InHand) -> bool:
        """After ``abandon(hand)``: end that evaluation by killing the child playing it, so
        this process goes on (True); False when tasks play in this process, where only
        the process's end can free the stuck thread."""
        if not self.player.isolated:
            return False
        with self._hand_lock:  # not the next task's child, if this one ended meanwhile
            if self._in_hand is hand:
                self.player.abort()
        return True

    def _take(self) -> bool:
        """Count a delivery as in hand, unless a stop has begun."""
        with self._idle:
            if self._stopping.is_set():
                return False
            self._busy += 1
            return True

    def _release(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def _decode(self, delivery: Delivery) -> EvaluationTask | None:
        """The task, or None after dead-lettering a poison message."""
        try:
            msg = decode(delivery.body)
            if not isinstance(msg, EvaluationTask):
                raise MessageError(f"expected evaluation_task, got {msg.kind}")
        except (MessageError, ValueError) as exc:
            self._poison(delivery, str(exc))
            return None
        return msg

    def _poison(self, delivery: Delivery, error: str) -> None:
        log.warning(
            "poison_task",
            error=error[:500],
            message_id=delivery.message_id,
            bytes=len(delivery.body),
        )
        self._metrics.errors.labels(kind="poison").inc()
        delivery.reject(requeue=False)

    def _evaluate(
        self, task: EvaluationTask, delivery: Delivery, bound: Any
    ) -> OutcomeTable | None:
        """Outcomes of every genome, or None if the delivery was requeued for another try."""
        try:
            check_env_id(task.env_id, self._allowed)
        except EnvError as exc:
            bound.warning("env_not_allowed", env_id=task.env_id, error=str(exc))
            self._metrics.errors.labels(kind="env_not_allowed").inc()
            return error_outcomes(task, str(exc))
        crashes = self.player.crashes
        try:
            outcomes = self.player.play(task)
        except JobAbortedError:  # hung: the watchdog settled it and killed the child
            return None
        except Exception as exc:
            bound.exception("evaluation_failed", final_attempt=delivery.final_attempt)
            self._metrics.errors.labels(kind="evaluation").inc()
            if not delivery.final_attempt:
                delivery.reject(requeue=True)
                return None
            outcomes = error_outcomes(task, f"evaluator failed: {type(exc).__name__}: {exc}")
        finally:
            if crashed := self.player.crashes - crashes:
                bound.warning("environment_crashed", child_processes=crashed)
                self._metrics.errors.labels(kind="env_crashed").inc(crashed)
        failed = len(outcomes.errors)
        if failed:
            self._metrics.errors.labels(kind="genome_error").inc(failed)
        return outcomes

    def _publish(
        self, task: EvaluationTask, outcomes: OutcomeTable, seconds: float, bound: Any
    ) -> None:
        """Publish the result and wait for RabbitMQ's confirm (raises BrokerError if none)."""
        offset = self._settings.fault_fitness_offset
        if offset:  # fault injection (tests of safeness): a lying evaluator
            outcomes = dataclasses.replace(outcomes, returns=outcomes.returns + offset)
        result = EvaluationResult(
            task_id=task.task_id,
            training_id=task.training_id,
            generation=task.generation,
            evaluator_id=self.evaluator_id,
            duration_s=seconds,
            attempt=task.attempt,
            outcomes=outcomes,
        )
        try:
            self._broker.publish(
                self._settings.results_queue,
                encode(result),
                message_id=f"{task.task_id}#{task.attempt}@{self.evaluator_id}",
            )
        except Exception:
            bound.exception("result_publish_failed")
            self._metrics.errors.labels(kind="publish").inc()
            raise  # the broker requeues the task

    def _pass_on(self, task: EvaluationTask, delivery: Delivery, bound: Any) -> None:
        """Give a task this evaluator must not run back to the evolver, unevaluated."""
        # Holding it a moment caps the bounce rate, and while held this evaluator is not
        # offered the re-published copy; the jitter avoids lock-step with other evaluators.
        self._stopping.wait(self._settings.avoid_delay_s * self._rng.uniform(0.5, 1.5))
        self._decline(task, bound)
        delivery.ack()

    def _decline(self, task: EvaluationTask, bound: Any) -> None:
        """Give an avoided task back to the evolver unevaluated."""
        result = EvaluationResult(
            task_id=task.task_id,
            training_id=task.training_id,
            generation=task.generation,
            evaluator_id=self.evaluator_id,
            outcomes=[],
            duration_s=0.0,
            attempt=task.attempt,
            declined=True,
        )
        self._metrics.declined.inc()  # before it goes out, as for a result
        self._broker.publish(
            self._settings.results_queue,
            encode(result),
            message_id=f"{task.task_id}#{task.attempt}!{self.evaluator_id}",
        )
        bound.debug("task_declined", avoid=task.avoid_evaluators)
