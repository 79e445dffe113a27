"""stable-baselines3 trains on every paint id unchanged (smoke runs)."""

from __future__ import annotations

import gymnasium as gym
import pytest
from conftest import PAINT_IDS, env_kwargs, learn_and_act

import spiral_envs  # noqa: F401

sb3 = pytest.importorskip("stable_baselines3")


@pytest.mark.parametrize("algo", ["PPO", "A2C"])
@pytest.mark.parametrize("env_id", PAINT_IDS)
def test_sb3_learns_without_changes(env_id, algo, celeba_dir):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id, **env_kwargs(env_id, celeba_dir))
    sb3_check_env(env, warn=True)
    kwargs = {"n_steps": 16, "batch_size": 16} if algo == "PPO" else {"n_steps": 8}
    learn_and_act(env, algo, 32, **kwargs)
