"""Trainer throughput: our adversarial A2C against stable-baselines3 A2C, same env, same run.

Both learn on the same env with the same number of envs and torch threads; frames/s are
environment steps per wall-clock second of ``learn``/``train``, with everything a training step
needs (for ours: acting, the discriminator's scoring and its WGAN-GP update, the policy update).
Both are timed in steady state: sb3 after a two-update warm-up ``learn`` call, ours from the end
of its first iteration (read from its per-iteration log).
Rounds alternate (ours, sb3, ours, sb3, ...) so shared-machine load hits both alike; the best
round of each is reported, and the median.

    python benchmarks/bench_train.py                       # 2 threads, 64 envs, MNIST-Cond
    python benchmarks/bench_train.py --threads 1 2 --rounds 3 --json out.json
    python benchmarks/bench_train.py --device cuda         # ours on a GPU (sb3 stays on CPU)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spiral_envs  # noqa: F401  (registers the ids)

# our trainer's variants: config overrides
VARIANTS = {
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "bf16+async": {"precision": "bf16", "async_actor": True, "off_policy": "vtrace"},
}


def ours_fps(
    env_id: str, n_envs: int, frames: int, threads: int, device: str, overrides: dict
) -> float:
    """Our trainer's steady-state frames/s with config ``overrides``."""
    from agents.config import TrainConfig
    from agents.train import train

    with tempfile.TemporaryDirectory() as d:
        base = dict(
            env_id=env_id,
            num_envs=n_envs,
            total_steps=frames,
            out_dir=d,
            threads=threads,
            device=device,
            reward="discriminator",
            progress=False,
            tensorboard=False,
            sample_every=0,
            checkpoint_every=10**9,
            log_every=1,
        )
        cfg = TrainConfig.from_dict({**base, **overrides})  # overrides may change the reward
        train(cfg)
        # steady state, as sb3's: the trainer's logged frames and wall clock from the end of its
        # first iteration (the warm-up: first allocations, oneDNN kernel choices) to the last
        with open(Path(d) / "progress.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        if len(rows) < 2:
            raise ValueError(f"--frames {frames}: too few for two iterations of {n_envs} envs")
        frames_done = float(rows[-1]["global_step"]) - float(rows[0]["global_step"])
        return frames_done / (float(rows[-1]["charts/wall_s"]) - float(rows[0]["charts/wall_s"]))


def sb3_fps(env_id: str, n_envs: int, frames: int, threads: int) -> float:
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(threads)
    venv = make_vec_env(env_id, n_envs=n_envs, seed=0)
    model = A2C("MultiInputPolicy", venv, device="cpu", seed=0, verbose=0)
    model.learn(n_envs * 5 * 2)  # warm-up (imports, first allocations)
    t = time.perf_counter()
    model.learn(frames, reset_num_timesteps=False)
    dt = time.perf_counter() - t
    venv.close()
    return frames / dt


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env_id", default="SpiralPaint-MNIST-Cond-v0")
    p.add_argument("--num_envs", type=int, default=64)
    p.add_argument("--frames", type=int, default=64 * 20 * 8, help="frames per round and agent")
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cpu", help="device of our trainer")
    p.add_argument("--no_sb3", action="store_true", help="only time our trainer")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(argv)
    results = {
        "env_id": a.env_id,
        "num_envs": a.num_envs,
        "frames": a.frames,
        "device": a.device,
        "cpu_count": os.cpu_count(),
        "runs": {},
    }
    for th in a.threads:
        fps: dict[str, list[float]] = {v: [] for v in a.variants}
        if not a.no_sb3:
            fps["sb3 A2C"] = []
        for r in range(a.rounds):
            for v in a.variants:
                fps[v].append(ours_fps(a.env_id, a.num_envs, a.frames, th, a.device, VARIANTS[v]))
            if not a.no_sb3:
                fps["sb3 A2C"].append(sb3_fps(a.env_id, a.num_envs, a.frames, th))
            print(
                f"threads {th} round {r}: "
                + ", ".join(f"{k} {x[-1]:.0f}" for k, x in fps.items())
                + " frames/s",
                flush=True,
            )
        results["runs"][str(th)] = {
            k: {"best": max(x), "median": statistics.median(x), "all": x} for k, x in fps.items()
        }
    print(
        f"\n{a.env_id}, {a.num_envs} envs, {a.frames} frames per round, best / median of "
        f"{a.rounds} rounds, our trainer on {a.device}, discriminator updates included"
    )
    print("| torch threads | trainer | frames/s (best / median) | x sb3 A2C (best / median) |")
    print("|---:|---|---:|---:|")
    for th, row in results["runs"].items():
        ref = row.get("sb3 A2C")
        for k, x in row.items():
            ratio = (
                "-"
                if ref is None
                else (f"{x['best'] / ref['best']:.2f} / {x['median'] / ref['median']:.2f}")
            )
            print(f"| {th} | {k} | {x['best']:.0f} / {x['median']:.0f} | {ratio} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
