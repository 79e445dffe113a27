"""The RLlib recipe (``examples/rllib_ppo.py``, ``docs/rllib.md``) with RLlib's new API stack.

Skipped unless RLlib is installed: ``ray[rllib]`` pins its own gymnasium (2.60.0 installs 1.2.2),
so it is in none of the project's extras. Run it in a venv of its own::

    pip install -e ".[torch]" "ray[rllib]==2.60.0" torch==2.13.0 pytest
    pytest tests/test_rllib.py
"""

from __future__ import annotations

import importlib.util
import json
import re

import gymnasium as gym
import numpy as np
import pytest
from conftest import ROOT, run_script

pytest.importorskip("ray.rllib")
pytest.importorskip("torch")

import spiral_envs  # noqa: E402, F401

ENV = "SpiralBench-MNIST-Cond-v0"


def load_example():
    spec = importlib.util.spec_from_file_location("rllib_ppo", ROOT / "examples" / "rllib_ppo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_wrapped_env_gives_rllib_a_flat_float_vector_the_policy_rebuilds():
    example = load_example()
    env = example.make_env({"env_id": ENV})
    obs, _ = env.reset(seed=3)
    assert env.observation_space.dtype == np.float32 and obs.dtype == np.float32
    assert obs.shape == (2 * 64 * 64 + 1,) and 0 <= obs.min() and obs.max() <= 1
    assert env.observation_space.contains(obs)
    # the policy given to score() sees the plain Dict observation: the same transform
    plain = gym.make(ENV)
    dict_obs, _ = plain.reset(seed=3)
    np.testing.assert_array_equal(example.observation_transform(env)(dict_obs), obs)
    env.close()
    plain.close()


def test_ppo_samples_env_steps_and_its_policy_is_scored():
    # one tiny iteration on one remote env runner (the env creator travels to another process)
    result = run_script(
        "examples/rllib_ppo.py",
        *("--iterations", 1, "--batch", 40, "--hidden", 16, "--episodes", 4),
        *("--env-id", ENV, "--env-runners", 1),
    )
    steps = re.search(r"^iteration 1: (\d+) env steps", result.stdout, re.M)
    assert steps and int(steps.group(1)) >= 40, result.stdout
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["env_id"] == ENV and scores["episodes"] == 4
    assert 0 < scores["l2"] and np.isfinite(scores["normalised"])
