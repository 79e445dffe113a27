"""Trainer throughput: our adversarial A2C against stable-baselines3 A2C, same env, same run.

Both learn on the same env with the same number of envs and torch threads; frames/s are
environment steps per wall-clock second of ``learn``/``train``, with everything a training step
needs (for ours: acting, the discriminator's scoring and its WGAN-GP update, the policy update).
Rounds alternate (ours, sb3, ours, sb3, ...) so shared-machine load hits both alike; the best
round of each is reported, and the median.

    python benchmarks/bench_train.py                       # 2 threads, 64 envs, MNIST-Cond
    python benchmarks/bench_train.py --threads 1 2 --rounds 3 --json out.json
    python benchmarks/bench_train.py --device cuda         # ours on a GPU (sb3 stays on CPU)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spiral_envs  # noqa: F401  (registers the ids)


def ours_fps(env_id: str, n_envs: int, frames: int, threads: int, device: str) -> float:
    from agents.config import TrainConfig
    from agents.train import train

    with tempfile.TemporaryDirectory() as d:
        cfg = TrainConfig(
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
            log_every=10**9,
        )
        # the trainer's own frames/s: its training loop only (no imports or env construction),
        # with the final checkpoint excluded
        return float(train(cfg)["charts/fps"])


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
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cpu", help="device of our trainer")
    p.add_argument("--no_sb3", action="store_true", help="only time our trainer")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(argv)
    results = {"env_id": a.env_id, "num_envs": a.num_envs, "frames": a.frames, "runs": {}}
    for th in a.threads:
        ours, sb3 = [], []
        for r in range(a.rounds):
            ours.append(ours_fps(a.env_id, a.num_envs, a.frames, th, a.device))
            if not a.no_sb3:
                sb3.append(sb3_fps(a.env_id, a.num_envs, a.frames, th))
            print(
                f"threads {th} round {r}: ours {ours[-1]:.0f} frames/s"
                + ("" if a.no_sb3 else f", sb3 A2C {sb3[-1]:.0f} frames/s"),
                flush=True,
            )
        row = {"ours_best": max(ours), "ours_median": statistics.median(ours), "ours": ours}
        if sb3:
            row.update(
                sb3_best=max(sb3),
                sb3_median=statistics.median(sb3),
                sb3=sb3,
                ratio_best=max(ours) / max(sb3),
                ratio_median=statistics.median(ours) / statistics.median(sb3),
            )
        results["runs"][str(th)] = row
    print(
        f"\n{a.env_id}, {a.num_envs} envs, {a.frames} frames per round, {a.rounds} rounds, "
        f"device {a.device}"
    )
    print(
        "| torch threads | ours frames/s (best / median) | sb3 A2C frames/s (best / median) "
        "| ratio (best / median) |"
    )
    print("|---:|---:|---:|---:|")
    for th, row in results["runs"].items():
        if "sb3_best" in row:
            print(
                f"| {th} | {row['ours_best']:.0f} / {row['ours_median']:.0f} | "
                f"{row['sb3_best']:.0f} / {row['sb3_median']:.0f} | "
                f"{row['ratio_best']:.2f} / {row['ratio_median']:.2f} |"
            )
        else:
            print(f"| {th} | {row['ours_best']:.0f} / {row['ours_median']:.0f} | - | - |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
