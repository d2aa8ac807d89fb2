"""The best network drawn as SVG: every node and connection, in a parseable document."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from ezspark_common.wire.messages import TrainingFinished, WireGenome
from ezspark_gateway.core.events import EventApplier
from ezspark_gateway.core.network_svg import NEGATIVE, POSITIVE, network_svg
from tests.support.genomes import random_genome

SVG = "{http://www.w3.org/2000/svg}"


def test_every_node_and_connection_is_drawn() -> None:
    """Circles = inputs + genome nodes; lines = connections; disabled ones are dashed."""
    genome = random_genome(3, 4, 2, seed=5, steps=15)
    root = ET.fromstring(network_svg(genome.to_wire(), 4, 2))
    circles = root.findall(f".//{SVG}circle")
    lines = root.findall(f".//{SVG}line")
    assert len(circles) == 4 + len(genome.node_ids)
    assert len(lines) == genome.num_connections
    dashed = [ln for ln in lines if ln.get("stroke-dasharray")]
    assert len(dashed) == int((~genome.enabled).sum())
    colours = {ln.get("stroke") for ln in lines if not ln.get("stroke-dasharray")}
    assert colours <= {POSITIVE, NEGATIVE}


def test_inputs_left_outputs_right() -> None:
    """Input nodes sit in the first column and outputs in the last one."""
    genome = random_genome(1, 3, 2, seed=2, steps=10)
    root = ET.fromstring(network_svg(genome.to_wire(), 3, 2))
    xs = {t.text: float(t.get("x", "0")) for t in root.findall(f".//{SVG}text")}
    assert max(xs[f"x{i}"] for i in range(3)) < min(xs[f"a{o}"] for o in range(2))


def test_invalid_genome_is_refused() -> None:
    """A malformed genome cannot be drawn (ValueError, not a crash); a cycle can (arcs)."""
    wire: dict[str, Any] = {
        "key": 0,
        "node_ids": [0, 1, 2, 3],
        "biases": [0.0] * 4,
        "innov": [0, 1],
        "src": [2, 3],
        "dst": [3, 2],
        "weight": [1.0, 1.0],
        "enabled": [True, True],
    }
    assert 'class="edge recurrent"' in network_svg(wire, 1, 2)  # recurrent genomes loop
    with pytest.raises(ValueError, match="unknown node"):
        network_svg({**wire, "dst": [3, 9]}, 1, 2)


def test_best_svg_endpoint_is_owner_only_and_404_until_a_best_exists(gw: Any) -> None:
    """GET best.svg: 404 before a best genome, SVG after, 404 for another user."""
    token = gw.signup()
    tid = gw.create(token)
    url = f"/api/trainings/{tid}/best.svg"
    assert gw.client.get(url, headers=gw.auth(token)).status_code == 404
    genome = random_genome(9, 4, 2, seed=9, steps=6)
    EventApplier(gw.db.sessions).handle(
        TrainingFinished(
            training_id=tid,
            generations=3,
            best_fitness=200.0,
            reason="generations",
            best_genome=WireGenome(**json.loads(json.dumps(genome.to_wire()))),
        )
    )
    resp = gw.client.get(url, headers=gw.auth(token))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(resp.content).tag == f"{SVG}svg"
    other = gw.signup()
    assert gw.client.get(url, headers=gw.auth(other)).status_code == 404


def test_recurrent_links_are_drawn_as_arcs() -> None:
    """A recurrent genome's loop-closing links (self-loops too) are arcs, the rest lines."""
    from tests.unit.neat.test_recurrent import GENOMES

    genome = next(g for g in GENOMES if (g.src == g.dst).any())
    root = ET.fromstring(network_svg(genome.to_wire(), 2, 2))
    arcs = root.findall(f".//{SVG}path")
    lines = root.findall(f".//{SVG}line")
    assert arcs
    assert all(a.get("class") == "edge recurrent" for a in arcs)
    assert len(arcs) + len(lines) == genome.num_connections
    assert len(root.findall(f".//{SVG}circle")) == 2 + len(genome.node_ids)


def test_inputs_and_outputs_are_named_and_a_legend_explains_the_picture() -> None:
    """CartPole's observation and action names sit beside their nodes; an environment
    without documented names (or other sizes) gets x0…/a0…; the legend is in the SVG."""
    from ezspark_gateway.core.io_names import io_names

    genome = random_genome(4, 4, 2, seed=4, steps=8)
    names = io_names("CartPole-v1", 4, 2)
    root = ET.fromstring(network_svg(genome.to_wire(), 4, 2, names))
    texts = {t.text: t for t in root.findall(f".//{SVG}text")}
    assert "pole angular velocity" in texts
    assert "push right" in texts
    assert float(texts["cart position"].get("x", "0")) < float(texts["x0"].get("x", "0"))
    assert float(texts["push left"].get("x", "0")) > float(texts["a0"].get("x", "0"))
    legend = root.find(f".//{SVG}g[@class='legend']")
    assert legend is not None
    words = {t.text for t in legend.findall(f"{SVG}text")}
    assert {"positive weight", "negative weight", "disabled link", "hidden node"} <= words
    assert min(float(t.get("x", "0")) for t in root.findall(f".//{SVG}text")) >= 0
    assert io_names("my.pkg:Maze-v0", 3, 2).inputs == ("x0", "x1", "x2")
    assert io_names("CartPole-v1", 5, 2).outputs == ("a0", "a1")  # sizes differ: generic
