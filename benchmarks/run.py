"""``make bench``: every figure measured in this run, on this machine, against its baseline.

Prints a table and writes ``benchmarks/results/bench-<UTC time>.json``.  ``--lander`` adds
the long LunarLander-v3 solve runs (see docs/benchmarks.md for how long they take);
``--quick`` shrinks the baselines' samples for a fast look.
"""

from __future__ import annotations

import os

# One core for both sides: the goal is per-core throughput.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _row(name: str, ours: str, base: str, ratio: str, goal: str, met: bool | None) -> str:
    verdict = "" if met is None else ("met" if met else "NOT met")
    return f"| {name} | {ours} | {base} | {ratio} | {goal} | {verdict} |"


def _eval_rows(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        out.append(
            _row(
                f"CartPole-v1 eval, 1,000 genomes × 5 games, 1 core — {r['case']}",
                f"{r['ours_steps_per_s'] / 1e6:.2f} M steps/s",
                f"{r['neat_python_steps_per_s'] / 1e3:.0f} k steps/s",
                f"{r['speedup']:.1f}×",
                "≥ 2 M steps/s and ≥ 20×",
                r["ours_steps_per_s"] >= 2e6 and r["speedup"] >= 20,
            )
        )
        if not r["returns_identical"]:
            out.append("| (returns differ from the neat-python translation: check!) |||||")
    return out


def _repro_rows(r: dict[str, Any]) -> list[str]:
    return [
        _row(
            "speciate + reproduce, population 10,000",
            f"{r['ours_seconds_per_generation']:.3f} s/gen",
            f"{r['neat_python_seconds_per_generation']:.3f} s/gen",
            f"{r['speedup']:.1f}×",
            "≤ 0.15 s and ≥ 4×",
            r["ours_seconds_per_generation"] <= 0.15 and r["speedup"] >= 4,
        )
    ]


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller baseline samples")
    parser.add_argument(
        "--lander",
        action="store_true",
        help="also solve LunarLander-v3 (hours: see docs/benchmarks.md)",
    )
    parser.add_argument(
        "--lander-minutes",
        type=float,
        default=None,
        help="wall-time budget per LunarLander run (default: generation cap)",
    )
    return parser.parse_args()


def _measure(args: argparse.Namespace, results: dict[str, Any]) -> list[str]:
    """Run every benchmark into ``results``; returns the table's rows."""
    from benchmarks import bench_broker, bench_eval, bench_eval_box, bench_eval_user, bench_repro

    print("measuring evaluation throughput …", flush=True)
    results["eval"] = bench_eval.run(args.quick)
    results["eval_box"] = bench_eval_box.run(args.quick)
    results["eval_user"] = bench_eval_user.run(args.quick)
    print("measuring speciate + reproduce …", flush=True)
    results["repro"] = bench_repro.run(args.quick)
    lines = _eval_rows(results["eval"]) + bench_eval_box.rows(results["eval_box"])
    lines += bench_eval_user.rows(results["eval_user"])
    lines += _repro_rows(results["repro"])
    from benchmarks import bench_solve

    print("solve-quality runs: CartPole-v1, Acrobot-v1 …", flush=True)
    results["solve"] = bench_solve.run(("cartpole", "acrobot"))
    lines += bench_solve.rows(results["solve"])
    from benchmarks import bench_gateway

    print("measuring gateway reads against a bare FastAPI app (about 1 min) …", flush=True)
    results["gateway"] = bench_gateway.run(args.quick)
    lines += bench_gateway.rows(results["gateway"])
    print("measuring broker overhead and evaluator scale-out (RabbitMQ) …", flush=True)
    results["broker"] = bench_broker.run(args.quick)
    lines += bench_broker.rows(results["broker"])
    from benchmarks import bench_scale

    print(
        "measuring scale-out through gateway + evolver + N evaluators (about 5 min) …", flush=True
    )
    results["scale"] = bench_scale.run(args.quick)
    lines += bench_scale.rows(results["scale"])
    if args.lander:
        print("solve-quality runs: LunarLander-v3 (long) …", flush=True)
        budget = args.lander_minutes * 60 if args.lander_minutes else None
        results["solve_lander"] = bench_solve.run(("lunarlander",), budget_s=budget)
        lines += bench_solve.rows(results["solve_lander"])
    return lines


def main() -> None:
    """Run the benchmarks, print the table, write the JSON."""
    args = _parse_args()
    from ezspark_common.logging import configure_logging

    configure_logging("WARNING", json_logs=False)
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    lines = [
        "| benchmark | EzSpark | baseline (neat-python 2.0.0) | ratio | goal | |",
        "|---|---|---|---|---|---|",
    ]
    lines += _measure(args, results)
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
