"""CelebA (and anything laid out like it, such as the bundled faces): aligned JPEGs + partition.

Accepted in a folder: ``img_align_celeba/*.jpg`` (extracted) or ``img_align_celeba.zip`` (read
without extracting), each also under ``Img/`` (the Google Drive layout), with
``list_eval_partition.txt`` (``000001.jpg 0`` per line; 0 train, 1 valid, 2 test) or the Kaggle
copy's ``list_eval_partition.csv`` (header ``image_id,partition``, then ``000001.jpg,0``). The
partition file is looked for in the folder, its ``Eval/``, and beside the images at every level
(so the Kaggle layout, ``img_align_celeba/img_align_celeba/*.jpg`` with the CSV at the top, and
a file put into the outer ``img_align_celeba/`` are both found). torchvision's ``celeba/`` folder
holds the same files. The usual 64x64 preprocessing is applied: centre crop 148x148, then an
antialiased resize to ``size``.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from spiral_envs.datasets._base import DatasetFormatError, center_crop, resize_image
from spiral_envs.datasets._cache import RawSet

__all__ = ["CelebaSource", "find_celeba", "read_celeba"]

SPLITS = ("train", "valid", "test", "all")
SPLIT_CODES = {"train": (0,), "valid": (1,), "test": (2,), "all": (0, 1, 2)}
SUBDIRS_CELEBA = ("celeba", "celeba/celeba", "")
SUBDIRS_FACES = ("faces", "faces_frl", "")
CROP = 148
PARTITION = "list_eval_partition.txt"
#: Partition file names accepted, in order of preference (the CSV is the Kaggle copy's).
PARTITION_NAMES = (PARTITION, "list_eval_partition.csv")


@dataclass(frozen=True)
class CelebaSource:
    """The images (a folder or a zip) and the partition file (``None`` if absent).

    ``searched`` lists the folders where a partition file was looked for.
    """

    images: Path
    partition: Path | None
    searched: tuple[Path, ...] = ()


def _has_jpgs(path: Path) -> bool:
    if not path.is_dir():
        return False
    return any(p.suffix.lower() in (".jpg", ".jpeg") for p in _first(path.iterdir(), 50))


def _first(it: Iterator[Path], n: int) -> list[Path]:
    out = []
    for p in it:
        out.append(p)
        if len(out) >= n:
            break
    return out


def find_celeba(folder: Path) -> CelebaSource | None:
    """Finds the images and partition file directly in ``folder``, or returns ``None``."""
    images: Path | None = None
    for base in (folder, folder / "Img"):
        d = base / "img_align_celeba"
        if _has_jpgs(d):
            images = d
        elif _has_jpgs(d / "img_align_celeba"):  # a zip extracted into a folder of its name
            images = d / "img_align_celeba"
        elif (base / "img_align_celeba.zip").is_file():
            images = base / "img_align_celeba.zip"
        if images is not None:
            break
    if images is None:
        return None
    # The folder, its Eval/, then beside the images at every level between them and the folder.
    dirs = [folder, folder / "Eval"]
    level = images if images.is_dir() else images.parent
    while True:
        dirs += [level, level / "Eval"]
        if level == folder or folder not in level.parents:
            break
        level = level.parent
    searched = tuple(dict.fromkeys(d for d in dirs if d.is_dir()))
    partition = next(
        (d / name for d in searched for name in PARTITION_NAMES if (d / name).is_file()), None
    )
    return CelebaSource(images, partition, searched)


def read_partition(path: Path) -> list[tuple[str, int]]:
    """Parses the partition file into ``(file name, code)`` pairs, validating it.

    ``list_eval_partition.txt`` has ``<image>.jpg <code>`` lines; a ``.csv`` (the Kaggle copy)
    has ``<image>.jpg,<code>`` rows after an optional header (``image_id,partition``).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{path}: cannot read the partition file ({exc})") from exc
    csv = path.suffix.lower() == ".csv"
    expected = "'<image>.jpg,<0|1|2>'" if csv else "'<image>.jpg <0|1|2>'"
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = [p.strip() for p in line.split(",")] if csv else line.split()
        if not any(parts):
            continue
        if csv and not out and lineno == 1 and parts == ["image_id", "partition"]:
            continue  # the header
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DatasetFormatError(
                f"{path}, line {lineno}: expected {expected} (0 train, 1 valid, "
                f"2 test), got {line.strip()!r}"
            )
        out.append((parts[0], int(parts[1])))
    if not out:
        raise DatasetFormatError(f"{path}: the partition file is empty")
    return out


def read_celeba(source: CelebaSource, split: str, dataset: str = "celeba") -> RawSet:
    """Lists the split's images (checking they all exist); decoding happens on conversion."""
    is_zip = source.images.suffix.lower() == ".zip"
    if is_zip:
        try:
            with zipfile.ZipFile(source.images) as zf:
                members = {
                    m.rsplit("/", 1)[-1]: m
                    for m in zf.namelist()
                    if m.lower().endswith((".jpg", ".jpeg")) and "__MACOSX" not in m
                }
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetFormatError(
                f"{source.images}: expected a zip of img_align_celeba/*.jpg, cannot open it ({exc})"
            ) from exc
    else:
        members = {
            p.name: p.name for p in source.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg")
        }
    if source.partition is None:
        if split != "all":
            where = source.searched[0] if source.searched else source.images.parent
            looked = ", ".join(str(d) for d in source.searched) or str(where)
            raise FileNotFoundError(
                f"{dataset}: found the images at {source.images} but no {PARTITION} (or the "
                f"Kaggle copy's list_eval_partition.csv); looked in {looked}. It is needed for "
                f"split {split!r}: put it in {where}, or use split='all'"
            )
        names = sorted(members)
    else:
        codes = SPLIT_CODES[split]
        names = [n for n, c in read_partition(source.partition) if c in codes]
        missing = [n for n in names if n not in members]
        if missing:
            raise DatasetFormatError(
                f"{source.partition} lists {len(missing)} image(s) not found in {source.images} "
                f"(first: {missing[0]}); is the image folder or zip complete?"
            )
    if not names:
        raise DatasetFormatError(f"{dataset}: split {split!r} has no images in {source.partition}")

    def images(size: int) -> Iterator[np.ndarray]:
        zf = zipfile.ZipFile(source.images) if is_zip else None
        try:
            for name in names:
                what = f"{source.images}:{members[name]}" if zf else str(source.images / name)
                try:
                    if zf is not None:
                        im = Image.open(io.BytesIO(zf.read(members[name])))
                    else:
                        im = Image.open(source.images / name)
                    with im:
                        rgb = im.convert("RGB")
                except Exception as exc:
                    raise DatasetFormatError(f"{what}: cannot decode this JPEG ({exc})") from exc
                yield resize_image(center_crop(rgb, CROP), size)
        finally:
            if zf is not None:
                zf.close()

    return RawSet(len(names), 3, images)


CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


def celeba_instructions(looked_in: list[str] | None = None) -> str:
    """How to obtain CelebA and where to put it (it is never bundled or downloaded).

    Args:
        looked_in: The folders searched: the one-line "not found" error; ``None`` for the
            step-by-step instructions that ``spiral-download celeba`` prints.
    """
    if looked_in is not None:
        return (
            f"CelebA was not found (looked in {', '.join(looked_in)}); its licence forbids "
            "redistribution, so spiral-gym never bundles or downloads it: get "
            "img_align_celeba.zip (or the extracted img_align_celeba/) and "
            f"list_eval_partition.txt from {CELEBA_URL}, then pass data_dir=DIR (a torchvision "
            "celeba/ folder works too) or put them in $SPIRAL_DATA_DIR/celeba "
            "(`spiral-download celeba` prints the steps); SpiralPaint-Faces-v0 paints 244 faces "
            "shipped with the package, no download needed"
        )
    lines = [
        "CelebA's licence forbids redistribution, so spiral-gym never bundles or downloads it.",
        f"1. Get it from the official site {CELEBA_URL} (agreeing to its terms): the",
        "   'Align&Cropped Images' img_align_celeba.zip and Eval/list_eval_partition.txt.",
        "2. Put img_align_celeba/ (the extracted folder of .jpg files) or img_align_celeba.zip,",
        "   together with list_eval_partition.txt, in one folder DIR, then either pass",
        "   data_dir=DIR to load_dataset (or the env), or use $SPIRAL_DATA_DIR/celeba as DIR.",
        "   torchvision's celeba/ folder works as it is (data_dir=<its root> or the folder).",
        "No download needed: SpiralPaint-Faces-v0 (load_dataset('faces')) paints 244 openly",
        "licensed aligned faces (CC BY 4.0) that ship with the package, preprocessed like CelebA.",
    ]
    return "\n".join(lines)
