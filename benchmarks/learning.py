"""Learning benchmark: one env, the L2 reward against the discriminator reward.

Trains one agent per reward with the same budget (wall-clock minutes), seed and settings on a
conditional paint env (default ``SpiralPaint-MNIST-Cond-v0``, 20 steps), evaluating on held-out
targets (``split="test"``) as it goes, then scores each final checkpoint on held-out targets beside
three baselines of the same targets: a blank canvas, the best constant image (the mean training
target, which minimises L2 among constant images) and a uniformly random agent. This is the
paper's RQ2 question: does the adversarial reward reconstruct better than optimising L2 directly?

    python benchmarks/learning.py --minutes 60          # MNIST, both rewards, one after the other
    python benchmarks/learning.py --env_id SpiralPaint-Omniglot-Cond-v0 --target 0.03 \
        --env_kwargs '{"brush_sizes": [1, 2, 3]}' --out runs/learning_omniglot
    python benchmarks/learning.py --plot_only --out runs/learning_mnist  # redraw the plot

Writes ``<out>/<reward>/`` (the runs), ``<out>/results.json`` and ``<out>/learning.png``
(held-out L2 against wall-clock minutes and frames).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spiral_envs  # noqa: F401
from agents.evaluate import evaluate_checkpoint  # noqa: E402
from spiral_envs.rewards import l2_distance  # noqa: E402

DEFAULT_ENV = "SpiralPaint-MNIST-Cond-v0"
# settings shared by both rewards (tuned on short L2 runs; results in docs/results.md)
COMMON = ["--gamma", "0.8", "--num_envs", "64"]
# the network of every learning run in the docs (the default until 2026-12-07, when it became
# the smaller res_blocks 0, hidden 128: docs/speed.md); flags after `--` override it
COMMON += ["--res_blocks", "2", "--hidden", "256"]
# per-reward settings: L2 returns are ~0.1, scaled to O(1) for the value head; the critic gets
# two updates per policy update
PER_REWARD = {"l2": ["--reward_scale", "10"], "discriminator": ["--disc_updates", "2"]}
BRUSHES = {"brush_sizes": [2, 3, 4]}  # radii in px, about a digit's stroke (env default adds 1,
# 8, 12, 24; the wide ones make grey blobs that L2 likes)


def mean_target(env_id: str, env_kwargs: dict) -> np.ndarray:
    """The per-pixel mean of the training targets: the constant image of least expected L2."""
    env = gym.make(env_id, **{**env_kwargs, "split": "train"})
    env.reset(seed=0)
    images = env.unwrapped.dataset.images
    env.close()
    return np.round(np.mean(images, axis=0, dtype=np.float64)).astype(np.uint8)


def baselines(env_id: str, env_kwargs: dict, episodes: int, seed: int) -> dict:
    """Held-out L2 of a blank canvas, the best constant image and a uniformly random agent, on
    the evaluation's own targets (episode ``i`` reset with ``seed + i``)."""
    constant = mean_target(env_id, env_kwargs)
    env = gym.make(env_id, **{**env_kwargs, "split": "test"})
    env.action_space.seed(seed)
    blank, const, rand = [], [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        blank.append(float(l2_distance(obs["canvas"], obs["target"])))
        const.append(float(l2_distance(constant, obs["target"])))
        done = False
        while not done:
            obs, _, done, _, info = env.step(env.action_space.sample())
        rand.append(float(info["l2"]))
    env.close()
    return {
        "blank_l2": float(np.mean(blank)),
        "constant_l2": float(np.mean(const)),
        "random_l2": float(np.mean(rand)),
    }


def train_command(reward: str, out: Path, a: argparse.Namespace) -> list[str]:
    return [
        sys.executable,
        "-m",
        "agents.train",
        "--env_id",
        a.env_id,
        "--reward",
        reward,
        "--reward_mode",
        a.reward_mode,
        *COMMON,
        *PER_REWARD.get(reward, []),
        "--total_steps",
        str(10**9),
        "--max_minutes",
        str(a.minutes),
        "--seed",
        str(a.seed),
        "--threads",
        str(a.threads),
        "--out_dir",
        str(out / reward),
        "--eval_every",
        str(a.eval_every),
        "--eval_episodes",
        str(a.eval_episodes),
        "--progress",
        "false",
        "--env_kwargs",
        json.dumps(a.env_kwargs),
        *a.extra,
    ]


def read_curve(run: Path) -> tuple[list[float], list[float], list[int]]:
    minutes, l2, frames = [], [], []
    with open(run / "progress.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row.get("eval/l2"):
                minutes.append(float(row["charts/wall_s"]) / 60)
                l2.append(float(row["eval/l2"]))
                frames.append(int(float(row["global_step"])))
    return minutes, l2, frames


def plot(
    out: Path, rewards: list[str], base: dict, a: argparse.Namespace, finals: dict | None = None
) -> Path:
    """Held-out L2 against wall-clock minutes (left) and frames (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for r in rewards:
        m, l2, fr = read_curve(out / r)
        label = f"{r} reward"
        if finals and r in finals:
            label += f" (final {finals[r]:.4f})"
        axes[0].plot(m, l2, label=label, lw=2)
        axes[1].plot(np.asarray(fr) / 1e6, l2, label=label, lw=2)
    for ax, xlabel in zip(
        axes, ("wall-clock minutes", "environment frames (millions)"), strict=True
    ):
        ax.axhline(
            base["blank_l2"], color="grey", ls="--", label=f"blank canvas {base['blank_l2']:.3f}"
        )
        ax.axhline(
            base["random_l2"], color="grey", ls=":", label=f"random agent {base['random_l2']:.3f}"
        )
        if "constant_l2" in base:
            c = base["constant_l2"]
            ax.axhline(c, color="tab:brown", ls=":", label=f"best constant image {c:.3f}")
        if a.target:
            ax.axhline(a.target, color="green", ls="-.", lw=1, label=f"target {a.target:g}")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out L2 (test split)")
    axes[0].set_ylim(0, max(base["blank_l2"], base["random_l2"]) * 1.1)
    axes[1].legend(fontsize=8)
    fig.suptitle(title_of(a), fontsize=9)
    fig.tight_layout()
    path = out / "learning.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def title_of(a: argparse.Namespace) -> str:
    return (
        f"{a.env_id} (20 steps, brush radii {a.env_kwargs.get('brush_sizes', 'default')}), "
        f"{a.minutes:g} min per reward, {a.threads} torch thread(s)"
        f"{' each, both runs at once on 2 cores' if a.parallel else ''}, seed {a.seed}, "
        f"{a.reward_mode} rewards"
    )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env_id", default=DEFAULT_ENV, help="a conditional paint env id")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget per reward")
    p.add_argument("--target", type=float, default=0.03, help="held-out L2 line on the plot")
    p.add_argument("--rewards", nargs="+", default=["l2", "discriminator"])
    p.add_argument("--reward_mode", default="per_step", choices=("final", "per_step"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads per run")
    p.add_argument("--eval_every", type=int, default=40, help="iterations between evals")
    p.add_argument("--eval_episodes", type=int, default=128)
    p.add_argument("--final_episodes", type=int, default=500)
    p.add_argument("--env_kwargs", type=json.loads, default=BRUSHES)
    p.add_argument("--parallel", action="store_true", help="run the rewards at the same time")
    p.add_argument("--plot_only", action="store_true")
    p.add_argument("--eval_only", action="store_true", help="score the runs already in --out")
    p.add_argument("--out", default="runs/learning")
    p.add_argument("extra", nargs="*", help="more spiral-train flags, after --")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.plot_only:  # redraw from the logs and results.json
        res = json.loads((out / "results.json").read_text())
        finals = {r: v["final_l2"] for r, v in res["runs"].items()}
        path = plot(out, list(res["runs"]), res, a, finals)
        print(f"plot: {path}")
        return res
    procs = []
    for r in [] if a.eval_only else a.rewards:
        cmd = train_command(r, out, a)
        print(" ".join(cmd), flush=True)
        log = open(out / f"{r}.log", "w")
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root))
        if not a.parallel:
            procs[-1].wait()
    for pr in procs:
        pr.wait()
    base = baselines(a.env_id, a.env_kwargs, a.final_episodes, seed=10**6)
    results = {
        "env_id": a.env_id,
        "env_kwargs": a.env_kwargs,
        "seed": a.seed,
        "minutes": a.minutes,
        "threads": a.threads,
        "parallel": a.parallel,
        "reward_mode": a.reward_mode,
        **base,
        "runs": {},
    }
    for r in a.rewards:
        t = time.perf_counter()
        m = evaluate_checkpoint(
            out / r / "checkpoint.pt",
            out / r / "eval",
            episodes=a.final_episodes,
            seed=10**6,
            num_envs=50,
        )
        minutes, l2, frames = read_curve(out / r)
        results["runs"][r] = {
            "final_l2": m["l2"],
            "final_psnr": m["psnr"],
            "train_frames": m["train_frames"],
            "best_eval_l2": min(l2) if l2 else None,
            "curve_minutes": minutes,
            "curve_l2": l2,
            "curve_frames": frames,
            "eval_s": time.perf_counter() - t,
        }
    title = title_of(a)
    finals = {r: v["final_l2"] for r, v in results["runs"].items()}
    results["plot"] = str(plot(out, a.rewards, base, a, finals))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nheld-out L2 on {a.final_episodes} test targets ({title}):")
    print("| agent | L2 | PSNR dB | frames |\n|---|---:|---:|---:|")
    print(f"| blank canvas | {base['blank_l2']:.4f} | | |")
    print(f"| best constant image | {base['constant_l2']:.4f} | | |")
    print(f"| random agent | {base['random_l2']:.4f} | | |")
    for r, v in results["runs"].items():
        print(f"| {r} reward | {v['final_l2']:.4f} | {v['final_psnr']:.2f} | {v['train_frames']} |")
    print(f"plot: {results['plot']}")
    return results


if __name__ == "__main__":
    main()
