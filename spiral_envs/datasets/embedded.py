"""The small datasets shipped in ``spiral_envs/data`` (built by ``scripts/make_embedded_data.py``).

* ``mnist.npz``: ``{train,test}_images`` uint8 ``(N, 28, 28)`` as in the IDX files (0 =
  background), ``{split}_labels``, ``{split}_indices`` (rows of the original files).
* ``omniglot.npz``: ``{background,evaluation}_bits`` uint8 ``(N, ceil(105*105/8))``, each image
  ``np.packbits`` of its row-major 105x105 pixels (1 = white), ``{split}_char_ids`` (official
  1-based character id), ``{split}_drawers`` (1..20), ``image_size``.
* ``faces.npz``: ``images`` uint8 ``(244, 64, 64, 3)`` (centre crop 148 of the 178x218 aligned
  faces, resized to 64), ``partition`` (0 train, 1 valid, 2 test), ``identity``, ``filenames``.

Licences and attribution are in ``spiral_envs/data/*-LICENSE.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from spiral_envs.datasets import celeba, omniglot
from spiral_envs.datasets._base import DatasetFormatError, resize_image
from spiral_envs.datasets._cache import RawSet
from spiral_envs.datasets.mnist import mnist_rawset

__all__ = ["EMBEDDED_FILES", "embedded_path", "read_embedded"]

EMBEDDED_FILES = {"mnist": "mnist.npz", "omniglot": "omniglot.npz", "faces": "faces.npz"}


def embedded_path(name: str) -> Path:
    """Path of the embedded file of dataset ``name`` (which may be missing in a broken install)."""
    return Path(__file__).resolve().parents[1] / "data" / EMBEDDED_FILES[name]


def read_embedded(name: str, split: str) -> RawSet:
    """Reads a split of the embedded subset of ``name`` (``mnist``, ``omniglot`` or ``faces``)."""
    path = embedded_path(name)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"the embedded {name} data {path} is missing: the package is not installed "
            "completely (package data not included?)"
        ) from exc
    except Exception as exc:
        raise DatasetFormatError(f"{path}: cannot read the embedded {name} data ({exc})") from exc
    if name == "mnist":
        return mnist_rawset(data[f"{split}_images"], data[f"{split}_labels"])
    if name == "omniglot":
        return _omniglot(data, split)
    return _faces(data, split)


def _omniglot(data: dict[str, np.ndarray], split: str) -> RawSet:
    side = int(data["image_size"])
    bits = data[f"{split}_bits"]
    char_ids = data[f"{split}_char_ids"].astype(np.int64)
    unique = np.unique(char_ids)
    labels = np.searchsorted(unique, char_ids).astype(np.int64)
    class_names = [omniglot.character_name(int(c)) for c in unique]

    def images(size: int) -> Iterator[np.ndarray]:
        for row in bits:
            img = np.unpackbits(row, count=side * side).reshape(side, side) * np.uint8(255)
            yield resize_image(img, size)

    return RawSet(int(bits.shape[0]), 1, images, labels, class_names)


def _faces(data: dict[str, np.ndarray], split: str) -> RawSet:
    keep = np.isin(data["partition"], celeba.SPLIT_CODES[split])
    faces = data["images"][keep]

    def images(size: int) -> Iterator[np.ndarray]:
        for img in faces:
            yield resize_image(img, size)

    return RawSet(int(faces.shape[0]), 3, images)
