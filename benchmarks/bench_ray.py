"""Scaling of the Ray backend against the local one, and the learner's own ceiling, in one run.

Frames/s in steady state (as ``bench_train.py``: from the end of the first iteration), with the
discriminator's scoring and updates included, for: the local backend; the Ray backend with 1 and
2 rollout workers (more with ``--actors``). Rounds alternate between them so machine load hits
all alike; best and median are reported, and each as a ratio to the local backend of the same
round. The learner ceiling is the frames/s of the learner side alone -- rewards (the critic's
scoring), the policy update and the critic's updates -- fed from batches collected beforehand:
how many frames per second of acting one learner can absorb, so how many workers it can feed.

The ``ray xN`` rows are the workers' own batches (``--ray_sync false``); ``--sync`` adds the
on-policy mode (``--ray_sync``, the default). With ``--disc_actor`` the Ray runs are measured
again with the discriminator learner as its own Ray actor (``--disc_placement actor``). With
``--stage search`` or ``sleep`` the renderer's stages are measured instead (the recipes'
settings: L2, pointer heads, 32 envs, 4 updates a batch), their programs drawn, rendered and
searched on the workers.

    python benchmarks/bench_ray.py                          # 2 threads, 64 envs, MNIST-Cond
    python benchmarks/bench_ray.py --actors 1 2 4 --cpus_per_actor 0.5 --json out.json
    python benchmarks/bench_ray.py --sync --disc_actor      # on-policy, the discriminator actor
    python benchmarks/bench_ray.py --stage search --num_envs 32   # the search stage's scaling
    python benchmarks/bench_ray.py --device cuda            # learner on a GPU (workers on CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import ours_fps  # noqa: E402


def learner_ceiling(
    env_id: str, n_envs: int, batches: int, iters: int, threads: int, device: str
) -> float:
    """Frames/s of rewards + policy update + critic updates on pre-collected batches."""
    from agents.actor import Actor, draw_seeds
    from agents.build import build_discriminator, build_policy, make_envs, probe_env
    from agents.config import TrainConfig
    from agents.learner import PolicyLearner
    from agents.rewards import compute_rewards

    torch.set_num_threads(threads)
    dev = torch.device(device)
    cfg = TrainConfig.from_dict(
        {"env_id": env_id, "num_envs": n_envs, "total_steps": 1, "reward": "discriminator"}
    )
    info = probe_env(env_id)
    policy = build_policy(cfg.net, info, dev)
    learner = PolicyLearner(policy, cfg.learner, dev, off_policy="vtrace")
    disc = build_discriminator(cfg, info, dev)
    envs = make_envs(env_id, n_envs)
    actor, rng = Actor(envs, policy, dev), np.random.default_rng(0)
    rollouts = [actor.collect(draw_seeds(rng, n_envs)) for _ in range(batches)]
    envs.close()

    def step(r):
        rewards, _ = compute_rewards(r, cfg.rewards, info.action_spec, disc)
        learner.update(r, rewards)
        disc.step(r)

    step(rollouts[0])  # warm-up: allocations, kernel choices
    t0 = time.perf_counter()
    for i in range(iters):
        step(rollouts[i % batches])
    return iters * rollouts[0].frames / (time.perf_counter() - t0)


# the recipes' settings for the renderer's stages (agents/recipes/*.json)
STAGE_SETTINGS = {
    "search": dict(
        reward="l2",
        pointer=True,
        updates_per_batch=4,
        search_policy=8,
        search_prior=16,
        search_moves=4,
        search_lookahead=2,
    ),
    "sleep": dict(reward="l2", pointer=True, updates_per_batch=4),
}


def bench_runs(a: argparse.Namespace) -> dict[str, dict]:
    """The runs of a round, by name: their config overrides."""
    stage = {} if a.stage == "rl" else {"stage": a.stage, **STAGE_SETTINGS[a.stage]}
    runs = {"local": stage}
    for n in a.actors:
        ray = {"backend": "ray", "num_actors": n, "cpus_per_actor": a.cpus_per_actor, **stage}
        runs[f"ray x{n}"] = {**ray, "ray_sync": False}
        if a.sync:
            runs[f"ray x{n}, sync"] = {**ray, "ray_sync": True}
        if a.disc_actor and a.stage == "rl":
            runs[f"ray x{n}, disc actor"] = {**ray, "ray_sync": False, "disc_placement": "actor"}
    return runs


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env_id", default="SpiralPaint-MNIST-Cond-v0")
    p.add_argument("--num_envs", type=int, default=64, help="envs per batch (and per worker)")
    p.add_argument("--frames", type=int, default=64 * 20 * 8, help="frames per round and run")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the learner")
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="Ray worker counts")
    p.add_argument("--cpus_per_actor", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cpu", help="device of the learner")
    p.add_argument("--disc_actor", action="store_true", help="Ray runs with a discriminator actor")
    p.add_argument("--sync", action="store_true", help="Ray runs with --ray_sync too")
    p.add_argument("--stage", default="rl", choices=("rl", "search", "sleep"))
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(argv)
    runs = bench_runs(a)
    fps: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(a.rounds):
        for k, overrides in runs.items():
            fps[k].append(ours_fps(a.env_id, a.num_envs, a.frames, a.threads, a.device, overrides))
        print(f"round {r}: " + ", ".join(f"{k} {x[-1]:.0f}" for k, x in fps.items()), flush=True)
    ceiling = None
    if a.stage == "rl":
        ceiling = learner_ceiling(a.env_id, a.num_envs, 4, 8, a.threads, a.device)
    local = fps["local"]
    results = {
        "env_id": a.env_id,
        "num_envs": a.num_envs,
        "frames": a.frames,
        "threads": a.threads,
        "device": a.device,
        "cpu_count": os.cpu_count(),
        "cpus_per_actor": a.cpus_per_actor,
        "stage": a.stage,
        "overrides": runs,
        "runs": {
            k: {
                "best": max(x),
                "median": statistics.median(x),
                "x_local_per_round": [v / lo for v, lo in zip(x, local, strict=True)],
                "all": x,
            }
            for k, x in fps.items()
        },
        "learner_ceiling_fps": ceiling,
    }
    what = "discriminator included" if a.stage == "rl" else f"the {a.stage} stage"
    print(
        f"\n{a.env_id}, {a.num_envs} envs a batch, {a.frames} frames per round, {a.rounds} "
        f"rounds, learner on {a.device} with {a.threads} threads, {what}"
    )
    print("| backend | frames/s (best / median) | x local (median of rounds) |")
    print("|---|---:|---:|")
    for k, row in results["runs"].items():
        ratio = statistics.median(row["x_local_per_round"])
        print(f"| {k} | {row['best']:.0f} / {row['median']:.0f} | {ratio:.2f} |")
    if ceiling is not None:
        print(f"learner ceiling (pre-collected batches): {ceiling:.0f} frames/s")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
