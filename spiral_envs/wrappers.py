"""Wrappers: the SPIRAL reward for a single environment, and continuous actions.

The paint and scene envs return reward 0; the reward wrappers query a
:class:`~spiral_envs.protocols.Discriminator` on the canvas and turn its scores into rewards with
the pure functions of :mod:`spiral_envs.rewards`. Apply them to each env *before* vectorising: a
vector env resets an ended episode automatically, and the reward needs the final canvas. The
``SpiralBench-*`` ids (:data:`spiral_envs.BENCH_IDS`) come with the benchmark's reward wrapper
already applied, so a library's own episode monitor sees the true reward.

:class:`ContinuousActions` maps a ``Box(-1, 1)`` onto an env's ``MultiDiscrete`` actions, for
algorithms that need continuous actions (SAC, TD3).

Every wrapper records its constructor arguments (``gym.utils.RecordConstructorArgs``), so
``env.spec`` remakes the stack with ``gym.make(env.spec)``; ``env.spec.to_json()`` works for all
but a :class:`DiscriminatorReward` around an object JSON cannot hold (a learned critic).

Trainers that score whole batches at once (``agents``) use :mod:`spiral_envs.rewards` directly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from spiral_envs.actions import ActionSpec
from spiral_envs.protocols import Discriminator
from spiral_envs.rewards import (
    SIMILARITY_SIGMAS,
    ChangeSimilarity,
    L2Discriminator,
    empty_canvas_penalty,
    final_step_rewards,
    per_step_rewards,
    stroke_penalty,
)

__all__ = [
    "MODES",
    "ContinuousActions",
    "DiscriminatorReward",
    "L2Reward",
    "SimilarityReward",
    "canonical_mode",
]

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

    The score rewards are multiplied by ``scale``. Optional penalties (the paper's, for
    unconditional agents): ``stroke_penalty`` per new disjoint stroke, ``empty_penalty`` at the
    last step when the canvas has no visible ink. ``info["score"]`` carries the current score
    (unscaled). When the observation has a ``target`` it is passed to the discriminator
    (conditional SPIRAL); otherwise ``targets=None``.

    The spec records the discriminator object itself, not a copy (a learned critic keeps
    learning, and copying one costs memory), so ``gym.make(env.spec)`` rebuilds the wrapper
    around that very critic (a Gymnasium wrapper put on top deep-copies the spec, critic
    included). ``env.spec.to_json()`` then raises ``TypeError: Object of type ... is not JSON
    serializable``: JSON cannot hold a Python object, so rebuild such a wrapper in code.
    :class:`L2Reward` and :class:`SimilarityReward` record only JSON values.

    Examples:
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
        scale: Multiplier of the score rewards (>= 0; not of the penalties).
    """

    def __init__(
        self,
        env: gym.Env,
        discriminator: Discriminator,
        mode: str = "final",
        stroke_penalty: float = 0.0,
        empty_penalty: float = 0.0,
        scale: float = 1.0,
    ) -> None:
        mode = canonical_mode(mode)
        if not callable(discriminator):
            raise ValueError("discriminator must be callable: (canvases, targets) -> scores")
        for name, value in (
            ("stroke_penalty", stroke_penalty),
            ("empty_penalty", empty_penalty),
            ("scale", scale),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if not isinstance(env.observation_space, gym.spaces.Dict) or (
            "canvas" not in env.observation_space.spaces
        ):
            raise ValueError("DiscriminatorReward needs an env whose observation has 'canvas'")
        # Subclasses record their own (JSON-able) arguments first; the first record wins.
        gym.utils.RecordConstructorArgs.__init__(
            self,
            _disable_deepcopy=True,  # the live discriminator, not a copy (see the docstring)
            discriminator=discriminator,
            mode=mode,
            stroke_penalty=stroke_penalty,
            empty_penalty=empty_penalty,
            scale=scale,
        )
        gym.Wrapper.__init__(self, env)
        self.discriminator = discriminator
        self.mode = mode
        self.stroke_penalty = float(stroke_penalty)
        self.empty_penalty = float(empty_penalty)
        self.scale = float(scale)
        self._score = 0.0
        self._disjoint = 0

    def _score_of(self, obs: dict[str, np.ndarray]) -> float:
        target = obs.get("target")
        scores = self.discriminator(obs["canvas"][None], None if target is None else target[None])
        return float(np.asarray(scores).reshape(-1)[0])

    def reset(self, **kwargs) -> tuple[Any, dict]:
        return self._begin(*self.env.reset(**kwargs))

    def _begin(self, obs: dict[str, np.ndarray], info: dict) -> tuple[Any, dict]:
        """Starts an episode's bookkeeping from its first observation."""
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
        reward *= self.scale
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
    ``"delta"``) gives the decrease of the L2 distance at every step, so an episode's rewards sum
    to ``scale * (l2(blank) - l2(final))``. ``SpiralBench-<Dataset>-Cond-v0`` is a paint env in
    ``L2Reward(mode="per_step", scale=10)``. Its spec is JSON: ``env.spec.to_json()`` works.

    Examples:
        >>> import gymnasium as gym
        >>> import spiral_envs
        >>> env = L2Reward(gym.make("SpiralPaint-MNIST-Cond-v0"), mode="per_step", scale=10.0)
        >>> obs, info = env.reset(seed=0)
        >>> env.spec.additional_wrappers[-1].kwargs
        {'mode': 'per_step', 'scale': 10.0}

    Args:
        env: A conditional spiral-gym env (its observation has ``target``).
        mode: ``"final"`` or ``"per_step"`` (alias ``"delta"``).
        scale: Multiplier of the rewards (>= 0): L2 rewards are small (an MNIST episode's
            per-step rewards sum to about 0.1).
    """

    def __init__(self, env: gym.Env, mode: str = "final", scale: float = 1.0) -> None:
        if "target" not in getattr(env.observation_space, "spaces", {}):
            raise ValueError(
                "L2Reward needs a conditional env (observation with 'target'), "
                "e.g. 'SpiralPaint-MNIST-Cond-v0'"
            )
        # Recorded before the base class's record, which would hold the L2Discriminator object
        # and so make the spec's JSON fail.
        gym.utils.RecordConstructorArgs.__init__(self, mode=canonical_mode(mode), scale=scale)
        super().__init__(env, L2Discriminator(), mode=mode, scale=scale)


class SimilarityReward(DiscriminatorReward):
    """The reward that makes the 3D scenes learnable: the change similarity to the target.

    The score of a canvas is :func:`spiral_envs.rewards.change_similarity` of the canvas and the
    target from the episode's first canvas (the empty floor, the blank paper): the cosine
    similarity of what the agent changed and what the target changes, averaged over Gaussian
    blurs of ``sigmas`` pixels, in ``[-1, 1]``. The blank canvas scores 0 and a perfect copy 1,
    and a mark near a target object already scores above nothing. Under pixel L2 an object placed
    off a target's few pixels only adds error, and agents learned to place nothing (see the
    scene results in ``docs/results.md``); the ``agents`` trainer's ``reward="similarity"`` is
    the same score.

    ``mode="per_step"`` (the default) rewards the change of the score every step, so an
    episode's rewards sum to ``scale`` times the final similarity; ``"final"`` gives the final
    similarity at the last step. ``SpiralBench-Scene-Cond-v0`` is the conditional scene env in
    ``SimilarityReward()``. Its spec is JSON: ``env.spec.to_json()`` works.

    Examples:
        >>> import gymnasium as gym
        >>> import spiral_envs
        >>> env = SimilarityReward(gym.make("SpiralPaint-MNIST-Cond-v0"))
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        >>> info["previous_score"]  # the blank canvas
        0.0
        >>> bool(-1 <= info["score"] <= 1 and reward == info["score"])
        True

    Args:
        env: A conditional spiral-gym env (its observation has ``target``).
        mode: ``"per_step"`` (alias ``"delta"``) or ``"final"``.
        scale: Multiplier of the rewards (>= 0).
        sigmas: Blur scales in pixels (0: no blur).
    """

    def __init__(
        self,
        env: gym.Env,
        mode: str = "per_step",
        scale: float = 1.0,
        sigmas: tuple[float, ...] | list[float] = SIMILARITY_SIGMAS,
    ) -> None:
        if "target" not in getattr(env.observation_space, "spaces", {}):
            raise ValueError(
                "SimilarityReward needs a conditional env (observation with 'target'), "
                "e.g. 'SpiralMuJoCo-Scene-Cond-v0'"
            )
        sigmas = [float(s) for s in sigmas]  # a list: what the spec's JSON gives back
        gym.utils.RecordConstructorArgs.__init__(
            self, mode=canonical_mode(mode), scale=scale, sigmas=sigmas
        )
        # The blank canvas is set at every reset, from the episode's first observation.
        super().__init__(env, ChangeSimilarity(None, tuple(sigmas)), mode=mode, scale=scale)

    def reset(self, **kwargs) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self.discriminator.blank = obs["canvas"]
        return self._begin(obs, info)


class ContinuousActions(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Continuous actions for any spiral-gym env: a ``Box(-1, 1)`` over its ``MultiDiscrete``.

    ## Description

    SAC and TD3 need continuous actions; the paint and scene envs act through a
    ``MultiDiscrete`` of named sub-actions (``env.unwrapped.action_spec``, an
    :class:`spiral_envs.ActionSpec`). This wrapper gives them a ``Box(-1, 1, (n,), float32)``
    action space built from that spec, so it fits any env that has one, and stable-baselines3's
    SAC, TD3 and PPO run on it unchanged. Observations, rewards and episode ends are the env's.
    ``SpiralBench-*-Box-v0`` ids come with it applied.

    ## Action Space

    ``Box(-1, 1, (n,), float32)``, one dimension per sub-action in the spec's order, two for a
    spatial one (a cell of a ``rows x cols`` grid): ``<name>_x`` picks the column (-1 left, +1
    right) and ``<name>_y`` the row (-1 top, +1 bottom). :attr:`dim_names` names them:

    | env | n | :attr:`dim_names` |
    |-----|---|-------------------|
    | paint, greyscale | 7 | flag, end_x, end_y, control_x, control_y, size, pressure |
    | paint, colour | 10 | the same, then red, green, blue |
    | scene | 8 | flag, type, position_x, position_y, size, red, green, blue |

    A dimension with ``n`` choices (``cols`` or ``rows`` for a spatial one) cuts ``[-1, 1]`` into
    ``n`` bins of equal width: value ``v`` is choice ``min(n - 1, floor((v + 1) / 2 * n))``, after
    clipping ``v`` to ``[-1, 1]`` (SAC and TD3 often emit exactly -1 or +1, PPO's Gaussian goes
    beyond). So -1 is the first choice, +1 the last, and ``flag`` is 0 (move, skip) below 0 and
    1 (paint, place) from 0 up. A spatial choice is the flat cell ``row * cols + col``.
    :meth:`discrete_to_box` is the inverse: the centre of each bin, ``-1 + (2 i + 1) / n``.

    A non-finite value or a wrong shape raises ``ValueError``.

    ## Arguments

    ```python
    env = ContinuousActions(gym.make("SpiralPaint-MNIST-Cond-v0"))
    # or: gym.make("SpiralBench-MNIST-Cond-Box-v0"), which also has the benchmark reward
    ```

    * ``env``: an env whose ``unwrapped.action_spec`` describes its ``MultiDiscrete`` actions.

    Examples:
        >>> import gymnasium as gym
        >>> import numpy as np
        >>> import spiral_envs
        >>> env = ContinuousActions(gym.make("SpiralPaint-MNIST-Cond-v0"))
        >>> env.action_space
        Box(-1.0, 1.0, (7,), float32)
        >>> env.dim_names
        ('flag', 'end_x', 'end_y', 'control_x', 'control_y', 'size', 'pressure')
        >>> env.box_to_discrete(np.array([1, -1, -1, 1, 1, 0, 1], np.float32)).tolist()
        [1, 0, 1023, 3, 9]
        >>> [round(float(v), 3) for v in env.discrete_to_box([1, 0, 1023, 3, 9])]
        [0.5, -0.969, -0.969, 0.969, 0.969, 0.167, 0.9]
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        spec = getattr(env.unwrapped, "action_spec", None)
        if not isinstance(spec, ActionSpec):
            raise ValueError(
                "ContinuousActions needs an env with an ActionSpec at env.unwrapped.action_spec "
                f"(every spiral-gym env has one), got {type(env.unwrapped).__name__}"
            )
        space = env.action_space
        if not isinstance(space, spaces.MultiDiscrete) or space.nvec.tolist() != spec.nvec.tolist():
            raise ValueError(
                f"ContinuousActions needs the MultiDiscrete({spec.nvec.tolist()}) of the action "
                f"spec, got the action space {space}"
            )
        self.action_spec = spec
        names, bins = [], []
        for c in spec.components:
            if c.spatial:
                rows, cols = c.grid
                names += [f"{c.name}_x", f"{c.name}_y"]
                bins += [cols, rows]
            else:
                names.append(c.name)
                bins.append(c.size)
        #: The name of each Box dimension, in order.
        self.dim_names: tuple[str, ...] = tuple(names)
        self._bins = np.array(bins, np.int64)  # choices per Box dimension
        self.action_space = spaces.Box(-1.0, 1.0, (len(names),), np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        return self.box_to_discrete(action)

    def box_to_discrete(self, action: np.ndarray) -> np.ndarray:
        """The env's ``MultiDiscrete`` action (``int64``) of a ``Box`` action."""
        a = np.asarray(action, np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"action of shape {a.shape}: accepted shape {self.action_space.shape}, "
                f"floats in [-1, 1] for {list(self.dim_names)}"
            )
        if not np.isfinite(a).all():
            bad = [n for n, v in zip(self.dim_names, a) if not np.isfinite(v)]
            raise ValueError(f"action {a.tolist()} is not finite in {bad}: accepted [-1, 1]")
        choice = np.floor((np.clip(a, -1.0, 1.0) + 1.0) / 2.0 * self._bins).astype(np.int64)
        choice = np.minimum(choice, self._bins - 1)  # +1 is the last bin's
        out, i = [], 0
        for c in self.action_spec.components:
            if c.spatial:
                col, row = choice[i], choice[i + 1]
                out.append(row * c.grid[1] + col)
                i += 2
            else:
                out.append(choice[i])
                i += 1
        return np.array(out, np.int64)

    def discrete_to_box(self, action: np.ndarray) -> np.ndarray:
        """The ``Box`` action (``float32``, the centre of each bin) of a ``MultiDiscrete`` one.

        ``box_to_discrete(discrete_to_box(a)) == a`` for every valid ``a``. An action outside the
        ``MultiDiscrete`` raises ``ValueError``.
        """
        choice = []
        for value, c in zip(self.action_spec.check(action), self.action_spec.components):
            if c.spatial:
                choice += [value % c.grid[1], value // c.grid[1]]  # column (x), row (y)
            else:
                choice.append(value)
        return (-1.0 + (2.0 * np.array(choice) + 1.0) / self._bins).astype(np.float32)
