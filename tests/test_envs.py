"""Registry-wide environment tests: every registered id gets the same checks."""

from __future__ import annotations

import json
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import ALL_IDS, env_kwargs
from gymnasium.utils.env_checker import check_env

import spiral_envs
from spiral_envs import ImageDataset


def rollout(env, seed: int, n: int):
    """Seeded reset + n seeded random actions; returns the list of (obs, reward, term, info)."""
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [(obs, 0.0, False, info)]
    for _ in range(n):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((obs, reward, terminated, info))
        if terminated or truncated:
            obs, info = env.reset()
            out.append((obs, 0.0, False, info))
    return out


def assert_same(a, b):
    for (o1, r1, t1, i1), (o2, r2, t2, i2) in zip(a, b, strict=True):
        assert o1.keys() == o2.keys()
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k])
        assert (r1, t1) == (r2, t2)
        assert i1 == i2


def test_registry_lists_every_family():
    assert {
        "SpiralPaint-MNIST-v0",
        "SpiralPaint-Omniglot-v0",
        "SpiralPaint-CelebA-v0",
        "SpiralPaint-Faces-v0",
    } <= set(spiral_envs.ENV_IDS)
    for env_id in spiral_envs.ENV_IDS:
        assert env_id in gym.registry
        if not env_id.endswith("-Cond-v0"):
            assert env_id.replace("-v0", "-Cond-v0") in spiral_envs.ENV_IDS


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_without_warnings(env_id, make_env):
    env = make_env(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_spaces_and_spec(env_id, make_env):
    env = make_env(env_id)
    spec = env.unwrapped.action_spec
    assert isinstance(env.action_space, gym.spaces.MultiDiscrete)
    np.testing.assert_array_equal(env.action_space.nvec, spec.nvec)
    obs_space = env.observation_space
    assert obs_space["canvas"].dtype == np.uint8 and obs_space["canvas"].shape[-1] in (1, 3)
    assert ("target" in obs_space.spaces) == env_id.endswith("-Cond-v0")
    # The spec round-trips through JSON and makes the same env again.
    spec_json = env.spec.to_json()
    again = gym.make(gym.envs.registration.EnvSpec.from_json(spec_json))
    assert again.observation_space == env.observation_space
    again.close()
    json.dumps(spec.describe())


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_seeded_determinism(env_id, make_env):
    n = 2 * 20 + 3  # crosses two episode ends
    assert_same(rollout(make_env(env_id), 7, n), rollout(make_env(env_id), 7, n))
    # Another seed gives another episode (targets and/or actions differ).
    first, other = rollout(make_env(env_id), 1, 5), rollout(make_env(env_id), 2, 5)
    assert any(not np.array_equal(a[0][k], b[0][k]) for a, b in zip(first, other) for k in a[0])


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_pickle_mid_episode(env_id, make_env):
    env = make_env(env_id)
    env.action_space.seed(3)
    env.reset(seed=3)
    for _ in range(2):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(25):  # crosses episode ends: the pickled RNG gives the same next targets
        a = env.action_space.sample()
        o1, r1, t1, _, i1 = env.step(a)
        o2, r2, t2, _, i2 = clone.step(a)
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k])
        assert (r1, t1) == (r2, t2)
        assert i1.keys() == i2.keys()
        if t1:
            (o1, i1), (o2, i2) = env.reset(), clone.reset()
            for k in o1:
                np.testing.assert_array_equal(o1[k], o2[k])
    clone.close()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_observations_share_no_memory(env_id, make_env):
    env = make_env(env_id)
    obs0, _ = env.reset(seed=0)
    obs1, *_ = env.step(env.action_space.sample())
    obs2, *_ = env.step(env.action_space.sample())
    for k in obs1:
        assert not np.shares_memory(obs1[k], obs2[k])
        assert not np.shares_memory(obs0[k], obs1[k])
    # Scribbling on a returned observation does not touch the env's state.
    before = obs2["canvas"].copy()
    obs2["canvas"][:] = 0
    if "target" in obs2:
        obs2["target"][:] = 0
    obs3, *_ = env.step(np.zeros_like(env.action_space.sample()))  # a move: canvas unchanged
    np.testing.assert_array_equal(obs3["canvas"], before)
    if "target" in obs3:
        assert obs3["target"].max() > 0


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_render_rgb_array(env_id, make_env):
    env = make_env(env_id, render_mode="rgb_array", render_size=96)
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    frame = env.render()
    width = 96 * (2 if env_id.endswith("-Cond-v0") else 1)
    assert frame.dtype == np.uint8 and frame.shape[:2] == (96, width) and frame.shape[2] == 3


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_sync_vector_env(env_id, celeba_dir):
    envs = gym.make_vec(
        env_id, num_envs=2, vectorization_mode="sync", **env_kwargs(env_id, celeba_dir)
    )
    obs, _ = envs.reset(seed=0)
    assert obs["canvas"].shape[0] == 2
    for _ in range(3):
        obs, rewards, terminated, truncated, infos = envs.step(envs.action_space.sample())
    assert rewards.shape == (2,)
    envs.close()


@pytest.mark.parametrize("env_id", ["SpiralPaint-MNIST-Cond-v0", "SpiralPaint-Faces-v0"])
def test_async_vector_env_matches_sync(env_id):
    kwargs = dict(num_envs=2)
    sync = gym.make_vec(env_id, vectorization_mode="sync", **kwargs)
    asyn = gym.make_vec(
        env_id, vectorization_mode="async", vector_kwargs={"context": "spawn"}, **kwargs
    )
    o1, _ = sync.reset(seed=5)
    o2, _ = asyn.reset(seed=5)
    sync.action_space.seed(5)
    for _ in range(21):  # crosses the autoreset
        a = sync.action_space.sample()
        o1, r1, t1, _, _ = sync.step(a)
        o2, r2, t2, _, _ = asyn.step(a)
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k])
        np.testing.assert_array_equal(t1, t2)
    sync.close()
    asyn.close()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_dataset_is_an_image_dataset(env_id, make_env):
    env = make_env(env_id)
    data = env.unwrapped.dataset
    assert isinstance(data, ImageDataset)
    canvas_shape = env.observation_space["canvas"].shape
    assert tuple(data.image_shape) == canvas_shape and len(data) > 0
    batch = data.sample(np.random.default_rng(0), 3)
    assert batch.shape == (3, *canvas_shape) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch, data.sample(np.random.default_rng(0), 3))
    assert data[0].shape == canvas_shape and data[0].dtype == np.uint8


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_program_round_trips_through_json_after_an_episode(env_id, make_env):
    env = make_env(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    terminated = False
    while not terminated:
        a = env.action_space.sample()
        a[0] = 1  # paint / place every step, so the program is not empty
        _, _, terminated, _, _ = env.step(a)
    program = env.unwrapped.program
    assert len(program.to_dict()["steps" if "Paint" in env_id else "objects"]) > 0
    again = type(program).from_dict(json.loads(json.dumps(program.to_dict())))
    assert again == program
    assert type(program).from_json(program.to_json()) == program
    with pytest.raises(ValueError, match="format"):
        type(program).from_dict({**program.to_dict(), "format": "something-else"})
