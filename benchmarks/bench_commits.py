"""Trainer frames/s of this checkout against another commit, measured in the same run.

Exports the baseline commit (``git archive``) into a temporary directory, then times the trainer
of each tree in its own process, alternating (baseline, this tree, this tree, baseline, ...)
so that the machine's drift hits both alike. Each timing is a short ``spiral-train`` run with
progress bars and pictures off; frames/s are read from its log in steady state (from the end of
its first iteration, which holds the first allocations and oneDNN's kernel choices). Reports
each config's median ratio over rounds (the ratio taken within each round) and the best.

Configs (the config overrides are in ``CONFIGS``):

* ``default``: ``spiral-train``'s defaults, the paper's agent: conditional MNIST, 32 envs, the
  WGAN-GP discriminator reward on the final canvas.
* ``default64``: the same with 64 envs (the issue's original measurement).
* ``recipe``: the recipes' network and reward (pointer heads, per-step L2, 64 envs), as the
  fine-tuning stage of ``agents/recipes/mnist.json``.
* ``sleep``: the maximum-likelihood pretraining stage on the prior's programs, same network.

    python benchmarks/bench_commits.py                          # HEAD against this working tree
    python benchmarks/bench_commits.py --baseline 44df897 --rounds 5 --json docs/bench_commits.json
    python benchmarks/bench_commits.py --configs recipe --frames 25600
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = {"env_id": "SpiralPaint-MNIST-Cond-v0"}
RECIPE = {
    **MNIST,
    "env_kwargs": {"brush_sizes": [2, 3, 4]},
    "pointer": True,
    "reward": "l2",
    "reward_mode": "per_step",
    "reward_scale": 10.0,
    "gamma": 0.8,
    "num_envs": 64,
    "res_blocks": 2,  # the recipes pin the network they were tuned with
    "hidden": 256,
}
CONFIGS = {
    "default": {**MNIST},
    "default64": {**MNIST, "num_envs": 64},
    "recipe": RECIPE,
    "sleep": {**RECIPE, "stage": "sleep", "lr": 1e-3, "updates_per_batch": 4, "num_envs": 32},
}

# Run inside the tree measured (its own `agents`): one short training run, steady-state frames/s.
PROBE = """
import csv, json, sys, tempfile
from pathlib import Path
import spiral_envs
from agents.config import TrainConfig
from agents.train import train
overrides, frames, threads = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
with tempfile.TemporaryDirectory() as d:
    cfg = TrainConfig.from_dict({"total_steps": frames, "out_dir": d, "threads": threads,
        "progress": False, "tensorboard": False, "sample_every": 0, "checkpoint_every": 10**9,
        "log_every": 1, **overrides})
    train(cfg)
    rows = list(csv.DictReader(open(Path(d) / "progress.csv", newline="")))
steps = float(rows[-1]["global_step"]) - float(rows[0]["global_step"])
wall = float(rows[-1]["charts/wall_s"]) - float(rows[0]["charts/wall_s"])
print("FPS", steps / wall)
"""


# The same in learning mode: a seeded run of `minutes` with held-out evaluations, its log kept.
LEARN = """
import json, sys
import spiral_envs
from agents.config import TrainConfig
from agents.train import train
overrides, minutes = json.loads(sys.argv[1]), float(sys.argv[2])
threads, out = int(sys.argv[3]), sys.argv[4]
train(TrainConfig.from_dict({"max_minutes": minutes, "out_dir": out, "threads": threads,
    "progress": False, "tensorboard": False, "sample_every": 0, "checkpoint_every": 10**9,
    "eval_every": 10, "eval_episodes": 128, "log_every": 5, "seed": 0, **overrides}))
"""


def export_tree(rev: str, dest: Path) -> Path:
    """The files of commit ``rev`` under ``dest`` (``git archive``: no worktree to clean up)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def fps(tree: Path, overrides: dict, frames: int, threads: int) -> float:
    """Steady-state frames/s of the trainer in ``tree`` with config ``overrides``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    args = [json.dumps(overrides), str(frames), str(threads)]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=tree, env=env, capture_output=True, text=True
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("FPS ")]
    if out.returncode or not lines:
        raise RuntimeError(f"the run in {tree} failed:\n{out.stderr[-2000:]}")
    return float(lines[-1].split()[1])


def learn(tree: Path, overrides: dict, minutes: float, threads: int, out: Path) -> dict:
    """A seeded run of ``minutes`` in ``tree``: its held-out L2 by frames (``eval/l2``)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    args = [json.dumps(overrides), str(minutes), str(threads), str(out)]
    done = subprocess.run(
        [sys.executable, "-c", LEARN, *args], cwd=tree, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"the run in {tree} failed:\n{done.stderr[-2000:]}")
    with open(out / "progress.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/l2")]
    return {
        "frames": [int(float(r["global_step"])) for r in rows],
        "l2": [float(r["eval/l2"]) for r in rows],
    }


def at_equal_frames(base: dict, cand: dict, last: int = 5) -> dict:
    """Both curves' mean held-out L2 over the baseline's last ``last`` evaluations' frames (the
    candidate's interpolated there): learning per frame, whatever each side's speed."""
    frames = base["frames"][-last:]
    b = float(np.mean(base["l2"][-last:]))
    c = float(np.mean(np.interp(frames, cand["frames"], cand["l2"])))
    return {
        "frames": [frames[0], frames[-1]],
        "baseline_l2": b,
        "candidate_l2": c,
        "gap": c / b - 1,
    }


def plot_learning(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for side, run in res["learning"]["runs"].items():
        ax.plot(np.array(run["frames"]) / 1e6, run["l2"], label=f"{side} ({res[side]})")
    ax.set_xlabel("frames (millions)")
    ax.set_ylabel("held-out L2 (128 targets)")
    ax.set_title(f"{res['learning']['config']}, seed 0, {res['learning']['minutes']:g} min a side")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", default="HEAD", help="commit to compare against")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    p.add_argument("--frames", type=int, default=12800, help="frames per timed run")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument(
        "--learn_minutes",
        type=float,
        default=0.0,
        help="instead of timing: one seeded run a side of this many minutes (the first config), "
        "compared at equal frames",
    )
    p.add_argument("--out", default="runs/bench_commits", help="learning runs' directory")
    a = p.parse_args(argv)
    least = 3 * 64 * 20  # three iterations of the largest config (64 envs, 20-step episodes)
    if not a.learn_minutes and a.frames < least:
        p.error(f"--frames {a.frames}: too few for three iterations of 64 envs; give >= {least}")
    rev = subprocess.run(
        ["git", "rev-parse", "--short", a.baseline], cwd=ROOT, capture_output=True, text=True
    )
    if rev.returncode:
        p.error(f"--baseline {a.baseline}: not a commit of this repository")
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    res: dict = {
        "baseline": rev.stdout.strip(),
        "candidate": f"{head} + working tree",
        "frames": a.frames,
        "threads": a.threads,
        "configs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = export_tree(a.baseline, Path(tmp))
        trees = {"baseline": base, "candidate": ROOT}
        if a.learn_minutes:
            return learning(res, trees, a)
        for name in a.configs:
            runs: dict = {"baseline": [], "candidate": []}
            for r in range(a.rounds):
                order = ("baseline", "candidate") if r % 2 == 0 else ("candidate", "baseline")
                for side in order:
                    runs[side].append(fps(trees[side], CONFIGS[name], a.frames, a.threads))
                print(
                    f"{name} round {r + 1}: baseline {runs['baseline'][-1]:.0f}, "
                    f"candidate {runs['candidate'][-1]:.0f} frames/s",
                    flush=True,
                )
            ratios = [c / b for b, c in zip(runs["baseline"], runs["candidate"])]
            res["configs"][name] = {
                **runs,
                "overrides": CONFIGS[name],
                "ratio_median": statistics.median(ratios),
                "ratio_best": max(runs["candidate"]) / max(runs["baseline"]),
            }
    report(res)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


def learning(res: dict, trees: dict, a: argparse.Namespace) -> dict:
    """The learning mode: one seeded run a side, one after the other, compared at equal
    frames; writes ``<out>/learning.png`` and the JSON."""
    name, out = a.configs[0], Path(a.out)
    runs = {}
    for side in ("baseline", "candidate"):
        print(f"{name}: {side}, {a.learn_minutes:g} minutes", flush=True)
        runs[side] = learn(
            trees[side],
            CONFIGS[name],
            a.learn_minutes,
            a.threads,
            (out / f"{side}_{name}").resolve(),
        )
    res["learning"] = {
        "config": name,
        "minutes": a.learn_minutes,
        "runs": runs,
        "overrides": CONFIGS[name],
        **at_equal_frames(runs["baseline"], runs["candidate"]),
    }
    eq = res["learning"]
    print(
        f"held-out L2 at {eq['frames'][0]:,}-{eq['frames'][1]:,} frames: baseline "
        f"{eq['baseline_l2']:.4f}, candidate {eq['candidate_l2']:.4f} ({eq['gap']:+.1%}); "
        f"frames in {a.learn_minutes:g} min: {runs['baseline']['frames'][-1]:,} against "
        f"{runs['candidate']['frames'][-1]:,}"
    )
    out.mkdir(parents=True, exist_ok=True)
    plot_learning(res, out / "learning.png")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


def report(res: dict) -> None:
    print(
        f"\nbaseline {res['baseline']} against {res['candidate']}, {res['threads']} threads, "
        f"{res['frames']} frames a run\n"
    )
    print("| config | baseline frames/s (median) | candidate | x baseline (median / best) |")
    print("|---|---:|---:|---:|")
    for name, c in res["configs"].items():
        print(
            f"| {name} | {statistics.median(c['baseline']):.0f} | "
            f"{statistics.median(c['candidate']):.0f} | "
            f"{c['ratio_median']:.2f} / {c['ratio_best']:.2f} |"
        )


if __name__ == "__main__":
    main()
