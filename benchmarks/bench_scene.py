"""Speed of the 3D scene env: env steps/s against bare renders of the same scenes.

A step that places an object costs one MuJoCo render plus the env's own work (action check,
writing the object into the model, ``mj_kinematics``, observation copies, the ``gym.make``
wrappers). Each timed step is followed by one timed bare render (``update_scene`` + ``render`` of
the same scene on the same ``mujoco.Renderer``), so both see the same scenes and the same machine
load. Target: step time <= 1.3x bare render time.

Usage::

    python benchmarks/bench_scene.py [--size 64] [--seconds 10]
    python benchmarks/bench_scene.py --env_id SpiralBench-Scene-Cond-v0  # with its reward
    taskset -c 0 python benchmarks/bench_scene.py   # one CPU core (llvmpipe then uses one)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import gymnasium as gym
import numpy as np

ENV_ID = "SpiralMuJoCo-Scene-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="canvas_size in pixels")
    parser.add_argument("--seconds", type=float, default=10.0, help="time budget of the run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--env_id", default=ENV_ID, help="a scene id; a SpiralBench- id adds its reward's cost"
    )
    args = parser.parse_args()

    try:
        import spiral_envs  # noqa: F401  (registers the ids once the lead's table lists them)
    except ImportError:  # run from a checkout without installing
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import spiral_envs  # noqa: F401

    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point="spiral_envs.scene.env:SceneEnv")
    env = gym.make(args.env_id, canvas_size=args.size)
    scene = env.unwrapped
    rng = np.random.default_rng(args.seed)
    nvec = env.action_space.nvec
    actions = rng.integers(0, nvec, size=(4096, len(nvec)))
    actions[:, 0] = 1  # every step places an object, so every step renders

    env.reset(seed=args.seed)
    for a in actions[:50]:  # warm up: GL context, JIT of llvmpipe shaders
        _, _, term, _, _ = env.step(a)
        scene._renderer.render_bare()
        if term:
            env.reset()

    step_t = bare_t = reset_t = 0.0
    steps = resets = 0
    clock = time.perf_counter
    deadline = clock() + args.seconds
    while clock() < deadline:
        a = actions[steps % len(actions)]
        t0 = clock()
        _, _, term, _, _ = env.step(a)
        t1 = clock()
        scene._renderer.render_bare()  # the same scene, bare
        t2 = clock()
        step_t += t1 - t0
        bare_t += t2 - t1
        steps += 1
        if term:
            t3 = clock()
            env.reset()
            reset_t += clock() - t3
            resets += 1
    env.close()

    env_sps = steps / step_t
    bare_rps = steps / bare_t
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"affinity {len(os.sched_getaffinity(0))} cores, MUJOCO_GL={os.environ.get('MUJOCO_GL')}"
    )
    print(
        f"{args.env_id}, image {args.size}x{args.size}, {steps} steps, "
        f"{resets} episodes (5 steps each)"
    )
    print(
        f"env step (gym.make, places an object): {env_sps:8.0f} steps/s  "
        f"({1e6 / env_sps:6.0f} us/step)"
    )
    print(
        f"bare render (update_scene+render):     {bare_rps:8.0f} renders/s "
        f"({1e6 / bare_rps:6.0f} us/render)"
    )
    print(f"ratio step/render: {bare_rps / env_sps:.2f}x   (target <= 1.3x)")
    print(
        f"with resets: {steps / (step_t + reset_t):8.0f} steps/s "
        f"(reset = {1e6 * reset_t / max(resets, 1):.0f} us: draws and renders the target)"
    )


if __name__ == "__main__":
    main()
