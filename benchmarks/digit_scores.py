"""How digit-like an unconditional MNIST agent's samples are, beside the baselines' (issue 11).

Scores ``--samples`` final canvases of each checkpoint given, and the baselines, with
:func:`agents.digits.sample_scores` (the shipped MNIST classifier's features; the reference is the
whole test split):

* real digits: as many training digits as samples (what a perfect generator scores here);
* a uniformly random agent on ``SpiralPaint-MNIST-v0`` (20 steps, the first checkpoint's env
  kwargs, or ``--env_kwargs``);
* a blank canvas.

Draws of 500 samples of one checkpoint spread by several points of Fréchet distance and by a
percentage point or so in the smallest class, so ``--draws k`` scores each checkpoint on k
disjoint draws (episode seeds ``EVAL_SEED + i`` for ``i < k * samples``) and reports their mean
and spread.

    python benchmarks/digit_scores.py runs/mnist_uncond/checkpoint.pt --draws 4 --out scores.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spiral_envs  # noqa: F401, E402
from agents.build import load_policy  # noqa: E402
from agents.digits import load_classifier, sample_scores  # noqa: E402
from agents.evaluate import EVAL_SEED, evaluate_checkpoint  # noqa: E402

ENV = "SpiralPaint-MNIST-v0"


def random_canvases(n: int, env_kwargs: dict, seed: int) -> np.ndarray:
    env = gym.make(ENV, **{**env_kwargs, "split": "test"})
    env.action_space.seed(seed)
    out = []
    for i in range(n):
        obs, _ = env.reset(seed=seed + i)
        done = False
        while not done:
            obs, _, done, _, _ = env.step(env.action_space.sample())
        out.append(obs["canvas"])
    env.close()
    return np.stack(out)


def checkpoint_scores(checkpoint: str, samples: int, draws: int, temperature: float = 1.0) -> dict:
    """The digit scores of ``draws`` disjoint draws of ``samples`` samples: the first draw's,
    and with several draws each draw's and their mean and standard deviation."""
    keys = ("sample_fd", "class_fractions", "min_class_fraction")
    runs = []
    for k in range(draws):
        seed = EVAL_SEED + k * samples
        m = evaluate_checkpoint(
            checkpoint, None, episodes=samples, num_envs=50, seed=seed, temperature=temperature
        )
        runs.append({key: m[key] for key in keys})
    row = dict(runs[0])
    if draws > 1:
        fd = np.array([r["sample_fd"] for r in runs])
        low = np.array([r["min_class_fraction"] for r in runs])
        row.update(
            draws=runs,
            sample_fd_mean=float(fd.mean()),
            sample_fd_std=float(fd.std(ddof=1)),
            min_class_fraction_mean=float(low.mean()),
        )
    return row


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="*", help="unconditional MNIST checkpoints")
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--draws", type=int, default=1, help="disjoint draws per checkpoint")
    p.add_argument(
        "--env_kwargs",
        type=json.loads,
        default=None,
        help="the random agent's env kwargs (default: the first checkpoint's)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        nargs="+",
        default=[1.0],
        help="sampling temperatures; a row per checkpoint and temperature (default 1)",
    )
    p.add_argument("--out", default=None, help="a JSON file for the results")
    a = p.parse_args(argv)
    if a.draws < 1 or a.samples < 1:
        p.error("--draws and --samples must be at least 1")
    if not all(t > 0 for t in a.temperature):
        p.error(f"--temperature {' '.join(map(str, a.temperature))}: accepted > 0")
    if a.env_kwargs is None:
        a.env_kwargs = load_policy(a.checkpoints[0]).config.env_kwargs if a.checkpoints else {}
    net = load_classifier()
    test = gym.make(ENV, split="test").unwrapped.dataset.images
    train = gym.make(ENV, split="train").unwrapped.dataset
    rng = np.random.default_rng(0)
    rows = {
        "real training digits": sample_scores(net, train.sample(rng, a.samples), test),
        "random agent": sample_scores(
            net, random_canvases(a.samples, a.env_kwargs, EVAL_SEED), test
        ),
        "blank canvas": sample_scores(net, np.full_like(test[: a.samples], 255), test),
    }
    for ck in a.checkpoints:
        for t in a.temperature:
            name = str(ck) if t == 1.0 else f"{ck} (temperature {t:g})"
            rows[name] = checkpoint_scores(ck, a.samples, a.draws, t)
    print("| samples | Fréchet distance | smallest class | classes 0-9 |\n|---|---:|---:|---|")
    for name, r in rows.items():
        classes = " ".join(f"{f:.0%}" for f in r["class_fractions"])
        print(f"| {name} | {r['sample_fd']:.3f} | {r['min_class_fraction']:.1%} | {classes} |")
    for name, r in rows.items():
        if "draws" in r:
            lows = ", ".join(f"{d['min_class_fraction']:.1%}" for d in r["draws"])
            print(
                f"{name}: {a.draws} draws of {a.samples}: Fréchet distance "
                f"{r['sample_fd_mean']:.1f} ± {r['sample_fd_std']:.1f} (sd), smallest class {lows}"
            )
    if a.out:
        out = {"samples": a.samples, "draws": a.draws, "env_kwargs": a.env_kwargs, "rows": rows}
        Path(a.out).write_text(json.dumps(out, indent=2))
    return rows


if __name__ == "__main__":
    main()
