"""Reruns the command recorded in ``spiral-bench`` results and compares the scores.

    python benchmarks/bench_reproduce.py docs/bench_results/*__untrained__*.json
    python benchmarks/bench_reproduce.py docs/bench_results/*MNIST*__spiral__250k__seed0.json

Each result's ``command`` is parsed with ``spiral-bench``'s own parser and run again (the new
JSON goes to ``--out``, never over the old one). Untrained agents and seeded step budgets on the
same machine and versions match to the last digit. On another CPU a trained row does not: torch
sums floats in another order and training amplifies the difference. A wall-clock budget trains for
as many steps as the machine allows. For those, ``--sd K`` accepts a score within K standard
deviations of its row (the result's other seeds in its folder). Exits 1 when a score differs by
more than ``--tolerance`` (relative), or lies outside ``--sd``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

from agents.bench import build_parser
from agents.bench import main as bench_main

SCORES = ("l2", "psnr", "type_accuracy", "color_accuracy", "position_accuracy", "count_error")


def rerun(result: dict, out: Path) -> dict:
    """Runs ``result``'s recorded command again with its output in ``out``; the new result."""
    argv = shlex.split(result["command"])[1:]  # without the program name
    args = build_parser().parse_args(argv)
    argv += ["--out", str(out)]  # the last --out wins
    if bench_main(argv) != 0:
        raise RuntimeError(f"spiral-bench {' '.join(argv)} failed")
    budget = args.steps, args.minutes
    (new,) = [
        r
        for r in map(json.loads, (p.read_text() for p in out.glob("*.json")))
        if (r["env_id"], r["agent"], r["seed"]) == (args.env_id, args.agent, args.seed)
        and (r["budget"]["steps"], r["budget"]["minutes"]) == budget
    ]
    return new


def differences(old: dict, new: dict) -> list[tuple[str, float, float, float]]:
    """(score, old, new, relative difference) for each score both results have."""
    rows = []
    for k in SCORES:
        a, b = old["score"].get(k), new["score"].get(k)
        if a is not None and b is not None:
            rows.append((k, a, b, abs(b - a) / max(abs(a), 1e-12)))
    return rows


def row_of(path: Path, result: dict) -> list[dict]:
    """The results in ``path``'s folder with ``result``'s env, agent and budget: its row's seeds."""
    key = (result["env_id"], result["agent"], result["budget"])
    row = []
    for p in sorted(path.parent.glob("*.json")):
        try:
            r = json.loads(p.read_text())
        except ValueError as e:
            raise ValueError(f"{p} (a result beside {path.name}): {e}") from e
        if (r.get("env_id"), r.get("agent"), r.get("budget")) == key:
            row.append(r)
    return row


def spread(row: list[dict], k: str) -> tuple[float, float] | None:
    """(mean, sample sd) of score ``k`` over the row's seeds; None under 2 seeds."""
    values = [r["score"][k] for r in row if r["score"].get(k) is not None]
    if len(values) < 2:
        return None
    return statistics.mean(values), statistics.stdev(values)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="spiral-bench JSON results")
    p.add_argument("--out", default="runs/reproduce", help="where the new results go")
    p.add_argument(
        "--tolerance", type=float, default=1e-6, help="largest relative difference accepted"
    )
    p.add_argument(
        "--sd",
        type=float,
        default=None,
        help="also accept a score within this many sd of its row's seeds (needs 2 or more seeds)",
    )
    a = p.parse_args(argv)
    failed = 0
    for path in map(Path, a.results):
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            p.error(f"{path}: {e}")
        out = Path(a.out) / path.stem
        out.mkdir(parents=True, exist_ok=True)
        try:
            row = row_of(path, old)
        except ValueError as e:
            p.error(str(e))
        new = rerun(old, out)
        print(f"{path.name}: {old['command']}")
        print(f"  env steps {old['frames']:,} -> {new['frames']:,}")
        for k, before, after, rel in differences(old, new):
            line, bad = f"  {k:18s} {before:.6g} -> {after:.6g}  ({rel:.2e})", rel > a.tolerance
            ms = spread(row, k)
            if ms is not None:
                mean, sd = ms
                z = (after - mean) / sd if sd > 0 else (0.0 if after == mean else float("inf"))
                line += f"  row {mean:.4g} ± {sd:.2g} ({len(row)} seeds): {z:+.2f} sd"
                bad = bad and not (a.sd is not None and abs(z) <= a.sd)
            failed += bad
            print(line + ("  DIFFERS" if bad else ""))
    limits = f"a relative {a.tolerance:g}" + (
        f" and {a.sd:g} sd of its row" if a.sd is not None else ""
    )
    print(f"{failed} score(s) beyond {limits}" if failed else "all reproduced")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
