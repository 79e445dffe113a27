"""Train a SPIRAL agent to reconstruct MNIST digits on the CPU in a few minutes, then evaluate it.

Uses the MNIST digits shipped with the package (no download) and the shipped ``mnist`` recipe
(``agents/recipes/mnist.json``): a minute of maximum likelihood on programs of a stroke prior
paired with their own renderings (``sleep``), then A2C on the per-step L2 reward (or, with
``--reward discriminator``, on the conditional WGAN-GP critic's), starting from the pretrained
policy. It scores the agent on held-out test
digits beside a blank canvas and the best constant image, and writes pictures:

    python examples/train_mnist.py                       # 3 minutes
    python examples/train_mnist.py --minutes 10 --reward discriminator --out runs/mnist_gan

Outputs in ``--out``: one folder per stage (``sleep/``, ``finetune/``: ``samples.png``,
``progress.csv``, ``checkpoint.pt``), ``recipe.json``, and ``eval/`` (held-out ``samples.png``,
``episode.gif``, ``metrics.json``, ``programs.json``, ``programs/*.svg``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.evaluate import verdict
from agents.recipe import load_recipe, run_recipe


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=3.0, help="training wall-clock budget")
    p.add_argument("--reward", default="l2", choices=("l2", "discriminator"))
    p.add_argument("--out", default="runs/mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--episodes", type=int, default=200, help="held-out evaluation episodes")
    a = p.parse_args(argv)
    if a.minutes <= 0 or a.episodes < 1:
        p.error("--minutes must be > 0 and --episodes >= 1")
    recipe = load_recipe("mnist")
    if a.reward == "discriminator":  # the fine-tuning learns from the critic
        recipe["stages"][-1].update(reward="discriminator", disc_updates=2)
    total = sum(s["minutes"] for s in recipe["stages"])
    for old in [s["name"] for s in recipe["stages"]] + ["eval"]:  # a fresh run each time:
        shutil.rmtree(Path(a.out) / old, ignore_errors=True)  # the recipe would continue one
    print(f"training on {recipe['common']['env_id']} ({a.reward} reward) for {a.minutes:g} min")
    report = run_recipe(
        recipe,
        a.out,
        scale=a.minutes / total,
        overrides={"seed": a.seed, "threads": a.threads},
        episodes=a.episodes,
    )
    ev = report["eval"]
    frames = sum(s["frames"] for s in report["stages"])
    print(f"trained {frames} frames in {report['minutes']:.1f} min")
    print(
        f"held-out L2 on {int(ev['episodes'])} test digits: agent {ev['l2']:.4f} "
        f"(PSNR {ev['psnr']:.2f} dB), best constant image {ev['constant_l2']:.4f}, "
        f"blank canvas {ev['blank_l2']:.4f}"
    )
    print(f"normalised score {ev['normalised']:.3f}: {verdict(ev['normalised'])}")
    print(
        f"pictures: {a.out}/eval/samples.png, {a.out}/eval/episode.gif, "
        f"{a.out}/eval/programs/episode_000.svg"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
