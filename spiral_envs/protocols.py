"""The seams of spiral-gym: what crosses between datasets, renderers, environments and agents.

Everything here is numpy; ``spiral_envs`` never imports torch. Images are always ``uint8``,
channel-last ``(H, W, C)`` (``C`` is 1 for greyscale, 3 for colour), with the one ink convention
of the package: **white paper, dark ink** (255 is blank background, 0 is full black ink), the way
a canvas looks. Loaders convert every dataset to it once.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Discriminator", "ImageDataset", "Renderer"]


@runtime_checkable
class ImageDataset(Protocol):
    """A set of target images at canvas resolution, in the package's ink convention.

    Attributes:
        name: A short human-readable name, for example ``"mnist-train"``.
        image_shape: ``(H, W, C)`` of every image.
    """

    name: str
    image_shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray:
        """Returns image ``index`` as a fresh ``uint8 (H, W, C)`` array."""
        ...

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Returns ``n`` images drawn uniformly with ``rng``, as a fresh ``uint8 (n, H, W, C)``."""
        ...


@runtime_checkable
class Renderer(Protocol):
    """A graphics engine that owns a canvas and executes one program item at a time.

    The cairo painter (strokes) and the MuJoCo scene renderer (objects) both fit it, so the
    environment logic is written once.
    """

    def reset(self) -> None:
        """Clears the canvas to its blank state."""
        ...

    def draw(self, item: Any) -> None:
        """Adds one program item (a stroke, an object) to the canvas."""
        ...

    def canvas(self) -> np.ndarray:
        """Returns the current image as a fresh ``uint8 (H, W, C)`` array, never a view."""
        ...

    def close(self) -> None:
        """Releases native resources; the renderer is not used afterwards."""
        ...


@runtime_checkable
class Discriminator(Protocol):
    """Scores batches of canvases: higher means "more like the real data".

    Shapes:
        canvases: ``uint8 (B, H, W, C)``, the agent's renderings.
        targets: ``uint8 (B, H, W, C)`` for conditional discriminators (the image each canvas
            should reproduce), or ``None`` for unconditional ones.
        returns: ``float32 (B,)`` scores.

    A torch critic (``agents``) and the numpy :class:`spiral_envs.rewards.L2Discriminator` both
    satisfy it, so reward wrappers need no torch.
    """

    def __call__(self, canvases: np.ndarray, targets: np.ndarray | None = None) -> np.ndarray: ...
