"""Smoke runs of the examples and benchmark scripts, and the scripted baselines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import run_script
from PIL import Image

import spiral_envs  # noqa: F401
from spiral_envs.paint import GreedySearch, RandomPainter, ScriptedTracer
from spiral_envs.rewards import l2_distance


def test_demo_writes_pictures_and_throughput(tmp_path):
    out = tmp_path / "demo"
    result = run_script(
        "examples/demo.py",
        "--out",
        out,
        "--episodes",
        2,
        "--seconds",
        0.05,
        "--envs",
        "SpiralPaint-MNIST-v0",
    )
    assert "steps/s" in result.stdout and "scripted" in result.stdout
    grid = Image.open(out / "samples_mnist.png")
    assert grid.size == (2 + 2 * (128 + 2), 2 + 3 * (128 + 2))  # 3 rows x 2 episodes
    gif = Image.open(out / "painting_mnist.gif")
    assert 2 <= gif.n_frames <= 20  # one frame per step (identical ones merged)


def test_benchmark_script_runs():
    result = run_script("benchmarks/bench_paint.py", "--steps", 300, "--repeats", 1)
    assert "raw pycairo stroke" in result.stdout
    assert "SpiralPaint-MNIST-v0" in result.stdout and "ratio to raw stroke" in result.stdout


def test_scripted_tracer_beats_random_and_blank():
    env = gym.make("SpiralPaint-MNIST-Cond-v0", split="test")
    l2 = {"random": [], "scripted": [], "blank": []}
    for seed in range(6):
        for name, agent in (
            ("random", RandomPainter(env, seed)),
            ("scripted", ScriptedTracer(env, seed)),
        ):
            obs, _ = env.reset(seed=seed)
            agent.reset(obs["target"])
            terminated = False
            while not terminated:
                obs, _, terminated, _, info = env.step(agent.act(obs))
            l2[name].append(info["l2"])
        l2["blank"].append(l2_distance(np.full_like(obs["target"], 255), obs["target"]))
    assert np.mean(l2["scripted"]) < np.mean(l2["blank"]) < np.mean(l2["random"])


def test_greedy_search_beats_blank_and_the_colour_tracer_and_leaves_the_canvas_alone():
    for env_id in ("SpiralPaint-MNIST-Cond-v0", "SpiralPaint-Faces-Cond-v0"):
        env = gym.make(env_id, split="test")
        l2 = {"greedy": [], "tracer": [], "blank": []}
        for seed in range(2):
            for name, agent in (
                ("greedy", GreedySearch(env, candidates=16, seed=seed)),
                ("tracer", ScriptedTracer(env, seed)),
            ):
                obs, _ = env.reset(seed=seed)
                agent.reset(obs["target"])
                terminated = False
                while not terminated:
                    action = agent.act(obs)
                    # trial strokes are undone: the env's canvas is still the observed one
                    assert np.array_equal(env.unwrapped.canvas, obs["canvas"])
                    obs, _, terminated, _, info = env.step(action)
                l2[name].append(info["l2"])
            l2["blank"].append(l2_distance(np.full_like(obs["target"], 255), obs["target"]))
        assert np.mean(l2["greedy"]) < np.mean(l2["blank"]), (env_id, l2)
        if env_id.startswith("SpiralPaint-Faces"):  # colour: the tracer's random strokes
            assert np.mean(l2["greedy"]) < np.mean(l2["tracer"]), (env_id, l2)


def test_greedy_search_script_and_its_bad_input(tmp_path):
    import json

    out = tmp_path / "greedy.json"
    run_script(
        "benchmarks/greedy_search.py",
        "--env_id",
        "SpiralPaint-MNIST-Cond-v0",
        "--candidates",
        1,
        4,
        "--episodes",
        2,
        "--progress",
        0,
        "--out",
        out,
    )
    rows = json.loads(out.read_text())["rows"]
    assert [r["candidates"] for r in rows] == [1, 4]
    for r in rows:  # it paints only what lowers the L2, so it can only end below the blank
        assert r["l2"] < r["blank_l2"]
    with pytest.raises(ValueError, match="candidates must be a positive int"):
        GreedySearch(gym.make("SpiralPaint-MNIST-Cond-v0"), candidates=0)
    bad = run_script(
        "benchmarks/greedy_search.py", "--env_id", "SpiralPaint-MNIST-v0", returncode=2
    )
    assert "must be a conditional paint id" in bad.stderr


def test_train_scene_example_runs_a_recipe_and_scores_its_last_stage(tmp_path):
    """Sleep on the scene env's own random objects, then A2C from it; scored greedily."""
    import json

    recipe = {
        "common": {
            "env_id": "SpiralMuJoCo-Scene-Cond-v0",
            "reward": "similarity",
            "num_envs": 4,
            "channels": 8,
            "res_blocks": 1,
            "hidden": 32,
            "lstm": 32,
            "glimpse": True,
            "eval_every": 0,
            "sample_every": 0,
        },
        "stages": [
            {"name": "sleep", "minutes": 0.01, "stage": "sleep"},
            {"name": "rl", "minutes": 0.01, "kl_coef": 0.1},
        ],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(recipe))
    out = tmp_path / "scene"
    args = ("--recipe", path, "--episodes", 4, "--num_envs", 4, "--greedy", "--out", out)
    result = run_script("examples/train_scene.py", *args)
    assert "held-out scene recovery" in result.stdout
    scores = json.loads((out / "recovery.json").read_text())
    assert scores["greedy"] and scores["settings"] == {"recipe": str(path)}
    assert (out / "sleep" / "checkpoint.pt").exists() and (out / "rl" / "checkpoint.pt").exists()
    assert 0.0 <= scores["agent"]["type_accuracy"] <= 1.0
    other = tmp_path / "o.json"
    other.write_text(json.dumps({**recipe, "common": {"env_id": "SpiralPaint-MNIST-Cond-v0"}}))
    bad = run_script("examples/train_scene.py", "--recipe", other, "--out", out, returncode=1)
    assert "is not for SpiralMuJoCo-Scene-Cond-v0" in bad.stderr


def test_train_scene_example_smoke(tmp_path):
    """The trainer drives the scene env end to end and scores recovery against chance."""
    import json

    out = tmp_path / "scene"
    result = run_script(
        "examples/train_scene.py", "--minutes", 0.05, "--episodes", 8, "--num_envs", 4, "--out", out
    )
    assert "held-out scene recovery" in result.stdout
    scores = json.loads((out / "recovery.json").read_text())
    assert scores["frames"] > 0
    for who in ("agent", "random"):
        assert 0.0 <= scores[who]["type_accuracy"] <= 1.0
        assert scores[who]["l2"] > 0
    assert Image.open(out / "reconstructions.png").size[1] == 128


def test_scene_confusion_counts_every_matched_object_of_the_shipped_scene_agent(tmp_path):
    import json

    out = tmp_path / "c.json"
    args = ("agents/pretrained/scene_cond.pt", "--episodes", 4, "--num_envs", 2, "--greedy")
    result = run_script("benchmarks/scene_confusion.py", *args, "--out", out)
    assert "type: rows the target's" in result.stdout
    res = json.loads(out.read_text())
    types, sizes = np.array(res["type_confusion"]), np.array(res["size_confusion"])
    assert types.shape == (4, 4) and sizes.shape == (3, 3)
    assert types.sum() == sizes.sum() > 0  # each matched pair once in each
    bad = run_script("benchmarks/scene_confusion.py", tmp_path / "none.pt", returncode=2)
    assert "error:" in bad.stderr
