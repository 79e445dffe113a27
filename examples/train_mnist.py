"""Train a SPIRAL agent to reconstruct MNIST digits on the CPU in a few minutes, then evaluate it.

Uses the MNIST digits shipped with the package (no download). Trains with the per-step L2 reward
(or the discriminator with ``--reward discriminator``), then scores the agent on held-out test
digits against a blank canvas, and writes pictures:

    python examples/train_mnist.py                       # 3 minutes
    python examples/train_mnist.py --minutes 10 --reward discriminator --out runs/mnist_gan

Outputs in ``--out``: ``samples.png`` (targets | reconstructions, training), ``episode.gif``,
``progress.csv``, ``checkpoint.pt`` and ``eval/`` (held-out ``samples.png``, ``episode.gif``,
``metrics.json``, ``programs.json``, ``programs/*.svg``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.config import TrainConfig
from agents.evaluate import evaluate_checkpoint
from agents.train import train

ENV = "SpiralPaint-MNIST-Cond-v0"
BRUSHES = [2, 3, 4]  # radii in px: a digit's stroke width (the env's default adds 1, 8, 12, 24)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=3.0, help="training wall-clock budget")
    p.add_argument("--reward", default="l2", choices=("l2", "discriminator"))
    p.add_argument("--out", default="runs/mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--episodes", type=int, default=200, help="held-out evaluation episodes")
    a = p.parse_args(argv)
    # the settings of benchmarks/learning.py: per-step rewards, gamma 0.8; L2
    # returns scaled to O(1) for the value head; two critic updates per policy update
    per_reward = {"l2": {"reward_scale": 10.0}, "discriminator": {"disc_updates": 2}}
    cfg = TrainConfig.from_dict(
        dict(
            env_id=ENV,
            env_kwargs={"brush_sizes": BRUSHES},
            reward=a.reward,
            reward_mode="per_step",
            gamma=0.8,
            **per_reward[a.reward],
            num_envs=64,
            max_minutes=a.minutes,
            seed=a.seed,
            out_dir=a.out,
            threads=a.threads,
            sample_every=50,
            checkpoint_every=50,
        )
    )
    print(f"training on {ENV} ({a.reward} reward) for {a.minutes:g} min -> {a.out}")
    summary = train(cfg)
    ev = evaluate_checkpoint(
        Path(a.out) / "checkpoint.pt", Path(a.out) / "eval", episodes=a.episodes, seed=10**6
    )
    print(
        f"trained {summary['frames']} frames in {summary['wall_s'] / 60:.1f} min "
        f"({summary['charts/fps']:.0f} frames/s)"
    )
    print(
        f"held-out L2 on {int(ev['episodes'])} test digits: agent {ev['l2']:.4f} "
        f"(PSNR {ev['psnr']:.2f} dB), blank canvas {ev['blank_l2']:.4f}"
    )
    print(
        f"pictures: {a.out}/eval/samples.png, {a.out}/eval/episode.gif, "
        f"{a.out}/eval/programs/episode_000.svg"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
