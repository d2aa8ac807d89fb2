"""Genomes: node genes and innovation-numbered connection genes, held as small numpy columns.

Node ids: inputs are ``-1 .. -n_in`` (implicit, never stored), outputs ``0 .. n_out-1``,
hidden nodes ``>= n_out``.  A genome is immutable (its arrays are read-only), so a child
can share every column it did not change with its parent.

Invariant kept by every operator unless the config is ``recurrent``: the graph of *all*
connections, enabled or not, is acyclic, so re-enabling a connection never creates a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

WEIGHT_INIT_STD = 1.0  # the functions' default; a training uses config.weight_init_std


def frozen(array: NDArray[Any]) -> NDArray[Any]:
    array.setflags(write=False)  # cheaper than assigning flags.writeable
    return array


@dataclass(eq=False, slots=True)
class Genome:
    """One network's genes.  Connections are sorted by innovation number.

    Treated as immutable: every operator returns a new genome, and the columns are
    read-only arrays.  (Not a frozen dataclass only because frozen construction costs
    several times more, and reproduction builds tens of thousands of genomes per second.)
    """

    key: int
    node_ids: IntArray
    biases: FloatArray
    innov: IntArray
    src: IntArray
    dst: IntArray
    weight: FloatArray
    enabled: BoolArray

    @staticmethod
    def build(
        key: int,
        node_ids: Any,
        biases: Any,
        innov: Any,
        src: Any,
        dst: Any,
        weight: Any,
        enabled: Any,
    ) -> Genome:
        """Make a genome from column data, sorting nodes by id and connections by innovation."""
        nodes = np.asarray(node_ids, dtype=np.int64)
        bias = np.asarray(biases, dtype=np.float64)
        inn = np.asarray(innov, dtype=np.int64)
        n_order = np.argsort(nodes, kind="stable")
        c_order = np.argsort(inn, kind="stable")
        return Genome(
            key=int(key),
            node_ids=frozen(nodes[n_order]),
            biases=frozen(bias[n_order]),
            innov=frozen(inn[c_order]),
            src=frozen(np.asarray(src, dtype=np.int64)[c_order]),
            dst=frozen(np.asarray(dst, dtype=np.int64)[c_order]),
            weight=frozen(np.asarray(weight, dtype=np.float64)[c_order]),
            enabled=frozen(np.asarray(enabled, dtype=np.bool_)[c_order]),
        )

    @property
    def num_connections(self) -> int:
        """How many connection genes (enabled or not) this genome has."""
        return int(self.innov.shape[0])

    def with_key(self, key: int) -> Genome:
        """The same genes under another key (columns shared, they are read-only)."""
        return Genome(
            key,
            self.node_ids,
            self.biases,
            self.innov,
            self.src,
            self.dst,
            self.weight,
            self.enabled,
        )

    def with_weights(self, weight: FloatArray, biases: FloatArray) -> Genome:
        """The same structure with new weights and biases (made read-only if they are not)."""
        for column in (weight, biases):
            if column.flags.writeable:
                frozen(column)
        return Genome(
            self.key,
            self.node_ids,
            biases,
            self.innov,
            self.src,
            self.dst,
            weight,
            self.enabled,
        )

    def with_enabled(self, enabled: BoolArray) -> Genome:
        """The same genes with another enabled mask."""
        return Genome(
            self.key,
            self.node_ids,
            self.biases,
            self.innov,
            self.src,
            self.dst,
            self.weight,
            frozen(enabled),
        )

    def same_genes(self, other: Genome) -> bool:
        """True when both genomes carry bit-identical genes (keys may differ)."""
        return all(
            np.array_equal(a, b) for a, b in zip(self._columns(), other._columns(), strict=True)
        )

    def _columns(self) -> tuple[NDArray[Any], ...]:
        return (
            self.node_ids,
            self.biases,
            self.innov,
            self.src,
            self.dst,
            self.weight,
            self.enabled,
        )

    def to_wire(self) -> dict[str, Any]:
        """Plain JSON-able columns; floats survive a JSON round trip exactly."""
        return {
            "key": self.key,
            "node_ids": self.node_ids.tolist(),
            "biases": self.biases.tolist(),
            "innov": self.innov.tolist(),
            "src": self.src.tolist(),
            "dst": self.dst.tolist(),
            "weight": self.weight.tolist(),
            "enabled": self.enabled.tolist(),
        }

    @staticmethod
    def from_wire(data: dict[str, Any], *, cycles: bool = False) -> Genome:
        """Rebuild a genome from :meth:`to_wire` output, checking its shape (cycles are
        refused unless ``cycles``: genomes of a recurrent config)."""
        genome = Genome.build(
            data["key"],
            data["node_ids"],
            data["biases"],
            data["innov"],
            data["src"],
            data["dst"],
            data["weight"],
            data["enabled"],
        )
        check_genome(genome, cycles=cycles)
        return genome


def check_genome(genome: Genome, *, cycles: bool = False) -> None:
    """Raise ValueError unless the genome's columns are consistent and its graph acyclic
    (``cycles``: a recurrent network's genome, which may have cycles)."""
    n_nodes, n_conn = genome.node_ids.shape[0], genome.innov.shape[0]
    if genome.biases.shape[0] != n_nodes:
        raise ValueError("biases and node_ids differ in length")
    for name in ("src", "dst", "weight", "enabled"):
        if getattr(genome, name).shape[0] != n_conn:
            raise ValueError(f"{name} and innov differ in length")
    if n_conn > 1 and not bool(np.all(genome.innov[1:] > genome.innov[:-1])):
        raise ValueError("duplicate innovation numbers")  # columns are sorted by build()
    if not (np.isfinite(genome.weight).all() and np.isfinite(genome.biases).all()):
        raise ValueError("weights and biases must be finite")
    known = set(genome.node_ids.tolist())
    if not set(genome.dst.tolist()) <= known:
        raise ValueError("a connection ends at an unknown node")
    if not {s for s in genome.src.tolist() if s >= 0} <= known:
        raise ValueError("a connection starts at an unknown node")
    if not cycles and has_cycle(genome.src, genome.dst):
        raise ValueError("connections form a cycle")


def has_cycle(src: IntArray, dst: IntArray) -> bool:
    """True when the directed graph given by the edge columns has a cycle."""
    children: dict[int, list[int]] = {}
    for s, d in zip(src.tolist(), dst.tolist(), strict=True):
        children.setdefault(s, []).append(d)
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done
    for root in list(children):
        if state.get(root):
            continue
        stack = [(root, iter(children.get(root, ())))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return True
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(children.get(nxt, ()))))
    return False


def initial_genome(
    key: int, n_in: int, n_out: int, rng: np.random.Generator, weight_std: float = WEIGHT_INIT_STD
) -> Genome:
    """A fully connected inputs→outputs genome with normal(0, ``weight_std``) weights and zero
    biases.

    Innovation ``i * n_out + o`` always means input ``-(i+1)`` → output ``o``.
    """
    src = np.repeat(-np.arange(1, n_in + 1, dtype=np.int64), n_out)
    dst = np.tile(np.arange(n_out, dtype=np.int64), n_in)
    n_conn = n_in * n_out
    return Genome.build(
        key,
        np.arange(n_out),
        np.zeros(n_out),
        np.arange(n_conn),
        src,
        dst,
        rng.normal(0.0, weight_std, n_conn),
        np.ones(n_conn, dtype=np.bool_),
    )
