"""The registry table of spiral-gym environment ids, registered on ``import spiral_envs``."""

from __future__ import annotations

import gymnasium as gym

__all__ = ["ENV_IDS", "PAINT_IDS", "SCENE_IDS", "register_envs"]

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


def register_envs() -> None:
    """Registers every id of the table (idempotent)."""
    for env_id, (entry_point, kwargs) in _TABLE.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=_VECTOR[entry_point],
                kwargs=dict(kwargs),
            )
