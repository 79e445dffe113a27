"""The scene generator: random programs of 1 to 5 objects, so every target's program is known."""

from __future__ import annotations

import numpy as np

from spiral_envs._validate import check_int
from spiral_envs.scene.program import (
    COLOR_LEVELS,
    GRID,
    OBJECT_TYPES,
    SIZE_LEVELS,
    SceneObject,
    SceneProgram,
)
from spiral_envs.scene.renderer import render_scene

__all__ = ["SceneDataset", "sample_scene"]


def _sample_object(rng: np.random.Generator) -> SceneObject:
    return SceneObject(
        type=int(rng.integers(len(OBJECT_TYPES))),
        position=int(rng.integers(GRID * GRID)),
        size=int(rng.integers(len(SIZE_LEVELS))),
        color=tuple(int(c) for c in rng.integers(len(COLOR_LEVELS), size=3)),
    )


def _overlaps(a: SceneObject, b: SceneObject) -> bool:
    (xa, ya, _), (xb, yb, _) = a.world_position(), b.world_position()
    return (xa - xb) ** 2 + (ya - yb) ** 2 < (a.footprint() + b.footprint()) ** 2


def sample_scene(
    rng: np.random.Generator,
    min_objects: int = 1,
    max_objects: int = 5,
    allow_overlap: bool = False,
    max_tries: int = 100,
) -> SceneProgram:
    """Draws a random scene program: every hidden parameter uniform over its levels.

    Args:
        rng: The only source of randomness (an env passes its ``np_random``).
        min_objects: Fewest objects (inclusive).
        max_objects: Most objects (inclusive); the count is uniform in between.
        allow_overlap: When ``False`` an object is redrawn (up to ``max_tries`` times) while its
            footprint overlaps an earlier one, so targets rarely hide their own parameters.
        max_tries: Redraws per object before an overlap is accepted.

    Returns:
        A :class:`SceneProgram`.
    """
    if not 0 <= min_objects <= max_objects:
        raise ValueError(
            f"min_objects={min_objects}, max_objects={max_objects}: accepted "
            "0 <= min_objects <= max_objects"
        )
    n = int(rng.integers(min_objects, max_objects + 1))
    objects: list[SceneObject] = []
    for _ in range(n):
        obj = _sample_object(rng)
        tries = 1
        while not allow_overlap and tries < max_tries and any(_overlaps(obj, o) for o in objects):
            obj = _sample_object(rng)
            tries += 1
        objects.append(obj)
    return SceneProgram(objects)


class SceneDataset:
    """Generated target scenes as an :class:`spiral_envs.ImageDataset` (real data for a critic).

    Scene ``i`` is drawn from ``np.random.default_rng([seed, i])``, so the set is fixed by
    ``(seed, length)`` and rendered on demand.

    Args:
        length: Number of scenes.
        canvas_size: Canvas size in pixels.
        seed: Seed of the set.
        min_objects: Fewest objects per scene.
        max_objects: Most objects per scene.
        allow_overlap: Let objects overlap (see :func:`sample_scene`).
    """

    def __init__(
        self,
        length: int = 10_000,
        canvas_size: int = 64,
        seed: int = 0,
        min_objects: int = 1,
        max_objects: int = 5,
        allow_overlap: bool = False,
    ) -> None:
        self.length = check_int("length", length, 1)
        self.seed = check_int("seed", seed, 0)
        self.min_objects = check_int("min_objects", min_objects, 0)
        self.max_objects = check_int("max_objects", max_objects, 0)
        self.canvas_size = check_int("canvas_size", canvas_size, 1)
        self.allow_overlap = bool(allow_overlap)
        self.name = f"mujoco-scenes-{self.seed}"
        self.image_shape = (self.canvas_size, self.canvas_size, 3)
        sample_scene(np.random.default_rng(0), self.min_objects, self.max_objects)  # validate

    def __len__(self) -> int:
        return self.length

    def program(self, index: int) -> SceneProgram:
        """The known program of scene ``index``."""
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} scenes")
        rng = np.random.default_rng([self.seed, index % self.length])
        return sample_scene(rng, self.min_objects, self.max_objects, self.allow_overlap)

    def __getitem__(self, index: int) -> np.ndarray:
        return render_scene(self.program(index), self.canvas_size)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Returns ``n`` scenes drawn uniformly with ``rng``, a fresh ``uint8 (n, H, W, 3)``."""
        idx = rng.integers(self.length, size=check_int("n", n, 0))
        out = np.empty((n, *self.image_shape), dtype=np.uint8)
        for k, i in enumerate(idx):
            out[k] = self[int(i)]
        return out
