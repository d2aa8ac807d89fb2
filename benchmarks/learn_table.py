"""``bench_learn``'s results: merging runs' files, and the table with each ratio's interval and
the winners on new games."""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

HOLDOUT_GAMES = 100  # the new games each run's winner plays (bench_learn.holdout_seeds)


def merge(files: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``results`` of several runs' JSON, per task and side, joined by seed: a file
    that ran other seeds of a side adds them (each file's runs start at its
    ``first_seed``), and a later file's run of a seed replaces an earlier one (a rerun).
    ValueError when two files ran a task with another cap (either side: the cap is both
    sides' budget), one to the threshold and one to the cap (``--no-stop``), or EzSpark
    with other keys, since a row mixing them compares nothing."""
    runs: dict[str, dict[str, dict[int, Any]]] = {}
    caps: dict[str, int | None] = {}
    keys: dict[str, str] = {}
    stops: dict[str, bool] = {}
    for data in files:
        first, cap = int(data.get("first_seed", 0)), data.get("generations")
        stop = bool(data.get("stops", True))
        for name, sides in data["results"].items():
            task = runs.setdefault(name, {"ezspark": {}, "neat": {}})
            for side, side_runs in sides.items():
                if not side_runs:
                    continue
                if caps.setdefault(name, cap) != cap:
                    raise ValueError(
                        f"{name}, {side}: the files ran it with another cap "
                        f"(cap {caps[name]} and cap {cap}); table them apart"
                    )
                if stops.setdefault(name, stop) != stop:
                    raise ValueError(
                        f"{name}, {side}: one file ran to the threshold, another to the cap "
                        "(--no-stop); table them apart"
                    )
                mine = json.dumps(data.get("overrides", {}), sort_keys=True)
                if side == "ezspark" and keys.setdefault(name, mine) != mine:
                    raise ValueError(
                        f"{name}, {side}: the files ran it with other settings "
                        f"(keys {keys[name]} and {mine}); table them apart"
                    )
                task[side].update({first + i: r for i, r in enumerate(side_runs)})
    return {
        n: {side: [v[s] for s in sorted(v)] for side, v in sides.items()}
        for n, sides in runs.items()
    }


def task_caps(files: list[dict[str, Any]]) -> dict[str, int | None]:
    """Each task's generation cap in these files (``None``: the task's own), for the row
    labels; ``merge`` has checked that the files agree on it."""
    return {
        name: data.get("generations")
        for data in files
        for name, sides in data["results"].items()
        if any(sides.values())
    }


def _evals(runs: list[dict[str, Any]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Evaluations to solve per run; an unsolved run counts as never (infinite)."""
    return np.array([r["evaluations"] if r["solved"] else math.inf for r in runs], float)


def _median_evals(runs: list[dict[str, Any]]) -> float:
    """Median evaluations to solve (infinite when half the runs or more never solved)."""
    return float(np.median(_evals(runs)))


def ratio_interval(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], resamples: int = 10_000
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the ratio of median evaluations to solve.

    Each side's seeds are resampled with replacement, independently (a seed's runs share
    only their game draws), and the ratio of the two medians taken each time.  A fixed
    Generator makes the interval repeatable; resamples where both medians are infinite
    (neither side solved) carry no ratio and are left out.
    """
    rng = np.random.default_rng(0)
    a, b = _evals(ours), _evals(theirs)
    med_a = np.median(a[rng.integers(a.shape[0], size=(resamples, a.shape[0]))], axis=1)
    med_b = np.median(b[rng.integers(b.shape[0], size=(resamples, b.shape[0]))], axis=1)
    with np.errstate(invalid="ignore"):  # inf / inf: no ratio
        ratios = med_a / med_b
    ratios = ratios[~np.isnan(ratios)]
    if ratios.shape[0] == 0:
        return math.nan, math.nan
    # No interpolation between order statistics: a resample may have an infinite median.
    lo, hi = np.percentile(ratios, [2.5, 97.5], method="inverted_cdf")
    return float(lo), float(hi)


def _interval(lo: float, hi: float) -> str:
    if math.isnan(lo):
        return ""
    return f" ({lo:.2f}–{'∞' if math.isinf(hi) else f'{hi:.2f}'})"


def rows(results: dict[str, Any], labels: Mapping[str, str]) -> list[str]:
    """The markdown table: solved, median evaluations to solve, their ratio with its
    interval, median wall time, the winners on new games; ``labels`` names each task's
    row."""
    lines = [
        "| task (threshold, population × generations) | solved EzSpark / neat-python "
        "| median evals to solve | ratio (95 % interval) | median wall time "
        f"| winner on {HOLDOUT_GAMES} new games (median) | goal met |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        label, a, b = labels.get(name, name), r.get("ezspark", []), r.get("neat", [])
        if not (a and b):  # one side not run (yet): say so rather than compare
            lines.append(
                f"| {label} | {_solved(a)} / {_solved(b)} | — | — | — "
                f"| {new_games(a)} / {new_games(b)} | not compared |"
            )
            continue
        ok_a, ok_b = sum(x["solved"] for x in a), sum(x["solved"] for x in b)
        ev_a, ev_b = _median_evals(a), _median_evals(b)
        ratio = ev_a / ev_b if math.isfinite(ev_a) and math.isfinite(ev_b) else math.nan
        s_a = statistics.median(x["seconds"] for x in a)
        s_b = statistics.median(x["seconds"] for x in b)
        met = ok_a >= ok_b and (math.isfinite(ev_a) and (not math.isfinite(ev_b) or ratio <= 0.5))
        lines.append(
            f"| {label} "
            f"| {ok_a}/{len(a)} / {ok_b}/{len(b)} | {_num(ev_a)} / {_num(ev_b)} "
            f"| {'—' if math.isnan(ratio) else f'{ratio:.2f}×{_interval(*ratio_interval(a, b))}'} "
            f"| {s_a:.1f} s / {s_b:.1f} s | {new_games(a)} / {new_games(b)} "
            f"| {'yes' if met else 'no'} |"
        )
    return lines


def new_games(runs: list[dict[str, Any]]) -> str:
    """The median over runs of the winner's mean on its new games; "—" unless every run
    has one (files from before the winners were judged have none)."""
    if not runs or any("new_games" not in x for x in runs):
        return "—"
    return f"{statistics.median(float(x['new_games']) for x in runs):.1f}"


def _solved(runs: list[dict[str, Any]]) -> str:
    return f"{sum(x['solved'] for x in runs)}/{len(runs)}" if runs else "not run"


def _num(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "—"


def new_results_file(folder: Path) -> Path:
    """A new, empty ``learn-<UTC time>.json`` in ``folder``, created at once and exclusively
    (``-2``, ``-3``… when another run started in the same second), so two runs never share
    a file."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"learn-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    for n in range(1, 1000):
        path = folder / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
        with contextlib.suppress(FileExistsError):
            path.open("x").close()
            return path
    raise FileExistsError(f"{folder / stem}-*.json")
