"""A ring buffer of past renderings (and their targets) that feeds the discriminator."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ReplayBatch", "ReplayBuffer"]


class ReplayBatch(NamedTuple):
    canvases: np.ndarray  # uint8 (N, H, W, C)
    targets: np.ndarray | None  # uint8 (N, H, W, C), conditional only


class ReplayBuffer:
    """Fixed-capacity FIFO of uint8 images; the oldest are overwritten first.

    Args:
        capacity: Most images kept (>= 1).
        image_shape: ``(H, W, C)``.
        conditional: Keep a target beside each canvas.
    """

    def __init__(self, capacity: int, image_shape: tuple[int, int, int], conditional: bool):
        if capacity < 1:
            raise ValueError(f"capacity = {capacity}: accepted >= 1")
        self.capacity, self.image_shape = int(capacity), tuple(image_shape)
        self.canvases = np.zeros((self.capacity, *self.image_shape), np.uint8)
        self.targets = np.zeros_like(self.canvases) if conditional else None
        self.size = 0
        self.next = 0

    def __len__(self) -> int:
        return self.size

    def add(self, canvases: np.ndarray, targets: np.ndarray | None = None) -> None:
        """Appends ``(N, H, W, C)`` canvases (and targets when conditional)."""
        canvases = np.asarray(canvases)
        if canvases.shape[1:] != self.image_shape or canvases.dtype != np.uint8:
            raise ValueError(
                f"canvases must be uint8 (N, {self.image_shape}), got "
                f"{canvases.dtype} {canvases.shape}"
            )
        if (self.targets is None) != (targets is None):
            raise ValueError("targets must be given exactly when the buffer is conditional")
        n = len(canvases)
        if n >= self.capacity:  # keep only the newest
            canvases = canvases[-self.capacity :]
            targets = None if targets is None else targets[-self.capacity :]
            n = self.capacity
        idx = (self.next + np.arange(n)) % self.capacity
        self.canvases[idx] = canvases
        if self.targets is not None:
            self.targets[idx] = targets
        self.next = int((self.next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, rng: np.random.Generator, n: int) -> ReplayBatch:
        """``n`` items drawn uniformly with replacement (fresh arrays)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=n)
        return ReplayBatch(self.canvases[idx], None if self.targets is None else self.targets[idx])

    def state_dict(self) -> dict:
        return {
            "canvases": self.canvases[: self.size].copy(),
            "targets": None if self.targets is None else self.targets[: self.size].copy(),
            "next": self.next,
            "size": self.size,
        }

    def load_state_dict(self, d: dict) -> None:
        n = d["size"]
        if n > self.capacity:
            raise ValueError(f"saved buffer holds {n} items, capacity is {self.capacity}")
        self.canvases[:n] = _array(d["canvases"])
        if self.targets is not None:
            self.targets[:n] = _array(d["targets"])
        self.size, self.next = n, d["next"]


def _array(x) -> np.ndarray:
    """A saved array as numpy (a checkpoint loaded onto a GPU holds CUDA tensors)."""
    return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)
