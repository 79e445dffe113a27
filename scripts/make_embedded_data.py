"""Builds the small datasets shipped in ``spiral_envs/data`` from the real files in shared/data.

Deterministic: the same inputs give byte-identical ``.npz`` files (fixed selection seed, fixed zip
timestamps). Usage::

    python scripts/make_embedded_data.py [--shared ../shared/data] [--out spiral_envs/data]

* ``mnist.npz``: 400 train + 100 test digits of each class (4,000 + 1,000), at the native 28 px,
  as in the IDX files (0 = background), with labels and their row in the original files.
* ``omniglot.npz``: all 20 drawings of 100 background and 50 evaluation characters, evenly
  spaced over the character ids (so every alphabet is present), 105 px, bit-packed.
* ``faces.npz``: all 244 faces of ``faces_frl``, centre crop 148, resized to 64 px, with the
  train/valid/test partition and identities.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spiral_envs.datasets import load_dataset  # noqa: E402
from spiral_envs.datasets.celeba import read_partition  # noqa: E402
from spiral_envs.datasets.mnist import IMAGES_MAGIC, LABELS_MAGIC, read_idx  # noqa: E402
from spiral_envs.datasets.omniglot import FIRST_ID, character_name  # noqa: E402

SEED = 20181  # fixed, so the subset never changes
MNIST_PER_CLASS = {"train": 400, "test": 100}
OMNIGLOT_CHARACTERS = {"background": 100, "evaluation": 50}


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed zip timestamps and order, written atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(arrays[key], order="C"), allow_pickle=False)
    os.replace(tmp, path)


def make_mnist(shared: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    out: dict[str, np.ndarray] = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(shared / "mnist" / f"{prefix}-images-idx3-ubyte.gz", IMAGES_MAGIC)
        labels = read_idx(shared / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", LABELS_MAGIC)
        chosen = []
        for digit in range(10):
            rows = np.flatnonzero(labels == digit)
            chosen.append(rng.choice(rows, MNIST_PER_CLASS[split], replace=False))
        idx = np.sort(np.concatenate(chosen))
        out[f"{split}_images"] = images[idx]
        out[f"{split}_labels"] = labels[idx].astype(np.uint8)
        out[f"{split}_indices"] = idx.astype(np.int32)
    return out


def make_omniglot(shared: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"image_size": np.array(105, np.int32)}
    for split, n_chars in OMNIGLOT_CHARACTERS.items():
        with np.load(shared / "omniglot" / f"images_{split}.npz") as npz:
            images = npz["images"]  # bool (characters, 20, 105, 105), True = white
        rows = np.unique(np.round(np.linspace(0, images.shape[0] - 1, n_chars)).astype(int))
        picked = images[rows]  # (n_chars, 20, 105, 105)
        flat = picked.reshape(-1, 105 * 105)
        out[f"{split}_bits"] = np.packbits(flat, axis=1)
        out[f"{split}_char_ids"] = np.repeat(rows + FIRST_ID[split], picked.shape[1]).astype(
            np.int16
        )
        out[f"{split}_drawers"] = np.tile(np.arange(1, picked.shape[1] + 1), len(rows)).astype(
            np.int8
        )
        alphabets = {character_name(int(c)).split("/")[0] for c in rows + FIRST_ID[split]}
        print(
            f"omniglot {split}: {flat.shape[0]} images, {len(rows)} characters, "
            f"{len(alphabets)} alphabets"
        )
    return out


def make_faces(shared: Path) -> dict[str, np.ndarray]:
    folder = shared / "faces_frl"
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SPIRAL_CACHE_DIR"] = cache
        ds = load_dataset("faces", split="all", data_dir=folder, size=64)
        images = np.array(ds.images)
    partition = read_partition(folder / "list_eval_partition.txt")
    identity = dict(
        line.split() for line in (folder / "identity_CelebA.txt").read_text().splitlines() if line
    )
    names = [n for n, _ in partition]
    return {
        "images": images,
        "partition": np.array([c for _, c in partition], np.int8),
        "identity": np.array([int(identity[n]) for n in names], np.int16),
        "filenames": np.array(names),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "spiral_envs" / "data")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for fname, make in (
        ("mnist.npz", make_mnist),
        ("omniglot.npz", make_omniglot),
        ("faces.npz", make_faces),
    ):
        save_npz(args.out / fname, make(args.shared))
        print(f"wrote {args.out / fname}: {(args.out / fname).stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
