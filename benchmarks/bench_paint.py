"""Paint env throughput against the cost of one raw pycairo stroke, measured in the same run.

    python benchmarks/bench_paint.py [--steps 20000] [--repeats 3]

For every paint id (CelebA only when its files are present) it times ``env.step`` through
``gym.make`` with pre-sampled uniformly random actions, resets included. In the same run it times
the baseline: one bare pycairo stroke of the same random geometry (a quadratic curve at partial
opacity with round caps, as a brush paints) on a 64 px surface plus the copy of the pixels into a
numpy array. The ratio env step / raw stroke is the figure to watch (the machines are noisy; the
ratio much less so). Target: at most 2.0 for the default greyscale env. Timings take the best of
``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cairo
import gymnasium as gym
import numpy as np

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spiral_envs  # noqa: E402


def best_rate(fn, n: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn(n)
        best = max(best, n / (time.perf_counter() - start))
    return best


def raw_stroke_rate(n: int, repeats: int, seed: int = 0) -> float:
    """Bare pycairo strokes + pixel copy per second, geometry as the env's random actions."""
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 32, (n, 6)) * 2.0  # grid 32 over 64 px
    widths = 2.0 * rng.choice([1, 2, 4, 8, 12, 24], n)
    alphas = rng.uniform(0.1, 1.0, n)
    surface = cairo.ImageSurface(cairo.FORMAT_A8, 64, 64)
    ctx = cairo.Context(surface)
    ctx.set_line_cap(cairo.LINE_CAP_ROUND)
    buf = np.ndarray((64, surface.get_stride()), np.uint8, surface.get_data())

    def run(k: int) -> None:
        for i in range(k):
            x0, y0, cx, cy, x1, y1 = pts[i]
            ctx.move_to(x0, y0)
            ctx.curve_to(cx, cy, cx, cy, x1, y1)
            ctx.set_source_rgba(0, 0, 0, alphas[i])
            ctx.set_line_width(widths[i])
            ctx.stroke()
            surface.flush()
            np.subtract(255, buf, dtype=np.uint8)

    return best_rate(run, n, repeats)


def env_rate(env_id: str, n: int, repeats: int, paint_only: bool = False) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(n)]
    if paint_only:
        for a in actions:
            a[0] = 1

    def run(k: int) -> None:
        step, reset = env.step, env.reset
        for i in range(k):
            if step(actions[i])[2]:
                reset()

    rate = best_rate(run, n, repeats)
    env.close()
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    raw = raw_stroke_rate(args.steps, args.repeats)
    print(f"raw pycairo stroke + copy (64 px)     {raw:10,.0f} /s   {1e6 / raw:6.1f} us")
    rows = [(i, False) for i in spiral_envs.PAINT_IDS] + [("SpiralPaint-MNIST-v0", True)]
    for env_id, paint_only in rows:
        label = env_id + (" (paint only)" if paint_only else "")
        try:
            rate = env_rate(env_id, args.steps, args.repeats, paint_only)
        except FileNotFoundError:
            print(f"{label:38s} skipped (dataset files not present)")
            continue
        print(
            f"{label:38s}{rate:10,.0f} /s   {1e6 / rate:6.1f} us   "
            f"ratio to raw stroke {raw / rate:4.2f}"
        )


if __name__ == "__main__":
    main()
