"""Smoke runs of the examples and benchmark scripts, and the scripted baselines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from conftest import run_script
from PIL import Image

import spiral_envs  # noqa: F401
from spiral_envs.paint import RandomPainter, ScriptedTracer
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
