"""What 20 strokes of the action space can do on a dataset: the greedy search's held-out L2.

:class:`spiral_envs.paint.GreedySearch` paints, each step, the best of ``K`` random strokes
(coloured like the target under them) by the L2 they leave, trying each with the env's renderer.
It reads the target and searches with the renderer, so it is a reference for a target (can the
actions reach it at all?), not a baseline an agent is expected to beat at equal cost. Episode
``i`` is reset with seed ``EVAL_SEED + i`` (the benchmark's held-out episodes):

    python benchmarks/greedy_search.py --env_id SpiralPaint-Faces-Cond-v0 --candidates 50 200 \\
        --episodes 24 --out docs/greedy_search_faces.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spiral_envs  # noqa: F401, E402
from spiral_envs.benchmark import EVAL_SEED  # noqa: E402
from spiral_envs.paint import GreedySearch  # noqa: E402
from spiral_envs.rewards import l2_distance, psnr_of_l2  # noqa: E402


def search_scores(
    env_id: str, candidates: int, episodes: int, env_kwargs: dict, progress: bool = True
) -> dict:
    """The greedy search's mean final L2 and PSNR, and the blank canvas's L2, on the held-out
    episodes ``EVAL_SEED + i``, ``i < episodes``."""
    env = gym.make(env_id, **{**env_kwargs, "split": "test"})
    search = GreedySearch(env, candidates=candidates, seed=0)
    l2, blank = [], []
    start = time.perf_counter()
    for i in tqdm(range(episodes), desc=f"{candidates} candidates", disable=not progress):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        blank.append(float(l2_distance(obs["canvas"], obs["target"])))
        search.reset(obs["target"])
        done = False
        while not done:
            obs, _, done, _, info = env.step(search.act(obs))
        l2.append(info["l2"])
    env.close()
    l2 = np.asarray(l2)
    return {
        "candidates": candidates,
        "l2": float(l2.mean()),
        "psnr": float(np.mean(psnr_of_l2(l2))),
        "blank_l2": float(np.mean(blank)),
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env_id", default="SpiralPaint-Faces-Cond-v0", help="a -Cond- paint id")
    p.add_argument("--candidates", type=int, nargs="+", default=[50, 200], help="K per step")
    p.add_argument("--episodes", type=int, default=24, help="held-out episodes")
    p.add_argument("--env_kwargs", type=json.loads, default={}, help="as JSON")
    p.add_argument("--progress", type=int, default=1, help="0: no progress bar")
    p.add_argument("--out", default=None, help="a JSON file for the results")
    a = p.parse_args(argv)
    if a.episodes < 1 or min(a.candidates) < 1:
        p.error("--episodes and --candidates must be at least 1")
    if "-Cond-" not in a.env_id:
        p.error(f"--env_id must be a conditional paint id (it reads the target), got {a.env_id}")
    rows = [
        search_scores(a.env_id, k, a.episodes, a.env_kwargs, bool(a.progress)) for k in a.candidates
    ]
    print("| candidates per step | held-out L2 | PSNR dB | blank L2 | seconds |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['candidates']} | {r['l2']:.4f} | {r['psnr']:.2f} | {r['blank_l2']:.4f} | "
            f"{r['seconds']:.0f} |"
        )
    if a.out:
        out = {"env_id": a.env_id, "env_kwargs": a.env_kwargs, "episodes": a.episodes}
        Path(a.out).write_text(json.dumps({**out, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
