"""Draw a genome as an SVG picture: inputs on the left, outputs on the right, hidden nodes
in between by level; edge colour is the weight's sign, edge width its size.  In a recurrent
genome the links that close a loop (taken in innovation order) are drawn as arcs, class
``recurrent``; levels come from the other links.  Inputs and outputs carry their names
(``io_names``: the observation and action names when the environment's are documented,
else ``x0 …``/``a0 …``) and a legend under the network explains colours, widths and shapes,
so a downloaded picture explains itself.

Pure: genome columns in, SVG text out.  Every value written into the SVG is a number, a
fixed word or a name from the fixed table in ``io_names``, so no user text reaches the
markup.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ezspark_common.neat.genome import Genome
from ezspark_common.neat.mutation import reaches
from ezspark_common.neat.network import node_levels
from ezspark_gateway.core.io_names import IoNames, generic

COLUMN_GAP, ROW_GAP, MARGIN, RADIUS = 140, 44, 40, 13
POSITIVE, NEGATIVE, DISABLED = "#2563eb", "#dc2626", "#98a2b3"
INPUT_FILL, HIDDEN_FILL, OUTPUT_FILL = "#f2f4f7", "#ffffff", "#101828"
NAME_PX, CHAR_PX = 11, 6.6  # name font size, and a generous average glyph width for it
LEGEND_H, LEGEND_W = 64, 600


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


def _positions(
    cols: dict[int, int], left: float = 0.0
) -> tuple[dict[int, tuple[float, float]], int, int]:
    """Node centres (columns shifted right by ``left``), and the network's width, height."""
    by_col: dict[int, list[int]] = {}
    for node in sorted(cols, key=lambda n: (n >= 0, abs(n) if n < 0 else n)):
        by_col.setdefault(cols[node], []).append(node)
    tallest = max(len(v) for v in by_col.values())
    height = 2 * MARGIN + (tallest - 1) * ROW_GAP
    pos: dict[int, tuple[float, float]] = {}
    for col, nodes in by_col.items():
        top = (height - (len(nodes) - 1) * ROW_GAP) / 2
        for row, node in enumerate(nodes):
            pos[node] = (left + MARGIN + col * COLUMN_GAP, top + row * ROW_GAP)
    width = int(left) + 2 * MARGIN + max(by_col) * COLUMN_GAP
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


def _text_px(names: tuple[str, ...]) -> float:
    """Room the longest of ``names`` needs beside its node."""
    return max((len(n) for n in names), default=0) * CHAR_PX + RADIUS + 8


def _names(pos: dict[int, tuple[float, float]], names: IoNames) -> list[str]:
    """Input names left of the inputs, output names right of the outputs."""
    parts = []
    for i, name in enumerate(names.inputs):
        x, y = pos[-(i + 1)]
        parts.append(
            f'<text class="io-name input-name" x="{x - RADIUS - 6:.1f}" y="{y + 4:.1f}" '
            f'font-size="{NAME_PX}" text-anchor="end" fill="#344054">{name}</text>'
        )
    for o, name in enumerate(names.outputs):
        x, y = pos[o]
        parts.append(
            f'<text class="io-name output-name" x="{x + RADIUS + 6:.1f}" y="{y + 4:.1f}" '
            f'font-size="{NAME_PX}" text-anchor="start" fill="#344054">{name}</text>'
        )
    return parts


def _legend(top: float) -> str:
    """What the colours, widths and shapes mean (polylines and rects: the network's own
    ``line``, ``path`` and ``circle`` elements stay one per link and node)."""
    y1, y2 = top + 18, top + 44
    swatches = [
        (
            f'<polyline points="10,{y1} 36,{y1}" stroke="{POSITIVE}" stroke-width="2.5"/>',
            "positive weight",
        ),
        (
            f'<polyline points="150,{y1} 176,{y1}" stroke="{NEGATIVE}" stroke-width="2.5"/>',
            "negative weight",
        ),
        (
            f'<polyline points="290,{y1} 316,{y1}" stroke="{DISABLED}" stroke-width="1" '
            'stroke-dasharray="4 3"/>',
            "disabled link",
        ),
        (
            f'<polyline points="420,{y1} 433,{y1 - 8} 446,{y1}" fill="none" stroke="#344054"/>',
            "recurrent link (arc)",
        ),
        (
            f'<rect x="10" y="{y2 - 7}" width="14" height="14" rx="7" fill="{INPUT_FILL}" '
            'stroke="#101828"/>',
            "input (observation)",
        ),
        (
            f'<rect x="150" y="{y2 - 7}" width="14" height="14" rx="7" fill="{HIDDEN_FILL}" '
            'stroke="#101828"/>',
            "hidden node",
        ),
        (
            f'<rect x="290" y="{y2 - 7}" width="14" height="14" rx="7" fill="{OUTPUT_FILL}" '
            'stroke="#101828"/>',
            "output (action)",
        ),
        ("", "line width: |weight|"),
    ]
    xs = [42, 182, 322, 452, 30, 170, 310, 420]
    parts = ['<g class="legend" font-size="11" fill="#344054">']
    for (mark, words), x, y in zip(swatches, xs, [y1] * 4 + [y2] * 4, strict=True):
        parts.append(f'{mark}<text x="{x}" y="{y + 4}">{words}</text>')
    parts.append("</g>")
    return "".join(parts)


def network_svg(wire: dict[str, Any], n_in: int, n_out: int, names: IoNames | None = None) -> str:
    """The SVG document for a genome in wire form (raises ValueError if it is not valid)."""
    names = names or generic(n_in, n_out)
    genome = Genome.from_wire(wire, cycles=True)  # a drawing only: a loop is no harm here
    loops = loop_links(genome)
    left = _text_px(names.inputs)
    pos, width, height = _positions(_columns(genome, n_in, n_out, loops), left)
    width = int(max(width + _text_px(names.outputs), LEGEND_W))
    total = height + LEGEND_H
    label = "best network: " + ", ".join(names.inputs) + " in; " + ", ".join(names.outputs)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}" '
        f'viewBox="0 0 {width} {total}" role="img" aria-label="{label} out">'
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
        parts.append(_loop(x1, y1, x2, y2, w, on) if loop else _edge(x1, y1, x2, y2, w, on))
    biases = dict(zip(genome.node_ids.tolist(), genome.biases.tolist(), strict=True))
    for node, (x, y) in pos.items():
        fill = INPUT_FILL if node < 0 else (OUTPUT_FILL if node < n_out else HIDDEN_FILL)
        ink = "#ffffff" if 0 <= node < n_out else "#101828"
        title = _title(node, n_out, names, biases)
        parts.append(
            f'<g class="node"><circle cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS}" '
            f'fill="{fill}" stroke="#101828"><title>{title}</title></circle>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" font-size="10" text-anchor="middle" '
            f'fill="{ink}">{_label(node, n_out)}</text></g>'
        )
    parts.extend(_names(pos, names))
    parts.append(_legend(height))
    parts.append("</svg>")
    return "".join(parts)


def _edge(x1: float, y1: float, x2: float, y2: float, w: float, on: bool) -> str:
    """A straight connection: coloured by sign and as thick as its weight, or dashed grey
    when disabled."""
    if not on:
        return (
            f'<line class="edge disabled" x1="{x1:.1f}" y1="{y1:.1f}" '
            f'x2="{x2:.1f}" y2="{y2:.1f}" stroke="{DISABLED}" stroke-width="1" '
            'stroke-dasharray="4 3"/>'
        )
    colour = POSITIVE if w >= 0 else NEGATIVE
    stroke = 0.6 + 2.4 * min(abs(w), 4.0) / 4.0
    return (
        f'<line class="edge" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" '
        f'y2="{y2:.1f}" stroke="{colour}" stroke-width="{stroke:.2f}">'
        f"<title>{w:.4g}</title></line>"
    )


def _title(node: int, n_out: int, names: IoNames, biases: dict[int, float]) -> str:
    """A node's tooltip: its name (inputs, outputs) and its bias."""
    if node < 0:
        return f"input {names.inputs[-node - 1]}"
    bias = f"bias {biases[node]:.4g}"
    return f"output {names.outputs[node]}, {bias}" if node < n_out else f"hidden, {bias}"
