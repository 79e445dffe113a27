"""Tests of the 3D MuJoCo scene environment (issue 4)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest

from spiral_envs import Renderer
from spiral_envs.scene import (
    GLBackendError,
    SceneEnv,
    SceneObject,
    SceneProgram,
    SceneRenderer,
    render_scene,
    sample_scene,
    scene_action_spec,
    score_scene,
    select_gl_backend,
)
from spiral_envs.scene import gl as scene_gl
from spiral_envs.scene.scoring import linear_assignment, pixel_l2

ENTRY_POINT = "spiral_envs.scene.env:SceneEnv"
SCENE_IDS = {"SpiralMuJoCo-Scene-v0": False, "SpiralMuJoCo-Scene-Cond-v0": True}
for _id, _cond in SCENE_IDS.items():
    if _id not in gym.registry:  # until the package registry table lists them
        gym.register(_id, entry_point=ENTRY_POINT, kwargs={"conditional": _cond})

SKIP = np.zeros(7, dtype=np.int64)


def _random_actions(n: int, seed: int) -> list[np.ndarray]:
    space = scene_action_spec().space(seed=seed)
    return [space.sample() for _ in range(n)]


def _rollout(env: gym.Env, seed: int, actions: list[np.ndarray]) -> list:
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for a in actions:
        obs, reward, term, trunc, info = env.step(a)
        out.append((obs, reward, term, trunc, info))
        if term or trunc:
            obs, info = env.reset()
            out.append((obs, info))
    return out


def _assert_same(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


# -- registry-style tests ---------------------------------------------------------------------
@pytest.mark.parametrize("env_id", SCENE_IDS)
def test_check_env_no_warnings(env_id):
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id, render_mode="rgb_array", render_size=96)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    env.close()


@pytest.mark.parametrize("env_id", SCENE_IDS)
def test_spaces_and_spec(env_id):
    env = gym.make(env_id)
    spec = env.unwrapped.action_spec
    assert spec.names == ("flag", "type", "position", "size", "red", "green", "blue")
    assert list(env.action_space.nvec) == [2, 4, 256, 3, 4, 4, 4]
    assert spec["position"].grid == (16, 16)
    assert all(c.gated for c in spec.components[1:]) and not spec["flag"].gated
    keys = {"canvas", "step"} | ({"target"} if SCENE_IDS[env_id] else set())
    assert set(env.observation_space.spaces) == keys
    assert env.observation_space["canvas"].shape == (64, 64, 3)
    assert json.loads(env.spec.to_json())["entry_point"] == ENTRY_POINT
    json.dumps(spec.describe())
    env.close()


@pytest.mark.parametrize("env_id", SCENE_IDS)
def test_seeded_determinism_two_instances(env_id):
    actions = _random_actions(12, seed=3)
    a, b = gym.make(env_id), gym.make(env_id)
    _assert_same(_rollout(a, 7, actions), _rollout(b, 7, actions))
    targets = set()
    for seed in range(4):
        a.reset(seed=seed)
        targets.add(a.unwrapped.target_program.to_json())
    assert len(targets) == 4
    a.close(), b.close()


def test_episode_and_fresh_arrays():
    env = gym.make("SpiralMuJoCo-Scene-Cond-v0", episode_length=3, max_objects=3)
    obs0, _ = env.reset(seed=0)
    assert obs0["step"].dtype == np.uint8 and obs0["step"][0] == 0
    seen = [obs0]
    for t, a in enumerate(_random_actions(3, seed=1), start=1):
        a[0] = 1
        obs, reward, term, trunc, info = env.step(a)
        assert reward == 0.0 and not trunc and term == (t == 3)
        assert obs["step"][0] == t and info["num_objects"] == t and info["placed"]
        for prev in seen:
            for k in obs:
                assert not np.shares_memory(obs[k], prev[k])
        seen.append(obs)
    assert {"l2", "object_accuracy", "count_error", "position_accuracy"} <= set(info)
    assert len(env.unwrapped.program) == 3
    with pytest.raises(RuntimeError, match="reset"):
        env.step(SKIP)
    env.close()


def test_pickle_round_trip_mid_episode():
    env = gym.make("SpiralMuJoCo-Scene-Cond-v0")
    env.reset(seed=5)
    actions = _random_actions(4, seed=2)
    for a in actions[:2]:
        env.step(a)
    clone = pickle.loads(pickle.dumps(env))
    for a in actions[2:]:
        _assert_same(env.step(a), clone.step(a))
    assert clone.unwrapped.program == env.unwrapped.program
    env.close(), clone.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs(mode):
    kwargs = {"vector_kwargs": {"context": "spawn"}} if mode == "async" else {}
    envs = gym.make_vec("SpiralMuJoCo-Scene-Cond-v0", num_envs=2, vectorization_mode=mode, **kwargs)
    single = gym.make("SpiralMuJoCo-Scene-Cond-v0")
    obs, _ = envs.reset(seed=[1, 2])
    ref, _ = single.reset(seed=2)
    assert obs["canvas"].shape == (2, 64, 64, 3) and obs["target"].dtype == np.uint8
    assert not np.array_equal(obs["target"][0], obs["target"][1])
    np.testing.assert_array_equal(obs["target"][1], ref["target"])  # same pixels in a worker
    actions = np.stack([np.stack(_random_actions(5, seed=s)) for s in (0, 1)], axis=1)
    for a in actions:
        obs, rew, term, trunc, info = envs.step(a)
        ref, *_ = single.step(a[1])
    np.testing.assert_array_equal(obs["canvas"][1], ref["canvas"])  # next-step autoreset
    assert term.all() and "l2" in info and info["_l2"].all()
    envs.close(), single.close()


def test_sb3_ppo_smoke():
    sb3 = pytest.importorskip("stable_baselines3")
    env = gym.make("SpiralMuJoCo-Scene-Cond-v0")
    model = sb3.PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    model.learn(total_timesteps=256)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs)
    env.step(action)
    env.close()


# -- rendering --------------------------------------------------------------------------------
def test_renderer_protocol_and_render_mode():
    r = SceneRenderer(32, max_objects=2)
    assert isinstance(r, Renderer)
    blank = r.canvas()
    r.draw(SceneObject(0, 8 * 16 + 8, 2, (3, 0, 0)))
    img = r.canvas()
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and (img != blank).any()
    r.draw(SceneObject(1, 0, 0, (0, 0, 3)))
    with pytest.raises(ValueError, match="max_objects"):
        r.draw(SceneObject(1, 0, 0, (0, 0, 3)))
    r.reset()
    np.testing.assert_array_equal(r.canvas(), blank)
    r.close()

    env = gym.make("SpiralMuJoCo-Scene-v0", render_mode="rgb_array", render_size=80)
    env.reset(seed=0)
    env.step(np.array([1, 1, 100, 2, 0, 3, 0]))
    frame = env.render()
    assert frame.shape == (80, 80, 3) and frame.dtype == np.uint8
    env.close()


def test_known_program_reproduces_target_exactly():
    env = gym.make("SpiralMuJoCo-Scene-Cond-v0")
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        truth = env.unwrapped.target_program
        assert 1 <= len(truth) <= 5
        # a separate renderer (another GL context, another pool size) gives the same pixels
        np.testing.assert_array_equal(render_scene(truth, 64), obs["target"])
        again = SceneProgram.from_json(truth.to_json())
        assert again == truth
        np.testing.assert_array_equal(render_scene(again, 64, quality="fast"), obs["target"])
        # playing the true program, in any order, with skips, reconstructs it perfectly
        actions = [o.to_action() for o in reversed(truth.objects)]
        actions += [SKIP] * (5 - len(actions))
        for a in actions:
            obs, _, term, _, info = env.step(a)
        assert term
        np.testing.assert_array_equal(obs["canvas"], obs["target"])
        assert info["l2"] == 0.0 and info["count_error"] == 0
        for k in ("object", "type", "position", "size", "color"):
            assert info[f"{k}_accuracy"] == 1.0
    big = render_scene(truth, 128, quality="nice")
    assert big.shape == (128, 128, 3)
    env.close()


# -- scoring ----------------------------------------------------------------------------------
def test_linear_assignment_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n, m = (int(x) for x in rng.integers(1, 6, 2))
        cost = rng.integers(0, 4, (n, m)).astype(float) + rng.random((n, m)) * 0.1
        pairs = linear_assignment(cost)
        assert len(pairs) == min(n, m)
        total = sum(cost[i, j] for i, j in pairs)
        if n <= m:
            best = min(
                sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n)
            )
        else:
            best = min(
                sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m)
            )
        assert total == pytest.approx(best)


def test_score_perfect_and_degrades():
    truth = sample_scene(np.random.default_rng(4), 5, 5).objects
    perfect = score_scene(truth[::-1], truth)
    assert perfect["object_accuracy"] == 1.0 and perfect["count_error"] == 0
    assert perfect["position_error"] == 0.0 and perfect["color_error"] == 0.0

    def moved(o: SceneObject) -> SceneObject:
        return dataclasses.replace(o, position=(o.position + 1) % 256)

    # one attribute of one object wrong: only that accuracy drops, by 1/5
    changes = {
        "type": lambda o: dataclasses.replace(o, type=(o.type + 1) % 4),
        "position": moved,
        "size": lambda o: dataclasses.replace(o, size=(o.size + 1) % 3),
        "color": lambda o: dataclasses.replace(o, color=((o.color[0] + 1) % 4, *o.color[1:])),
    }
    for attr, change in changes.items():
        s = score_scene([change(truth[0])] + truth[1:], truth)
        assert s[f"{attr}_accuracy"] == pytest.approx(0.8)
        assert s["object_accuracy"] == pytest.approx(0.8)
        others = set(changes) - {attr}
        assert all(s[f"{o}_accuracy"] == 1.0 for o in others)
    # the more objects perturbed, the lower the score
    scores = [score_scene([moved(o) for o in truth[:k]] + truth[k:], truth) for k in range(6)]
    acc = [s["object_accuracy"] for s in scores]
    assert acc == sorted(acc, reverse=True) and acc[0] == 1.0 and acc[-1] == 0.0
    # missing and extra objects
    s = score_scene(truth[:3], truth)
    assert s["count_error"] == 2 and s["object_accuracy"] == pytest.approx(0.6)
    s = score_scene(truth + truth[:1], truth)
    assert s["count_error"] == 1 and s["object_accuracy"] == pytest.approx(5 / 6)
    empty = score_scene([], truth)
    assert empty["object_accuracy"] == 0.0 and np.isnan(empty["position_error"])
    assert score_scene([], [])["object_accuracy"] == 1.0


def test_reset_with_given_target_and_dataset():
    env = gym.make("SpiralMuJoCo-Scene-Cond-v0")
    program = SceneProgram([SceneObject(1, 17, 2, (3, 3, 0)), SceneObject(3, 200, 0, (0, 1, 3))])
    obs, _ = env.reset(seed=0, options={"target_program": program.to_json()})
    assert env.unwrapped.target_program == program
    np.testing.assert_array_equal(obs["target"], render_scene(program, 64))
    with pytest.raises(ValueError, match="episode_length"):
        env.reset(options={"target_program": SceneProgram(list(program) * 3)})
    env.close()

    from spiral_envs import ImageDataset
    from spiral_envs.scene import SceneDataset

    data = SceneDataset(length=10, canvas_size=32, seed=1)
    assert isinstance(data, ImageDataset) and len(data) == 10
    np.testing.assert_array_equal(data[3], render_scene(data.program(3), 32))
    batch = data.sample(np.random.default_rng(0), 3)
    assert batch.shape == (3, 32, 32, 3) and batch.dtype == np.uint8


def test_pixel_l2():
    a = np.zeros((4, 4, 3), np.uint8)
    assert pixel_l2(a, a) == 0.0
    assert pixel_l2(a, np.full_like(a, 255)) == 1.0
    with pytest.raises(ValueError):
        pixel_l2(a, a[:2])


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"canvas_size": 0}, "canvas_size"),
        ({"canvas_size": -3}, "canvas_size"),
        ({"render_size": 0}, "render_size"),
        ({"episode_length": 0}, "episode_length"),
        ({"episode_length": 256}, "episode_length"),
        ({"max_objects": 6}, "max_objects"),
        ({"min_objects": 3, "max_objects": 2}, "min_objects"),
        ({"conditional": "yes"}, "conditional"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_kwargs(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SceneEnv(**kwargs)


def test_bad_actions():
    env = gym.make("SpiralMuJoCo-Scene-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="position"):
        env.step(np.array([1, 0, 256, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="7 components"):
        env.step(np.array([1, 0, 0]))
    with pytest.raises(ValueError, match="type"):
        SceneObject.from_dict({"type": "cone", "row": 0, "col": 0, "size": 0, "color": [0, 0, 0]})
    env.close()


def _render_in_child(renderer, queue):
    try:
        queue.put(renderer.canvas().shape)
    except RuntimeError as e:
        queue.put(str(e))


def test_forked_child_gets_clear_error_not_a_hang():
    import multiprocessing as mp

    r = SceneRenderer(16, max_objects=1)
    r.canvas()  # a GL context now exists in this process
    r.draw(SceneObject(0, 0, 0, (0, 0, 0)))
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_render_in_child, args=(r, queue))
    child.start()
    msg = queue.get(timeout=60)
    child.join(timeout=60)
    assert "spawn" in msg and "forked" in msg
    assert r.canvas().shape == (16, 16, 3)  # the parent is unaffected
    r.close()


def test_missing_gl_backend_error(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")  # so that teardown restores the original value
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setattr(scene_gl, "_selected", None)
    # a backend that cannot exist, probed for real in a subprocess
    with pytest.raises(GLBackendError) as e:
        select_gl_backend(["bogus"])
    msg = str(e.value)
    for package in ("libegl1", "libgl1-mesa-dri", "libosmesa6", "MUJOCO_GL"):
        assert package in msg
    # neither EGL nor OSMesa working
    with pytest.raises(GLBackendError, match="libosmesa6") as e:
        select_gl_backend(probe=lambda b: (False, f"cannot load lib{b}"))
    assert "MUJOCO_GL=egl: cannot load libegl" in str(e.value)
    assert "MUJOCO_GL=osmesa" in str(e.value)
    # the first that works wins, and is exported for child processes
    assert select_gl_backend(probe=lambda b: (b == "osmesa", "")) == "osmesa"
    assert os.environ["MUJOCO_GL"] == "osmesa"


@pytest.mark.parametrize(
    "env_vars",
    [
        {"MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "egl"},  # OSMesa cannot load
        {"MUJOCO_GL": "bogus"},  # a backend that does not exist
    ],
)
def test_broken_backend_in_fresh_process(env_vars):
    import subprocess
    import sys

    code = "from spiral_envs.scene import render_scene; render_scene([], 16)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, **env_vars)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "GLBackendError" in out.stderr
    for package in ("libegl1", "libgl1-mesa-dri", "libosmesa6"):
        assert package in out.stderr


def test_user_backend_respected(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "EGL")

    def no_probe(backend):
        raise AssertionError("probed although MUJOCO_GL was set")

    assert select_gl_backend(probe=no_probe) == "egl"


def _fresh_python(code: str, **env_vars: str):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    for k in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(k, None)
    env.update(PYTHONPATH=root, **env_vars)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )


def test_mujoco_imported_first_says_so_and_gives_the_cure():
    code = (
        "import mujoco\n"
        "import gymnasium as gym, spiral_envs\n"
        "gym.make('SpiralMuJoCo-Scene-v0').reset(seed=0)\n"
    )
    out = _fresh_python(code)
    assert out.returncode != 0
    assert "GLBackendError" in out.stderr
    assert "imported" in out.stderr and "before MUJOCO_GL was set" in out.stderr
    assert "export MUJOCO_GL=egl" in out.stderr
    assert "libosmesa6" not in out.stderr  # not the "install packages" advice


def test_import_spiral_envs_sets_an_offscreen_default_before_mujoco():
    code = (
        "import os, gymnasium as gym, spiral_envs\n"
        "print(os.environ['MUJOCO_GL'])\n"
        "import mujoco  # another library importing mujoco after spiral_envs\n"
        "obs, _ = gym.make('SpiralMuJoCo-Scene-v0').reset(seed=0)\n"
        "print(obs['canvas'].shape)\n"
    )
    out = _fresh_python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["egl", "(64, 64, 3)"]
    # A display, or a value the user set, is left alone.
    out = _fresh_python("import os, spiral_envs; print(os.environ.get('MUJOCO_GL'))", DISPLAY=":0")
    assert out.stdout.strip() == "None"
    out = _fresh_python(
        "import os, spiral_envs; print(os.environ['MUJOCO_GL'])", MUJOCO_GL="osmesa"
    )
    assert out.stdout.strip() == "osmesa"
