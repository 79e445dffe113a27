"""The benchmark ids, continuous actions, and what users of other RL libraries run into (issue 12).

* :class:`~spiral_envs.wrappers.ContinuousActions`: every choice reachable, the boundaries -1 and
  +1 included, and ``discrete_to_box`` its inverse on the discrete actions;
* stable-baselines3's SAC, TD3 and PPO on the ``-Box`` ids (paint and scene), and its
  ``check_env``;
* every wrapper's spec through ``to_json()`` and back into ``gym.make``, and pickling;
* ``make_vec_env`` logs the true episode rewards of a ``SpiralBench-*`` id;
* ``FlattenObservation`` keeps the observation uint8.
"""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import learn_and_act
from gymnasium.envs.registration import EnvSpec

import spiral_envs
from spiral_envs.rewards import change_similarity, l2_distance
from spiral_envs.wrappers import ContinuousActions, DiscriminatorReward, L2Reward, SimilarityReward

BENCH_IDS = list(spiral_envs.BENCH_IDS)
BOX_IDS = [i for i in BENCH_IDS if i.endswith("-Box-v0")]
SCENE_SKIP = np.zeros(7, np.int64)

#: env id -> the Box dimensions ContinuousActions gives it.
DIM_NAMES = {
    "SpiralPaint-MNIST-Cond-v0": (
        "flag",
        *("end_x", "end_y", "control_x", "control_y"),
        *("size", "pressure"),
    ),
    "SpiralPaint-Faces-v0": (
        "flag",
        *("end_x", "end_y", "control_x", "control_y"),
        *("size", "pressure", "red", "green", "blue"),
    ),
    "SpiralMuJoCo-Scene-v0": (
        *("flag", "type", "position_x", "position_y"),
        *("size", "red", "green", "blue"),
    ),
}


@pytest.fixture(scope="module", params=list(DIM_NAMES))
def continuous(request):
    env = ContinuousActions(gym.make(request.param))
    yield request.param, env
    env.close()


def _choice(env: ContinuousActions, dim: int, value: float) -> int:
    """The choice Box dimension ``dim`` at ``value`` selects (column / row of a spatial one)."""
    box = np.zeros(env.action_space.shape, np.float32)
    box[dim] = value
    action = env.box_to_discrete(box)
    name = env.dim_names[dim]
    base = name.removesuffix("_x").removesuffix("_y")
    spec = env.action_spec
    if base != name and base in spec and spec[base].spatial:
        cols = spec[base].grid[1]
        value = action[spec.index(base)]
        return int(value % cols if name.endswith("_x") else value // cols)
    return int(action[spec.index(name)])


# -- the continuous mapping -------------------------------------------------------------------
def test_box_layout_is_named_from_the_action_spec(continuous):
    env_id, env = continuous
    assert env.dim_names == DIM_NAMES[env_id]
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (len(DIM_NAMES[env_id]),), np.float32)
    # the observation is the env's, untouched
    assert env.observation_space == env.env.observation_space


def test_every_choice_is_reachable_boundaries_included(continuous):
    _, env = continuous
    for dim, n in enumerate(env._bins):
        n = int(n)
        assert _choice(env, dim, -1.0) == 0 and _choice(env, dim, 1.0) == n - 1
        # SAC/TD3 emit exactly +-1, PPO's Gaussian goes beyond: clipped onto the end bins
        assert _choice(env, dim, -7.5) == 0 and _choice(env, dim, 3.0) == n - 1
        sweep = [_choice(env, dim, v) for v in np.linspace(-1, 1, 4 * n + 1, dtype=np.float32)]
        assert sweep == sorted(sweep) and set(sweep) == set(range(n)), env.dim_names[dim]
        # equal-width bins: choice i covers [-1 + 2i/n, -1 + 2(i+1)/n)
        inside = (np.arange(n) + 0.25) * 2 / n - 1
        assert [_choice(env, dim, v) for v in inside] == list(range(n))


def test_discrete_to_box_is_the_inverse_on_discrete_actions(continuous):
    _, env = continuous
    spec = env.action_spec
    rng = np.random.default_rng(0)
    actions = [spec.space(seed=1).sample() for _ in range(50)]
    for k, c in enumerate(spec.components):  # every value of every sub-action
        for v in range(c.size):
            a = actions[int(rng.integers(len(actions)))].copy()
            a[k] = v
            actions.append(a)
    for a in actions:
        box = env.discrete_to_box(a)
        assert box.dtype == np.float32 and env.action_space.contains(box)
        np.testing.assert_array_equal(env.box_to_discrete(box), a)
    # the bin centres of a 2-choice flag and of the 32-column end point
    if "end_x" in env.dim_names:
        box = env.discrete_to_box(np.array([1, 31, 0, 0, 0, *([0] * (len(spec) - 5))]))
        np.testing.assert_allclose(box[:3], [0.5, 1 - 1 / 32, -1 + 1 / 32])


def test_continuous_actions_step_the_env_as_the_discrete_action():
    box_env = gym.make("SpiralBench-MNIST-Cond-Box-v0")
    md_env = gym.make("SpiralBench-MNIST-Cond-v0")
    assert isinstance(box_env, ContinuousActions)
    box_env.action_space.seed(0)
    (o1, _), (o2, _) = box_env.reset(seed=4), md_env.reset(seed=4)
    for _ in range(6):
        box = box_env.action_space.sample()
        box[[0, 1]] = 1.0  # paint, at the right edge
        o1, r1, *_ = box_env.step(box)
        o2, r2, *_ = md_env.step(box_env.box_to_discrete(box))
        np.testing.assert_array_equal(o1["canvas"], o2["canvas"])
        assert r1 == r2
    box_env.close(), md_env.close()


def test_continuous_actions_bad_input():
    env = ContinuousActions(gym.make("SpiralPaint-MNIST-Cond-v0"))
    with pytest.raises(ValueError, match=r"accepted shape \(7,\)"):
        env.step(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"not finite in \['end_y'\]"):
        env.step(np.array([1, 0, np.nan, 0, 0, 0, 0], np.float32))
    with pytest.raises(ValueError, match="'end' = 1024 is outside the action space"):
        env.discrete_to_box([1, 1024, 0, 0, 0])
    with pytest.raises(ValueError, match="needs an env with an ActionSpec"):
        ContinuousActions(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="scale must be a number >= 0"):
        L2Reward(gym.make("SpiralPaint-MNIST-Cond-v0"), scale=-1.0)


# -- stable-baselines3 ------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", BOX_IDS)
def test_sb3_check_env_is_clean_on_the_box_ids(env_id, make_env):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_checker import check_env

    env = make_env(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, warn=True)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize(
    "env_id", ["SpiralBench-MNIST-Cond-Box-v0", "SpiralBench-Scene-Cond-Box-v0"]
)
@pytest.mark.parametrize("algo", ["SAC", "TD3", "PPO"])
def test_sb3_continuous_algorithms_run_unchanged(algo, env_id):
    pytest.importorskip("stable_baselines3")
    env = gym.make(env_id)
    if algo == "PPO":
        kwargs = {"n_steps": 32, "batch_size": 8, "n_epochs": 1}
    else:
        kwargs = {"buffer_size": 200, "learning_starts": 32, "batch_size": 8}
    learn_and_act(env, algo, 64, **kwargs)


def _episode_returns(vec, actions: list[np.ndarray]) -> list[tuple[float, float, dict]]:
    """Steps an SB3 VecEnv of one env; per finished episode: the Monitor's return, the sum of
    the rewards the VecEnv returned, and the last step's info."""
    vec.reset()
    out, total = [], 0.0
    for a in actions:
        _, rewards, dones, infos = vec.step(a[None])
        total += float(rewards[0])
        if dones[0]:
            out.append((infos[0]["episode"]["r"], total, infos[0]))
            total = 0.0
    return out


def test_make_vec_env_logs_the_true_rewards_of_a_bench_id():
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env("SpiralBench-MNIST-Cond-v0", n_envs=2, seed=0)
    model = sb3.PPO("MultiInputPolicy", vec, n_steps=20, batch_size=20, n_epochs=1, device="cpu")
    model.learn(total_timesteps=40)
    returns = [ep["r"] for ep in model.ep_info_buffer]
    assert len(returns) == 2 and all(r != 0 for r in returns)
    vec.close()


def test_make_vec_env_recipes_for_a_reward():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env

    env_id, reward = "SpiralPaint-MNIST-Cond-v0", {"mode": "per_step", "scale": 10.0}
    space = gym.spaces.MultiDiscrete(gym.make(env_id).action_space.nvec, seed=0)
    actions = [space.sample() for _ in range(40)]
    bench = _episode_returns(make_vec_env("SpiralBench-MNIST-Cond-v0", 1, seed=0), actions)
    inside = _episode_returns(
        make_vec_env(lambda: L2Reward(gym.make(env_id), **reward), 1, seed=0), actions
    )
    # wrapper_class is applied outside SB3's Monitor, which then logs the env's reward, 0
    outside = _episode_returns(
        make_vec_env(env_id, 1, seed=0, wrapper_class=L2Reward, wrapper_kwargs=reward), actions
    )
    assert len(bench) == len(inside) == len(outside) == 2
    for (b, b_sum, info), (i, _, _), (o, o_sum, _) in zip(bench, inside, outside):
        target = info["terminal_observation"]["target"]
        blank_l2 = float(l2_distance(np.full_like(target, 255), target))
        assert b == pytest.approx(10 * (blank_l2 - info["l2"]), abs=1e-4) and b != 0
        assert b == pytest.approx(b_sum, abs=1e-4) and i == pytest.approx(b, abs=1e-5)
        assert o == 0.0 and o_sum == pytest.approx(b, abs=1e-4)


# -- specs ------------------------------------------------------------------------------------
WRAPPED = {
    "L2Reward": lambda make: L2Reward(make("SpiralPaint-MNIST-Cond-v0")),
    "L2Reward-delta": lambda make: L2Reward(make("SpiralPaint-MNIST-Cond-v0"), "delta", 3),
    "SimilarityReward": lambda make: SimilarityReward(
        make("SpiralPaint-Omniglot-Cond-v0"), mode="final", sigmas=(0, 1)
    ),
    "ContinuousActions": lambda make: ContinuousActions(make("SpiralPaint-Faces-v0")),
    "ContinuousActions-L2Reward": lambda make: ContinuousActions(
        L2Reward(make("SpiralPaint-MNIST-Cond-v0"), mode="per_step")
    ),
    **{env_id: (lambda make, env_id=env_id: make(env_id)) for env_id in BENCH_IDS},
}


def _stack(env: gym.Env) -> list[str]:
    names = []
    while isinstance(env, gym.Wrapper):
        names.append(type(env).__name__)
        env = env.env
    return names


def _same_steps(a: gym.Env, b: gym.Env, n: int = 2) -> None:
    a.action_space.seed(2)
    for _ in range(n):
        action = a.action_space.sample()
        o1, r1, t1, _, _ = a.step(action)
        o2, r2, t2, _, _ = b.step(action)
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k])
        assert (r1, t1) == (r2, t2)


@pytest.mark.parametrize("name", list(WRAPPED))
def test_every_wrapper_spec_round_trips_through_json_and_pickles(name, make_env):
    env = WRAPPED[name](make_env)
    spec_json = env.spec.to_json()
    again = gym.make(EnvSpec.from_json(spec_json))
    assert again.spec.to_json() == spec_json and _stack(again) == _stack(env)
    assert again.action_space == env.action_space
    assert again.observation_space == env.observation_space
    env.reset(seed=1), again.reset(seed=1)
    _same_steps(env, again)
    clone = pickle.loads(pickle.dumps(env))
    _same_steps(env, clone)
    again.close(), clone.close()


def test_bench_ids_are_registered_with_their_wrappers():
    for env_id in BENCH_IDS:
        assert env_id in gym.registry and env_id not in spiral_envs.ENV_IDS
        wrappers = [w.name for w in gym.spec(env_id).additional_wrappers]
        reward = "SimilarityReward" if "Scene" in env_id else "L2Reward"
        assert wrappers == [reward, *(["ContinuousActions"] if "-Box-" in env_id else [])]
    env = gym.make("SpiralBench-MNIST-Cond-v0")
    assert env.spec.additional_wrappers == gym.spec("SpiralBench-MNIST-Cond-v0").additional_wrappers
    # gym.make_vec picks the sync vector env (a vector entry point cannot apply wrappers)
    envs = gym.make_vec("SpiralBench-MNIST-Cond-Box-v0", num_envs=2)
    envs.reset(seed=0)
    _, rewards, *_ = envs.step(envs.action_space.sample())
    assert isinstance(envs, gym.vector.SyncVectorEnv) and rewards.shape == (2,)
    envs.close(), env.close()


class Critic:
    """Stands in for a learned critic: an object JSON cannot hold."""

    def __call__(self, canvases, targets=None):
        return (255 - np.asarray(canvases, np.float32)).mean(axis=(1, 2, 3))


def test_discriminator_reward_records_its_critic_itself():
    critic = Critic()
    env = DiscriminatorReward(gym.make("SpiralPaint-MNIST-v0"), critic, mode="per_step")
    # not a copy: the spec's critic is the live one, and a big critic is not duplicated
    assert env.spec.additional_wrappers[-1].kwargs["discriminator"] is critic
    with pytest.raises(TypeError, match="Object of type Critic is not JSON serializable"):
        env.spec.to_json()
    again = gym.make(env.spec)  # no JSON: remade with the same critic
    assert again.discriminator is critic
    env.reset(seed=0), again.reset(seed=0)
    _same_steps(env, again)
    _same_steps(env, pickle.loads(pickle.dumps(env)))


# -- the scene benchmark reward ---------------------------------------------------------------
def test_scene_bench_reward_is_the_change_similarity():
    env = gym.make("SpiralBench-Scene-Cond-Box-v0")
    # playing the target's program (through the Box actions) copies it: similarity 1
    obs, _ = env.reset(seed=1)
    truth = env.unwrapped.target_program
    actions = [o.to_action() for o in truth.objects] + [SCENE_SKIP] * (5 - len(truth))
    rewards = []
    for a in actions:
        obs, reward, terminated, _, info = env.step(env.discrete_to_box(a))
        rewards.append(reward)
    assert terminated and np.array_equal(obs["canvas"], obs["target"])
    assert sum(rewards) == pytest.approx(1.0, abs=1e-5)
    # per-step rewards: they sum to the final canvas's similarity (the empty floor scores 0)
    obs, _ = env.reset(seed=2)
    blank = obs["canvas"]
    env.action_space.seed(0)
    total, terminated = 0.0, False
    while not terminated:
        obs, reward, terminated, _, info = env.step(env.action_space.sample())
        total += reward
    final = float(change_similarity(obs["canvas"], obs["target"], blank))
    assert total == pytest.approx(final, abs=1e-5) and info["score"] == pytest.approx(final)
    env.close()


# -- observations -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "env_id",
    ["SpiralPaint-MNIST-Cond-v0", "SpiralMuJoCo-Scene-Cond-v0", "SpiralBench-Faces-Cond-v0"],
)
def test_flatten_observation_keeps_uint8(env_id):
    env = gym.make(env_id)
    assert env.observation_space["step"] == gym.spaces.Box(
        0, env.unwrapped.episode_length, (1,), np.uint8
    )
    flat = gym.wrappers.FlattenObservation(env)
    assert flat.observation_space.dtype == np.uint8
    obs, _ = flat.reset(seed=0)
    obs, *_ = flat.step(flat.action_space.sample())
    assert obs.dtype == np.uint8 and flat.observation_space.contains(obs)
    step = gym.spaces.unflatten(env.observation_space, obs)["step"]
    assert step.tolist() == [1]
    flat.close()


def test_change_similarity_blurs_on_one_blas_thread_and_gives_the_threads_back(monkeypatch):
    # the blurs are small matrix products, many times slower on several BLAS threads beside
    # the renderer's threads (benchmarks/bench_scene.py); the caller's setting must come back
    from threadpoolctl import threadpool_info, threadpool_limits

    import spiral_envs.rewards as rewards

    def blas_threads() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    seen, blur = [], rewards._gaussian_blur

    def spy(x, sigma):
        seen.append(blas_threads())
        return blur(x, sigma)

    monkeypatch.setattr(rewards, "_gaussian_blur", spy)
    blank = np.full((1, 16, 16, 3), 200, np.uint8)
    target = blank.copy()
    target[:, 4:8, 4:8] = 0
    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}
        assert change_similarity(target, target, blank)[0] == pytest.approx(1.0)
        assert blas_threads() == {2}
    assert seen and all(s == {1} for s in seen)
