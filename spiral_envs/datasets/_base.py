"""The in-memory dataset type, the error type and the image helpers every loader shares."""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from spiral_envs._validate import check_int

__all__ = ["ArrayDataset", "DatasetFormatError", "center_crop", "resize_image"]

#: PIL filter for shrinking ("antialiased": LANCZOS is what ``Image.ANTIALIAS`` used to name).
DOWNSCALE_FILTER = Image.Resampling.LANCZOS
#: PIL filter for enlarging (bicubic rings less than LANCZOS around thin strokes).
UPSCALE_FILTER = Image.Resampling.BICUBIC


class DatasetFormatError(ValueError):
    """A dataset file exists but is corrupt or not in the expected format.

    The message names the file and what was expected of it.
    """


class ArrayDataset:
    """An :class:`~spiral_envs.protocols.ImageDataset` over a ``uint8`` array of images.

    Every loader of :func:`spiral_envs.datasets.load_dataset` returns one; it is also the easy
    way to bring your own targets (already in the package's ink convention: white paper,
    dark ink, 255 = blank).

    Examples:
        >>> import numpy as np
        >>> ds = ArrayDataset("blank", np.full((3, 8, 8), 255, np.uint8))
        >>> ds.image_shape, len(ds)
        ((8, 8, 1), 3)
        >>> ds.sample(np.random.default_rng(0), 2).shape
        (2, 8, 8, 1)

    Args:
        name: Human-readable name, for example ``"mnist-train"``.
        images: ``uint8`` array ``(N, H, W)`` (greyscale, a channel axis is added) or
            ``(N, H, W, C)`` with ``C`` 1 or 3. It is not copied (a memory-mapped array stays
            on disk) but is only ever read; returned images are fresh copies.
        labels: Optional integer class labels, shape ``(N,)``.
        class_names: Optional names of the label values (``class_names[label]``).
        source: Where the images came from (a path, or ``"embedded"``), for messages.

    Raises:
        ValueError: If ``images`` is empty, not ``uint8`` or of the wrong rank, or ``labels``
            does not match it.
    """

    def __init__(
        self,
        name: str,
        images: np.ndarray,
        labels: np.ndarray | Sequence[int] | None = None,
        *,
        class_names: Sequence[str] | None = None,
        source: str = "array",
    ) -> None:
        if not isinstance(images, np.ndarray):
            images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (0-255), got dtype {images.dtype}")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(
                "images must have shape (N, H, W) or (N, H, W, C) with C in (1, 3), "
                f"got {images.shape}"
            )
        if images.shape[0] == 0:
            raise ValueError(f"dataset {name!r} has no images")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(
                    f"labels must be integers of shape ({images.shape[0]},), "
                    f"got {labels.dtype} {labels.shape}"
                )
        self.name = str(name)
        self.image_shape: tuple[int, int, int] = tuple(int(d) for d in images.shape[1:])  # type: ignore[assignment]
        self.source = str(source)
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self._images = images
        self._labels = labels

    @property
    def images(self) -> np.ndarray:
        """A read-only view of all images, ``uint8 (N, H, W, C)`` (may be memory-mapped)."""
        view = self._images.view(np.ndarray)
        view.flags.writeable = False
        return view

    @property
    def labels(self) -> np.ndarray | None:
        """A copy of the integer labels, shape ``(N,)``, or ``None`` if there are none."""
        return None if self._labels is None else np.array(self._labels)

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def __getitem__(self, index: int) -> np.ndarray:
        """Returns image ``index`` as a fresh ``uint8 (H, W, C)`` array.

        Raises:
            TypeError: If ``index`` is not an integer.
            IndexError: If it is out of range.
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"dataset indices must be integers, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for dataset {self.name!r} of {n}")
        return np.array(self._images[int(index)], dtype=np.uint8, copy=True)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Returns ``n`` images drawn uniformly (with replacement) with ``rng``.

        Args:
            rng: The generator to draw with (an env passes its ``np_random``).
            n: How many images, ``>= 0``.

        Returns:
            A fresh ``uint8 (n, H, W, C)`` array.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        idx = rng.integers(0, len(self), size=check_int("n", n, 0))
        return np.array(self._images[idx], dtype=np.uint8, copy=True)

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
            f"source={self.source!r})"
        )

    # A memory-mapped dataset pickles as its file name, not as gigabytes of pixels.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        images = self._images
        if isinstance(images, np.memmap) and images.filename is not None and images.mode == "r":
            filename = os.fspath(images.filename)
            try:  # only a whole .npy file can be re-opened by name
                probe = np.load(filename, mmap_mode="r")
                whole = probe.shape == images.shape and probe.dtype == images.dtype
            except Exception:
                whole = False
            if whole:
                state["_images"] = ("__mmap__", filename)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        images = state["_images"]
        if isinstance(images, tuple) and len(images) == 2 and images[0] == "__mmap__":
            state["_images"] = np.load(images[1], mmap_mode="r")
        self.__dict__.update(state)


def center_crop(image: Image.Image, crop: int) -> Image.Image:
    """Crops the central ``crop x crop`` square (smaller if the image is), torchvision-style."""
    w, h = image.size
    c = min(crop, w, h)
    top = int(round((h - c) / 2.0))
    left = int(round((w - c) / 2.0))
    return image.crop((left, top, left + c, top + c))


def resize_image(image: Image.Image | np.ndarray, size: int) -> np.ndarray:
    """Resizes an image to ``size x size`` with antialiasing; returns ``uint8 (size, size, C)``.

    Shrinking uses LANCZOS, enlarging uses bicubic; the same size is a copy.
    """
    if isinstance(image, np.ndarray):
        arr = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
        image = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB" if image.mode in ("RGBA", "P", "CMYK", "YCbCr") else "L")
    if image.size != (size, size):
        shrink = size < max(image.size)
        image = image.resize((size, size), DOWNSCALE_FILTER if shrink else UPSCALE_FILTER)
    out = np.asarray(image, dtype=np.uint8)
    if out.ndim == 2:
        out = out[..., None]
    return np.array(out, copy=True)
