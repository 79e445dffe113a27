"""``spiral-bench``: one baseline, one env, one budget, one seed -> one JSON result.

The protocol is ``docs/benchmark.md``. Each run trains (or not) one of the reference agents on
the benchmark twin of a suite id (``SpiralBench-*``: the benchmark reward inside the env), then
scores it with :func:`spiral_envs.benchmark.score` on the standard held-out episodes, and writes
``<out>/<id>__<agent>__<budget>__seed<k>.json``; ``benchmarks/bench_table.py`` builds the table.

    spiral-bench --env_id SpiralPaint-MNIST-Cond-v0 --agent ppo --steps 250000 --seed 0
    spiral-bench --env_id SpiralPaint-MNIST-Cond-v0 --agent spiral --minutes 30 --seed 1
    spiral-bench --env_id SpiralMuJoCo-Scene-Cond-v0 --agent random

Agents: ``random`` and ``tracer`` (the scripted tracer; paint ids) need no training; ``a2c`` and
``ppo`` (stable-baselines3, ``MultiInputPolicy``, discrete actions), ``sac`` (stable-baselines3 on
the ``-Box`` id, continuous actions) and ``spiral`` (this package's trainer, same reward) train
for ``--steps`` env steps, ``--minutes`` of wall-clock, or whichever comes first. Their settings
are :data:`SETTINGS`, written into the result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import spiral_envs
from spiral_envs.benchmark import SUITE, TracerPolicy, random_policy, score

__all__ = ["AGENTS", "SETTINGS", "bench_id", "main", "run", "settings_of"]

AGENTS = ("random", "tracer", "a2c", "ppo", "sac", "spiral")

#: Each trained agent's settings (stable-baselines3 keyword arguments; spiral-train fields), sized
#: for a 2-core CPU and a budget of 250 k env steps or 30 minutes.
SETTINGS: dict[str, dict[str, Any]] = {
    "a2c": {"n_envs": 16, "kwargs": {}},  # SB3 defaults: n_steps 5, lr 7e-4, gamma 0.99
    "ppo": {"n_envs": 8, "kwargs": {"n_steps": 128, "batch_size": 256, "n_epochs": 4}},
    "sac": {  # one gradient step per 32 env steps: at SB3's 1 per step, 250 k steps take hours
        "n_envs": 8,
        "kwargs": {
            "buffer_size": 100_000,
            "batch_size": 64,
            "learning_starts": 1_000,
            "train_freq": 4,
            "gradient_steps": 1,
        },
    },
    "spiral": {  # the MNIST settings of benchmarks/learning.py, at the benchmark reward
        "reward": "l2",
        "reward_mode": "per_step",
        "reward_scale": 10.0,
        "gamma": 0.8,
        "num_envs": 64,
    },
    # scenes: the benchmark reward there is the per-step change similarity (examples/train_scene.py)
    "spiral-scene": {
        "reward": "similarity",
        "reward_mode": "per_step",
        "gamma": 0.8,
        "num_envs": 32,
    },
}


def settings_of(env_id: str, agent: str) -> dict[str, Any]:
    """``agent``'s entry of :data:`SETTINGS` on ``env_id`` (empty for the untrained agents)."""
    key = "spiral-scene" if agent == "spiral" and "Scene" in env_id else agent
    return SETTINGS.get(key, {})


def bench_id(env_id: str, box: bool = False) -> str:
    """The benchmark twin of a suite id (``SpiralPaint-MNIST-Cond-v0`` -> ``SpiralBench-...``)."""
    name = env_id.split("-")[1] if env_id.count("-") == 3 else ""  # MNIST, ..., Scene
    out = f"SpiralBench-{name}-Cond{'-Box' if box else ''}-v0"
    if not env_id.endswith("-Cond-v0") or out not in spiral_envs.BENCH_IDS:
        raise ValueError(
            f"{env_id!r} has no benchmark id: accepted {', '.join(SUITE)} (and CelebA)"
        )
    return out


def run(
    env_id: str,
    agent: str,
    steps: int = 0,
    minutes: float = 0.0,
    seed: int = 0,
    episodes: int | None = None,
    threads: int = 2,
    work_dir: str | Path = "runs/bench",
) -> dict[str, Any]:
    """Trains ``agent`` on ``env_id``'s benchmark id for the budget and scores it.

    Returns:
        The result: ``env_id``, ``agent``, ``seed``, ``budget``, ``frames`` (env steps trained),
        ``train_s``, ``score`` (:func:`spiral_envs.benchmark.score`), ``settings``.
    """
    if agent not in AGENTS:
        raise ValueError(f"agent {agent!r}: accepted {', '.join(AGENTS)}")
    trains = agent not in ("random", "tracer")
    if trains and steps <= 0 and minutes <= 0:
        raise ValueError(f"{agent} trains: give a budget, --steps, --minutes or both")
    if agent == "tracer" and "Scene" in env_id:
        raise ValueError("the scripted tracer paints: it has no scene version")
    t = time.perf_counter()
    if agent == "random":
        policy, frames, kwargs = random_policy(bench_id(env_id), seed), 0, {}
    elif agent == "tracer":
        policy, frames, kwargs = TracerPolicy(seed), 0, {}
    elif agent == "spiral":
        policy, frames, kwargs = _train_spiral(env_id, steps, minutes, seed, threads, work_dir)
    else:
        policy, frames, kwargs = _train_sb3(env_id, agent, steps, minutes, seed, threads)
    train_s = time.perf_counter() - t
    scored_id = bench_id(env_id, box=agent == "sac")
    result = score(scored_id, policy, episodes=episodes, env_kwargs=kwargs)
    return {
        "env_id": env_id,
        "agent": agent,
        "seed": seed,
        "budget": {"steps": steps, "minutes": minutes},
        "frames": frames,
        "train_s": round(train_s, 1),
        "score": result,
        "settings": settings_of(env_id, agent),
    }


def _train_spiral(
    env_id: str, steps: int, minutes: float, seed: int, threads: int, work_dir: str | Path
):
    from agents.config import TrainConfig
    from agents.evaluate import AgentPolicy
    from agents.train import train

    out = Path(work_dir) / f"{env_id}__spiral__s{seed}"
    cfg = TrainConfig.from_dict(
        {
            "env_id": env_id,
            **settings_of(env_id, "spiral"),
            "total_steps": steps,
            "max_minutes": minutes,
            "seed": seed,
            "threads": threads,
            "out_dir": str(out),
        }
    )
    metrics = train(cfg)
    policy = AgentPolicy.from_checkpoint(out / "checkpoint.pt")
    return policy, int(metrics["frames"]), policy.env_kwargs


def _train_sb3(env_id: str, agent: str, steps: int, minutes: float, seed: int, threads: int):
    from agents.sb3_baselines import train_sb3

    settings = SETTINGS[agent]
    box_id = bench_id(env_id, box=agent == "sac")
    model = train_sb3(
        box_id, agent, settings["n_envs"], settings["kwargs"], steps, minutes, seed, threads
    )
    return model, int(model.num_timesteps), {}


def _budget_name(steps: int, minutes: float) -> str:
    parts = [f"{steps // 1000}k" if steps % 1000 == 0 else str(steps)] if steps > 0 else []
    parts += [f"{minutes:g}min"] if minutes > 0 else []
    return "+".join(parts) or "untrained"


def _environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    out: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    for pkg in ("spiral-gym", "gymnasium", "torch", "stable_baselines3"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    out["machine"] = platform.processor() or platform.machine()
    # A seeded trained row is bit-exact only on a CPU with the same vector kernels.
    out["cpu"] = _cpu_model()
    out["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spiral-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--env_id", required=True, help=f"a suite id: {', '.join(SUITE)}")
    p.add_argument("--agent", required=True, choices=AGENTS)
    p.add_argument("--steps", type=int, default=0, help="env steps to train (0: no step limit)")
    p.add_argument("--minutes", type=float, default=0.0, help="wall-clock to train (0: none)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument(
        "--episodes", type=int, default=None, help="held-out episodes (default: the protocol's)"
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", default="runs/bench", help="where the JSON result goes")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    if a.steps < 0 or a.minutes < 0:
        p.error("--steps and --minutes must be >= 0")
    try:
        bench_id(a.env_id)
        res = run(a.env_id, a.agent, a.steps, a.minutes, a.seed, a.episodes, a.threads, a.out)
    except ValueError as e:
        p.error(str(e))
    res["command"] = " ".join(["spiral-bench", *(sys.argv[1:] if argv is None else argv)])
    res["environment"] = _environment()
    res["date"] = time.strftime("%Y-%m-%d")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{a.env_id}__{a.agent}__{_budget_name(a.steps, a.minutes)}__seed{a.seed}.json"
    (out / name).write_text(json.dumps(res, indent=2))
    s = res["score"]
    shown = ", ".join(f"{k}={s[k]:.4g}" for k in ("l2", "psnr", "blank_l2") if s.get(k) is not None)
    print(f"{a.env_id} {a.agent} ({res['frames']} frames, {res['train_s']:.0f} s): {shown}")
    print(f"result: {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
