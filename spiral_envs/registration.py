"""The registry table of spiral-gym environment ids, registered on ``import spiral_envs``.

:data:`ENV_IDS` are the environments themselves (reward 0; a reward wrapper or a trainer adds
it). :data:`BENCH_IDS` are the benchmark tasks: each conditional env with its benchmark reward
already applied (Gymnasium's ``additional_wrappers``, so ``env.spec`` says so and round-trips
through JSON), and a ``-Box`` twin with continuous actions:

* ``SpiralBench-<Dataset>-Cond-v0``: ``SpiralPaint-<Dataset>-Cond-v0`` in
  ``L2Reward(mode="per_step", scale=10)``;
* ``SpiralBench-Scene-Cond-v0``: ``SpiralMuJoCo-Scene-Cond-v0`` in
  ``SimilarityReward(mode="per_step")`` (pixel L2 taught scene agents to place nothing);
* ``SpiralBench-...-Cond-Box-v0``: the same, then ``ContinuousActions()``.

``<Dataset>`` is MNIST, Omniglot, CelebA or Faces. The reward sits inside the env, so a
library's episode monitor (stable-baselines3's ``Monitor`` in ``make_vec_env``) logs it.
"""

from __future__ import annotations

import inspect

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec, load_env_creator

from spiral_envs.rewards import SIMILARITY_SIGMAS

__all__ = ["BENCH_IDS", "ENV_IDS", "PAINT_IDS", "SCENE_IDS", "register_envs", "takes_split"]

_PAINT = "spiral_envs.paint.env:PaintEnv"
_SCENE = "spiral_envs.scene.env:SceneEnv"

#: entry point -> vector entry point (``gym.make_vec(..., vectorization_mode="vector_entry_point")``
#: gives a :class:`spiral_envs.vector.BatchedVectorEnv`).
_VECTOR = {
    _PAINT: "spiral_envs.vector:paint_vector_env",
    _SCENE: "spiral_envs.vector:scene_vector_env",
}

#: id -> (entry point, kwargs). Every kwarg is JSON-serialisable so ``spec.to_json()`` works.
_TABLE: dict[str, tuple[str, dict]] = {}
for _name, _dataset in (
    ("MNIST", "mnist"),
    ("Omniglot", "omniglot"),
    ("CelebA", "celeba"),
    ("Faces", "faces"),
):
    _TABLE[f"SpiralPaint-{_name}-v0"] = (_PAINT, {"dataset": _dataset, "conditional": False})
    _TABLE[f"SpiralPaint-{_name}-Cond-v0"] = (_PAINT, {"dataset": _dataset, "conditional": True})

PAINT_IDS: tuple[str, ...] = tuple(_TABLE)

_TABLE["SpiralMuJoCo-Scene-v0"] = (_SCENE, {"conditional": False})
_TABLE["SpiralMuJoCo-Scene-Cond-v0"] = (_SCENE, {"conditional": True})
SCENE_IDS: tuple[str, ...] = ("SpiralMuJoCo-Scene-v0", "SpiralMuJoCo-Scene-Cond-v0")

ENV_IDS: tuple[str, ...] = tuple(_TABLE)


def _wrapper(name: str, **kwargs) -> WrapperSpec:
    """The spec of a :mod:`spiral_envs.wrappers` wrapper: what its ``env.spec`` records."""
    return WrapperSpec(name=name, entry_point=f"spiral_envs.wrappers:{name}", kwargs=kwargs)


#: Per-step L2 rewards of an MNIST episode sum to about 0.1 (blank minus final L2); 10 brings
#: them to O(1), as the L2 runs of ``benchmarks/learning.py`` (``--reward_scale 10``).
BENCH_L2_SCALE = 10.0

#: benchmark id -> (env id, wrappers applied by ``gym.make``).
_BENCH: dict[str, tuple[str, tuple[WrapperSpec, ...]]] = {}
_REWARDS = {
    f"SpiralPaint-{_name}-Cond-v0": (
        _name,
        _wrapper("L2Reward", mode="per_step", scale=BENCH_L2_SCALE),
    )
    for _name in ("MNIST", "Omniglot", "CelebA", "Faces")
}
_REWARDS["SpiralMuJoCo-Scene-Cond-v0"] = (
    "Scene",
    _wrapper("SimilarityReward", mode="per_step", scale=1.0, sigmas=list(SIMILARITY_SIGMAS)),
)
for _env_id, (_name, _reward) in _REWARDS.items():
    _BENCH[f"SpiralBench-{_name}-Cond-v0"] = (_env_id, (_reward,))
    _BENCH[f"SpiralBench-{_name}-Cond-Box-v0"] = (_env_id, (_reward, _wrapper("ContinuousActions")))

BENCH_IDS: tuple[str, ...] = tuple(_BENCH)


def register_envs() -> None:
    """Registers every id of the tables (idempotent)."""
    for env_id, (entry_point, kwargs) in _TABLE.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=_VECTOR[entry_point],
                kwargs=dict(kwargs),
            )
    for bench_id, (env_id, wrappers) in _BENCH.items():
        if bench_id not in gym.registry:
            entry_point, kwargs = _TABLE[env_id]
            # No vector entry point: it cannot apply wrappers, and make_vec would pick it.
            gym.register(
                id=bench_id,
                entry_point=entry_point,
                kwargs=dict(kwargs),
                additional_wrappers=wrappers,
            )


def takes_split(env_id: str) -> bool:
    """Whether ``env_id``'s targets come from a dataset split (its constructor takes ``split``);
    envs that generate their targets (scenes) have none: their held-out episodes are other
    seeds."""
    entry = gym.spec(env_id).entry_point
    make = load_env_creator(entry) if isinstance(entry, str) else entry
    return "split" in inspect.signature(make).parameters
