"""The benchmark's score: one function any RL algorithm can call, torch-free.

:func:`score` plays a policy on the standard held-out episodes of an env id and returns the
standard score dict (``docs/benchmark.md`` is the protocol)::

    import spiral_envs
    from spiral_envs.benchmark import score

    def policy(obs):  # a batch of observations -> a batch of actions
        return my_agent.act(obs)

    score("SpiralPaint-MNIST-Cond-v0", policy)
    # {'env_id': ..., 'episodes': 500, 'l2': 0.031, 'psnr': 15.6, 'blank_l2': 0.111, ...}

    score("SpiralPaint-MNIST-Cond-v0", sb3_model)  # anything with predict(obs, deterministic=)

The held-out episodes: the ``test`` split of the paint datasets (scenes have no split: held-out
seeds), episode ``i`` reset with seed ``EVAL_SEED + i``, ``EVAL_EPISODES[id]`` episodes. The same
episodes as ``spiral-eval --episodes 500`` (whose default seed is :data:`EVAL_SEED`), so the
scores of the SPIRAL agent and of any other agent are of the same targets. Episodes are played
in batches of ``num_envs`` envs of a synchronous vector env; the score does not depend on
``num_envs``.

A policy is called with the batch of observations of the vector env (a dict of arrays with a
leading batch axis, or whatever the wrappers make of it) and returns a batch of actions. A policy
that keeps state across steps (a recurrent one) sees the episode start in ``obs["step"] == 0``.
A policy object may have ``bind(envs)``, called once with the vector env before the first step:
policies that need the envs themselves (the scripted tracer) use it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from spiral_envs.registration import takes_split
from spiral_envs.rewards import l2_distance, psnr_of_l2
from spiral_envs.scene.scoring import SCORE_KEYS

__all__ = [
    "EVAL_EPISODES",
    "EVAL_SEED",
    "SUITE",
    "TracerPolicy",
    "best_constant_image",
    "held_out_baselines",
    "iqm",
    "iqm_interval",
    "normalised_score",
    "random_policy",
    "score",
]

#: The ids of the benchmark suite (``docs/benchmark.md``).
SUITE: tuple[str, ...] = (
    "SpiralPaint-MNIST-Cond-v0",
    "SpiralPaint-Omniglot-Cond-v0",
    "SpiralPaint-Faces-Cond-v0",
    "SpiralMuJoCo-Scene-Cond-v0",
)

#: Seed of the held-out episodes: episode ``i`` is reset with ``EVAL_SEED + i``. Training never
#: resets with a seed it chose this way (the trainers draw seeds at random over 31 bits).
EVAL_SEED = 10**6

#: Held-out episodes of a paint id (targets drawn from the test split) and of a scene id.
EVAL_EPISODES = {"paint": 500, "scene": 256}

Policy = Callable[[Any], np.ndarray]


def normalised_score(l2: float, constant_l2: float) -> float:
    """``1 - l2 / constant_l2``: 0 for the best constant image, 1 for a perfect reconstruction.

    The reference points are fixed, so scores compare across agents, budgets and papers: below
    0 an agent paints worse than one constant image, and 0.5 means it removed half of the
    constant image's error.
    """
    return 1.0 - l2 / constant_l2


def best_constant_image(
    env_id: str, env_kwargs: dict | None = None, samples: int = 1024, seed: int = 0
) -> np.ndarray:
    """The constant image of least expected L2 to the targets: the per-pixel mean of
    ``samples`` training targets (rounded to uint8, as a canvas is).

    Computed as a user could: from the ``train`` split of a paint id, or from training seeds
    (``seed + i``) of a scene id, never from the held-out episodes. Cached per id and kwargs.
    """
    key = json.dumps(env_kwargs or {}, sort_keys=True, default=str)
    return _constant_image(env_id, key, samples, seed).copy()


def held_out_baselines(
    env_id: str, episodes: int | None = None, seed: int = EVAL_SEED, env_kwargs: dict | None = None
) -> dict[str, float]:
    """``blank_l2`` and ``constant_l2`` of a paint id's held-out episodes, without a policy: the
    baselines :func:`score` reports beside an agent, for results saved before it did."""
    episodes = episodes or EVAL_EPISODES["paint"]
    constant = best_constant_image(env_id, env_kwargs)
    env = gym.make(env_id, **{"split": "test", **(env_kwargs or {})})
    blank, const = [], []
    try:
        for i in range(episodes):
            env.reset(seed=seed + i)
            target = env.unwrapped.target
            blank.append(float(l2_distance(env.unwrapped.canvas, target)))
            const.append(float(l2_distance(constant, target)))
    finally:
        env.close()
    return {"blank_l2": float(np.mean(blank)), "constant_l2": float(np.mean(const))}


def iqm(values: Sequence[float]) -> float:
    """The interquartile mean: the mean of the middle half (Agarwal et al., NeurIPS 2021), robust
    to one seed that fails or shines. With fewer than 4 values it is the mean."""
    v = np.sort(np.asarray(values, np.float64))
    cut = len(v) // 4
    return float(v[cut : len(v) - cut].mean())


def iqm_interval(
    values: Sequence[float], confidence: float = 0.95, reps: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """A percentile-bootstrap confidence interval of :func:`iqm` over seeds (runs resampled with
    replacement, as ``rliable``'s ``get_interval_estimates`` does for one task)."""
    v = np.asarray(values, np.float64)
    resampled = np.sort(v[np.random.default_rng(seed).integers(0, len(v), (reps, len(v)))], 1)
    cut = len(v) // 4
    stats = resampled[:, cut : len(v) - cut].mean(1)  # iqm of each resample
    low, high = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


@functools.lru_cache(maxsize=16)
def _constant_image(env_id: str, kwargs_json: str, samples: int, seed: int) -> np.ndarray:
    kwargs = json.loads(kwargs_json)
    if takes_split(env_id):
        kwargs["split"] = "train"
    env = gym.make(env_id, **kwargs)
    try:
        total = None
        for i in range(samples):
            obs, _ = env.reset(seed=seed + i)
            has = isinstance(obs, dict) and "target" in obs  # else the env's hidden target
            target = obs["target"] if has else getattr(env.unwrapped, "target", None)
            if target is None:
                raise ValueError(f"{env_id} has no targets: a constant image has no L2 to score")
            total = target.astype(np.float64) if total is None else total + target
    finally:
        env.close()
    return np.round(total / samples).astype(np.uint8)


def score(
    env_id: str,
    policy: Policy | Any,
    episodes: int | None = None,
    seed: int = EVAL_SEED,
    env_kwargs: dict | None = None,
    num_envs: int = 16,
    deterministic: bool = True,
) -> dict[str, Any]:
    """Plays ``policy`` on the held-out episodes of ``env_id``; returns the standard scores.

    Args:
        env_id: A registered id (a benchmark id with its reward and action wrappers works too:
            only the final canvases are scored).
        policy: A function from a batch of observations to a batch of actions, or an object with
            ``predict(obs, deterministic=...)`` returning ``(actions, state)`` (stable-baselines3
            models), optionally with ``bind(envs)``.
        episodes: Default :data:`EVAL_EPISODES` of the id's kind (paint 500, scene 256).
        seed: Episode ``i`` is reset with ``seed + i``.
        env_kwargs: Passed to ``gym.make`` beside ``split="test"`` (paint ids).
        num_envs: Envs stepped in one batch.
        deterministic: Passed to ``predict``.

    Returns:
        ``env_id``, ``episodes``, ``seed``; paint ids: ``l2`` and ``psnr`` (mean over episodes
        of the final canvas's L2 to its target and its PSNR in dB) and ``blank_l2`` (a blank
        canvas's L2 to the same targets), ``constant_l2`` (the :func:`best_constant_image`'s)
        and ``normalised`` (:func:`normalised_score` of the means); scene ids: ``l2`` (pixel
        L2) and the mean recovery scores of :func:`spiral_envs.scene.score_scene`
        (``position_error`` and ``color_error`` over the episodes that matched an object).

    Raises:
        ValueError: On a bad ``episodes``/``num_envs``, or a policy whose actions the envs reject.
    """
    paint = takes_split(env_id)
    if episodes is None:
        episodes = EVAL_EPISODES["paint" if paint else "scene"]
    if episodes < 1 or num_envs < 1:
        raise ValueError(f"episodes ({episodes}) and num_envs ({num_envs}) must be >= 1")
    act = _as_function(policy, deterministic)
    num_envs = min(num_envs, episodes)
    kwargs = {"split": "test", **(env_kwargs or {})} if paint else dict(env_kwargs or {})
    constant = best_constant_image(env_id, env_kwargs) if paint else None
    envs = gym.make_vec(env_id, num_envs, vectorization_mode="sync", **kwargs)
    if hasattr(policy, "bind"):
        policy.bind(envs)
    rows: list[dict[str, float]] = []
    try:
        for b in range(math.ceil(episodes / num_envs)):
            seeds = [seed + b * num_envs + j for j in range(num_envs)]
            rows += _play_batch(envs, act, seeds, constant)
    finally:
        envs.close()
    out = {"env_id": env_id, "episodes": episodes, "seed": seed, **_means(rows[:episodes])}
    if constant is not None:
        out["normalised"] = normalised_score(out["l2"], out["constant_l2"])
    return out


def random_policy(env_id: str, seed: int = 0, env_kwargs: dict | None = None) -> Policy:
    """A uniformly random policy over ``env_id``'s action space, for a batch of any size."""
    env = gym.make(env_id, **(env_kwargs or {}))
    space = env.action_space
    env.close()
    space.seed(seed)

    def act(obs: Any) -> np.ndarray:
        n = len(obs["step"]) if isinstance(obs, dict) else len(obs)
        return np.stack([space.sample() for _ in range(n)])

    return act


class TracerPolicy:
    """The scripted tracer (:class:`spiral_envs.paint.ScriptedTracer`) as a batch policy."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.tracers: list = []

    def bind(self, envs: gym.vector.SyncVectorEnv) -> None:
        from spiral_envs.paint.scripted import ScriptedTracer

        self.tracers = [ScriptedTracer(e, seed=self.seed + i) for i, e in enumerate(envs.envs)]

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        actions = []
        for i, tracer in enumerate(self.tracers):
            one = {k: v[i] for k, v in obs.items()}
            if one["step"][0] == 0:
                tracer.reset(tracer.env.target)
            actions.append(tracer.act(one))
        return np.stack(actions)


# -- helpers ----------------------------------------------------------------------------------


def _as_function(policy: Any, deterministic: bool) -> Policy:
    if hasattr(policy, "predict"):
        return lambda obs: policy.predict(obs, deterministic=deterministic)[0]
    if callable(policy):
        return policy
    raise ValueError(f"policy {policy!r}: expected a function of observations, or predict()")


def _play_batch(
    envs: gym.vector.VectorEnv, act: Policy, seeds: Sequence[int], constant: np.ndarray | None
) -> list[dict]:
    """One episode per env; the info of each env's final step (fixed-length episodes), and the
    L2 of the blank canvas and of the ``constant`` image (when given) to the env's target."""
    obs, _ = envs.reset(seed=list(seeds))
    blanks = [float(l2_distance(e.unwrapped.canvas, e.unwrapped.target)) for e in envs.envs]
    consts = [
        {}
        if constant is None
        else {"constant_l2": float(l2_distance(constant, e.unwrapped.target))}
        for e in envs.envs
    ]
    finals: list[dict | None] = [None] * envs.num_envs
    while any(f is None for f in finals):
        actions = np.asarray(act(obs))
        if actions.shape[0] != envs.num_envs:
            raise ValueError(
                f"the policy returned {actions.shape[0]} actions for {envs.num_envs} observations"
            )
        obs, _, terminated, truncated, infos = envs.step(actions)
        for i in np.flatnonzero(terminated | truncated):
            if finals[i] is None:
                finals[i] = {k: v[i] for k, v in infos.items() if not k.startswith("_")}
    rows = []
    for i, info in enumerate(finals):
        rows.append(
            {
                **{k: float(info[k]) for k in ("l2", *SCORE_KEYS) if k in info},
                "blank_l2": blanks[i],
                **consts[i],
            }
        )
    return rows


def _means(rows: list[dict[str, float]]) -> dict[str, float | None]:
    """Means over episodes (NaN-free ones for the errors of matched objects only)."""
    out: dict[str, float | None] = {}
    for k in rows[0]:
        v = np.array([r[k] for r in rows], np.float64)
        ok = ~np.isnan(v)
        out[k] = float(v[ok].mean()) if ok.any() else None
    l2 = np.array([r["l2"] for r in rows], np.float64)
    out["psnr"] = float(np.mean(psnr_of_l2(np.maximum(l2, 1e-10))))
    return out
