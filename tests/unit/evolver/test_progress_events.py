"""The training runner's progress events: told at once when a generation starts, then at
most once per ``PROGRESS_EVERY_S`` and only when something changed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from ezspark_common.broker.memory import InMemoryBroker
from ezspark_common.config import config_with, load_config
from ezspark_common.trainer.training import start
from ezspark_common.wire.messages import GenerationProgressed, decode
from ezspark_evolver.context import Context
from ezspark_evolver.fairshare import Scheduler, Usage
from ezspark_evolver.metrics import EvolverMetrics
from ezspark_evolver.registry import EvaluatorRegistry
from ezspark_evolver.settings import EvolverSettings
from ezspark_evolver.store import TrainingStore
from ezspark_evolver.trainer import PROGRESS_EVERY_S, TrainingRunner
from tests.support.configs import EXAMPLES

CONFIG = config_with(
    load_config(EXAMPLES / "cartpole.json"), initial_population=12, alone_training_iterations=1
)


class Clock:
    """Time only the test moves."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_throttled_and_told_afresh_each_generation(tmp_path: Path) -> None:
    """First report of a generation at once; changes within a second wait; an unchanged
    figure is never repeated; the next generation starts afresh, with its phase."""
    clock, broker = Clock(), InMemoryBroker()
    registry = EvaluatorRegistry(120.0, clock=clock)
    ctx = Context(
        settings=EvolverSettings(data_dir=str(tmp_path)),
        broker=broker,
        store=TrainingStore(tmp_path),
        metrics=EvolverMetrics.create(CollectorRegistry()),
        registry=registry,
        scheduler=Scheduler(registry, usage=Usage(clock=clock)),
        clock=clock,
    )
    broker.declare(ctx.events_queue)
    runner = TrainingRunner(ctx, "t1")
    population = start(CONFIG).population
    tell = runner._generation_started(population, CONFIG)
    tell(0, 8, 0)  # published: the generation's first
    clock.now += 0.5
    tell(3, 8, 1)  # within the second: held back
    clock.now += PROGRESS_EVERY_S
    tell(3, 8, 1)  # published
    clock.now += PROGRESS_EVERY_S
    tell(3, 8, 1)  # unchanged: not repeated
    nxt = runner._generation_started(replace(population, generation=1), CONFIG)
    nxt(0, 8, 0)  # a new generation: published at once
    events = [decode(b) for b in broker.messages(ctx.events_queue)]
    assert all(isinstance(e, GenerationProgressed) for e in events)
    got = [(e.generation, e.done, e.evaluators, e.phase) for e in events]  # type: ignore[union-attr]
    assert got == [(0, 0, 0, "local"), (0, 3, 1, "local"), (1, 0, 0, "distributed")]
