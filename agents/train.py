"""``spiral-train``: adversarial advantage actor-critic for spiral_envs (SPIRAL / SPIRAL++).

One loop over named pieces, read top to bottom (after cleanrl's ``ppo_atari.py``); the pieces
are built in :mod:`agents.build`, each from its part of the config:

* a :class:`~agents.actor.RolloutSource` -- ``next() -> Rollout`` of whole episodes,
  ``set_weights(state_dict, version)``, ``close()`` (in process, or a thread ahead);
* :class:`~agents.learner.PolicyLearner` -- ``update(rollout, rewards, progress) -> metrics``;
* :class:`~agents.discriminator.DiscriminatorLearner` -- ``step(rollout) -> metrics``, and the
  numpy ``Discriminator`` protocol ``(canvases, targets) -> scores`` the rewards use.

Usage::

    spiral-train --env_id SpiralPaint-MNIST-Cond-v0 --reward l2 --total_steps 100000
    spiral-train --max_minutes 30 --out_dir runs/x      # a time budget alone
    spiral-train --out_dir runs/x --resume               # continue a killed run

Ctrl-C stops a run cleanly: the iteration in flight finishes, the checkpoint, pictures and
``metrics.json`` are written, and ``--resume`` continues it exactly. A second Ctrl-C stops at once
(the last periodic checkpoint is kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.actor import Rollout
from agents.build import (
    EnvInfo,
    build_discriminator,
    build_learner,
    build_policy,
    build_rollouts,
    constant_image,
    load_init,
    make_envs,
    probe_env,
    resolve_device,
    resolve_precision,
    split_kwargs,
)
from agents.checkpoint import UnsafeCheckpointError, load_agent_checkpoint, save_checkpoint
from agents.config import TrainConfig, add_config_arguments, config_from_args
from agents.discriminator import DiscriminatorLearner, NonFiniteLossError
from agents.evaluate import EVAL_SEED, evaluate_policy, image_metrics
from agents.logs import RunLogger, save_episode_gif, save_grid
from agents.rewards import compute_rewards

__all__ = ["CHECKPOINT", "Clock", "main", "train"]

CHECKPOINT = "checkpoint.pt"


@dataclass
class Clock:
    """Where a run stands: iterations, frames, wall time (resumed runs add their earlier time)."""

    iteration: int = 0
    frames: int = 0
    elapsed_before: float = 0.0
    frames_start: int = 0
    t_start: float = field(default_factory=time.perf_counter)

    def start(self) -> None:
        self.frames_start, self.t_start = self.frames, time.perf_counter()

    def tick(self, frames: int) -> None:
        self.iteration += 1
        self.frames += frames

    def wall(self) -> float:
        return time.perf_counter() - self.t_start

    def elapsed(self) -> float:
        return self.elapsed_before + self.wall()

    def fps(self) -> float:
        return (self.frames - self.frames_start) / max(self.wall(), 1e-9)

    def progress(self, cfg: TrainConfig) -> float:
        """Fraction of the budget spent: frames or time, whichever is further along."""
        done = self.frames / cfg.total_steps if cfg.total_steps else 0.0
        if cfg.max_minutes:
            done = max(done, self.elapsed() / (60 * cfg.max_minutes))
        return done

    def done(self, cfg: TrainConfig) -> bool:
        out_of_frames = bool(cfg.total_steps) and self.frames >= cfg.total_steps
        out_of_time = bool(cfg.max_minutes) and self.elapsed() > 60 * cfg.max_minutes
        return out_of_frames or out_of_time


class PolicyLag:
    """How many updates behind the learner the acting policy was, over the batches since the
    last log row (0 for in-process acting)."""

    def __init__(self) -> None:
        self.lags: list[int] = []

    def add(self, lag: int) -> None:
        self.lags.append(lag)

    def pop(self) -> dict[str, float]:
        lags, self.lags = self.lags or [0], []
        return {
            "charts/policy_lag_min": float(min(lags)),
            "charts/policy_lag_mean": float(np.mean(lags)),
            "charts/policy_lag_max": float(max(lags)),
        }


class StopOnCtrlC:
    """While entered, the first SIGINT only asks the loop to stop (``requested``); the second
    raises ``KeyboardInterrupt`` as usual. Off the main thread, where Python cannot take
    signals, it does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nspiral-train: Ctrl-C: stopping after this iteration and saving the checkpoint "
            "(Ctrl-C again to stop at once)",
            file=sys.stderr,
        )


# --------------------------------------------------------------------------------------------
# Checkpoints, pictures, evaluation: the loop's scheduled steps
# --------------------------------------------------------------------------------------------
def _torch_rng_state() -> dict:
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def save_run(
    path: Path,
    cfg: TrainConfig,
    info: EnvInfo,
    clock: Clock,
    learner,
    disc: DiscriminatorLearner | None,
    rng: np.random.Generator,
) -> None:
    """Writes the checkpoint: everything a resumed run needs, tensors and plain values only."""
    save_checkpoint(
        path,
        {
            "config": cfg.to_dict(),
            "iteration": clock.iteration,
            "frames": clock.frames,
            "elapsed": clock.elapsed(),
            "learner": learner.state_dict(),
            "discriminator": None if disc is None else disc.state_dict(),
            "rng": rng.bit_generator.state,
            "torch_rng": _torch_rng_state(),
            "env": {
                "env_id": cfg.env_id,
                "env_kwargs": cfg.env_kwargs,
                "image_shape": info.image_shape,
                "conditional": info.conditional,
                "max_step": info.max_step,
            },
            "net_config": dataclasses.asdict(cfg.net),
        },
    )


def restore_run(
    path: Path,
    learner,
    disc: DiscriminatorLearner | None,
    rng: np.random.Generator,
    device: torch.device,
    stage: str = "rl",
) -> Clock:
    """Loads a checkpoint into the learners and generators; the clock it had.

    Raises:
        ValueError: the checkpoint is another stage's (``--resume`` continues a run as it was).
    """
    ck = load_agent_checkpoint(path, map_location=device)
    theirs, mine = ck["config"].get("stage", "rl"), stage
    if theirs != mine:
        raise ValueError(
            f"--resume: {path} is a '{theirs}' stage and this run is '{mine}'; resume it with "
            f"--stage {theirs}, or start the new stage in another --out_dir (with --init_from)"
        )
    learner.load_state_dict(ck["learner"])
    if disc is not None:
        disc.load_state_dict(ck["discriminator"])
    rng.bit_generator.state = ck["rng"]
    torch.set_rng_state(ck["torch_rng"]["torch"])
    if "cuda" in ck["torch_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ck["torch_rng"]["cuda"])
    print(f"resumed {path} at iteration {ck['iteration']}, {ck['frames']} frames")
    return Clock(ck["iteration"], ck["frames"], ck["elapsed"])


def save_pictures(out: Path, rollout: Rollout, frames: int) -> None:
    """The latest sample grid and episode GIF, and a dated copy of the grid."""
    save_grid(out / "samples.png", rollout.canvases[-1], rollout.targets)
    save_grid(out / "samples" / f"frames_{frames:09d}.png", rollout.canvases[-1], rollout.targets)
    target = None if rollout.targets is None else rollout.targets[0]
    save_episode_gif(out / "episode.gif", rollout.canvases[:, 0], target)


def held_out_metrics(
    policy, envs, cfg: TrainConfig, device: torch.device, constant: np.ndarray | None
) -> dict[str, float]:
    """``eval/l2``, ``eval/psnr``, ``eval/blank_l2`` on the test split's episodes, and beside
    the ``constant`` image ``eval/constant_l2`` and ``eval/normalised``."""
    ev, _, _ = evaluate_policy(
        policy,
        envs,
        cfg.eval_episodes,
        EVAL_SEED,
        device,
        precision=cfg.precision,
        constant=constant,
    )
    return {f"eval/{k}": v for k, v in ev.items() if k != "episodes"}


def batch_charts(rollout: Rollout, scores: np.ndarray, clock: Clock) -> dict[str, float]:
    return {
        "charts/l2": image_metrics([rollout], rollout.actions.shape[1]).get("l2", float("nan")),
        "charts/score": float(scores.mean()),
        "charts/fps": clock.fps(),
        "charts/wall_s": clock.elapsed(),
        "charts/iteration": clock.iteration,
    }


def _progress_bar(cfg: TrainConfig, clock: Clock):
    from tqdm import tqdm

    total = cfg.total_steps or None  # a time budget alone: count frames without a total
    return tqdm(
        total=total,
        initial=min(clock.frames, total or clock.frames),
        unit="frame",
        dynamic_ncols=True,
        file=sys.stdout,
    )


def _bar_postfix(m: dict, cfg: TrainConfig, clock: Clock) -> dict[str, str]:
    post = {
        "fps": f"{m['charts/fps']:.0f}",
        "lag": f"{m['charts/policy_lag']:.0f}",
        "l2": f"{m['charts/l2']:.4f}",
        "ret": f"{m['charts/return']:.3f}",
    }
    if cfg.max_minutes:
        post["min"] = f"{clock.elapsed() / 60:.1f}/{cfg.max_minutes:g}"
    return post


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> dict[str, Any]:
    """Trains an agent as ``cfg`` says; returns the final metrics (also in ``metrics.json``).

    Raises:
        ValueError: a reward the env cannot give, or bad env kwargs (nothing is written).
        NonFiniteLossError: NaN or inf in a loss; the last good checkpoint is kept.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    cfg = cfg.replace(precision=resolve_precision(cfg.precision, device))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    info = probe_env(cfg.env_id, cfg.env_kwargs)
    policy = build_policy(cfg.net, info, device)
    learner = build_learner(cfg, policy, device)
    out = Path(cfg.out_dir)
    ckpt = out / CHECKPOINT
    metrics: dict[str, float] = {}
    with ExitStack() as stack:  # all teardown, on every path
        disc = build_discriminator(cfg, info, device)
        if disc is not None:
            stack.callback(disc.close)  # its Ray actor, with disc_placement 'actor'
        clock = Clock()
        if cfg.resume:
            if not ckpt.exists():
                raise FileNotFoundError(f"resume: no checkpoint at {ckpt} to continue")
            clock = restore_run(ckpt, learner, disc, rng, device, cfg.programs.stage)
        elif cfg.programs.init_from:  # an earlier stage's policy
            carried = load_init(cfg, policy, device, disc)
            if cfg.progress:
                print(f"spiral-train: {carried}", file=sys.stderr)
        source = build_rollouts(cfg, policy, rng, device, learner.version, disc)
        stack.callback(source.close)
        eval_envs, constant = None, None
        if cfg.eval_every:
            eval_kw = split_kwargs(cfg.env_id, cfg.env_kwargs, "test")
            eval_envs = make_envs(cfg.env_id, min(cfg.num_envs, cfg.eval_episodes), eval_kw)
            stack.callback(eval_envs.close)
            constant = constant_image(cfg.env_id, cfg.env_kwargs)
        out.mkdir(parents=True, exist_ok=True)
        logger = RunLogger(out, tensorboard=cfg.tensorboard)
        stack.callback(logger.close)
        if cfg.resume:
            logger.truncate_after(clock.frames)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        bar = _progress_bar(cfg, clock) if cfg.progress else None
        if bar is not None:
            stack.callback(bar.close)
        clock.start()
        rollout, lags = None, PolicyLag()
        stop = stack.enter_context(StopOnCtrlC())
        try:
            while not clock.done(cfg) and not stop.requested:
                # act, score, learn: one A2C step, then the critic's
                rollout = source.next()
                lag = learner.version - rollout.policy_version  # updates behind the learner
                lags.add(lag)
                rewards, scores = compute_rewards(rollout, cfg.rewards, info.action_spec, disc)
                m = learner.update(rollout, rewards, progress=clock.progress(cfg))
                source.set_weights(policy.state_dict(), learner.version)
                if disc is not None:
                    m.update(disc.step(rollout))
                clock.tick(rollout.frames)
                m.update(batch_charts(rollout, scores, clock))
                m["charts/policy_lag"] = float(lag)
                # on their schedules: held-out evaluation, logs, pictures, checkpoints
                evaluated = eval_envs is not None and clock.iteration % cfg.eval_every == 0
                if evaluated:
                    m.update(held_out_metrics(policy, eval_envs, cfg, device, constant))
                metrics = m
                if evaluated or clock.iteration % cfg.log_every == 0:
                    logger.log(clock.frames, {**m, **lags.pop()})
                if cfg.sample_every and clock.iteration % cfg.sample_every == 0:
                    save_pictures(out, rollout, clock.frames)
                if clock.iteration % cfg.checkpoint_every == 0:
                    save_run(ckpt, cfg, info, clock, learner, disc, rng)
                if bar is not None:
                    bar.update(rollout.frames)
                    bar.set_postfix(_bar_postfix(m, cfg, clock))
        except NonFiniteLossError as e:
            kept = f"the last good checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint yet"
            raise NonFiniteLossError(
                f"training stopped at iteration {clock.iteration}, {clock.frames} frames: {e}; "
                f"{kept}"
            ) from e
        # the end: checkpoint, pictures, a last held-out evaluation
        save_run(ckpt, cfg, info, clock, learner, disc, rng)
        if rollout is not None:
            save_pictures(out, rollout, clock.frames)
        if eval_envs is not None:
            metrics = {**metrics, **held_out_metrics(policy, eval_envs, cfg, device, constant)}
            logger.log(clock.frames, metrics)
    summary = {
        "frames": clock.frames,
        "iterations": clock.iteration,
        "wall_s": clock.elapsed(),
        "interrupted": stop.requested,
        **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    return summary


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spiral-train",
        description=__doc__.split("\n\n")[0],
        epilog="Every option is a field of agents.config.TrainConfig; docs/agents.md explains "
        "the defaults.",
    )
    p.add_argument("--config", help="JSON file of config fields (command-line flags override)")
    add_config_arguments(p)
    return p


def _resume_base(args: argparse.Namespace, base: TrainConfig | None) -> TrainConfig | None:
    """With ``--resume``: the saved run's config (flags given now override it)."""
    out_dir = getattr(args, "out_dir", None) or (base or TrainConfig).out_dir
    ck = Path(out_dir) / CHECKPOINT
    if not ck.exists():
        raise FileNotFoundError(
            f"--resume: no checkpoint at {ck}: give the --out_dir of the run to continue, or "
            "leave out --resume to start a new run"
        )
    return TrainConfig.from_dict(load_agent_checkpoint(ck)["config"])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        base = None
        if args.config:
            base = TrainConfig.from_dict(json.loads(Path(args.config).read_text()))
        if getattr(args, "resume", False):
            base = _resume_base(args, base)
        cfg = config_from_args(args, base)
        summary = train(cfg)
    except (ValueError, FileNotFoundError, UnsafeCheckpointError) as e:
        print(f"spiral-train: error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(f"spiral-train: {e}", file=sys.stderr)
        return 1
    if summary["interrupted"]:
        print(
            f"spiral-train: stopped by Ctrl-C at {summary['frames']} frames; continue with: "
            f"spiral-train --out_dir {cfg.out_dir} --resume",
            file=sys.stderr,
        )
    keys = ["frames", "wall_s", "charts/fps", "charts/l2", "eval/l2", "eval/psnr"]
    keys += ["eval/constant_l2", "eval/normalised", "charts/return"]
    print("final metrics: " + ", ".join(f"{k}={summary[k]:.4g}" for k in keys if k in summary))
    print(
        f"outputs in {os.path.abspath(cfg.out_dir)}: samples.png, episode.gif, progress.csv, "
        f"{CHECKPOINT}"
    )
    return 130 if summary["interrupted"] else 0  # 128 + SIGINT, as shells report it


if __name__ == "__main__":
    sys.exit(main())
