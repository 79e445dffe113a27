"""How digit-like an unconditional MNIST agent's samples are, beside the baselines' (issue 11).

Scores ``--samples`` final canvases of each checkpoint given, and the baselines, with
:func:`agents.digits.sample_scores` (the shipped MNIST classifier's features; the reference is the
whole test split):

* real digits: as many training digits as samples (what a perfect generator scores here);
* a uniformly random agent on ``SpiralPaint-MNIST-v0`` (20 steps, the checkpoint's env kwargs);
* a blank canvas.

    python benchmarks/digit_scores.py runs/mnist_uncond/checkpoint.pt --out docs/digit_scores.json
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


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="*", help="unconditional MNIST checkpoints")
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--env_kwargs", type=json.loads, default={}, help="for the random agent")
    p.add_argument("--out", default=None, help="a JSON file for the results")
    a = p.parse_args(argv)
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
        m = evaluate_checkpoint(ck, None, episodes=a.samples, num_envs=50)
        rows[str(ck)] = {k: m[k] for k in ("sample_fd", "class_fractions", "min_class_fraction")}
    print("| samples | Fréchet distance | smallest class | classes 0-9 |\n|---|---:|---:|---|")
    for name, r in rows.items():
        classes = " ".join(f"{f:.0%}" for f in r["class_fractions"])
        print(f"| {name} | {r['sample_fd']:.3f} | {r['min_class_fraction']:.1%} | {classes} |")
    if a.out:
        Path(a.out).write_text(json.dumps({"samples": a.samples, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
