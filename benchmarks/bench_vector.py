"""Steps/s of the vector envs: Gymnasium's sync and async ones against spiral_envs' batched one.

For each configuration (16 and 64 ``SpiralPaint-MNIST-Cond-v0`` envs, 16
``SpiralMuJoCo-Scene-Cond-v0`` envs) the three vector envs are made once, warmed up, then timed
in rounds that alternate between them (the order rotates each round), stepping random actions
drawn beforehand (episodes end every 20 steps; the next step autoresets, as in every mode). The
ratio against sync is taken within each round, so a change of machine load between rounds
cancels; the table shows medians over rounds.

* ``sync``: ``gym.make_vec(id, n, vectorization_mode="sync")``, every env in this process.
* ``async``: ``vectorization_mode="async"``, one process per env (Gymnasium's default context,
  ``fork``, for paint; ``spawn`` for scenes, whose GL contexts cannot be forked).
* ``batched``: ``vectorization_mode="vector_entry_point"``, :class:`spiral_envs.vector.
  BatchedVectorEnv` as it comes: this process steps one block of envs, one worker process per
  other core the others.
* ``workers``: the same with ``step_in_parent=False``: one worker per core, this process waits.

* ``ceiling`` (paint only): what two cores can do at best, measured in the same round: one
  process per worker, each stepping its share of the envs in a sync vector env of its own, all
  started together, no communication. The batched envs' ``x ceiling`` is their rate over this one.

Usage::

    python benchmarks/bench_vector.py [--seconds 2] [--rounds 5] [--configs paint16 paint64 scene16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import gymnasium as gym
import numpy as np

CONFIGS = {
    "paint16": ("SpiralPaint-MNIST-Cond-v0", 16),
    "paint64": ("SpiralPaint-MNIST-Cond-v0", 64),
    "scene16": ("SpiralMuJoCo-Scene-Cond-v0", 16),
}
MODES = ("sync", "async", "batched", "workers")
BATCHED = ("batched", "workers")


def make(mode: str, env_id: str, n: int) -> gym.vector.VectorEnv:
    if mode == "sync":
        return gym.make_vec(env_id, n, vectorization_mode="sync")
    if mode == "async":
        vector_kwargs = {"context": "spawn"} if "MuJoCo" in env_id else {}
        return gym.make_vec(env_id, n, vectorization_mode="async", vector_kwargs=vector_kwargs)
    in_parent = mode == "batched"
    return gym.make_vec(
        env_id, n, vectorization_mode="vector_entry_point", step_in_parent=in_parent
    )


def timed(envs: gym.vector.VectorEnv, actions: np.ndarray, seconds: float) -> float:
    """Env steps per second over about ``seconds`` of stepping."""
    steps, start = 0, time.perf_counter()
    while True:
        envs.step(actions[steps % len(actions)])
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps * envs.num_envs / elapsed


def _ceiling_worker(env_id: str, n: int, seconds: float, start, out) -> None:
    """One of the ceiling's processes: ``n`` envs in this process, stepped from ``start``."""
    import spiral_envs  # noqa: F401

    envs = gym.make_vec(env_id, n, vectorization_mode="sync")
    space = envs.action_space
    space.seed(n)
    actions = np.stack([space.sample() for _ in range(200)])
    envs.reset(seed=0)
    for a in actions[:25]:
        envs.step(a)
    start.wait()
    out.put(timed(envs, actions, seconds))
    envs.close()


class Ceiling:
    """Two (one per core) processes stepping ``n`` envs between them, independently."""

    def __init__(self, env_id: str, n: int, workers: int) -> None:
        self.env_id, self.num_envs, self.workers = env_id, n, workers
        bounds = np.linspace(0, n, workers + 1).round().astype(int)
        self.shares = [int(b - a) for a, b in zip(bounds[:-1], bounds[1:])]

    def rate(self, seconds: float) -> float:
        """Steps/s of all the processes together, over the same ``seconds``."""
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        start, out = ctx.Barrier(len(self.shares)), ctx.Queue()
        procs = [
            ctx.Process(target=_ceiling_worker, args=(self.env_id, k, seconds, start, out))
            for k in self.shares
        ]
        for p in procs:
            p.start()
        rates = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join()
        return float(sum(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="stepping time per timing")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()

    # The checkout this script is in, before any installed copy (workers inherit sys.path).
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import spiral_envs
    from spiral_envs.vector import BatchedVectorEnv

    cores = len(os.sched_getaffinity(0))
    print(
        f"# {platform.processor() or platform.machine()}, {cores} cores available, "
        f"Python {platform.python_version()}, gymnasium {gym.__version__}, "
        f"spiral_envs from {os.path.dirname(spiral_envs.__file__)}"
    )
    rows = []
    for name in args.configs:
        env_id, n = CONFIGS[name]
        t0 = time.perf_counter()
        envs = {mode: make(mode, env_id, n) for mode in MODES}  # async first: it may fork
        assert isinstance(envs["batched"], BatchedVectorEnv)
        made = time.perf_counter() - t0
        space = envs["sync"].action_space
        space.seed(0)
        actions = np.stack([space.sample() for _ in range(200)])
        for e in envs.values():
            e.reset(seed=0)
            for a in actions[:25]:
                e.step(a)
        modes = MODES + (("ceiling",) if "Paint" in env_id else ())
        ceiling = Ceiling(env_id, n, envs["workers"].num_workers)
        rates: dict[str, list[float]] = {m: [] for m in modes}
        ratios: dict[str, list[float]] = {m: [] for m in modes}
        of_ceiling: dict[str, list[float]] = {m: [] for m in BATCHED}
        for r in range(args.rounds):
            order = modes[r % len(modes) :] + modes[: r % len(modes)]
            this = {
                m: ceiling.rate(args.seconds)
                if m == "ceiling"
                else timed(envs[m], actions, args.seconds)
                for m in order
            }
            for m in modes:
                rates[m].append(this[m])
                ratios[m].append(this[m] / this["sync"])
            if "ceiling" in this:
                for m in BATCHED:
                    of_ceiling[m].append(this[m] / this["ceiling"])
            print(
                f"{name} round {r}: "
                + ", ".join(f"{m} {this[m]:,.0f}" for m in modes)
                + f"  (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        for e in envs.values():
            e.close()
        for m in modes:
            ceil = statistics.median(of_ceiling[m]) if m in BATCHED and of_ceiling[m] else None
            rows.append(
                (env_id, n, m, statistics.median(rates[m]), statistics.median(ratios[m]), ceil)
            )
        print(f"{name}: made the vector envs in {made:.1f} s", flush=True)

    print()
    print("| env | envs | vector env | steps/s | × sync | × ceiling |")
    print("|---|---:|---|---:|---:|---:|")
    for env_id, n, m, rate, ratio, ceil in rows:
        b = "**" if m == "batched" else ""
        c = f"{b}{ceil:.2f}{b}" if ceil is not None else ""
        print(f"| `{env_id}` | {n} | {m} | {b}{rate:,.0f}{b} | {b}{ratio:.2f}{b} | {c} |")


if __name__ == "__main__":
    main()
