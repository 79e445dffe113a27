"""``spiral-train``: adversarial advantage actor-critic for spiral_envs (SPIRAL / SPIRAL++).

One loop, read top to bottom (after cleanrl's ``ppo_atari.py``). Three pieces with narrow
interfaces, here in one process, shaped for separate processes (Ray) later:

* :class:`~agents.actor.Actor` -- ``collect(seeds) -> Rollout`` over a vector env;
* :class:`~agents.learner.PolicyLearner` -- ``update(rollout, rewards) -> metrics``, ``weights()``;
* :class:`~agents.discriminator.DiscriminatorLearner` -- ``update(fakes, targets, reals)`` and the
  numpy ``Discriminator`` protocol ``(canvases, targets) -> scores`` used for the rewards.

Usage::

    spiral-train --env_id SpiralPaint-MNIST-Cond-v0 --reward l2 --total_steps 100000
    python -m agents.train --out_dir runs/x --resume          # continue a killed run
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.actor import Actor, AsyncActor, Rollout
from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.config import TrainConfig, add_config_arguments, config_from_args
from agents.discriminator import DiscriminatorLearner, NonFiniteLossError
from agents.learner import PolicyLearner
from agents.logs import RunLogger, save_episode_gif, save_grid
from agents.networks import NetConfig, PolicyNet
from agents.rewards import change_similarity, l2_distance, score_rewards, stroke_penalties

__all__ = [
    "EnvInfo",
    "compute_rewards",
    "evaluate_policy",
    "main",
    "make_envs",
    "probe_env",
    "train",
]

CHECKPOINT = "checkpoint.pt"


# --------------------------------------------------------------------------------------------
# Environment helpers
# --------------------------------------------------------------------------------------------
class EnvInfo:
    """What the agent needs to know about an env: action spec, image shape, conditioning."""

    def __init__(self, env: gym.Env) -> None:
        u = env.unwrapped
        if not hasattr(u, "action_spec"):
            raise ValueError(
                f"{env.spec.id if env.spec else env}: not a spiral_envs env (no action_spec)"
            )
        self.action_spec = u.action_spec
        space = env.observation_space
        self.image_shape = tuple(space["canvas"].shape)
        self.conditional = "target" in space.spaces
        self.max_step = int(np.asarray(space["step"].high).max()) if "step" in space.spaces else 20
        self.dataset = getattr(u, "dataset", None) or getattr(u, "_dataset", None)
        if self.dataset is None and hasattr(u, "max_objects"):  # scenes: the same generator
            from spiral_envs.scene import SceneDataset

            self.dataset = SceneDataset(
                canvas_size=self.image_shape[0],
                min_objects=getattr(u, "min_objects", 1),
                max_objects=u.max_objects,
            )


def _import_envs() -> None:
    import spiral_envs  # noqa: F401  (registers the ids)


def probe_env(env_id: str, env_kwargs: dict | None = None) -> EnvInfo:
    _import_envs()
    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        return EnvInfo(env)
    finally:
        env.close()


def make_envs(
    env_id: str, num_envs: int, env_kwargs: dict | None = None, mode: str = "sync"
) -> gym.vector.VectorEnv:
    """A vector env of ``num_envs`` copies (``mode`` ``"sync"`` or ``"async"``)."""
    _import_envs()
    kw = dict(env_kwargs or {})
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **kw)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------------------------
# Rewards
# --------------------------------------------------------------------------------------------
def compute_rewards(
    cfg: TrainConfig, info: EnvInfo, rollout: Rollout, discriminator=None
) -> tuple[np.ndarray, np.ndarray]:
    """Rewards ``(T, B)`` of a batch of episodes, and the final scores ``(B,)``.

    Scores are the discriminator's (any ``Discriminator`` protocol object), ``-L2`` to the target
    or the change similarity; ``cfg.reward_mode`` turns them into final-step or
    per-step-difference rewards; the stroke penalties are added. With per-step rewards the
    discriminator scores only the canvases that changed (a move leaves the canvas as it was, and
    its score): a critic pass costs more than the policy's, and moves are common.
    """
    t_len, b = rollout.actions.shape[:2]
    canv = rollout.canvases[-1:] if cfg.reward_mode == "final" else rollout.canvases
    n = len(canv)
    if cfg.reward in ("l2", "similarity"):
        if rollout.targets is None:
            raise ValueError(
                f"reward {cfg.reward!r} needs a conditional env (a target in the observation)"
            )
        if cfg.reward == "l2":
            scores = -l2_distance(canv, rollout.targets[None])
        else:  # the episodes' first canvases are the blank ones; each target blurred once
            scores = change_similarity(canv, rollout.targets, rollout.canvases[:1])
    else:  # a canvas a step left unchanged (a move) keeps its score: the critic is not re-asked
        changed = np.ones((n, b), bool)
        if n > 1:
            changed[1:] = (canv[1:] != canv[:-1]).reshape(n - 1, b, -1).any(-1)
        t_idx, b_idx = np.nonzero(changed)
        tgt = None if rollout.targets is None else rollout.targets[b_idx]
        scores = np.zeros((n, b), np.float32)
        scores[t_idx, b_idx] = discriminator(canv[t_idx, b_idx], tgt)
        for t in range(1, n):
            scores[t] = np.where(changed[t], scores[t], scores[t - 1])
    scores = np.asarray(scores, np.float32).reshape(n, b)
    full = np.zeros((t_len + 1, b), np.float32)
    full[-n:] = scores
    rewards = score_rewards(full, cfg.reward_mode) * cfg.reward_scale
    rewards += stroke_penalties(
        info.action_spec,
        rollout.actions,
        rollout.canvases[-1],
        cfg.new_stroke_penalty,
        cfg.blank_penalty,
    )
    return rewards, scores[-1]


def final_l2(rollout: Rollout) -> float:
    """Mean L2 of the final canvases to their targets (NaN when no target is known)."""
    if rollout.targets is not None:
        return float(l2_distance(rollout.canvases[-1], rollout.targets).mean())
    if rollout.final_l2 is not None:
        return float(np.mean(rollout.final_l2))
    return float("nan")


def evaluate_policy(
    policy: PolicyNet,
    envs: gym.vector.VectorEnv,
    episodes: int,
    seed: int,
    device: torch.device,
    greedy: bool = False,
    programs: list | None = None,
    precision: str = "fp32",
) -> tuple[dict, list[Rollout]]:
    """Runs ``episodes`` episodes (rounded up to whole batches) and returns L2/PSNR metrics.

    Episode ``i`` is reset with seed ``seed + i``. When ``programs`` is a list, the envs'
    ``program`` attributes (their stroke programs) are appended to it after each batch.
    """
    actor = Actor(envs, policy, device, precision=precision)
    b = envs.num_envs
    rollouts, l2s = [], []
    for i in range(int(math.ceil(episodes / b))):
        r = actor.collect(seeds=[seed + i * b + j for j in range(b)], greedy=greedy)
        rollouts.append(r)
        if programs is not None:
            try:
                programs.extend(envs.get_attr("program"))
            except AttributeError:
                programs.extend([None] * b)
        if r.targets is not None:
            l2s.append(l2_distance(r.canvases[-1], r.targets))
        elif r.final_l2 is not None:
            l2s.append(r.final_l2)
    played = sum(r.actions.shape[1] for r in rollouts)
    out: dict[str, float] = {"episodes": float(min(played, episodes))}
    if l2s:
        l2 = np.concatenate(l2s)[:episodes]
        out["l2"] = float(l2.mean())
        out["psnr"] = float(np.mean(10 * np.log10(1.0 / np.maximum(l2, 1e-10))))
    return out, rollouts


# --------------------------------------------------------------------------------------------
# Building the pieces
# --------------------------------------------------------------------------------------------
def net_config(cfg: TrainConfig) -> NetConfig:
    return NetConfig(
        channels=cfg.channels,
        stem_stride=cfg.stem_stride,
        spatial_skip=cfg.spatial_skip,
        glimpse=cfg.glimpse,
        pen_plane=cfg.pen_plane,
        res_blocks=cfg.res_blocks,
        hidden=cfg.hidden,
        lstm=cfg.lstm,
        embed=cfg.embed,
        noise_dim=cfg.noise_dim,
    )


def build_policy(cfg: TrainConfig, info: EnvInfo, device: torch.device) -> PolicyNet:
    return PolicyNet(
        info.action_spec,
        info.image_shape,
        info.conditional,
        net_config(cfg),
        max_step=info.max_step,
    ).to(device)


def _real_sampler(info: EnvInfo):
    ds = info.dataset
    if ds is None:
        return None
    if hasattr(ds, "sample"):
        return lambda rng, n: np.asarray(ds.sample(rng, n))
    return lambda rng, n: np.stack([ds[int(i)] for i in rng.integers(0, len(ds), n)])


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> dict[str, Any]:
    """Trains an agent as ``cfg`` says; returns the final metrics (also in ``metrics.json``).

    Raises:
        NonFiniteLossError: NaN or inf in a loss; the last good checkpoint is kept.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    # --- envs and pieces ---
    info = probe_env(cfg.env_id, cfg.env_kwargs)
    envs = make_envs(cfg.env_id, cfg.num_envs, cfg.env_kwargs, cfg.vector_mode)
    policy = build_policy(cfg, info, device)
    learner = PolicyLearner(
        policy,
        lr=cfg.lr,
        lr_final=cfg.lr_final,
        ent_coef=cfg.ent_coef,
        ent_coef_final=cfg.ent_coef_final,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        normalize_advantage=cfg.normalize_advantage,
        off_policy=cfg.off_policy,
        device=device,
        precision=cfg.precision,
    )
    disc = None
    if cfg.reward == "discriminator":
        disc = DiscriminatorLearner(
            info.image_shape,
            info.conditional,
            kind=cfg.disc,
            complement=cfg.disc_complement,
            lr=cfg.disc_lr,
            betas=(cfg.disc_beta1, cfg.disc_beta2),
            gp_weight=cfg.gp_weight,
            channels=cfg.disc_channels,
            replay_size=cfg.replay_size,
            replay_fraction=cfg.replay_fraction,
            device=device,
            seed=cfg.seed + 1,
            precision=cfg.precision,
        )
    elif not info.conditional:
        raise ValueError(
            f"reward {cfg.reward!r} needs a conditional env; {cfg.env_id} does not observe "
            "its target (use a -Cond- id)"
        )
    real_sampler = _real_sampler(info)
    if disc is not None and not info.conditional and real_sampler is None:
        raise ValueError(f"{cfg.env_id}: no dataset to draw real images from")
    actor = Actor(envs, policy, device, precision=cfg.precision)
    async_actor = None
    if cfg.async_actor:  # acting overlaps learning, on its own copy of the weights
        async_actor = AsyncActor(Actor(envs, copy.deepcopy(policy), device, cfg.precision))
    eval_envs = None
    if cfg.eval_every:
        kw = {**cfg.env_kwargs, "split": "test"}
        eval_envs = make_envs(cfg.env_id, min(cfg.num_envs, cfg.eval_episodes), kw)

    # --- resume ---
    iteration, frames, elapsed_before = 0, 0, 0.0
    if cfg.resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, map_location=device)
        learner.load_state_dict(ck["learner"])
        if disc is not None:
            disc.load_state_dict(ck["discriminator"])
        rng.bit_generator.state = ck["rng"]
        _set_rng_state(ck["torch_rng"])
        iteration, frames, elapsed_before = ck["iteration"], ck["frames"], ck["elapsed"]
        print(f"resumed {ckpt_path} at iteration {iteration}, {frames} frames")
    logger = RunLogger(out, tensorboard=cfg.tensorboard)
    if cfg.resume:
        logger.truncate_after(frames)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    def checkpoint() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "config": cfg.to_dict(),
                "iteration": iteration,
                "frames": frames,
                "elapsed": elapsed_before + time.perf_counter() - t_start,
                "learner": learner.state_dict(),
                "discriminator": None if disc is None else disc.state_dict(),
                "rng": rng.bit_generator.state,
                "torch_rng": _rng_state(),
                "env": {
                    "env_id": cfg.env_id,
                    "env_kwargs": cfg.env_kwargs,
                    "image_shape": info.image_shape,
                    "conditional": info.conditional,
                    "max_step": info.max_step,
                },
                "net_config": net_config(cfg).__dict__,
            },
        )

    def pictures(rollout: Rollout, tag: str) -> None:
        save_grid(out / "samples.png", rollout.canvases[-1], rollout.targets)
        save_grid(out / "samples" / f"{tag}.png", rollout.canvases[-1], rollout.targets)
        save_episode_gif(
            out / "episode.gif",
            rollout.canvases[:, 0],
            None if rollout.targets is None else rollout.targets[0],
        )

    progress = None
    if cfg.progress:
        from tqdm import tqdm

        # a time budget far below total_steps: count frames without a (meaningless) total
        by_time = bool(cfg.max_minutes) and cfg.total_steps >= 10**8
        progress = tqdm(
            total=None if by_time else cfg.total_steps,
            initial=min(frames, cfg.total_steps),
            unit="frame",
            dynamic_ncols=True,
            file=sys.stdout,
        )
    t_start = time.perf_counter()
    frames_start = frames
    requested = False
    metrics: dict[str, float] = {}
    eval_metrics: dict[str, float] = {}
    rollout = None
    try:
        while frames < cfg.total_steps:
            # 1. act: whole episodes in every env
            seeds = rng.integers(0, 2**31 - 1, size=cfg.num_envs).tolist()
            if async_actor is None:
                rollout = actor.collect(seeds)
            else:  # ask for the next batch now, so it is played while this one is learned
                if not requested:
                    async_actor.request(seeds)
                    seeds = rng.integers(0, 2**31 - 1, size=cfg.num_envs).tolist()
                    requested = True
                async_actor.request(seeds)
                rollout = async_actor.get()
            # 2. rewards: discriminator scores (or -L2) of the canvases, plus stroke penalties
            rewards, scores = compute_rewards(cfg, info, rollout, disc)
            # 3. policy learner: one A2C step
            # schedules follow frames, or the wall-clock budget when that is the tighter limit
            done = frames / cfg.total_steps
            if cfg.max_minutes:
                spent = elapsed_before + time.perf_counter() - t_start
                done = max(done, spent / (60 * cfg.max_minutes))
            m = learner.update(rollout, rewards, progress=done)
            if async_actor is None:
                actor.set_weights(None, learner.version)  # the module is shared
            else:
                async_actor.set_weights(learner.weights(), learner.version)
            # 4. discriminator learner: real data against the latest renderings (and replay)
            if disc is not None:
                reals = None
                if not info.conditional:
                    reals = real_sampler(rng, cfg.disc_batch)
                for _ in range(cfg.disc_updates):
                    fakes, tg = rollout.canvases[-1], rollout.targets
                    if len(fakes) > cfg.disc_batch:
                        fakes = fakes[: cfg.disc_batch]
                        tg = None if tg is None else tg[: cfg.disc_batch]
                    dm = disc.update(fakes, tg, reals)
                    m.update(
                        {
                            "disc/loss": dm.loss,
                            "disc/real": dm.real_score,
                            "disc/fake": dm.fake_score,
                            "disc/gp": dm.gradient_penalty,
                        }
                    )
            iteration += 1
            frames += rollout.frames
            # 5. logs, pictures, held-out evaluation, checkpoints
            wall = time.perf_counter() - t_start
            fps = (frames - frames_start) / max(wall, 1e-9)
            m.update(
                {
                    "charts/l2": final_l2(rollout),
                    "charts/score": float(scores.mean()),
                    "charts/fps": fps,
                    "charts/wall_s": elapsed_before + wall,
                    "charts/iteration": iteration,
                }
            )
            if eval_envs is not None and iteration % cfg.eval_every == 0:
                ev, _ = evaluate_policy(
                    policy,
                    eval_envs,
                    cfg.eval_episodes,
                    seed=10**6,
                    device=device,
                    precision=cfg.precision,
                )
                eval_metrics = {f"eval/{k}": v for k, v in ev.items() if k != "episodes"}
                m.update(eval_metrics)
            metrics = m
            if iteration % cfg.log_every == 0 or eval_metrics.keys() & m.keys():
                logger.log(frames, m)
            if cfg.sample_every and iteration % cfg.sample_every == 0:
                pictures(rollout, f"frames_{frames:09d}")
            if iteration % cfg.checkpoint_every == 0:
                checkpoint()
            if progress is not None:
                progress.update(rollout.frames)
                post = {
                    "fps": f"{fps:.0f}",
                    "l2": f"{m['charts/l2']:.4f}",
                    "ret": f"{m['charts/return']:.3f}",
                }
                if cfg.max_minutes:
                    post["min"] = f"{(elapsed_before + wall) / 60:.1f}/{cfg.max_minutes:g}"
                progress.set_postfix(post)
            if cfg.max_minutes and elapsed_before + wall > 60 * cfg.max_minutes:
                break
    except NonFiniteLossError as e:
        if progress is not None:
            progress.close()
        logger.close()
        if async_actor is not None:
            async_actor.close()
        envs.close()
        kept = (
            f"the last good checkpoint is {ckpt_path}"
            if ckpt_path.exists()
            else "no checkpoint was written yet"
        )
        raise NonFiniteLossError(
            f"training stopped at iteration {iteration}, {frames} frames: {e}; {kept}"
        ) from e
    if progress is not None:
        progress.close()
    if async_actor is not None:
        async_actor.close()
    # --- the end: checkpoint, pictures, metrics ---
    checkpoint()
    if rollout is not None:
        pictures(rollout, f"frames_{frames:09d}")
    if eval_envs is not None:
        ev, _ = evaluate_policy(
            policy, eval_envs, cfg.eval_episodes, seed=10**6, device=device, precision=cfg.precision
        )
        eval_metrics = {f"eval/{k}": v for k, v in ev.items() if k != "episodes"}
        metrics = {**metrics, **eval_metrics}
        logger.log(frames, metrics)
        eval_envs.close()
    logger.close()
    envs.close()
    summary = {
        "frames": frames,
        "iterations": iteration,
        "wall_s": elapsed_before + time.perf_counter() - t_start,
        **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spiral-train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", help="JSON file of config fields (command-line flags override)")
    add_config_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base = None
    if args.config:
        base = TrainConfig.from_dict(json.loads(Path(args.config).read_text()))
    if getattr(args, "resume", False):
        out_dir = getattr(args, "out_dir", None) or (base.out_dir if base else TrainConfig.out_dir)
        ck = Path(out_dir) / CHECKPOINT
        if ck.exists():  # continue with the saved config; flags given now override it
            base = TrainConfig.from_dict(load_checkpoint(ck)["config"])
        else:
            print(f"--resume: no checkpoint at {ck}; starting a new run")
    try:
        cfg = config_from_args(args, base)
    except ValueError as e:
        print(f"spiral-train: error: {e}", file=sys.stderr)
        return 2
    try:
        summary = train(cfg)
    except NonFiniteLossError as e:
        print(f"spiral-train: {e}", file=sys.stderr)
        return 1
    keys = ["frames", "wall_s", "charts/fps", "charts/l2", "eval/l2", "eval/psnr", "charts/return"]
    print("final metrics: " + ", ".join(f"{k}={summary[k]:.4g}" for k in keys if k in summary))
    print(
        f"outputs in {os.path.abspath(cfg.out_dir)}: samples.png, episode.gif, progress.csv, "
        f"{CHECKPOINT}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
