"""Omniglot: the official PNG folders or zips, torchvision's ``omniglot-py/``, or ``.npz`` arrays.

Accepted, per split (``background`` or ``evaluation``), in this order of preference, in a folder:

* ``images_<split>/<Alphabet>/characterNN/<id>_<drawer>.png`` (extracted official zip),
* ``images_<split>.zip`` (the official zip, read without extracting),
* ``images_<split>.npz`` (``images``: bool ``(characters, 20, 105, 105)``, True = white),
* for ``background`` only, the official "minimal" splits ``images_background_small1``/``small2``
  (zips or folders; their union is used).

The PNGs are 1-bit, white background and black ink: already the package's convention. Images with
the opposite polarity (white ink on black, as some re-exports and tutorials write them) are
detected one by one (a character covers far less than half of its picture, so an image darker
than mid-grey on average is inverted ink) and inverted, with a warning naming the files. Images are
ordered by character id then drawer (the order of the ``.npz`` files), and labelled by character
(0-based within the split), with ``class_names`` ``"Alphabet/characterNN"``.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from spiral_envs.datasets._base import DatasetFormatError, resize_image
from spiral_envs.datasets._cache import RawSet

logger = logging.getLogger(__name__)

__all__ = ["ALPHABETS", "OmniglotSource", "character_name", "find_omniglot", "read_omniglot"]

SPLITS = ("background", "evaluation")
SPLIT_ALIASES = {"train": "background", "test": "evaluation"}
SUBDIRS = ("omniglot", "omniglot/omniglot-py", "omniglot-py", "")
NATIVE_SIZE = 105

#: (split, alphabet folder, first character id, number of characters), from the official folders.
ALPHABETS: tuple[tuple[str, str, int, int], ...] = (
    ("background", "Arcadian", 1, 26),
    ("background", "Armenian", 27, 41),
    ("background", "Asomtavruli_(Georgian)", 68, 40),
    ("background", "Balinese", 108, 24),
    ("background", "Bengali", 132, 46),
    ("background", "Blackfoot_(Canadian_Aboriginal_Syllabics)", 178, 14),
    ("background", "Braille", 192, 26),
    ("background", "Cyrillic", 218, 33),
    ("background", "Early_Aramaic", 251, 22),
    ("background", "Syriac_(Estrangelo)", 273, 23),
    ("background", "Anglo-Saxon_Futhorc", 296, 29),
    ("background", "Futurama", 325, 26),
    ("background", "Grantha", 351, 43),
    ("background", "Greek", 394, 24),
    ("background", "Gujarati", 418, 48),
    ("background", "Hebrew", 466, 22),
    ("background", "Japanese_(hiragana)", 488, 52),
    ("background", "Inuktitut_(Canadian_Aboriginal_Syllabics)", 540, 16),
    ("background", "Malay_(Jawi_-_Arabic)", 556, 40),
    ("background", "Japanese_(katakana)", 596, 47),
    ("background", "Korean", 643, 40),
    ("background", "Latin", 683, 26),
    ("background", "Alphabet_of_the_Magi", 709, 20),
    ("background", "Mkhedruli_(Georgian)", 729, 41),
    ("background", "Burmese_(Myanmar)", 770, 34),
    ("background", "N_Ko", 804, 33),
    ("background", "Ojibwe_(Canadian_Aboriginal_Syllabics)", 837, 14),
    ("background", "Sanskrit", 851, 42),
    ("background", "Tagalog", 893, 17),
    ("background", "Tifinagh", 910, 55),
    ("evaluation", "Angelic", 965, 20),
    ("evaluation", "Atemayar_Qelisayer", 985, 26),
    ("evaluation", "Atlantean", 1011, 26),
    ("evaluation", "Aurek-Besh", 1037, 26),
    ("evaluation", "Avesta", 1063, 26),
    ("evaluation", "Ge_ez", 1089, 26),
    ("evaluation", "Glagolitic", 1115, 45),
    ("evaluation", "Gurmukhi", 1160, 45),
    ("evaluation", "Kannada", 1205, 41),
    ("evaluation", "Keble", 1246, 26),
    ("evaluation", "Malayalam", 1272, 47),
    ("evaluation", "Manipuri", 1319, 40),
    ("evaluation", "Mongolian", 1359, 30),
    ("evaluation", "Old_Church_Slavonic_(Cyrillic)", 1389, 45),
    ("evaluation", "Oriya", 1434, 46),
    ("evaluation", "Syriac_(Serto)", 1480, 23),
    ("evaluation", "Sylheti", 1503, 28),
    ("evaluation", "Tengwar", 1531, 25),
    ("evaluation", "Tibetan", 1556, 42),
    ("evaluation", "ULOG", 1598, 26),
)
#: First character id of each split (ids are 1-based and contiguous per split).
FIRST_ID = {"background": 1, "evaluation": 965}
NUM_CHARACTERS = {"background": 964, "evaluation": 659}

_PNG_NAME = re.compile(r"^(\d+)_(\d+)\.png$", re.IGNORECASE)


def character_name(char_id: int) -> str:
    """``"Alphabet/characterNN"`` of an official 1-based character id (1..1623)."""
    for _split, alphabet, first, count in ALPHABETS:
        if first <= char_id < first + count:
            return f"{alphabet}/character{char_id - first + 1:02d}"
    raise ValueError(f"Omniglot character ids are 1..1623, got {char_id}")


@dataclass(frozen=True)
class OmniglotSource:
    """Where one split lives: ``kind`` is ``"folder"``, ``"zip"`` or ``"npz"``."""

    kind: str
    paths: tuple[Path, ...]


def find_omniglot(folder: Path, split: str) -> OmniglotSource | None:
    """Finds a split directly in ``folder`` (see the module docstring), or returns ``None``."""
    stem = f"images_{split}"
    if _has_pngs(folder / stem):
        return OmniglotSource("folder", (folder / stem,))
    if (folder / f"{stem}.zip").is_file():
        return OmniglotSource("zip", (folder / f"{stem}.zip",))
    if (folder / f"{stem}.npz").is_file():
        return OmniglotSource("npz", (folder / f"{stem}.npz",))
    if split == "background":
        parts: list[Path] = []
        for k in (1, 2):
            small = folder / f"images_background_small{k}"
            if _has_pngs(small):
                parts.append(small)
            elif small.with_suffix(".zip").is_file():
                parts.append(small.with_suffix(".zip"))
        if parts:
            return OmniglotSource("pngs", tuple(parts))
    return None


def _has_pngs(path: Path) -> bool:
    return path.is_dir() and next(path.rglob("*.png"), None) is not None


@dataclass(frozen=True)
class _Entry:
    alphabet: str
    character: str
    filename: str
    container: Path  # a folder, or a zip file
    member: str  # path below the folder, or zip member name
    in_folder: bool

    def describe(self) -> str:
        sep = "/" if self.in_folder else ":"
        return f"{self.container}{sep}{self.member}"


def _entries(paths: tuple[Path, ...]) -> list[_Entry]:
    entries: dict[str, _Entry] = {}
    for container in paths:
        in_folder = container.is_dir()
        if in_folder:
            members = [p.relative_to(container).as_posix() for p in container.rglob("*.png")]
        else:
            try:
                with zipfile.ZipFile(container) as zf:
                    members = zf.namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise DatasetFormatError(
                    f"{container}: expected an Omniglot zip of PNGs "
                    f"(<folder>/<Alphabet>/characterNN/<id>_<drawer>.png), cannot open it ({exc})"
                ) from exc
        for member in members:
            parts = member.split("/")
            if (
                not member.lower().endswith(".png")
                or "__MACOSX" in parts
                or parts[-1].startswith(".")
                or len(parts) < 3
            ):
                continue
            # The same PNG in two minimal splits (Greek, Latin) is kept once.
            entries.setdefault(
                "/".join(parts[-3:]),
                _Entry(parts[-3], parts[-2], parts[-1], container, member, in_folder),
            )
    if not entries:
        where = ", ".join(str(p) for p in paths)
        raise DatasetFormatError(
            f"{where}: expected Omniglot PNGs as <Alphabet>/characterNN/<id>_<drawer>.png, "
            "found none"
        )
    values = list(entries.values())
    matches = [_PNG_NAME.match(e.filename) for e in values]
    if all(matches):
        order = sorted(
            range(len(values)),
            key=lambda i: (int(matches[i].group(1)), int(matches[i].group(2))),  # type: ignore[union-attr]
        )
    else:
        order = sorted(
            range(len(values)),
            key=lambda i: (values[i].alphabet, values[i].character, values[i].filename),
        )
    return [values[i] for i in order]


def _decode_png(data: bytes, what: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except Exception as exc:
        raise DatasetFormatError(
            f"{what}: expected an Omniglot PNG, cannot decode it ({exc})"
        ) from exc


def white_paper(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """``image`` (uint8 greyscale) in the package's convention, and whether it was inverted.

    An Omniglot character covers far less than half of its picture, so a picture darker than
    mid-grey on average has white ink on a black background.
    """
    if float(image.mean()) < 127.5:
        return 255 - image, True
    return image, False


class _InversionReport:
    """Counts inverted images and warns once per conversion, naming the first."""

    def __init__(self, where: str) -> None:
        self.where, self.count, self.first = where, 0, ""

    def add(self, what: str) -> None:
        self.count += 1
        self.first = self.first or what

    def done(self, total: int) -> None:
        if self.count:
            logger.warning(
                "%s: %d of %d Omniglot images have white ink on a black background (first: %s); "
                "inverted them to the package's convention (white paper, dark ink)",
                self.where,
                self.count,
                total,
                self.first,
            )


def read_omniglot(source: OmniglotSource, split: str) -> RawSet:
    """Reads one split; images come out white paper, dark ink."""
    if source.kind == "npz":
        return _read_npz(source.paths[0], split)
    entries = _entries(source.paths)
    classes: dict[tuple[str, str], int] = {}
    labels = np.empty(len(entries), np.int64)
    for i, e in enumerate(entries):
        labels[i] = classes.setdefault((e.alphabet, e.character), len(classes))
    class_names = [f"{a}/{c}" for a, c in classes]

    def images(size: int) -> Iterator[np.ndarray]:
        zips: dict[Path, zipfile.ZipFile] = {}
        report = _InversionReport(", ".join(str(p) for p in source.paths))
        try:
            for e in entries:
                if e.in_folder:
                    data = (e.container / e.member).read_bytes()
                else:
                    if e.container not in zips:
                        zips[e.container] = zipfile.ZipFile(e.container)
                    try:
                        data = zips[e.container].read(e.member)
                    except (zipfile.BadZipFile, OSError, EOFError) as exc:
                        raise DatasetFormatError(
                            f"{e.describe()}: cannot read this zip member ({exc})"
                        ) from exc
                image, inverted = white_paper(_decode_png(data, e.describe()))
                if inverted:
                    report.add(e.describe())
                yield resize_image(image, size)
            report.done(len(entries))
        finally:
            for zf in zips.values():
                zf.close()

    return RawSet(len(entries), 1, images, labels, class_names)


def _read_npz(path: Path, split: str) -> RawSet:
    what = "Omniglot images: key 'images', bool or uint8 (characters, drawers, H, W), True = white"
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "images" not in npz.files:
                raise DatasetFormatError(f"{path}: expected {what}; keys are {npz.files}")
            arr = npz["images"]
    except DatasetFormatError:
        raise
    except Exception as exc:
        raise DatasetFormatError(f"{path}: expected an .npz of {what} ({exc})") from exc
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.dtype not in (np.bool_, np.uint8) or arr.shape[0] == 0:
        raise DatasetFormatError(
            f"{path}: expected {what}; got dtype {arr.dtype}, shape {arr.shape}"
        )
    n_chars, n_drawers = arr.shape[:2]
    flat = arr.reshape(n_chars * n_drawers, *arr.shape[2:])
    labels = np.repeat(np.arange(n_chars, dtype=np.int64), n_drawers)
    if n_chars == NUM_CHARACTERS[split]:
        class_names = [character_name(FIRST_ID[split] + c) for c in range(n_chars)]
    else:
        class_names = [f"character{c:04d}" for c in range(n_chars)]

    # bool (True = white) or 0/1 bytes scale to 0/255; other uint8 is taken as grey levels.
    scale = 255 if flat.dtype == np.bool_ or int(flat.max()) <= 1 else 1

    def images(size: int) -> Iterator[np.ndarray]:
        report = _InversionReport(str(path))
        for i, img in enumerate(flat):
            image, inverted = white_paper(img.astype(np.uint8) * np.uint8(scale))
            if inverted:
                report.add(f"image {i}")
            yield resize_image(image, size)
        report.done(len(flat))

    return RawSet(int(flat.shape[0]), 1, images, labels, class_names)
