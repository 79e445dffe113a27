"""Where a training iteration's time goes: the loop's pieces, the network's modules, the ops.

Builds the trainer's pieces as ``spiral-train`` does (conditional MNIST, 64 envs, the default
network, the discriminator reward unless ``--reward l2``), warms them up, then times
``--iters`` iterations under ``torch.profiler``:

* each piece of the loop (acting, rewards, policy update, discriminator step) by wall clock;
* the policy network's top-level modules, forward passes only (labelled with forward hooks; the
  backward pass is counted in the update as a whole);
* the ops by self CPU time, and what is left of each piece's wall clock once its ops are
  counted: Python and dispatch overhead.

    python benchmarks/profile_train.py                        # the default network, 12 iterations
    python benchmarks/profile_train.py --pointer --reward l2  # the recipes' network and reward
    python benchmarks/profile_train.py --json docs/profile_train.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PIECES = ("acting", "rewards", "policy update", "discriminator step")


def build(a: argparse.Namespace):
    """The loop's pieces, as ``agents.train.train`` builds them."""
    from agents.build import (
        build_actor,
        build_discriminator,
        build_learner,
        build_policy,
        make_envs,
        probe_env,
    )
    from agents.config import TrainConfig

    cfg = TrainConfig.from_dict(
        {
            "env_id": a.env_id,
            "num_envs": a.num_envs,
            "total_steps": 1,
            "reward": a.reward,
            "reward_mode": "per_step",
            "pointer": a.pointer,
            "threads": a.threads,
        }
    )
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    info = probe_env(cfg.env_id, cfg.env_kwargs)
    dev = torch.device("cpu")
    policy = build_policy(cfg.net, info, dev)
    learner = build_learner(cfg, policy, dev)
    disc = build_discriminator(cfg, info, dev)
    envs = make_envs(cfg.env_id, cfg.num_envs, cfg.env_kwargs)
    actor = build_actor(cfg, envs, policy, dev, disc)
    actor.set_weights(None, 0)
    return cfg, info, policy, learner, disc, envs, actor


def label_modules(policy: torch.nn.Module) -> None:
    """Each top-level module's forward runs inside a ``module::<name>`` profiler range."""
    for name, mod in policy.named_children():
        ranges: list = []

        def pre(m, inputs, name=name, ranges=ranges):
            ranges.append(record_function(f"module::{name}"))
            ranges[-1].__enter__()

        def post(m, inputs, output, ranges=ranges):
            ranges.pop().__exit__(None, None, None)

        mod.register_forward_pre_hook(pre)
        mod.register_forward_hook(post)


def iteration(cfg, info, learner, disc, actor, rng, wall: dict) -> int:
    """One loop iteration, each piece in its profiler range and timed."""
    from agents.actor import draw_seeds
    from agents.rewards import compute_rewards

    def timed(piece, fn, *args):
        t = time.perf_counter()
        with record_function(f"piece::{piece}"):
            out = fn(*args)
        wall[piece] += time.perf_counter() - t
        return out

    rollout = timed("acting", actor.collect, draw_seeds(rng, cfg.num_envs))
    rewards, _ = timed("rewards", compute_rewards, rollout, cfg.rewards, info.action_spec, disc)
    timed("policy update", learner.update, rollout, rewards)
    if disc is not None:
        timed("discriminator step", disc.step, rollout)
    return rollout.frames


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env_id", default="SpiralPaint-MNIST-Cond-v0")
    p.add_argument("--num_envs", type=int, default=64)
    p.add_argument("--reward", default="discriminator", choices=("discriminator", "l2"))
    p.add_argument("--pointer", action="store_true", help="the recipes' pointer heads")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--iters", type=int, default=12, help="profiled iterations")
    p.add_argument("--top", type=int, default=15, help="ops listed")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(argv)
    cfg, info, policy, learner, disc, envs, actor = build(a)
    rng = np.random.default_rng(0)
    warm: dict = defaultdict(float)
    for _ in range(2):  # first allocations, oneDNN's kernel choices
        iteration(cfg, info, learner, disc, actor, rng, warm)
    label_modules(policy)
    wall: dict = defaultdict(float)
    frames = 0
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(a.iters):
            frames += iteration(cfg, info, learner, disc, actor, rng, wall)
    total = time.perf_counter() - t0
    envs.close()
    events = prof.key_averages()
    ranges = {e.key: e.cpu_time_total / 1e6 for e in events if "::" in e.key}
    ops = sorted(
        (e for e in events if "::" not in e.key or e.key.startswith("aten::")),
        key=lambda e: -e.self_cpu_time_total,
    )
    op_total = sum(e.self_cpu_time_total for e in ops) / 1e6
    res = {
        "env_id": a.env_id,
        "num_envs": a.num_envs,
        "reward": a.reward,
        "pointer": a.pointer,
        "threads": a.threads,
        "iters": a.iters,
        "frames_per_s_profiled": frames / total,
        "wall_s": total,
        "pieces": {k: wall[k] / total for k in PIECES if k in wall},
        "modules_forward": {
            k.split("::", 1)[1]: v / total for k, v in ranges.items() if k.startswith("module::")
        },
        "ops_self": {e.key: e.self_cpu_time_total / 1e6 / total for e in ops[: a.top]},
        "ops_share_of_wall": op_total / total,
    }
    report(res)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


def report(res: dict) -> None:
    print(
        f"{res['env_id']}, {res['num_envs']} envs, reward {res['reward']}, pointer "
        f"{res['pointer']}, {res['threads']} threads: {res['frames_per_s_profiled']:.0f} frames/s "
        f"under the profiler, {res['iters']} iterations, {res['wall_s']:.1f} s"
    )
    print("\n| piece of the loop | share of wall clock |\n|---|---:|")
    for k, v in res["pieces"].items():
        print(f"| {k} | {100 * v:.1f}% |")
    print("\n| policy module (forward only, acting and update) | share of wall clock |\n|---|---:|")
    for k, v in sorted(res["modules_forward"].items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {100 * v:.1f}% |")
    print("\n| op (self CPU time; threads add up) | share of wall clock |\n|---|---:|")
    for k, v in res["ops_self"].items():
        print(f"| `{k}` | {100 * v:.1f}% |")
    print(
        f"\nall ops' self CPU time: {100 * res['ops_share_of_wall']:.0f}% of wall clock (over "
        "100% where both threads work; the rest of the wall clock is Python, the envs, dispatch)"
    )


if __name__ == "__main__":
    main()
