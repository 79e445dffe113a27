"""Paint episodes with a random agent and a scripted tracer; write pictures and env throughput.

Runs on the data shipped with the package (no download)::

    python examples/demo.py --out outputs/demo

writes ``samples_<env>.png`` (rows: target, random agent, scripted tracer), ``painting_<env>.gif``
(an episode being painted, re-rendered at 256 px) and prints steps/s for every paint id.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spiral_envs  # noqa: E402
from agents.logs import image_grid
from spiral_envs.paint import RandomPainter, ScriptedTracer
from spiral_envs.rewards import l2_distance


def grid_image(rows: list[list[np.ndarray]], scale: int = 2) -> Image.Image:
    """Tiles uint8 (H, W, C) images into one picture, ``rows`` of equal length."""
    images = np.concatenate([np.stack(row) for row in rows])
    images = np.repeat(np.repeat(images, scale, 1), scale, 2)
    return Image.fromarray(image_grid(images, cols=len(rows[0])))


def run_episode(env, agent, seed: int, frames: list | None = None):
    obs, _ = env.reset(seed=seed)
    agent.reset(env.unwrapped.target)
    terminated = False
    while not terminated:
        obs, _, terminated, _, info = env.step(agent.act(obs))
        if frames is not None:
            frames.append(env.render())
    return obs["canvas"], env.unwrapped.target, info


def throughput(env_id: str, seconds: float = 1.0) -> float:
    """Env steps per second with random actions, through ``gym.make``."""
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(4096)]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions[:512]:
            _, _, terminated, _, _ = env.step(a)
            if terminated:
                env.reset()
        n += 512
    rate = n / (time.perf_counter() - start)
    env.close()
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo", help="output folder")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per agent and env")
    parser.add_argument(
        "--envs",
        nargs="+",
        default=["SpiralPaint-MNIST-v0", "SpiralPaint-Omniglot-v0", "SpiralPaint-Faces-v0"],
        help="env ids to paint",
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="time per throughput figure")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    for env_id in args.envs:
        env = gym.make(env_id, render_mode="rgb_array", render_size=256)
        name = env_id.split("-")[1].lower()
        rows: list[list[np.ndarray]] = [[], [], []]
        scores = {"random": [], "scripted": []}
        for k in range(args.episodes):
            for r, (label, agent) in enumerate(
                (("random", RandomPainter(env, seed=k)), ("scripted", ScriptedTracer(env, seed=k)))
            ):
                canvas, target, info = run_episode(env, agent, seed=k)
                rows[r + 1].append(canvas)
                scores[label].append(info["l2"])
            rows[0].append(target)
        blank = float(np.mean([l2_distance(np.full_like(t, 255), t) for t in rows[0]]))
        grid_image(rows).save(out / f"samples_{name}.png")
        frames: list[np.ndarray] = []
        run_episode(env, ScriptedTracer(env, seed=0), seed=0, frames=frames)
        gif = [Image.fromarray(f) for f in frames]
        gif[0].save(
            out / f"painting_{name}.gif", save_all=True, append_images=gif[1:], duration=250, loop=0
        )
        print(
            f"{env_id}: final L2 to target  blank {blank:.4f}  random "
            f"{np.mean(scores['random']):.4f}  scripted {np.mean(scores['scripted']):.4f}"
            f"  -> {out}/samples_{name}.png, painting_{name}.gif"
        )
        env.close()

    print("\nenv throughput (random actions, gym.make, one process):")
    for env_id in spiral_envs.PAINT_IDS:
        if "CelebA" in env_id:
            continue  # needs the CelebA files, which are never bundled
        print(f"  {env_id:28s} {throughput(env_id, args.seconds):10,.0f} steps/s")


if __name__ == "__main__":
    main()
