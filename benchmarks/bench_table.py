"""The baselines table from ``spiral-bench`` results: one row per (id, budget, agent).

    python benchmarks/bench_table.py docs/bench_results > table.md
    python benchmarks/bench_table.py docs/bench_results --into docs/benchmark.md
    python benchmarks/bench_table.py docs/bench_results --into docs/results.md \
        --env_id SpiralPaint-MNIST-Cond-v0

Each row shows the number of seeds, the mean env steps and minutes of training, and mean ± sample
standard deviation over seeds (± only with 2 seeds or more) of the held-out scores: L2 and PSNR
for paint ids; for scenes pixel L2 and the recovery scores. Paint rows also give the normalised
score (0 for the best constant image, 1 for a perfect copy; ``docs/benchmark.md``) as its
interquartile mean over seeds with a 95% percentile-bootstrap interval, as ``rliable`` reports
(Agarwal et al., NeurIPS 2021).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from collections import defaultdict
from pathlib import Path

from spiral_envs.benchmark import (
    EVAL_SEED,
    SUITE,
    held_out_baselines,
    iqm,
    iqm_interval,
    normalised_score,
)

AGENT_ORDER = ("random", "tracer", "a2c", "ppo", "sac", "spiral")
PAINT_COLUMNS = (("l2", "held-out L2", 4), ("psnr", "PSNR dB", 2), ("blank_l2", "blank L2", 4))
SCENE_COLUMNS = (
    ("l2", "pixel L2", 4),
    ("blank_l2", "empty floor L2", 4),
    ("type_accuracy", "type acc.", 3),
    ("color_accuracy", "colour acc.", 3),
    ("position_accuracy", "position acc.", 3),
    ("count_error", "count error", 2),
)


def budget_of(result: dict) -> str:
    b = result["budget"]
    if result["frames"] == 0:
        return "untrained"
    parts = [f"{b['steps']:,} steps"] if b["steps"] else []
    return " / ".join(parts + ([f"{b['minutes']:g} min"] if b["minutes"] else []))


def _suite_order(env_id: str) -> tuple[int, str]:
    """The suite's order (MNIST first), then any other id (CelebA) alphabetically."""
    return (SUITE.index(env_id) if env_id in SUITE else len(SUITE), env_id)


def mean_spread(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    m = f"{statistics.fmean(values):.{digits}f}"
    return m if len(values) < 2 else f"{m} ± {statistics.stdev(values):.{digits}f}"


@functools.cache
def _constant_l2(env_id: str, episodes: int | None, seed: int, kwargs_json: str) -> float:
    return held_out_baselines(env_id, episodes, seed, json.loads(kwargs_json))["constant_l2"]


def normalised(result: dict) -> float:
    """A result's normalised score: as ``score`` saved it, or (results saved before it did) from
    its L2 and the best constant image's L2 on the same held-out episodes."""
    sc = result["score"]
    if sc.get("normalised") is not None:
        return sc["normalised"]
    kwargs = json.dumps(result.get("settings", {}).get("env_kwargs", {}), sort_keys=True)
    constant = _constant_l2(result["env_id"], sc.get("episodes"), sc.get("seed", EVAL_SEED), kwargs)
    return normalised_score(sc["l2"], constant)


def iqm_with_interval(values: list[float]) -> str:
    """``IQM [low, high]``; one seed has no interval."""
    if len(values) < 2:
        return f"{iqm(values):.3f}"
    low, high = iqm_interval(values)
    return f"{iqm(values):.3f} [{low:.3f}, {high:.3f}]"


BEGIN, END = "<!-- bench-table -->", "<!-- /bench-table -->"


def table(results: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        groups[(r["env_id"], budget_of(r), r["agent"])].append(r)
    lines = []
    for env_id in sorted({k[0] for k in groups}, key=_suite_order):
        columns = SCENE_COLUMNS if "Scene" in env_id else PAINT_COLUMNS
        lines += [f"\n**{env_id}**\n"]
        head = ["budget", "agent", "seeds", "env steps", "train min"] + [c[1] for c in columns]
        paint = columns is PAINT_COLUMNS
        head += ["normalised, IQM [95% CI]"] if paint else []
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
        keys = [k for k in groups if k[0] == env_id]
        keys.sort(key=lambda k: (k[1] != "untrained", k[1], AGENT_ORDER.index(k[2])))
        for key in keys:
            rs = groups[key]
            row = [key[1], key[2], str(len(rs))]
            row.append(f"{statistics.fmean(r['frames'] for r in rs):,.0f}")
            row.append(f"{statistics.fmean(r['train_s'] for r in rs) / 60:.1f}")
            for name, _, digits in columns:
                vals = [r["score"][name] for r in rs if r["score"].get(name) is not None]
                vals = vals[:1] if name == "blank_l2" else vals  # the targets', not the seeds'
                row.append(mean_spread(vals, digits))
            if paint:
                row.append(iqm_with_interval([normalised(r) for r in rs]))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines).lstrip("\n") + "\n"


def replace_block(text: str, table_md: str) -> str:
    """``text`` with the lines between its ``BEGIN`` and ``END`` markers replaced by the table."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"needs one {BEGIN!r} line and, after it, one {END!r} line")
    head, rest = text.split(BEGIN)
    return f"{head}{BEGIN}\n\n{table_md}\n{END}{rest.split(END, 1)[1]}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="folders or files of spiral-bench JSON results")
    p.add_argument("--env_id", action="append", help="only these ids (repeatable; default: all)")
    p.add_argument(
        "--into",
        default=None,
        help=f"rewrite the table between the {BEGIN} and {END} lines of this file "
        "(default: print it)",
    )
    a = p.parse_args(argv)
    files = []
    for r in map(Path, a.results):
        files += sorted(r.glob("*.json")) if r.is_dir() else [r]
    results = [json.loads(f.read_text()) for f in files]
    results = [r for r in results if a.env_id is None or r["env_id"] in a.env_id]
    if not results:
        p.error(f"no JSON results for these ids in {', '.join(a.results)}")
    text = table(results)
    if a.into is None:
        print(text, end="")
        return 0
    try:
        Path(a.into).write_text(replace_block(Path(a.into).read_text(), text))
    except (OSError, ValueError) as e:
        p.error(f"{a.into}: {e}")
    print(f"table of {len(results)} results written into {a.into}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
