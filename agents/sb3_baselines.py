"""The stable-baselines3 baselines of ``spiral-bench``: A2C, PPO and SAC on a benchmark id."""

from __future__ import annotations

import time

import stable_baselines3 as sb3
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

__all__ = ["WallClock", "train_sb3"]

ALGOS = {"a2c": sb3.A2C, "ppo": sb3.PPO, "sac": sb3.SAC}


class WallClock(BaseCallback):
    """Stops training after ``minutes`` of wall-clock (0: never)."""

    def __init__(self, minutes: float) -> None:
        super().__init__()
        self.minutes = minutes
        self.deadline = float("inf")

    def _on_training_start(self) -> None:
        if self.minutes > 0:
            self.deadline = time.monotonic() + self.minutes * 60

    def _on_step(self) -> bool:
        return time.monotonic() < self.deadline


def train_sb3(
    env_id: str,
    algo: str,
    n_envs: int,
    kwargs: dict,
    steps: int,
    minutes: float,
    seed: int,
    threads: int,
):
    """Trains ``algo`` (``MultiInputPolicy``) on ``n_envs`` envs of ``env_id`` for ``steps`` env
    steps (0: no limit) or ``minutes`` (0: no limit), whichever ends first; returns the model."""
    torch.set_num_threads(threads)
    vec = make_vec_env(env_id, n_envs, seed=seed)
    model = ALGOS[algo]("MultiInputPolicy", vec, seed=seed, device="cpu", **kwargs)
    try:
        model.learn(total_timesteps=steps if steps > 0 else 10**12, callback=WallClock(minutes))
    finally:
        vec.close()
    return model
