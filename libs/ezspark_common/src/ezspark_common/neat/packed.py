"""Many genomes as one set of flat columns: the form tasks travel in and batches compile from.

Genome ``i`` owns the ``node_counts[i]`` node rows and ``conn_counts[i]`` connection rows
that follow those of genomes ``0 .. i-1``.  Packing is one concatenation per column, and
checking a packed batch is a handful of array operations whatever its size, so a task of a
thousand genomes is checked in about a millisecond instead of a thousand Python calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ezspark_common.neat.genome import BoolArray, FloatArray, Genome, IntArray, frozen

# Column name → dtype kind: "i" integer (sent as int32 when every value fits), "f" float64,
# "b" bool.  The order is the order columns travel in.
COLUMNS: dict[str, str] = {
    "keys": "i",
    "node_counts": "i",
    "conn_counts": "i",
    "node_ids": "i",
    "biases": "f",
    "innov": "i",
    "src": "i",
    "dst": "i",
    "weight": "f",
    "enabled": "b",
}


@dataclass(frozen=True, eq=False, slots=True)
class PackedGenomes:
    """Genomes laid end to end, column by column (see the module docstring)."""

    keys: IntArray
    node_counts: IntArray
    conn_counts: IntArray
    node_ids: IntArray
    biases: FloatArray
    innov: IntArray
    src: IntArray
    dst: IntArray
    weight: FloatArray
    enabled: BoolArray

    @staticmethod
    def pack(genomes: Sequence[Genome]) -> PackedGenomes:
        """One column per gene field, genomes in the given order."""
        return PackedGenomes(
            keys=np.array([g.key for g in genomes], dtype=np.int64),
            node_counts=np.array([g.node_ids.shape[0] for g in genomes], dtype=np.int64),
            conn_counts=np.array([g.innov.shape[0] for g in genomes], dtype=np.int64),
            node_ids=_concat([g.node_ids for g in genomes], np.int64),
            biases=_concat([g.biases for g in genomes], np.float64),
            innov=_concat([g.innov for g in genomes], np.int64),
            src=_concat([g.src for g in genomes], np.int64),
            dst=_concat([g.dst for g in genomes], np.int64),
            weight=_concat([g.weight for g in genomes], np.float64),
            enabled=_concat([g.enabled for g in genomes], np.bool_),
        )

    @staticmethod
    def from_columns(columns: Mapping[str, NDArray[Any]], *, cycles: bool = False) -> PackedGenomes:
        """Rebuild from :meth:`columns` output (any integer width), then :meth:`check` it."""
        missing = sorted(set(COLUMNS) - set(columns))
        if missing:
            raise ValueError(f"genome columns missing: {', '.join(missing)}")
        dtypes = {"i": np.int64, "f": np.float64, "b": np.bool_}
        packed = PackedGenomes(
            **{
                name: frozen(np.asarray(columns[name]).astype(dtypes[kind], copy=False))
                for name, kind in COLUMNS.items()
            }
        )
        packed.check(cycles=cycles)
        return packed

    def columns(self) -> dict[str, NDArray[Any]]:
        """Every column by name, in travel order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def __eq__(self, other: object) -> bool:
        """Bit-identical columns (so -0.0 differs from 0.0, as it does to a network)."""
        if not isinstance(other, PackedGenomes):
            return NotImplemented
        return all(
            a.shape == b.shape and a.tobytes() == b.tobytes()
            for a, b in zip(self.columns().values(), other.columns().values(), strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def genomes(self) -> list[Genome]:
        """The genomes, as views into these columns."""
        n_ends = np.cumsum(self.node_counts).tolist()
        c_ends = np.cumsum(self.conn_counts).tolist()
        out, n0, c0 = [], 0, 0
        for key, n1, c1 in zip(self.keys.tolist(), n_ends, c_ends, strict=True):
            out.append(
                Genome(
                    key,
                    self.node_ids[n0:n1],
                    self.biases[n0:n1],
                    self.innov[c0:c1],
                    self.src[c0:c1],
                    self.dst[c0:c1],
                    self.weight[c0:c1],
                    self.enabled[c0:c1],
                )
            )
            n0, c0 = n1, c1
        return out

    def node_genome(self) -> IntArray:
        """For every node row, the index of the genome it belongs to."""
        return np.repeat(np.arange(len(self)), self.node_counts)

    def conn_genome(self) -> IntArray:
        """For every connection row, the index of the genome it belongs to."""
        return np.repeat(np.arange(len(self)), self.conn_counts)

    def check(self, *, cycles: bool = False) -> None:
        """Raise ValueError, naming a genome, unless every genome is well formed: columns of
        matching lengths, nodes and innovations strictly increasing, finite numbers,
        connections between known nodes, and (unless ``cycles``: recurrent networks) no
        cycle among all connections."""
        n = len(self)
        for name in ("node_counts", "conn_counts"):
            column = getattr(self, name)
            if column.shape != (n,) or (n and int(column.min()) < 0):
                raise ValueError(f"{name} must hold one count ≥ 0 per genome")
        _same_length(self, ("node_ids", "biases"), int(self.node_counts.sum()))
        _same_length(
            self, ("innov", "src", "dst", "weight", "enabled"), int(self.conn_counts.sum())
        )
        node_genome, conn_genome = self.node_genome(), self.conn_genome()
        self._increasing(self.node_ids, node_genome, "node ids are not strictly increasing")
        self._increasing(self.innov, conn_genome, "duplicate innovation numbers")
        for name, rows in (("biases", node_genome), ("weight", conn_genome)):
            bad = ~np.isfinite(getattr(self, name))
            if bad.any():
                self._fail(rows[bad], "weights and biases must be finite")
        dst = self.node_rows(conn_genome, self.dst, "a connection ends at an unknown node")
        hidden = self.src >= 0
        src = self.node_rows(
            conn_genome[hidden], self.src[hidden], "a connection starts at an unknown node"
        )
        if cycles:
            return
        levels = longest_paths(int(node_genome.shape[0]), src, dst[hidden])
        if levels is None:
            self._fail(conn_genome[hidden], "connections form a cycle", cycle=(src, dst[hidden]))

    def node_rows(self, genome: IntArray, node: IntArray, error: str) -> IntArray:
        """Row in the node columns of each ``(genome index, node id)`` pair."""
        span = int(np.abs(self.node_ids).max(initial=0)) + 1
        keys = self.node_genome() * span + self.node_ids  # sorted: ids increase per genome
        wanted = genome * span + node
        found = np.minimum(np.searchsorted(keys, wanted), max(keys.shape[0] - 1, 0))
        if keys.shape[0] == 0:
            missing = np.ones(wanted.shape[0], dtype=np.bool_)
        else:
            missing = keys[found] != wanted
        if missing.any():
            self._fail(genome[missing], error)
        return np.asarray(found, dtype=np.int64)

    def _increasing(self, column: IntArray, genome: IntArray, error: str) -> None:
        same = genome[1:] == genome[:-1]
        bad = same & (column[1:] <= column[:-1])
        if bad.any():
            self._fail(genome[1:][bad], error)

    def _fail(
        self, genomes: IntArray, error: str, cycle: tuple[IntArray, IntArray] | None = None
    ) -> None:
        """Raise for the first offending genome (for a cycle: one on it)."""
        index = int(genomes[0])
        if cycle is not None:  # every genome's edges are there; find one that loops
            src, dst = cycle
            for g in np.unique(genomes).tolist():
                mine = genomes == g
                if longest_paths(int(self.node_ids.shape[0]), src[mine], dst[mine]) is None:
                    index = g
                    break
        raise ValueError(f"genome {int(self.keys[index])}: {error}")


def longest_paths(n_nodes: int, src: IntArray, dst: IntArray) -> IntArray | None:
    """Longest path from the inputs to every node (inputs feed level 1), relaxed over all
    edges at once; None when the edges form a cycle."""
    level = np.ones(n_nodes, dtype=np.int64)
    for _ in range(n_nodes + 1):  # a longest path has at most one step per node
        relaxed = level.copy()
        np.maximum.at(relaxed, dst, level[src] + 1)
        if np.array_equal(relaxed, level):
            return level
        level = relaxed
    return None


def _same_length(packed: PackedGenomes, names: tuple[str, ...], total: int) -> None:
    for name in names:
        column = getattr(packed, name)
        if column.ndim != 1 or column.shape[0] != total:
            raise ValueError(f"genome column {name} has {column.size} values, expected {total}")


def _concat(columns: list[NDArray[Any]], dtype: type) -> NDArray[Any]:
    return frozen(
        np.concatenate(columns).astype(dtype, copy=False) if columns else np.zeros(0, dtype)
    )
