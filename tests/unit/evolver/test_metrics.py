"""The evolver's metrics: every field registered under a documented name; ``forget``."""

from __future__ import annotations

import dataclasses
import re
import typing

from prometheus_client import CollectorRegistry

from ezspark_evolver.metrics import EvolverMetrics
from tests.support.configs import REPO

SERVICES_DOC = (REPO / "docs" / "services.md").read_text()


def test_every_field_is_a_registered_metric_named_in_the_docs() -> None:
    """Each field of EvolverMetrics is its own registered metric of the field's declared
    kind (``create`` builds them from a table, which mypy cannot check), and
    docs/services.md names every one of them."""
    registry = CollectorRegistry()
    metrics = EvolverMetrics.create(registry)
    names = {m.name for m in registry.collect()}
    kinds = typing.get_type_hints(EvolverMetrics)
    fields = [f.name for f in dataclasses.fields(EvolverMetrics)]
    own = {}
    for field in fields:
        metric = getattr(metrics, field)
        assert isinstance(metric, kinds[field]), field
        (family,) = metric.describe()
        own[family.name] = family.type
    assert len(own) == len(fields) == len(names)  # one metric per field, no others
    documented = set(re.findall(r"ezspark_evolver_[a-z_]+", SERVICES_DOC))
    for name, kind in own.items():
        assert name in names
        assert name + ("_total" if kind == "counter" else "") in documented, name


def test_forget_drops_only_that_training() -> None:
    """``forget`` removes a finished training's labelled series and keeps the others'."""
    registry = CollectorRegistry()
    metrics = EvolverMetrics.create(registry)
    for training in ("a", "b"):
        metrics.generations.labels(training).inc()
        metrics.population.labels(training).set(10)
    metrics.forget("a")
    assert registry.get_sample_value("ezspark_evolver_generations_total", {"training": "a"}) is None
    assert registry.get_sample_value("ezspark_evolver_population", {"training": "b"}) == 10
    assert registry.get_sample_value("ezspark_evolver_generations_total", {"training": "b"}) == 1
