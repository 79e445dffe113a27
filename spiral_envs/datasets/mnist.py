"""MNIST: the four IDX files (``.gz`` or raw; hyphen or dot names; torchvision's ``MNIST/raw``).

IDX is big-endian: images are ``>i4`` magic 2051, count, rows, cols, then ``count*rows*cols``
bytes (0 = background, 255 = ink); labels are magic 2049, count, then ``count`` bytes. MNIST's
0 = background is inverted to the package's white paper, dark ink.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spiral_envs.datasets._base import DatasetFormatError, resize_image
from spiral_envs.datasets._cache import RawSet

__all__ = ["MnistFiles", "find_mnist", "read_idx", "read_mnist"]

SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}
#: Sub-folders of a data folder searched, in order ("" is the folder itself).
SUBDIRS = ("mnist", "mnist/MNIST/raw", "MNIST/raw", "", "raw")
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def candidate_names(split: str, kind: str) -> list[str]:
    """File names accepted for a split's ``"images"`` or ``"labels"`` file, in order."""
    prefix = _PREFIX[split]
    ndim = 3 if kind == "images" else 1
    names = []
    for stem in (f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"):
        names += [stem + ".gz", stem]
    return names


@dataclass(frozen=True)
class MnistFiles:
    """The IDX files of one split; ``labels`` is optional."""

    images: Path
    labels: Path | None


def find_mnist(folder: Path, split: str) -> MnistFiles | None:
    """Finds a split's IDX files directly in ``folder`` (no sub-folders), or returns ``None``."""
    images = next(
        (folder / n for n in candidate_names(split, "images") if (folder / n).is_file()), None
    )
    if images is None:
        return None
    labels = next(
        (folder / n for n in candidate_names(split, "labels") if (folder / n).is_file()), None
    )
    return MnistFiles(images, labels)


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as g:
                return g.read()
        if path.suffix == ".gz":
            raise DatasetFormatError(f"{path}: expected a gzip file (.gz), but it is not gzipped")
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DatasetFormatError(f"{path}: cannot read it as an IDX file ({exc})") from exc


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Reads one IDX file of unsigned bytes, validating its header and length.

    Args:
        path: The file, gzipped or raw.
        magic: 2051 for image files (3-D), 2049 for label files (1-D).

    Returns:
        ``uint8`` array ``(count, rows, cols)`` or ``(count,)``.

    Raises:
        DatasetFormatError: Naming the file and what was expected, if it is not a valid IDX file
            of that kind.
    """
    path = Path(path)
    data = _read_bytes(path)
    ndim = magic & 0xFF
    kind = "images (IDX3, magic 2051)" if magic == IMAGES_MAGIC else "labels (IDX1, magic 2049)"
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetFormatError(
            f"{path}: expected MNIST {kind}, but the file has only {len(data)} bytes"
        )
    found = struct.unpack(">i", data[:4])[0]
    if found != magic:
        raise DatasetFormatError(
            f"{path}: expected MNIST {kind}, but the magic number is {found}, not {magic}"
        )
    dims = struct.unpack(f">{ndim}i", data[4:header])
    expected = header + int(np.prod(dims))
    if any(d <= 0 for d in dims) or len(data) != expected:
        raise DatasetFormatError(
            f"{path}: expected MNIST {kind} with dimensions {dims}, i.e. {expected} bytes, "
            f"but it has {len(data)} bytes (truncated or corrupt?)"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def read_mnist(files: MnistFiles) -> RawSet:
    """Reads and validates a split; images come out as white paper, dark ink."""
    raw = read_idx(files.images, IMAGES_MAGIC)
    labels = None
    if files.labels is not None:
        labels = read_idx(files.labels, LABELS_MAGIC)
        if labels.shape[0] != raw.shape[0]:
            raise DatasetFormatError(
                f"{files.labels}: has {labels.shape[0]} labels, expected {raw.shape[0]} "
                f"(one per image of {files.images.name})"
            )
        if labels.size and int(labels.max()) > 9:
            raise DatasetFormatError(f"{files.labels}: labels must be digits 0-9")
    return mnist_rawset(raw, labels)


def mnist_rawset(raw: np.ndarray, labels: np.ndarray | None) -> RawSet:
    """Wraps MNIST-convention images ``(N, H, W)`` (0 = background) for conversion."""

    def images(size: int) -> Iterator[np.ndarray]:
        for img in raw:
            inverted = 255 - img
            if inverted.shape == (size, size):
                yield inverted[..., None]
            else:
                yield resize_image(inverted, size)

    return RawSet(
        n=int(raw.shape[0]),
        channels=1,
        images=images,
        labels=None if labels is None else labels.astype(np.int64),
        class_names=[str(d) for d in range(10)],
    )
