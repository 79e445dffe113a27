"""Does the Ray backend learn as the local one does? Seeds a side, one run at a time.

For each seed, ``benchmarks/learning.py`` trains the L2 agent on conditional MNIST for the same
wall-clock budget with the local backend and then with the Ray backend (2 workers; ``ray``: each
worker's batches one update stale, ``ray_sync``: on-policy, ``--ray_sync``), one run at a time on
the whole machine, alternating, so machine drift hits every side alike. Each run is scored
on the same 500 held-out digits. Reports each side's mean ± sd over seeds, the Ray mean's gap to
the local mean, and the curves.

    python benchmarks/ray_vs_local.py --minutes 15 --seeds 0 1 2     # 90 minutes in all
    python benchmarks/ray_vs_local.py --sides ray_sync --seeds 0      # another side, beside
    python benchmarks/ray_vs_local.py --report_only                  # the table and plot again

Writes ``<out>/<side>_s<seed>/`` (each ``learning.py`` run), ``<out>/results.json`` and
``<out>/ray_vs_local.png``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RAY = ["--backend", "ray", "--num_actors", "2"]
# the backends compared: spiral-train flags (ray: workers one update stale; ray_sync: on-policy)
SIDES = {"local": [], "ray": RAY, "ray_sync": [*RAY, "--ray_sync"]}


def run_one(side: str, seed: int, a: argparse.Namespace) -> None:
    out = Path(a.out) / f"{side}_s{seed}"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "learning.py"), "--minutes", str(a.minutes)]
    cmd += ["--rewards", "l2", "--seed", str(seed), "--out", str(out)]
    cmd += ["--", *SIDES[side]] if SIDES[side] else []
    print(" ".join(cmd), flush=True)
    with open(Path(a.out) / f"{side}_s{seed}.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=ROOT)


def collect(a: argparse.Namespace) -> dict:
    """Every finished run's final score, frames and curve, and the mean ± sd a side."""
    res: dict = {"minutes": a.minutes, "seeds": a.seeds, "sides": {}}
    for side in SIDES:
        runs = {}
        for s in a.seeds:
            path = Path(a.out) / f"{side}_s{s}" / "results.json"
            if path.exists():
                r = json.loads(path.read_text())
                runs[s] = {**r["runs"]["l2"], "baselines": _baselines(r)}
        if not runs:
            continue
        finals = [r["final_l2"] for r in runs.values()]
        res["sides"][side] = {
            "runs": runs,
            "mean": statistics.mean(finals),
            "sd": statistics.stdev(finals) if len(finals) > 1 else None,
            "frames_mean": statistics.mean(r["train_frames"] for r in runs.values()),
        }
    local = res["sides"].get("local")
    res["gap_to_local"] = {
        side: s["mean"] / local["mean"] - 1
        for side, s in res["sides"].items()
        if local is not None and side != "local"
    }
    return res


def _baselines(r: dict) -> dict:
    return {k: r[k] for k in ("blank_l2", "constant_l2", "random_l2") if k in r}


def plot(res: dict, path: Path) -> None:
    """Held-out L2 against minutes: each seed thin, the mean over seeds thick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colors = {"local": "tab:blue", "ray": "tab:orange", "ray_sync": "tab:green"}
    for side, s in res["sides"].items():
        color = colors[side]
        grid = np.linspace(0, res["minutes"], 31)[1:]
        curves = []
        for r in s["runs"].values():
            ax.plot(r["curve_minutes"], r["curve_l2"], color=color, lw=0.8, alpha=0.4)
            curves.append(np.interp(grid, r["curve_minutes"], r["curve_l2"], left=np.nan))
        if curves:
            label = f"{side}, {len(curves)} seed(s): {s['mean']:.4f}"
            label += f" ± {s['sd']:.4f}" if s["sd"] else ""
            ax.plot(grid, np.nanmean(curves, 0), color=color, lw=2.2, label=label)
    base = next((r["baselines"] for s in res["sides"].values() for r in s["runs"].values()), {})
    if "constant_l2" in base:
        c = base["constant_l2"]
        ax.axhline(c, color="tab:brown", ls=":", label=f"best constant image {c:.3f}")
    ax.set_xlabel("wall-clock minutes")
    ax.set_ylabel("held-out L2 (test digits)")
    ax.set_ylim(0, 0.12)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"MNIST-Cond, L2 reward, {res['minutes']:g} min a run, thick: mean over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(res: dict) -> None:
    print("| backend | held-out L2 (mean ± sd) | each seed | frames (mean) |")
    print("|---|---:|---|---:|")
    for side, s in res["sides"].items():
        each = ", ".join(f"{r['final_l2']:.4f}" for r in s["runs"].values())
        sd = f" ± {s['sd']:.4f}" if s["sd"] is not None else ""
        print(f"| {side} | {s['mean']:.4f}{sd} | {each} | {s['frames_mean'] / 1e6:.2f} M |")
    for side, gap in res["gap_to_local"].items():
        print(f"{side} mean vs local mean: {100 * gap:+.1f}% (the target: within +10%)")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget of each run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sides", nargs="+", default=["local", "ray"], choices=list(SIDES))
    p.add_argument("--out", default="runs/ray_vs_local")
    p.add_argument("--report_only", action="store_true", help="read the runs already in --out")
    a = p.parse_args(argv)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    if not a.report_only:
        for seed in a.seeds:
            for side in a.sides:
                run_one(side, seed, a)
    res = collect(a)
    plot(res, Path(a.out) / "ray_vs_local.png")
    (Path(a.out) / "results.json").write_text(json.dumps(res, indent=2))
    report(res)
    return res


if __name__ == "__main__":
    main()
