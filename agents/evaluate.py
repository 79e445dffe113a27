"""``spiral-eval``: evaluate a trained checkpoint on held-out targets.

Writes into ``--out``: ``metrics.json`` (held-out L2 and PSNR for conditional agents),
``samples.png`` (targets beside their reconstructions), ``episode.gif``, ``programs.json`` (the
stroke programs) and ``programs/episode_NNN.svg``.

Usage::

    spiral-eval runs/mnist/checkpoint.pt --episodes 256 --out runs/mnist/eval
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from agents.checkpoint import load_checkpoint
from agents.config import TrainConfig
from agents.logs import save_episode_gif, save_grid
from agents.programs import decode_program, program_to_svg
from agents.train import build_policy, evaluate_policy, make_envs, probe_env, resolve_device

__all__ = ["evaluate_checkpoint", "main"]


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path | None = None,
    episodes: int = 64,
    split: str = "test",
    num_envs: int = 16,
    greedy: bool = False,
    seed: int = 12345,
    device: str = "cpu",
    svg_count: int = 16,
    env_kwargs: dict | None = None,
) -> dict:
    """Runs a checkpoint's policy on ``episodes`` episodes of ``split`` and writes its outputs.

    Returns:
        The metrics: ``l2`` and ``psnr`` (when targets are known), ``episodes``.
    """
    dev = resolve_device(device)
    ck = load_checkpoint(checkpoint, map_location=dev)
    cfg = TrainConfig.from_dict(ck["config"])
    kw = {**cfg.env_kwargs, **(env_kwargs or {})}
    if split:
        kw["split"] = split
    info = probe_env(cfg.env_id, kw)
    policy = build_policy(cfg, info, dev)
    policy.load_state_dict(ck["learner"]["policy"])
    envs = make_envs(cfg.env_id, min(num_envs, episodes), kw)
    torch.manual_seed(seed)
    try:
        env_programs: list = []
        metrics, rollouts = evaluate_policy(
            policy, envs, episodes, seed, dev, greedy=greedy, programs=env_programs
        )
    finally:
        envs.close()
    metrics = {
        "env_id": cfg.env_id,
        "split": split,
        "greedy": greedy,
        "checkpoint": str(checkpoint),
        "train_frames": ck["frames"],
        **metrics,
    }
    if out_dir is not None:
        out = Path(out_dir)
        (out / "programs").mkdir(parents=True, exist_ok=True)
        finals = np.concatenate([r.canvases[-1] for r in rollouts])[:episodes]
        targets = None
        if rollouts[0].targets is not None:
            targets = np.concatenate([r.targets for r in rollouts])[:episodes]
        save_grid(out / "samples.png", finals, targets, n=min(24, len(finals)), per_row=6)
        r0 = rollouts[0]
        save_episode_gif(
            out / "episode.gif", r0.canvases[:, 0], None if r0.targets is None else r0.targets[0]
        )
        size = info.image_shape[1]
        acts = np.concatenate([r.actions.transpose(1, 0, 2) for r in rollouts])[:episodes]
        programs, svgs = [], []
        for a, env_prog in zip(acts, env_programs[:episodes], strict=True):
            if hasattr(env_prog, "to_dict") and hasattr(env_prog, "to_svg"):
                # the env's own stroke program (canvas units, exact pressures, SVG at 256 px)
                programs.append({"actions": a.tolist(), **env_prog.to_dict()})
                svgs.append(env_prog.to_svg(256))
            else:  # decoded from the actions with the spec's value tables
                prog = decode_program(info.action_spec, a, size)
                programs.append({"actions": a.tolist(), "steps": prog})
                svgs.append(program_to_svg(prog, size))
        (out / "programs.json").write_text(
            json.dumps(
                {
                    "env_id": cfg.env_id,
                    "action_names": list(info.action_spec.names),
                    "programs": programs,
                }
            )
        )
        for i, svg in enumerate(svgs[:svg_count]):
            (out / "programs" / f"episode_{i:03d}.svg").write_text(svg)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="spiral-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a checkpoint.pt written by spiral-train")
    p.add_argument(
        "--out",
        default=None,
        help="output directory (default: <run>/eval for a run's checkpoint.pt, else "
        "runs/eval_<file name>)",
    )
    p.add_argument("--episodes", type=int, default=64, help="episodes to run (default 64)")
    p.add_argument("--split", default="test", help="dataset split of the targets (default test)")
    p.add_argument("--num_envs", type=int, default=16, help="envs acted in one batch")
    p.add_argument("--greedy", action="store_true", help="argmax sub-actions instead of sampling")
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument(
        "--env_kwargs",
        type=json.loads,
        default=None,
        help="JSON overrides of the env kwargs saved in the checkpoint",
    )
    a = p.parse_args(argv)
    if a.episodes < 1:
        p.error(f"--episodes {a.episodes}: accepted >= 1")
    ck = Path(a.checkpoint)
    # a run's checkpoint.pt: <run>/eval; any other file (a shipped one): runs/eval_<name>
    out = a.out or str(
        ck.parent / "eval" if ck.name == "checkpoint.pt" else Path("runs") / f"eval_{ck.stem}"
    )
    try:
        m = evaluate_checkpoint(
            a.checkpoint,
            out,
            a.episodes,
            a.split,
            a.num_envs,
            a.greedy,
            a.seed,
            a.device,
            env_kwargs=a.env_kwargs,
        )
    except FileNotFoundError as e:
        print(f"spiral-eval: error: {e}", file=sys.stderr)
        return 2
    shown = ", ".join(f"{k}={m[k]:.4g}" for k in ("l2", "psnr") if k in m)
    print(f"{m['env_id']} ({a.split}, {int(m['episodes'])} episodes): {shown or 'no targets'}")
    print(f"outputs in {out}: metrics.json, samples.png, episode.gif, programs.json, programs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
