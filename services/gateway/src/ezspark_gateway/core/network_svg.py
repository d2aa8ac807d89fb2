"""Draw a genome as an SVG picture: inputs on the left, outputs on the right, hidden nodes
in between by level; edge colour is the weight's sign, edge width its size.  In a recurrent
genome the links that close a loop (taken in innovation order) are drawn as arcs, class
``recurrent``; levels come from the other links.

Pure: genome columns in, SVG text out.  Every value written into the SVG is a number or a
fixed word, so no user text can reach the markup.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ezspark_common.neat.genome import Genome
from ezspark_common.neat.mutation import reaches
from ezspark_common.neat.network import node_levels

COLUMN_GAP, ROW_GAP, MARGIN, RADIUS = 140, 44, 40, 13
POSITIVE, NEGATIVE, DISABLED = "#2563eb", "#dc2626", "#d0d5dd"


def loop_links(genome: Genome) -> list[bool]:
    """For each connection, whether it closes a loop among the earlier (by innovation)
    links that do not: self-loops and back links of a recurrent genome."""
    children: dict[int, list[int]] = {}
    out = []
    for s, d in zip(genome.src.tolist(), genome.dst.tolist(), strict=True):
        back = s >= 0 and (s == d or reaches(children, d, s))
        if not back:
            children.setdefault(s, []).append(d)
        out.append(back)
    return out


def _columns(genome: Genome, n_in: int, n_out: int, loops: list[bool]) -> dict[int, int]:
    """Column of every node: inputs 0, hidden nodes by level, outputs in the last column."""
    fwd = ~np.array(loops, dtype=np.bool_)
    levels = node_levels(
        Genome.build(
            genome.key,
            genome.node_ids,
            genome.biases,
            genome.innov[fwd],
            genome.src[fwd],
            genome.dst[fwd],
            genome.weight[fwd],
            genome.enabled[fwd],
        )
    )
    hidden = {n: lvl for n, lvl in levels.items() if n >= n_out}
    last = max(hidden.values(), default=0) + 1
    cols = {-(i + 1): 0 for i in range(n_in)}
    cols.update(hidden)
    cols.update(dict.fromkeys(range(n_out), last))
    return cols


def _positions(cols: dict[int, int]) -> tuple[dict[int, tuple[float, float]], int, int]:
    by_col: dict[int, list[int]] = {}
    for node in sorted(cols, key=lambda n: (n >= 0, abs(n) if n < 0 else n)):
        by_col.setdefault(cols[node], []).append(node)
    tallest = max(len(v) for v in by_col.values())
    height = 2 * MARGIN + (tallest - 1) * ROW_GAP
    pos: dict[int, tuple[float, float]] = {}
    for col, nodes in by_col.items():
        top = (height - (len(nodes) - 1) * ROW_GAP) / 2
        for row, node in enumerate(nodes):
            pos[node] = (float(MARGIN + col * COLUMN_GAP), top + row * ROW_GAP)
    width = 2 * MARGIN + max(by_col) * COLUMN_GAP
    return pos, width, height


def _loop(x1: float, y1: float, x2: float, y2: float, w: float, on: bool) -> str:
    """A recurrent link: an arc above the nodes (a small circle for a self-loop)."""
    colour = DISABLED if not on else (POSITIVE if w >= 0 else NEGATIVE)
    stroke = 0.6 + 2.4 * min(abs(w), 4.0) / 4.0 if on else 1.0
    if (x1, y1) == (x2, y2):
        top = max(2.0, y1 - 42)  # stays inside the picture
        path = (
            f"M {x1 - 6:.1f} {y1 - RADIUS:.1f} C {x1 - 22:.1f} {top:.1f} "
            f"{x1 + 22:.1f} {top:.1f} {x1 + 6:.1f} {y1 - RADIUS:.1f}"
        )
    else:
        lift = 30.0 + 0.25 * abs(x2 - x1)
        cx, cy = (x1 + x2) / 2, max(2.0, min(y1, y2) - lift)
        path = f"M {x1:.1f} {y1:.1f} Q {cx:.1f} {cy:.1f} {x2:.1f} {y2:.1f}"
    dash = "" if on else ' stroke-dasharray="4 3"'
    return (
        f'<path class="edge recurrent" d="{path}" fill="none" stroke="{colour}" '
        f'stroke-width="{stroke:.2f}"{dash}><title>recurrent {w:.4g}</title></path>'
    )


def _label(node: int, n_out: int) -> str:
    if node < 0:
        return f"x{-node - 1}"
    return f"a{node}" if node < n_out else f"h{node}"


def network_svg(wire: dict[str, Any], n_in: int, n_out: int) -> str:
    """The SVG document for a genome in wire form (raises ValueError if it is not valid)."""
    genome = Genome.from_wire(wire, cycles=True)  # a drawing only: a loop is no harm here
    loops = loop_links(genome)
    pos, width, height = _positions(_columns(genome, n_in, n_out, loops))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="best network">'
    ]
    for s, d, w, on, loop in zip(
        genome.src.tolist(),
        genome.dst.tolist(),
        genome.weight.tolist(),
        genome.enabled.tolist(),
        loops,
        strict=True,
    ):
        (x1, y1), (x2, y2) = pos[s], pos[d]
        if loop:
            parts.append(_loop(x1, y1, x2, y2, w, on))
        elif on:
            colour = POSITIVE if w >= 0 else NEGATIVE
            stroke = 0.6 + 2.4 * min(abs(w), 4.0) / 4.0
            parts.append(
                f'<line class="edge" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" '
                f'y2="{y2:.1f}" stroke="{colour}" stroke-width="{stroke:.2f}">'
                f"<title>{w:.4g}</title></line>"
            )
        else:
            parts.append(
                f'<line class="edge disabled" x1="{x1:.1f}" y1="{y1:.1f}" '
                f'x2="{x2:.1f}" y2="{y2:.1f}" stroke="{DISABLED}" stroke-width="1" '
                'stroke-dasharray="4 3"/>'
            )
    biases = dict(zip(genome.node_ids.tolist(), genome.biases.tolist(), strict=True))
    for node, (x, y) in pos.items():
        fill = "#f2f4f7" if node < 0 else ("#101828" if node < n_out else "#ffffff")
        ink = "#ffffff" if 0 <= node < n_out else "#101828"
        title = f"bias {biases[node]:.4g}" if node >= 0 else "input"
        parts.append(
            f'<g class="node"><circle cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS}" '
            f'fill="{fill}" stroke="#101828"><title>{title}</title></circle>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" font-size="10" text-anchor="middle" '
            f'fill="{ink}">{_label(node, n_out)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
