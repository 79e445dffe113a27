"""Where files are cached, and the convert-once cache of loaded datasets.

A converted dataset is a ``.npy`` file (loaded memory-mapped) plus a small ``.meta.npz`` (labels,
class names), keyed by the source files (path, size, mtime), the dataset, split and size. Writes
go to a temporary file that is renamed into place, so a crash or a concurrent loader never leaves
a half-written file under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spiral_envs.datasets._base import ArrayDataset

__all__ = ["RawSet", "cache_root", "fingerprint", "materialise"]

#: Bump when a conversion changes, so old cached arrays are not reused.
CONVERSION_VERSION = 2  # 2: Omniglot images with white ink on black are inverted
#: Show a progress bar (on a terminal) when converting at least this many images.
PROGRESS_MIN_IMAGES = 20_000


def cache_root() -> Path:
    """The spiral-gym cache folder.

    ``$SPIRAL_CACHE_DIR`` if set (and not empty), else ``$XDG_CACHE_HOME/spiral_gym``, else
    ``~/.cache/spiral_gym``. Downloads go to ``<cache_root>/<dataset>``, converted arrays to
    ``<cache_root>/converted``.
    """
    env = os.environ.get("SPIRAL_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "spiral_gym"


def fingerprint(paths: Iterable[Path]) -> list[str]:
    """Identifies source files cheaply: path, size and mtime of files; folders by their subfolders.

    A folder is described by the path, mtime and entry count of it and every folder below it
    (adding or removing a file changes them), without a ``stat`` per image.
    """
    parts: list[str] = []
    for path in paths:
        path = Path(path).resolve()
        st = path.stat()
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                mtime = os.stat(dirpath).st_mtime_ns
                parts.append(f"{dirpath}|{mtime}|{len(dirnames)}|{len(filenames)}")
        else:
            parts.append(f"{path}|{st.st_size}|{st.st_mtime_ns}")
    return parts


@dataclass
class RawSet:
    """A dataset read from its source files, not yet converted.

    Attributes:
        n: Number of images.
        channels: 1 (greyscale) or 3 (RGB).
        images: Called with the target size, yields ``n`` images ``uint8 (size, size, C)`` in
            order, already in the package's ink convention.
        labels: Integer labels ``(n,)`` or ``None``.
        class_names: Names of the label values, or ``None``.
    """

    n: int
    channels: int
    images: Callable[[int], Iterator[np.ndarray]]
    labels: np.ndarray | None = None
    class_names: list[str] | None = None


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _load_cached(img_path: Path, meta_path: Path, name: str, source: str) -> ArrayDataset | None:
    if not (img_path.is_file() and meta_path.is_file()):
        return None
    try:
        images = np.load(img_path, mmap_mode="r")
        with np.load(meta_path, allow_pickle=False) as meta:
            labels = meta["labels"] if bool(meta["has_labels"]) else None
            class_names = (
                [str(c) for c in meta["class_names"]] if meta["class_names"].size else None
            )
        return ArrayDataset(name, images, labels, class_names=class_names, source=source)
    except Exception as exc:  # a damaged cache entry is rebuilt, never trusted
        warnings.warn(f"ignoring unreadable cached dataset {img_path}: {exc}", stacklevel=3)
        return None


def materialise(
    *,
    name: str,
    tag: str,
    size: int,
    key_parts: list[str],
    build: Callable[[], RawSet],
    source: str,
    use_cache: bool = True,
) -> ArrayDataset:
    """Returns the converted dataset, from the cache or by converting it (and caching that).

    Args:
        name: Dataset name for the result (``"mnist-train"``).
        tag: Short file-name-safe tag for the cache file (``"mnist-train"``).
        size: Target side length in pixels.
        key_parts: Strings that identify the source (see :func:`fingerprint`).
        build: Reads the source; called only on a cache miss.
        source: Description of the source, kept on the result.
        use_cache: If false, converts in memory and writes nothing.

    Returns:
        The dataset; memory-mapped from the cache when the cache folder is writable.
    """
    key = json.dumps([CONVERSION_VERSION, tag, size, key_parts])
    digest = hashlib.sha1(key.encode()).hexdigest()[:20]
    folder = cache_root() / "converted"
    img_path = folder / f"{tag}-{size}px-{digest}.npy"
    meta_path = folder / f"{tag}-{size}px-{digest}.meta.npz"
    if use_cache:
        cached = _load_cached(img_path, meta_path, name, source)
        if cached is not None:
            return cached

    raw = build()
    shape = (raw.n, size, size, raw.channels)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp_img = folder / f".{img_path.name}.{token}.tmp"
    tmp_meta = folder / f".{meta_path.name}.{token}.tmp"
    out: np.ndarray | None = None
    if use_cache:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            out = np.lib.format.open_memmap(tmp_img, mode="w+", dtype=np.uint8, shape=shape)
        except OSError as exc:
            warnings.warn(
                f"cannot write the dataset cache in {folder} ({exc}); converting in memory",
                stacklevel=3,
            )
            _unlink(tmp_img)
            out = None
    cached_write = out is not None
    if out is None:
        out = np.empty(shape, np.uint8)
    try:
        _fill(out, raw, size, tag)
        if not cached_write:
            return ArrayDataset(name, out, raw.labels, class_names=raw.class_names, source=source)
        assert isinstance(out, np.memmap)
        out.flush()
        del out
        with open(tmp_meta, "wb") as f:
            np.savez(
                f,
                has_labels=np.array(raw.labels is not None),
                labels=np.zeros(0, np.int64) if raw.labels is None else np.asarray(raw.labels),
                class_names=np.array(raw.class_names or [], dtype=str),
            )
        os.replace(tmp_meta, meta_path)
        os.replace(tmp_img, img_path)
    finally:
        _unlink(tmp_img)
        _unlink(tmp_meta)
    images = np.load(img_path, mmap_mode="r")
    return ArrayDataset(name, images, raw.labels, class_names=raw.class_names, source=source)


def _fill(out: np.ndarray, raw: RawSet, size: int, tag: str) -> None:
    from tqdm.auto import tqdm

    expected = (size, size, raw.channels)
    count = 0
    with tqdm(
        total=raw.n,
        desc=f"spiral-gym: converting {tag} to {size}px",
        unit="img",
        disable=None if raw.n >= PROGRESS_MIN_IMAGES else True,
        mininterval=0.5,
    ) as bar:
        for image in raw.images(size):
            if count >= raw.n:
                raise RuntimeError(f"{tag}: source yielded more than the {raw.n} images announced")
            if image.shape != expected:
                raise RuntimeError(
                    f"{tag}: converted image has shape {image.shape}, not {expected}"
                )
            out[count] = image
            count += 1
            if count % 1000 == 0:
                bar.update(1000)
        bar.update(count % 1000)
    if count != raw.n:
        raise RuntimeError(f"{tag}: source yielded {count} images, expected {raw.n}")
