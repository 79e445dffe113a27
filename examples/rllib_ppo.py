"""Train RLlib's PPO on a SPIRAL benchmark env, then score it on the held-out episodes.

RLlib (``pip install "ray[rllib]"``) has no default model for a ``Dict`` observation, and its
default model takes float32 input. Three of Gymnasium's own wrappers give it one flat float32
vector in [0, 1] (canvas, step and target)::

    env = gym.make("SpiralBench-MNIST-Cond-v0")              # reward inside, MultiDiscrete actions
    env = FlattenObservation(env)                            # Dict -> one uint8 vector
    env = DtypeObservation(env, np.float32)                  # uint8 -> float32
    env = RescaleObservation(env, np.float32(0), np.float32(1))  # [0, 255] (step [0, 20]) -> [0, 1]

The env creator is registered with ``ray.tune.register_env`` and imports ``spiral_envs`` itself,
so the ids exist in every env runner's process. With ``restart_failed_env_runners=False`` an
error in an env runner stops ``train()``; RLlib's default restarts the runner and ``train()``
then returns results without a single env step. The script also checks that each iteration
sampled env steps.

After training, the policy (the RLModule's deterministic action) plays the held-out episodes
of :func:`spiral_envs.benchmark.score`, which hands it batches of the plain ``Dict``
observations: the policy applies the same three wrappers' transform to each.

    python examples/rllib_ppo.py --iterations 5
    python examples/rllib_ppo.py --env-id SpiralBench-MNIST-Cond-Box-v0  # Box actions

A few iterations show the recipe working, not a good painter: the SPIRAL agent
(``spiral-train``) is the reference. RLlib pins its own gymnasium (``ray[rllib]==2.60.0``
installs gymnasium 1.2.2), which this package supports.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import gymnasium as gym
import numpy as np
import ray
import torch
from gymnasium.wrappers import DtypeObservation, FlattenObservation, RescaleObservation
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)
from ray.tune import register_env

from spiral_envs.benchmark import score


def make_env(env_config: dict) -> gym.Env:
    """The env creator: a SPIRAL id with a flat float32 observation in [0, 1]."""
    import spiral_envs  # noqa: F401  (registers the ids in this env runner's process)

    env = gym.make(env_config.get("env_id", "SpiralBench-MNIST-Cond-v0"))
    env = FlattenObservation(env)
    env = DtypeObservation(env, np.float32)
    return RescaleObservation(env, np.float32(0), np.float32(1))


def observation_transform(env: gym.Env):
    """The transform of the observation wrappers on top of ``env``, for one observation."""
    steps = []
    while isinstance(env, gym.ObservationWrapper):
        steps.append(env.observation)
        env = env.env
    return lambda obs: functools.reduce(lambda o, step: step(o), reversed(steps), obs)


def module_policy(module, env_id: str):
    """A batch policy for :func:`score`: the RLModule's deterministic action of each wrapped
    observation of a batch of ``Dict`` observations."""
    wrapped = make_env({"env_id": env_id})
    transform, space = observation_transform(wrapped), wrapped.action_space
    wrapped.close()
    dist_cls = module.get_inference_action_dist_cls()

    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        n = len(obs["step"])
        x = np.stack([transform({k: v[i] for k, v in obs.items()}) for i in range(n)])
        with torch.no_grad():
            out = module.forward_inference({Columns.OBS: torch.from_numpy(x)})
        dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS]).to_deterministic()
        actions = dist.sample().numpy()
        if isinstance(space, gym.spaces.Box):
            actions = np.clip(actions, space.low, space.high)
        return actions

    return policy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--env-id", default="SpiralBench-MNIST-Cond-v0")
    p.add_argument("--env-runners", type=int, default=1, help="0: sample in this process")
    p.add_argument("--batch", type=int, default=400, help="env steps per iteration")
    p.add_argument("--hidden", type=int, default=64, help="units of the one hidden layer")
    p.add_argument("--episodes", type=int, default=100, help="held-out episodes (protocol: 500)")
    args = p.parse_args()

    register_env("spiral", make_env)
    config = (
        PPOConfig()
        .environment("spiral", env_config={"env_id": args.env_id})
        .env_runners(num_env_runners=args.env_runners, num_envs_per_env_runner=1)
        .fault_tolerance(restart_failed_env_runners=False)  # an env runner's error stops train()
        .training(
            train_batch_size_per_learner=args.batch,
            minibatch_size=max(args.batch // 4, 1),
            num_epochs=2,
            lr=3e-4,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[args.hidden]))
    )
    ray.init(include_dashboard=False)  # ray.init(address=...) to join a cluster
    try:
        algo = config.build_algo()
        start, steps = time.time(), 0.0
        for i in range(1, args.iterations + 1):
            runners = algo.train().get(ENV_RUNNER_RESULTS, {})
            sampled = runners.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)
            if sampled <= steps:
                raise RuntimeError(f"iteration {i} sampled no env steps: {runners}")
            steps = sampled
            ret = runners.get(EPISODE_RETURN_MEAN, float("nan"))
            print(
                f"iteration {i}: {int(steps)} env steps, mean return {ret:.3f},"
                f" {time.time() - start:.0f} s"
            )
        policy = module_policy(algo.get_module(), args.env_id)
        print(json.dumps(score(args.env_id, policy, episodes=args.episodes)))
        algo.stop()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
