"""Reward wrappers: the SPIRAL reward for a single environment, from any discriminator.

The paint and scene envs return reward 0; these wrappers query a
:class:`~spiral_envs.protocols.Discriminator` on the canvas and turn its scores into rewards with
the pure functions of :mod:`spiral_envs.rewards`. Apply them to each env *before* vectorising: a
vector env resets an ended episode automatically, and the reward needs the final canvas.

Trainers that score whole batches at once (``agents``) use :mod:`spiral_envs.rewards` directly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from spiral_envs.protocols import Discriminator
from spiral_envs.rewards import (
    L2Discriminator,
    empty_canvas_penalty,
    final_step_rewards,
    per_step_rewards,
    stroke_penalty,
)

__all__ = ["MODES", "DiscriminatorReward", "L2Reward", "canonical_mode"]

MODES = ("final", "per_step")
#: Other accepted names of the modes: ``"delta"`` is what the ``agents`` trainer calls per-step.
MODE_ALIASES = {"delta": "per_step"}


def canonical_mode(mode: str) -> str:
    """The name in :data:`MODES` of a reward mode or of its alias; a bad mode raises."""
    if mode not in MODES and mode not in MODE_ALIASES:
        accepted = ", ".join(repr(m) for m in (*MODES, *MODE_ALIASES))
        raise ValueError(f"mode {mode!r} is not supported: accepted {accepted}")
    return MODE_ALIASES.get(mode, mode)


class DiscriminatorReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Rewards an agent with a discriminator's score of its canvas.

    * ``mode="final"`` (SPIRAL): the score of the final canvas at the last step, 0 before.
    * ``mode="per_step"`` (SPIRAL++): ``D(canvas_t) - D(canvas_{t-1})`` every step, the blank
      canvas scored at reset.

    Optional penalties (the paper's, for unconditional agents): ``stroke_penalty`` per new
    disjoint stroke, ``empty_penalty`` at the last step when the canvas has no visible ink.
    ``info["score"]`` carries the current score. When the observation has a ``target`` it is
    passed to the discriminator (conditional SPIRAL); otherwise ``targets=None``.

    Example:
        >>> import gymnasium as gym
        >>> import spiral_envs
        >>> from spiral_envs.rewards import L2Discriminator
        >>> env = gym.make("SpiralPaint-MNIST-Cond-v0")
        >>> env = DiscriminatorReward(env, L2Discriminator(), mode="per_step")
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        >>> bool(reward == info["score"] - info["previous_score"])
        True

    Args:
        env: A spiral-gym env (its observation is a dict with ``canvas``).
        discriminator: Any callable of the ``Discriminator`` protocol.
        mode: ``"final"`` or ``"per_step"`` (alias ``"delta"``); :attr:`mode` holds the
            canonical name.
        stroke_penalty: Cost per new disjoint stroke (>= 0).
        empty_penalty: Cost of an empty final canvas (>= 0).
    """

    def __init__(
        self,
        env: gym.Env,
        discriminator: Discriminator,
        mode: str = "final",
        stroke_penalty: float = 0.0,
        empty_penalty: float = 0.0,
    ) -> None:
        mode = canonical_mode(mode)
        if not callable(discriminator):
            raise ValueError("discriminator must be callable: (canvases, targets) -> scores")
        for name, value in (("stroke_penalty", stroke_penalty), ("empty_penalty", empty_penalty)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if not isinstance(env.observation_space, gym.spaces.Dict) or (
            "canvas" not in env.observation_space.spaces
        ):
            raise ValueError("DiscriminatorReward needs an env whose observation has 'canvas'")
        gym.utils.RecordConstructorArgs.__init__(
            self,
            discriminator=discriminator,
            mode=mode,
            stroke_penalty=stroke_penalty,
            empty_penalty=empty_penalty,
        )
        gym.Wrapper.__init__(self, env)
        self.discriminator = discriminator
        self.mode = mode
        self.stroke_penalty = float(stroke_penalty)
        self.empty_penalty = float(empty_penalty)
        self._score = 0.0
        self._disjoint = 0

    def _score_of(self, obs: dict[str, np.ndarray]) -> float:
        target = obs.get("target")
        scores = self.discriminator(obs["canvas"][None], None if target is None else target[None])
        return float(np.asarray(scores).reshape(-1)[0])

    def reset(self, **kwargs) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self._disjoint = info.get("disjoint_strokes", 0)
        self._score = self._score_of(obs) if self.mode == "per_step" else 0.0
        return obs, info

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        score = self._score_of(obs) if (self.mode == "per_step" or terminated) else 0.0
        if self.mode == "per_step":
            reward = float(per_step_rewards(score, self._score))
        else:
            reward = float(final_step_rewards(score, terminated))
        disjoint = info.get("disjoint_strokes", self._disjoint)
        if self.stroke_penalty:
            reward += float(stroke_penalty(disjoint - self._disjoint, self.stroke_penalty))
        if self.empty_penalty and terminated:
            reward += float(empty_canvas_penalty(obs["canvas"], self.empty_penalty))
        info = dict(info, score=score, previous_score=self._score)
        self._score, self._disjoint = score, disjoint
        return obs, reward, terminated, truncated, info


class L2Reward(DiscriminatorReward):
    """The L2 baseline for conditional envs: the reward is minus the pixel L2 to the target.

    ``mode="final"`` gives ``-l2`` at the last step (the paper's baseline); ``"per_step"`` (alias
    ``"delta"``) gives the decrease of the L2 distance at every step.

    Example:
        >>> import gymnasium as gym
        >>> import spiral_envs
        >>> env = L2Reward(gym.make("SpiralPaint-MNIST-Cond-v0"))
        >>> obs, info = env.reset(seed=0)
    """

    def __init__(self, env: gym.Env, mode: str = "final") -> None:
        if "target" not in getattr(env.observation_space, "spaces", {}):
            raise ValueError(
                "L2Reward needs a conditional env (observation with 'target'), "
                "e.g. 'SpiralPaint-MNIST-Cond-v0'"
            )
        super().__init__(env, L2Discriminator(), mode=mode)
