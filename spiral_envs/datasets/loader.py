"""``load_dataset``: find a dataset's files, convert them once, return an ImageDataset."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spiral_envs._validate import check_int
from spiral_envs.datasets import celeba, embedded, mnist, omniglot
from spiral_envs.datasets._base import ArrayDataset
from spiral_envs.datasets._cache import RawSet, cache_root, fingerprint, materialise

__all__ = ["available_datasets", "load_dataset"]

MAX_SIZE = 1024
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Found:
    """A located source: the files that identify it, and how to read a split of it."""

    kind: str
    files: tuple[Path, ...]
    read: Callable[[], RawSet]
    where: str


@dataclass(frozen=True)
class _Spec:
    name: str
    splits: tuple[str, ...]
    aliases: dict[str, str]
    subdirs: tuple[str, ...]
    find: Callable[[Path, str], _Found | None]
    layout: Callable[[str], str]  # what a folder must hold, for error messages
    embedded: bool
    #: Whether ``$SPIRAL_DATA_DIR`` itself (not only a sub-folder) may hold the files.
    env_root_ok: bool = True

    def canonical_split(self, split: str) -> str:
        if not isinstance(split, str):
            raise TypeError(f"split must be a string, got {type(split).__name__}")
        key = split.lower()
        key = self.aliases.get(key, key)
        if key not in self.splits:
            accepted = list(self.splits) + list(self.aliases)
            raise ValueError(
                f"unknown split {split!r} for dataset {self.name!r}; accepted: "
                + ", ".join(repr(s) for s in accepted)
            )
        return key


def _find_mnist(folder: Path, split: str) -> _Found | None:
    files = mnist.find_mnist(folder, split)
    if files is None:
        return None
    paths = (files.images,) if files.labels is None else (files.images, files.labels)
    return _Found("idx", paths, lambda: mnist.read_mnist(files), str(files.images))


def _find_omniglot(folder: Path, split: str) -> _Found | None:
    src = omniglot.find_omniglot(folder, split)
    if src is None:
        return None
    where = ", ".join(str(p) for p in src.paths)
    return _Found(src.kind, src.paths, lambda: omniglot.read_omniglot(src, split), where)


def _find_celeba_like(dataset: str) -> Callable[[Path, str], _Found | None]:
    def find(folder: Path, split: str) -> _Found | None:
        src = celeba.find_celeba(folder)
        if src is None:
            return None
        files = (src.images,) if src.partition is None else (src.images, src.partition)
        return _Found(
            "celeba", files, lambda: celeba.read_celeba(src, split, dataset), str(src.images)
        )

    return find


def _mnist_layout(split: str) -> str:
    names = [n for n in mnist.candidate_names(split, "images") if not n.endswith(".gz")]
    return (
        f"the MNIST IDX files ({' or '.join(n + '[.gz]' for n in names)}, with the labels "
        "file beside it)"
    )


def _omniglot_layout(split: str) -> str:
    return f"images_{split}/<Alphabet>/characterNN/*.png, images_{split}.zip or images_{split}.npz"


def _celeba_layout(split: str) -> str:
    return "img_align_celeba/*.jpg or img_align_celeba.zip, with list_eval_partition.txt"


_SPECS: dict[str, _Spec] = {
    "mnist": _Spec(
        "mnist", mnist.SPLITS, {}, mnist.SUBDIRS, _find_mnist, _mnist_layout, embedded=True
    ),
    "omniglot": _Spec(
        "omniglot",
        omniglot.SPLITS,
        dict(omniglot.SPLIT_ALIASES),
        omniglot.SUBDIRS,
        _find_omniglot,
        _omniglot_layout,
        embedded=True,
    ),
    "celeba": _Spec(
        "celeba",
        celeba.SPLITS,
        {},
        celeba.SUBDIRS_CELEBA,
        _find_celeba_like("celeba"),
        _celeba_layout,
        embedded=False,
    ),
    "faces": _Spec(
        "faces",
        celeba.SPLITS,
        {},
        celeba.SUBDIRS_FACES,
        _find_celeba_like("faces"),
        _celeba_layout,
        embedded=True,
        # $SPIRAL_DATA_DIR itself may hold CelebA, which must not be taken for the faces.
        env_root_ok=False,
    ),
}


def available_datasets() -> dict[str, tuple[str, ...]]:
    """The dataset names :func:`load_dataset` accepts, each with its splits (aliases last).

    Returns:
        ``{"mnist": ("train", "test"), "omniglot": ("background", "evaluation", "train",
        "test"), "celeba": (...), "faces": (...)}``.
    """
    return {name: spec.splits + tuple(spec.aliases) for name, spec in _SPECS.items()}


def _search(spec: _Spec, root: Path, split: str, *, root_ok: bool = True) -> _Found | None:
    for sub in spec.subdirs:
        if sub == "" and not root_ok:
            continue
        folder = root / sub if sub else root
        if folder.is_dir():
            found = spec.find(folder, split)
            if found is not None:
                return found
    return None


def _looked_in(spec: _Spec, root: Path, root_ok: bool = True) -> list[str]:
    return [str(root / s if s else root) for s in spec.subdirs if s or root_ok]


def _from_found(spec: _Spec, split: str, size: int, found: _Found) -> ArrayDataset:
    return materialise(
        name=f"{spec.name}-{split}",
        tag=f"{spec.name}-{split}",
        size=size,
        key_parts=[found.kind, *fingerprint(found.files)],
        build=found.read,
        source=found.where,
    )


def load_dataset(
    name: str,
    *,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    size: int = 64,
) -> ArrayDataset:
    """Loads a dataset of target images at canvas resolution, white paper and dark ink.

    The files are looked for, in order:

    1. ``data_dir`` if given (the folder itself, or a ``<name>`` or torchvision sub-folder of
       it). If it is given, it must hold the dataset: a missing or corrupt one is an error,
       never a silent fallback.
    2. ``$SPIRAL_DATA_DIR/<name>`` and ``$SPIRAL_DATA_DIR``.
    3. ``<cache>/<name>``, where ``spiral-download`` puts files; ``<cache>`` is
       ``$SPIRAL_CACHE_DIR``, else ``~/.cache/spiral_gym``.
    4. The small subset shipped in the package (``mnist``: 4,000 train + 1,000 test digits;
       ``omniglot``: 2,000 background + 1,000 evaluation drawings; ``faces``: all 244 faces).
       There is none for ``celeba``, whose licence forbids redistribution.

    The conversion (inversion to dark ink, crop, antialiased resize) runs once; the result is
    cached under ``<cache>/converted`` and memory-mapped on later loads.

    Datasets and splits:

    * ``"mnist"``: ``train`` (60,000), ``test`` (10,000); greyscale, ``C = 1``. Labels: digits.
    * ``"omniglot"``: ``background`` (alias ``train``; 19,280), ``evaluation`` (alias ``test``;
      13,180); greyscale. Labels: character, with ``class_names`` ``"Alphabet/characterNN"``.
    * ``"celeba"``: ``train``, ``valid``, ``test`` (``list_eval_partition.txt`` codes 0/1/2),
      ``all``; RGB, ``C = 3``; centre crop 148x148, then resize.
    * ``"faces"``: the 244 openly licensed aligned faces (Face Research Lab London Set and
      Young Adult White Faces, CC BY 4.0), laid out and preprocessed like CelebA; same splits
      (196 / 24 / 24, by identity).

    Examples:
        >>> ds = load_dataset("mnist", split="test")
        >>> ds.image_shape
        (64, 64, 1)

    Args:
        name: ``"mnist"``, ``"omniglot"``, ``"celeba"`` or ``"faces"``.
        split: Which split (see above).
        data_dir: Folder holding the dataset's files, in any layout the loaders accept.
        size: Side of the square images returned, in pixels.

    Returns:
        An :class:`ArrayDataset` (satisfies :class:`~spiral_envs.protocols.ImageDataset`) with
        ``labels``, ``class_names`` and ``source`` (where the files came from).

    Raises:
        ValueError: Unknown name, split or size out of range.
        FileNotFoundError: ``data_dir`` missing or without the dataset; CelebA not found
            anywhere (the message says where to put it and how to get it).
        DatasetFormatError: A file is corrupt or not in the expected format (a ``ValueError``).
    """
    if not isinstance(name, str) or name.lower() not in _SPECS:
        raise ValueError(
            f"unknown dataset {name!r}; accepted: " + ", ".join(repr(n) for n in _SPECS)
        )
    spec = _SPECS[name.lower()]
    split = spec.canonical_split(split)
    size = check_int("size", size, 1, MAX_SIZE)

    if data_dir is not None:
        root = Path(os.fspath(data_dir)).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"data_dir {str(root)!r} for {spec.name} does not exist")
        if not root.is_dir():
            raise NotADirectoryError(f"data_dir {str(root)!r} for {spec.name} is not a folder")
        if not os.access(root, os.R_OK | os.X_OK):
            raise PermissionError(f"data_dir {str(root)!r} for {spec.name} is not readable")
        found = _search(spec, root, split)
        if found is None:
            tried = _looked_in(spec, root)
            if spec.name == "celeba":
                raise FileNotFoundError(celeba.celeba_instructions(tried))
            hint = (
                f"; `spiral-download {spec.name} --dir DIR` fetches the official files"
                if spec.name in ("mnist", "omniglot")
                else ""
            )
            raise FileNotFoundError(
                f"no {spec.name} {split!r} data in data_dir {str(root)!r}: expected "
                f"{spec.layout(split)} in one of {', '.join(tried)}{hint}"
            )
        return _from_found(spec, split, size, found)

    looked: list[str] = []
    env = os.environ.get("SPIRAL_DATA_DIR")
    if env:
        root = Path(env).expanduser()
        if root.is_dir():
            found = _search(spec, root, split, root_ok=spec.env_root_ok)
            if found is not None:
                return _from_found(spec, split, size, found)
        else:
            warnings.warn(f"SPIRAL_DATA_DIR={env!r} is not a folder; ignoring it", stacklevel=2)
        looked += _looked_in(spec, root, spec.env_root_ok)
    else:
        looked.append(f"$SPIRAL_DATA_DIR/{spec.name} (SPIRAL_DATA_DIR is not set)")

    cached = cache_root() / spec.name
    if cached.is_dir():
        found = _search(spec, cached, split)
        if found is not None:
            return _from_found(spec, split, size, found)
    looked.append(str(cached))

    if spec.embedded:
        path = embedded.embedded_path(spec.name)
        logger.info(
            "%s: no files found (looked in %s); using the small subset shipped with spiral-gym",
            spec.name,
            ", ".join(looked),
        )
        return materialise(
            name=f"{spec.name}-{split}",
            tag=f"{spec.name}-{split}-embedded",
            size=size,
            key_parts=["embedded", *fingerprint([path])] if path.exists() else ["embedded"],
            build=lambda: embedded.read_embedded(spec.name, split),
            source=f"embedded:{path.name}",
        )
    raise FileNotFoundError(celeba.celeba_instructions(looked))
