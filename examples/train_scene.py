"""Train the SPIRAL agent on 3D scene reconstruction, then score scene recovery against chance.

The same trainer and network as for painting drive ``SpiralMuJoCo-Scene-Cond-v0``: the agent
places up to 5 MuJoCo primitives to reproduce a target scene. After training, the exact
inverse-graphics scores (optimal assignment of the agent's objects to the target's: type,
position, size, colour accuracy, count error) and the pixel L2 are measured on held-out scenes
(seeds never used in training) for the trained agent, a uniformly random agent and an agent that
places nothing::

    python examples/train_scene.py --minutes 20 --threads 2 --out runs/scene

The default reward is the blurred change similarity (``--reward similarity``, per-step
differences): the pixel L2 and the critic's reward taught agents here to place nothing (an empty
floor is closer to a target of a few small objects than a wrong object is). Writes
``recovery.json`` (the three agents' mean scores) and ``reconstructions.png`` (targets beside
the agent's scenes, re-rendered at 128 px) in ``--out``.
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

import spiral_envs  # noqa: F401
from agents.actor import Actor
from agents.build import load_policy, make_envs
from agents.config import TrainConfig
from agents.train import train
from spiral_envs.scene import render_scene, score_scene
from spiral_envs.scene.scoring import SCORE_KEYS, mean_scores

ENV = "SpiralMuJoCo-Scene-Cond-v0"
KEYS = (*SCORE_KEYS, "l2")


def agent_scores(
    checkpoint: Path, episodes: int, seed: int, num_envs: int = 16, greedy: bool = False
):
    """Mean recovery scores of a trained policy, and its (target, scene) program pairs."""
    envs = make_envs(ENV, num_envs, {})
    actor = Actor(envs, load_policy(checkpoint).policy, "cpu")
    rows, pairs = [], []
    for i in range(0, episodes, num_envs):
        rollout = actor.collect(seeds=[seed + i + j for j in range(num_envs)], greedy=greedy)
        for prog, target, l2 in zip(
            envs.get_attr("program"), envs.get_attr("target_program"), rollout.final_l2
        ):
            rows.append({**score_scene(prog, target), "l2": float(l2)})
            pairs.append((target, prog))
    envs.close()
    return mean_scores(rows[:episodes]), pairs


def baseline_scores(episodes: int, seed: int, empty: bool = False):
    """Mean scores of a uniformly random agent, or (``empty``) of one that places nothing."""
    env = gym.make(ENV)
    env.action_space.seed(seed)
    rows = []
    for i in range(episodes):
        env.reset(seed=seed + i)
        terminated = False
        while not terminated:
            a = env.action_space.sample()
            if empty:
                a[0] = 0  # skip
            _, _, terminated, _, info = env.step(a)
        rows.append({k: info[k] for k in KEYS})
    env.close()
    return mean_scores(rows)


def _fmt(x: float | None) -> str:
    return f"{x:8.4f}" if x is not None else f"{'-':>8s}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=15.0, help="training wall-clock budget")
    p.add_argument("--out", default="runs/scene")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=256, help="held-out evaluation episodes")
    p.add_argument("--num_envs", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--reward",
        default="similarity",
        choices=("similarity", "discriminator", "l2"),
        help="blurred cosine similarity of the scene's and the target's changes from the empty "
        "floor (dense), the conditional WGAN-GP critic (SPIRAL) or the pixel L2; with the last "
        "two, agents learned to place nothing",
    )
    p.add_argument(
        "--reward_mode",
        default="per_step",
        choices=("final", "per_step"),
        help="score of the final scene (SPIRAL) or per-step differences (SPIRAL++)",
    )
    p.add_argument(
        "--reward_scale",
        type=float,
        default=200.0,
        help="L2 reward only: multiplier of the L2 decrease (a scene's pixel L2 is ~0.01)",
    )
    p.add_argument(
        "--l2_weight",
        type=float,
        default=0.0,
        help="adds this multiple of the pixel-L2 decrease to a similarity or critic reward",
    )
    p.add_argument(
        "--place_penalty",
        type=float,
        default=0.0,
        help="cost of each placed object, so a placement that changes nothing is not free",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="train by a recipe instead (a JSON file, or a shipped recipe's name; --minutes, "
        "--num_envs, --reward and the reward options are then the recipe's), and score its "
        "last stage's policy",
    )
    p.add_argument(
        "--greedy",
        action="store_true",
        help="score the policy's most likely actions instead of its samples",
    )
    a = p.parse_args(argv)
    out = Path(a.out)
    if a.recipe:
        checkpoint, summary = train_recipe(a, out)
    else:
        checkpoint, summary = train_one(a, out)
    report(a, out, checkpoint, summary)
    return 0


def train_recipe(a: argparse.Namespace, out: Path) -> tuple[Path, dict]:
    """Runs the recipe's stages (``spiral-recipe``); its last stage's checkpoint and totals."""
    from agents.recipe import load_recipe, run_recipe

    try:
        recipe = load_recipe(a.recipe)
    except ValueError as e:
        raise SystemExit(f"train_scene.py: {e}") from None
    if recipe.get("common", {}).get("env_id") != ENV:
        raise SystemExit(f"train_scene.py: recipe {a.recipe!r} is not for {ENV}")
    print(f"training on {ENV} by the recipe {a.recipe!r} -> {out}")
    overrides = {"seed": a.seed, **({"threads": a.threads} if a.threads else {})}
    rep = run_recipe(recipe, out, overrides=overrides, episodes=a.episodes)
    last = Path(rep["stages"][-1]["config"]["out_dir"]) / "checkpoint.pt"
    frames = sum(r["frames"] for r in rep["stages"])
    return last, {"frames": frames, "wall_s": rep["minutes"] * 60, "recipe": a.recipe}


def train_one(a: argparse.Namespace, out: Path) -> tuple[Path, dict]:
    """One A2C run of ``--minutes``; its checkpoint and summary."""
    cfg = TrainConfig.from_dict(
        dict(
            env_id=ENV,
            reward=a.reward,
            reward_mode=a.reward_mode,
            reward_scale=a.reward_scale if a.reward == "l2" else 1.0,
            l2_weight=a.l2_weight,
            place_penalty=a.place_penalty,
            threads=a.threads,
            disc_updates=2,
            gamma=0.8,
            glimpse=True,
            num_envs=a.num_envs,
            max_minutes=a.minutes,
            seed=a.seed,
            out_dir=str(out),
            sample_every=50,
            checkpoint_every=50,
        )
    )
    print(f"training on {ENV} ({a.reward} reward, {a.reward_mode}) for {a.minutes:g} min -> {out}")
    return out / "checkpoint.pt", train(cfg)


def report(a: argparse.Namespace, out: Path, checkpoint: Path, summary: dict) -> None:
    """Scores ``checkpoint`` and the baselines on held-out scenes; writes the JSON and picture."""
    held_out = 10**6  # training resets use other seeds
    trained, pairs = agent_scores(checkpoint, a.episodes, held_out, a.num_envs, a.greedy)
    chance = baseline_scores(a.episodes, held_out)
    empty = baseline_scores(a.episodes, held_out, empty=True)
    result = {
        "env": ENV,
        "frames": summary["frames"],
        "minutes": summary["wall_s"] / 60,
        "episodes": a.episodes,
        "greedy": a.greedy,
        "settings": {"recipe": a.recipe}
        if a.recipe
        else {k: getattr(a, k) for k in ("reward", "reward_mode", "l2_weight", "place_penalty")},
        "agent": trained,
        "random": chance,
        "empty": empty,
    }
    (out / "recovery.json").write_text(json.dumps(result, indent=2))
    print(
        f"trained {summary['frames']} frames in {summary['wall_s'] / 60:.1f} min; "
        f"held-out scene recovery over {a.episodes} scenes:"
    )
    print(f"  {'score':18s} {'agent':>8s} {'random':>8s} {'empty':>8s}")
    for k in KEYS:
        print(f"  {k:18s} {_fmt(trained[k])} {_fmt(chance[k])} {_fmt(empty[k])}")
    tiles = []
    for target, prog in pairs[:8]:
        pair = [
            render_scene(target, 128, "nice"),
            np.full((128, 4, 3), 255, np.uint8),
            render_scene(prog, 128, "nice"),
        ]
        tiles += [np.concatenate(pair, 1), np.full((128, 12, 3), 255, np.uint8)]
    from PIL import Image

    Image.fromarray(np.concatenate(tiles[:-1], 1)).save(out / "reconstructions.png")
    print(f"pictures: {out}/reconstructions.png")


if __name__ == "__main__":
    sys.exit(main())
