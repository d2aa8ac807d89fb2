"""The richer generation reports reach the API: species sizes, genome sizes and phase."""

from __future__ import annotations

from typing import Any

from ezspark_common.wire.messages import GenerationFinished
from ezspark_gateway.core.events import EventApplier


def test_report_shape_fields_are_stored_and_served(gw: Any) -> None:
    """A report's species sizes, genome sizes and phase come back from /generations;
    an older report without them reads as nulls."""
    token = gw.signup()
    tid = gw.create(token)
    sink = EventApplier(gw.db.sessions, clock=gw.clock)
    common = {
        "training_id": tid,
        "best_fitness": 5.0,
        "mean_fitness": 2.0,
        "species": 2,
        "population": 12,
        "evaluations_per_s": 10.0,
        "best_genome_key": 1,
    }
    sink.handle(GenerationFinished(generation=0, **common))
    sink.handle(
        GenerationFinished(
            generation=1,
            species_sizes=[8, 4],
            mean_nodes=2.5,
            mean_connections=3.75,
            best_nodes=3,
            best_connections=4,
            phase="local",
            **common,
        )
    )
    items = gw.client.get(f"/api/trainings/{tid}/generations", headers=gw.auth(token)).json()[
        "items"
    ]
    assert items[0]["species_sizes"] is None
    assert items[0]["phase"] is None
    shaped = {k: items[1][k] for k in ("species_sizes", "mean_nodes", "mean_connections")}
    assert shaped == {"species_sizes": [8, 4], "mean_nodes": 2.5, "mean_connections": 3.75}
    assert (items[1]["best_nodes"], items[1]["best_connections"], items[1]["phase"]) == (
        3,
        4,
        "local",
    )
