"""Tests of spiral_envs.datasets: every accepted layout on generated files, the real files in
../shared/data (skipped when absent), the embedded subsets, the cache and the download command."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spiral_envs.datasets import (
    ArrayDataset,
    DatasetFormatError,
    available_datasets,
    load_dataset,
)
from spiral_envs.datasets import download as dl
from spiral_envs.datasets import loader as loader_mod
from spiral_envs.datasets.celeba import center_crop
from spiral_envs.datasets.embedded import EMBEDDED_FILES, embedded_path
from spiral_envs.protocols import ImageDataset


def _shared_data() -> Path:
    env = os.environ.get("SPIRAL_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


SHARED = _shared_data()
needs_mnist = pytest.mark.skipif(
    not (SHARED / "mnist" / "t10k-images-idx3-ubyte.gz").is_file(), reason="no shared MNIST"
)
needs_omniglot = pytest.mark.skipif(
    not (SHARED / "omniglot" / "images_evaluation.npz").is_file(), reason="no shared Omniglot"
)
needs_faces = pytest.mark.skipif(
    not (SHARED / "faces_frl" / "img_align_celeba.zip").is_file(), reason="no shared faces"
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache and no SPIRAL_DATA_DIR, so a developer's own files are never used."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPIRAL_CACHE_DIR", str(cache))
    monkeypatch.delenv("SPIRAL_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return cache


# --------------------------------------------------------------------------- generated files


def write_idx(path: Path, arr: np.ndarray, magic: int, *, gz: bool) -> None:
    data = struct.pack(">i", magic) + struct.pack(f">{arr.ndim}i", *arr.shape)
    data += arr.astype(np.uint8).tobytes()
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def fake_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like images: 0 background with a bright bar whose row depends on the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, lab in enumerate(labels):
        images[i, 4 + 2 * lab : 6 + 2 * lab, 5:23] = 255
    return images, labels


def make_mnist(folder: Path, *, gz: bool = True, dots: bool = False, n: int = 12) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = fake_digits(n if split == "train" else n // 2, seed=len(prefix))
        sep = "." if dots else "-"
        ext = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images{sep}idx3-ubyte{ext}", images, 2051, gz=gz)
        write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte{ext}", labels, 2049, gz=gz)
        out[split] = (images, labels)
    return out


def glyph_png(char_id: int, drawer: int) -> bytes:
    """A 105x105 1-bit PNG, white background, a black box whose place encodes the ids."""
    arr = np.ones((105, 105), bool)
    top = 5 + 7 * (char_id % 10)
    left = 5 + 4 * drawer
    arr[top : top + 20, left : left + 30] = False
    buf = io.BytesIO()
    Image.fromarray(arr).convert("1").save(buf, format="PNG")
    return buf.getvalue()


# alphabet -> (first char id, number of characters), deliberately not in alphabetical id order
FAKE_ALPHABETS = {"Zeta_script": (1, 2), "Alpha_script": (3, 2)}
FAKE_DRAWERS = 3


def omniglot_members(top: str) -> dict[str, bytes]:
    files = {}
    for alphabet, (first, count) in FAKE_ALPHABETS.items():
        for c in range(count):
            cid = first + c
            for d in range(1, FAKE_DRAWERS + 1):
                name = f"{top}/{alphabet}/character{c + 1:02d}/{cid:04d}_{d:02d}.png"
                files[name] = glyph_png(cid, d)
    return files


def make_omniglot_tree(root: Path, top: str = "images_background") -> None:
    for name, data in omniglot_members(top).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def make_omniglot_zip(path: Path, top: str = "images_background", junk: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/", b"")
        for name, data in omniglot_members(top).items():
            zf.writestr(name, data)
        if junk:
            zf.writestr(f"__MACOSX/{top}/._x.png", b"junk")
            zf.writestr(f"{top}/.DS_Store", b"junk")


def expected_glyph(char_id: int, drawer: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(glyph_png(char_id, drawer))).convert("L"))


def face_jpeg(i: int) -> bytes:
    """178x218: red outside the central 148x148 crop, a blue square with a shade per image."""
    arr = np.zeros((218, 178, 3), np.uint8)
    arr[..., 0] = 255
    arr[35:183, 15:163] = (0, 10 * i, 255)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95, subsampling=0)
    return buf.getvalue()


CELEBA_CODES = [0, 0, 0, 1, 2, 0, 1]


def make_celeba(root: Path, *, as_zip: bool = False, partition: bool = True) -> None:
    root.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(CELEBA_CODES))]
    if as_zip:
        with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as zf:
            zf.writestr("img_align_celeba/", b"")
            for i, n in enumerate(names):
                zf.writestr(f"img_align_celeba/{n}", face_jpeg(i))
    else:
        (root / "img_align_celeba").mkdir()
        for i, n in enumerate(names):
            (root / "img_align_celeba" / n).write_bytes(face_jpeg(i))
    if partition:
        lines = [f"{n} {c}" for n, c in zip(names, CELEBA_CODES, strict=True)]
        (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- ArrayDataset


def test_array_dataset_protocol_and_fresh_arrays() -> None:
    images = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)
    ds = ArrayDataset("toy", images, labels=[0, 1, 2, 3, 4])
    assert isinstance(ds, ImageDataset)
    assert ds.image_shape == (4, 4, 1) and len(ds) == 5 and ds.name == "toy"
    one = ds[2]
    assert one.dtype == np.uint8 and one.shape == (4, 4, 1)
    one[:] = 0
    assert ds[2].max() > 0  # the dataset was not modified through the returned array
    assert np.array_equal(ds[-1], images[4][..., None])
    batch = ds.sample(np.random.default_rng(3), 7)
    assert batch.shape == (7, 4, 4, 1) and batch.dtype == np.uint8
    assert batch.flags.owndata or batch.base is None or not np.shares_memory(batch, images)
    assert not np.shares_memory(batch, images)
    again = ds.sample(np.random.default_rng(3), 7)
    assert np.array_equal(batch, again)
    assert ds.sample(np.random.default_rng(0), 0).shape == (0, 4, 4, 1)
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(TypeError):
        ds[1.0]  # type: ignore[index]
    with pytest.raises(ValueError, match="uint8"):
        ArrayDataset("bad", images.astype(np.float32))
    with pytest.raises(ValueError, match="labels"):
        ArrayDataset("bad", images, labels=[1, 2])
    with pytest.raises(ValueError, match="no images"):
        ArrayDataset("bad", np.zeros((0, 4, 4), np.uint8))
    with pytest.raises(TypeError, match="Generator"):
        ds.sample(np.random.RandomState(0), 2)  # type: ignore[arg-type]


def test_available_datasets() -> None:
    avail = available_datasets()
    assert set(avail) == {"mnist", "omniglot", "celeba", "faces"}
    assert avail["mnist"] == ("train", "test")
    assert {"background", "evaluation", "train", "test"} <= set(avail["omniglot"])
    assert avail["celeba"] == ("train", "valid", "test", "all")


# --------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("dots", [False, True], ids=["hyphen", "dot"])
@pytest.mark.parametrize("layout", ["flat", "torchvision", "named"])
def test_mnist_layouts(tmp_path: Path, gz: bool, dots: bool, layout: str) -> None:
    sub = {"flat": "", "torchvision": "MNIST/raw", "named": "mnist"}[layout]
    made = make_mnist(tmp_path / "root" / sub, gz=gz, dots=dots)
    for split in ("train", "test"):
        ds = load_dataset("mnist", split=split, data_dir=tmp_path / "root", size=28)
        images, labels = made[split]
        assert ds.image_shape == (28, 28, 1) and len(ds) == len(images)
        assert np.array_equal(ds.images[..., 0], 255 - images)  # inverted: white paper
        assert np.array_equal(ds.labels, labels)
        assert ds.name == f"mnist-{split}"


def test_mnist_resized_ink_convention(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    ds = load_dataset("mnist", data_dir=tmp_path)  # size 64
    img = ds[0]
    assert img.shape == (64, 64, 1) and img.dtype == np.uint8
    assert img.mean() > 200  # mostly blank paper
    assert img.min() < 30  # dark ink
    assert img[0, 0, 0] == 255  # the corner is paper


def test_mnist_labels_optional(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    ds = load_dataset("mnist", data_dir=tmp_path, size=28)
    assert ds.labels is None and len(ds) == 12


@pytest.mark.parametrize(
    "corruption, match",
    [
        ("magic", "magic number is 2049, not 2051"),
        ("truncated", "truncated or corrupt"),
        ("badgzip", "cannot read it as an IDX file"),
        ("notgzip", "not gzipped"),
        ("tiny", "only 3 bytes"),
    ],
)
def test_mnist_corrupt_images(tmp_path: Path, corruption: str, match: str) -> None:
    make_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    if corruption == "magic":
        write_idx(path, fake_digits(12)[0], 2049, gz=True)
    elif corruption == "truncated":
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-10]))
    elif corruption == "badgzip":
        path.write_bytes(path.read_bytes()[:30])
    elif corruption == "notgzip":
        path.write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 100)
    elif corruption == "tiny":
        path.write_bytes(gzip.compress(b"abc"))
    with pytest.raises(DatasetFormatError, match=match) as info:
        load_dataset("mnist", data_dir=tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_mnist_labels_mismatch(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8), 2049, gz=True)
    with pytest.raises(DatasetFormatError, match=r"5 labels, expected 12"):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_missing_split_in_data_dir(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    for p in tmp_path.glob("t10k-*"):
        p.unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\[\.gz\]") as info:
        load_dataset("mnist", split="test", data_dir=tmp_path)
    assert "spiral-download mnist" in str(info.value)


# --------------------------------------------------------------------------- Omniglot


def _check_fake_omniglot(ds: ArrayDataset, size: int = 105) -> None:
    n_chars = sum(c for _, c in FAKE_ALPHABETS.values())
    assert len(ds) == n_chars * FAKE_DRAWERS and ds.image_shape == (size, size, 1)
    # ordered by character id then drawer: character 1 (Zeta) first, whatever the folder names
    assert ds.class_names == [
        "Zeta_script/character01",
        "Zeta_script/character02",
        "Alpha_script/character01",
        "Alpha_script/character02",
    ]
    assert np.array_equal(ds.labels, np.repeat(np.arange(n_chars), FAKE_DRAWERS))
    if size == 105:
        assert np.array_equal(ds[0][..., 0], expected_glyph(1, 1))
        assert np.array_equal(ds[len(ds) - 1][..., 0], expected_glyph(4, FAKE_DRAWERS))
        assert set(np.unique(ds.images)) == {0, 255}


@pytest.mark.parametrize("layout", ["folder", "zip", "torchvision", "torchvision-zip", "named"])
def test_omniglot_layouts(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "root"
    if layout == "folder":
        make_omniglot_tree(root)
    elif layout == "zip":
        make_omniglot_zip(root / "images_background.zip")
    elif layout == "torchvision":
        make_omniglot_tree(root / "omniglot-py")
    elif layout == "torchvision-zip":
        make_omniglot_zip(root / "omniglot-py" / "images_background.zip")
    else:
        make_omniglot_tree(root / "omniglot")
    ds = load_dataset("omniglot", split="background", data_dir=root, size=105)
    _check_fake_omniglot(ds)
    alias = load_dataset("omniglot", split="train", data_dir=root, size=105)
    assert np.array_equal(alias.images, ds.images)


@pytest.mark.parametrize("layout", ["folder", "npz"])
def test_omniglot_white_ink_on_black_is_inverted(
    tmp_path: Path, layout: str, caplog: pytest.LogCaptureFixture
) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    if layout == "folder":
        make_omniglot_tree(good)
        for name, data in omniglot_members("images_background").items():
            arr = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
            (bad / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(255 - arr).save(bad / name)  # white ink on black
    else:
        glyphs = np.ones((4, 3, 105, 105), bool)
        glyphs[:, :, 40:60, 30:70] = False
        good.mkdir(), bad.mkdir()
        np.savez(good / "images_background.npz", images=glyphs)
        np.savez(bad / "images_background.npz", images=~glyphs)
    ref = load_dataset("omniglot", split="background", data_dir=good)
    with caplog.at_level("WARNING"):
        ds = load_dataset("omniglot", split="background", data_dir=bad)
    assert np.array_equal(ds.images, ref.images)
    assert ds.images.mean() > 180  # white paper, as the shipped Omniglot
    assert "white ink on a black background" in caplog.text and "inverted" in caplog.text


def test_omniglot_evaluation_and_resize(tmp_path: Path) -> None:
    make_omniglot_zip(tmp_path / "images_evaluation.zip", top="images_evaluation")
    ds = load_dataset("omniglot", split="test", data_dir=tmp_path)
    _check_fake_omniglot(ds, size=64)
    img = ds[0]
    assert img.mean() > 200 and img.min() < 30 and img[0, 0, 0] == 255
    with pytest.raises(FileNotFoundError, match="images_background"):
        load_dataset("omniglot", split="background", data_dir=tmp_path)


def test_omniglot_small_zips(tmp_path: Path) -> None:
    # The official "minimal" splits: folder inside is images_background_small1/.
    make_omniglot_zip(tmp_path / "images_background_small1.zip", top="images_background_small1")
    make_omniglot_zip(tmp_path / "images_background_small2.zip", top="images_background_small2")
    ds = load_dataset("omniglot", split="background", data_dir=tmp_path, size=105)
    _check_fake_omniglot(ds)  # the union, each PNG once


def test_omniglot_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arr = rng.random((3, 2, 105, 105)) > 0.1  # True = white
    np.savez_compressed(tmp_path / "images_evaluation.npz", images=arr, labels=np.zeros((3, 2)))
    ds = load_dataset("omniglot", split="evaluation", data_dir=tmp_path, size=105)
    assert len(ds) == 6
    assert np.array_equal(ds.images[..., 0], arr.reshape(6, 105, 105).astype(np.uint8) * 255)
    assert np.array_equal(ds.labels, [0, 0, 1, 1, 2, 2])


def test_omniglot_corrupt(tmp_path: Path) -> None:
    (tmp_path / "images_background.zip").write_bytes(b"not a zip")
    with pytest.raises(DatasetFormatError, match="images_background.zip"):
        load_dataset("omniglot", data_dir=tmp_path)
    bad = tmp_path / "b"
    make_omniglot_tree(bad)
    next((bad / "images_background").rglob("*.png")).write_bytes(b"garbage")
    with pytest.raises(DatasetFormatError, match="cannot decode"):
        load_dataset("omniglot", data_dir=bad)
    npz = tmp_path / "c"
    npz.mkdir()
    np.savez(npz / "images_background.npz", pixels=np.zeros(3))
    with pytest.raises(DatasetFormatError, match="key 'images'"):
        load_dataset("omniglot", data_dir=npz)


# --------------------------------------------------------------------------- CelebA


@pytest.mark.parametrize("layout", ["folder", "zip", "torchvision", "torchvision-root"])
def test_celeba_layouts(tmp_path: Path, layout: str) -> None:
    if layout == "folder":
        make_celeba(tmp_path)
        data_dir = tmp_path
    elif layout == "zip":
        make_celeba(tmp_path, as_zip=True)
        data_dir = tmp_path
    elif layout == "torchvision":
        make_celeba(tmp_path / "celeba")
        data_dir = tmp_path / "celeba"
    else:
        make_celeba(tmp_path / "celeba", as_zip=True)
        data_dir = tmp_path  # torchvision's root: files in <root>/celeba
    counts = {"train": 4, "valid": 2, "test": 1, "all": 7}
    for split, n in counts.items():
        ds = load_dataset("celeba", split=split, data_dir=data_dir)
        assert len(ds) == n and ds.image_shape == (64, 64, 3) and ds.name == f"celeba-{split}"
    ds = load_dataset("celeba", split="all", data_dir=data_dir)
    # the centre 148x148 crop is the blue square: no red border survives
    imgs = ds.images.astype(int)
    assert imgs[..., 2].min() > 200 and imgs[..., 0].max() < 60
    assert np.abs(imgs[1, ..., 1].mean() - 10) < 8 and np.abs(imgs[6, ..., 1].mean() - 60) < 8
    assert load_dataset("celeba", split="valid", data_dir=data_dir, size=32).image_shape == (
        32,
        32,
        3,
    )


def test_center_crop_geometry() -> None:
    im = Image.new("RGB", (178, 218))
    assert center_crop(im, 148).size == (148, 148)
    assert center_crop(Image.new("RGB", (100, 120)), 148).size == (100, 100)


def test_celeba_partition_problems(tmp_path: Path) -> None:
    make_celeba(tmp_path, partition=False)
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
        load_dataset("celeba", data_dir=tmp_path)
    assert len(load_dataset("celeba", split="all", data_dir=tmp_path)) == 7
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000099.jpg 0\n")
    with pytest.raises(DatasetFormatError, match="000099.jpg"):
        load_dataset("celeba", data_dir=tmp_path)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg train\n")
    with pytest.raises(DatasetFormatError, match="line 1"):
        load_dataset("celeba", data_dir=tmp_path)


def make_kaggle_celeba(root: Path, n: int = 24) -> list[str]:
    """The Kaggle copy's layout, from the shipped faces: ``img_align_celeba/img_align_celeba/``
    JPEGs (178x218) and ``list_eval_partition.csv`` (with its header) at the top."""
    shipped = np.load(embedded_path("faces"))
    images = root / "img_align_celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    rows = ["image_id,partition"]
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        face = Image.fromarray(shipped["images"][i]).resize((148, 148), Image.BICUBIC)
        canvas = Image.new("RGB", (178, 218), (128, 128, 128))
        canvas.paste(face, (15, 35))
        canvas.save(images / name, quality=95)
        rows.append(f"{name},{int(shipped['partition'][i])}")
    (root / "list_eval_partition.csv").write_text("\n".join(rows) + "\n")
    return rows[1:]


def test_celeba_kaggle_layout_with_csv(tmp_path: Path, isolated: Path) -> None:
    root = tmp_path / "celeba-dataset"
    rows = make_kaggle_celeba(root)
    codes = [int(r.split(",")[1]) for r in rows]
    for split, code in (("train", 0), ("valid", 1), ("test", 2)):
        n = codes.count(code)
        if n:
            assert len(load_dataset("celeba", split=split, data_dir=root)) == n
    ds = load_dataset("celeba", split="all", data_dir=root)
    assert len(ds) == len(rows) and ds.image_shape == (64, 64, 3)
    # The pictures are the shipped faces again (through JPEG and two resizes).
    shipped = np.load(embedded_path("faces"))["images"][: len(rows)].astype(float)
    assert np.abs(ds.images.astype(float) - shipped).mean() < 12
    # A .txt put where the old error advised (beside the images' folder) is found too.
    (root / "list_eval_partition.csv").unlink()
    with pytest.raises(FileNotFoundError, match="list_eval_partition.csv") as info:
        load_dataset("celeba", split="train", data_dir=root)
    advice = str(info.value).split("put it in ")[1].split(",")[0]
    txt = "\n".join(r.replace(",", " ") for r in rows) + "\n"
    (Path(advice) / "list_eval_partition.txt").write_text(txt)
    assert len(load_dataset("celeba", split="train", data_dir=root)) == codes.count(0)
    (Path(advice) / "list_eval_partition.txt").unlink()
    (root / "img_align_celeba" / "list_eval_partition.txt").write_text(txt)
    assert len(load_dataset("celeba", split="train", data_dir=root)) == codes.count(0)
    (root / "img_align_celeba" / "list_eval_partition.txt").write_text("image_id partition\n")
    with pytest.raises(DatasetFormatError, match="line 1"):
        load_dataset("celeba", split="train", data_dir=root)


def test_celeba_corrupt_jpeg(tmp_path: Path, isolated: Path) -> None:
    make_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000002.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(DatasetFormatError, match="000002.jpg"):
        load_dataset("celeba", data_dir=tmp_path)
    # the half-converted array was not left in the cache
    assert list((isolated / "converted").iterdir()) == []


def test_celeba_missing_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("celeba")
    msg = str(info.value)
    assert "\n" not in msg, msg  # one line: `spiral-download celeba` prints the steps
    for needle in (
        "img_align_celeba/",
        "img_align_celeba.zip",
        "list_eval_partition.txt",
        "SPIRAL_DATA_DIR",
        "data_dir",
        "mmlab.ie.cuhk.edu.hk",
        "redistribution",
        "SpiralPaint-Faces-v0",
        "torchvision",
    ):
        assert needle in msg, needle
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SPIRAL_DATA_DIR", str(empty))
    with pytest.raises(FileNotFoundError, match=str(empty / "celeba")):
        load_dataset("celeba")
    with pytest.raises(FileNotFoundError, match="SpiralPaint-Faces-v0"):
        load_dataset("celeba", data_dir=empty)


# --------------------------------------------------------------------------- bad input


def test_bad_names_splits_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'mnist', 'omniglot', 'celeba', 'faces'"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_dataset("mnist", split="valid")
    with pytest.raises(ValueError, match="'background', 'evaluation'"):
        load_dataset("omniglot", split="valid")
    with pytest.raises(ValueError, match="'train', 'valid', 'test', 'all'"):
        load_dataset("faces", split="background")
    with pytest.raises(ValueError, match="size"):
        load_dataset("mnist", size=0)
    with pytest.raises(TypeError, match="size"):
        load_dataset("mnist", size=64.0)  # type: ignore[arg-type]


def test_bad_data_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        load_dataset("mnist", data_dir=tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("mnist", "omniglot", "faces"):
        with pytest.raises(FileNotFoundError, match=str(empty)):
            load_dataset(name, data_dir=empty)  # never a silent fallback to the embedded data


# --------------------------------------------------------------------------- resolution order


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    assert load_dataset("mnist", split="test").source == "embedded:mnist.npz"
    # the download cache: <SPIRAL_CACHE_DIR>/mnist
    make_mnist(isolated / "mnist", n=8)
    assert len(load_dataset("mnist", split="test")) == 4
    # $SPIRAL_DATA_DIR itself, then $SPIRAL_DATA_DIR/mnist wins
    env = tmp_path / "env"
    make_mnist(env, n=10)
    monkeypatch.setenv("SPIRAL_DATA_DIR", str(env))
    assert len(load_dataset("mnist", split="test")) == 5
    make_mnist(env / "mnist", n=14)
    assert len(load_dataset("mnist", split="test")) == 7
    # data_dir beats everything
    make_mnist(tmp_path / "explicit", n=16)
    assert len(load_dataset("mnist", split="test", data_dir=tmp_path / "explicit")) == 8
    # an env folder without the dataset falls through to the next place
    monkeypatch.setenv("SPIRAL_DATA_DIR", str(tmp_path / "explicit" / "nothing-here"))
    with pytest.warns(UserWarning, match="not a folder"):
        assert len(load_dataset("mnist", split="test")) == 4


def test_faces_not_taken_from_celeba_in_env_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_celeba(tmp_path)  # CelebA right in $SPIRAL_DATA_DIR
    monkeypatch.setenv("SPIRAL_DATA_DIR", str(tmp_path))
    assert len(load_dataset("celeba", split="all")) == 7
    assert load_dataset("faces", split="all").source == "embedded:faces.npz"
    make_celeba(tmp_path / "faces", as_zip=True)
    assert len(load_dataset("faces", split="all")) == 7


# --------------------------------------------------------------------------- cache


def test_cache_reuse_and_invalidation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    make_mnist(tmp_path)
    first = load_dataset("mnist", data_dir=tmp_path)
    converted = isolated / "converted"
    files = sorted(p.name for p in converted.iterdir())
    assert len(files) == 2 and not any(f.endswith(".tmp") for f in files)
    assert isinstance(first._images, np.memmap)

    calls = []
    real = loader_mod.mnist.read_mnist
    monkeypatch.setattr(loader_mod.mnist, "read_mnist", lambda f: calls.append(f) or real(f))
    second = load_dataset("mnist", data_dir=tmp_path)
    assert calls == [] and np.array_equal(first.images, second.images)
    assert np.array_equal(second.labels, first.labels)
    # another size is another cache entry
    load_dataset("mnist", data_dir=tmp_path, size=32)
    assert len(calls) == 1
    # a changed source file is converted again
    path = tmp_path / "train-images-idx3-ubyte.gz"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_dataset("mnist", data_dir=tmp_path)
    assert len(calls) == 2
    # a damaged cache entry is rebuilt, with a warning
    # (replaced, not rewritten in place: truncating a file that is memory-mapped is a SIGBUS)
    for p in converted.glob("mnist-train-64px-*.npy"):
        (tmp_path / "garbage").write_bytes(b"garbage")
        os.replace(tmp_path / "garbage", p)
    with pytest.warns(UserWarning, match="ignoring unreadable cached dataset"):
        again = load_dataset("mnist", data_dir=tmp_path)
    assert np.array_equal(again.images, first.images)
    assert not any(p.name.endswith(".tmp") for p in converted.iterdir())


def test_returned_arrays_are_not_cache_views(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    ds = load_dataset("mnist", data_dir=tmp_path)
    item = ds[0]
    batch = ds.sample(np.random.default_rng(0), 4)
    for arr in (item, batch):
        assert type(arr) is np.ndarray and arr.flags.writeable
        assert not np.shares_memory(arr, ds._images)
        arr[:] = 7
    assert ds[0].max() == 255
    with pytest.raises(ValueError):
        ds.images[0, 0, 0, 0] = 1  # the public view is read-only


def test_memmapped_dataset_pickles_small(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    ds = load_dataset("mnist", data_dir=tmp_path, size=64)
    blob = pickle.dumps(ds)
    assert len(blob) < 10_000  # the file name, not the pixels
    back = pickle.loads(blob)
    assert np.array_equal(back.images, ds.images) and back.name == ds.name
    plain = ArrayDataset("x", np.zeros((2, 3, 3), np.uint8))
    assert np.array_equal(pickle.loads(pickle.dumps(plain)).images, plain.images)


def test_unwritable_cache_converts_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SPIRAL_CACHE_DIR", str(blocker))
    make_mnist(tmp_path / "m")
    with pytest.warns(UserWarning, match="cannot write the dataset cache"):
        ds = load_dataset("mnist", data_dir=tmp_path / "m")
    assert len(ds) == 12 and not isinstance(ds._images, np.memmap)


# --------------------------------------------------------------------------- embedded


def test_embedded_files_present_and_small() -> None:
    total = 0
    for name in EMBEDDED_FILES:
        path = embedded_path(name)
        assert path.is_file(), path
        total += path.stat().st_size
    assert total < 6_000_000
    data = embedded_path("mnist").parent
    for lic in ("MNIST-LICENSE.md", "OMNIGLOT-LICENSE.md", "FACES-LICENSE.md", "README.md"):
        assert (data / lic).is_file()
    assert "Copyright (c) 2015 Brenden Lake" in (data / "OMNIGLOT-LICENSE.md").read_text()
    faces = (data / "FACES-LICENSE.md").read_text()
    assert "10.6084/m9.figshare.5047666.v5" in faces and "10.6084/m9.figshare.4220517.v1" in faces


@pytest.mark.parametrize(
    "name, split, n, shape",
    [
        ("mnist", "train", 4000, (64, 64, 1)),
        ("mnist", "test", 1000, (64, 64, 1)),
        ("omniglot", "background", 2000, (64, 64, 1)),
        ("omniglot", "test", 1000, (64, 64, 1)),
        ("faces", "train", 196, (64, 64, 3)),
        ("faces", "valid", 24, (64, 64, 3)),
        ("faces", "test", 24, (64, 64, 3)),
        ("faces", "all", 244, (64, 64, 3)),
    ],
)
def test_embedded_defaults(name: str, split: str, n: int, shape: tuple[int, int, int]) -> None:
    ds = load_dataset(name, split=split)
    assert ds.source.startswith("embedded:")
    assert len(ds) == n and ds.image_shape == shape
    assert isinstance(ds, ImageDataset)
    batch = ds.sample(np.random.default_rng(1), 3)
    assert batch.shape == (3, *shape) and batch.dtype == np.uint8
    if name != "faces":
        assert ds.images.mean() > 200  # white paper
        assert ds.images[:, 0, 0].min() == 255  # corners are blank
        assert ds.images.min() == 0


def test_embedded_labels_and_other_sizes() -> None:
    mnist = load_dataset("mnist", split="train", size=28)
    assert mnist.image_shape == (28, 28, 1)
    assert np.array_equal(np.bincount(mnist.labels), [400] * 10)
    omni = load_dataset("omniglot", split="background", size=105)
    assert set(np.unique(omni.images)) == {0, 255}
    assert len(omni.class_names) == 100
    assert len({c.split("/")[0] for c in omni.class_names}) == 30  # every alphabet
    assert load_dataset("faces", split="test", size=32).image_shape == (32, 32, 3)
    assert load_dataset("faces", split="test", size=96).image_shape == (96, 96, 3)


# --------------------------------------------------------------------------- real files


@needs_mnist
def test_real_mnist() -> None:
    test = load_dataset("mnist", split="test", data_dir=SHARED / "mnist")
    assert len(test) == 10_000 and test.image_shape == (64, 64, 1)
    assert np.array_equal(
        np.bincount(test.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
    img = test[0]
    assert img.mean() > 200 and img.min() < 40 and img[0, 0, 0] == 255
    train = load_dataset("mnist", split="train", data_dir=SHARED / "mnist", size=28)
    assert len(train) == 60_000
    assert np.array_equal(
        np.bincount(train.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    )
    # the second load is a memory map of the cache, with no conversion
    again = load_dataset("mnist", split="train", data_dir=SHARED / "mnist", size=28)
    assert isinstance(again._images, np.memmap)
    # the embedded subset is exactly those rows of the real files
    with np.load(embedded_path("mnist")) as emb:
        idx = emb["train_indices"]
        assert np.array_equal(255 - emb["train_images"], train.images[idx, ..., 0])


@needs_omniglot
def test_real_omniglot() -> None:
    ev = load_dataset("omniglot", split="evaluation", data_dir=SHARED / "omniglot", size=105)
    assert len(ev) == 13_180 and len(ev.class_names) == 659
    assert ev.class_names[0] == "Angelic/character01"
    assert ev.class_names[-1] == "ULOG/character26"
    assert 0.85 < (ev.images[:200] == 255).mean() < 0.97
    with np.load(SHARED / "omniglot" / "images_evaluation.npz") as npz:
        assert np.array_equal(ev[21][..., 0], npz["images"][1, 1].astype(np.uint8) * 255)
    # the official minimal zip: its PNGs are bit-exact rows of the npz
    small = SHARED / "omniglot" / "images_background_small1.zip"
    with zipfile.ZipFile(small) as zf:
        pngs = sorted(n for n in zf.namelist() if n.endswith(".png"))
        assert pngs[0].startswith("images_background_small1/")
    ds = loader_mod._SPECS["omniglot"].find(SHARED / "omniglot", "background")
    assert ds is not None and ds.kind == "npz"  # the full npz is preferred over small zips
    from spiral_envs.datasets.omniglot import OmniglotSource, read_omniglot

    raw = read_omniglot(OmniglotSource("pngs", (small,)), "background")
    assert raw.n == 2720 and len(raw.class_names) == 136
    assert raw.class_names[0] == "Balinese/character01"  # char id 108 comes first
    first = next(raw.images(105))[..., 0]
    with np.load(SHARED / "omniglot" / "images_background.npz") as npz:
        assert np.array_equal(first, npz["images"][107, 0].astype(np.uint8) * 255)


@needs_faces
def test_real_faces_through_celeba_loader() -> None:
    root = SHARED / "faces_frl"
    sizes = {s: len(load_dataset("celeba", split=s, data_dir=root)) for s in ("train", "valid")}
    assert sizes == {"train": 196, "valid": 24}
    test = load_dataset("celeba", split="test", data_dir=root)
    assert len(test) == 24 and test.image_shape == (64, 64, 3)
    # the embedded faces are these images, preprocessed the same way
    assert np.array_equal(load_dataset("faces", split="test").images, test.images)
    assert np.array_equal(load_dataset("faces", split="test", data_dir=SHARED).images, test.images)


# --------------------------------------------------------------------------- download


@needs_mnist
def test_download_mnist_from_file_mirror(isolated: Path, capsys: pytest.CaptureFixture) -> None:
    mirror = (SHARED / "mnist").resolve().as_uri() + "/"
    assert dl.main(["mnist", "--mirror", mirror, "--quiet"]) == 0
    folder = isolated / "mnist"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(f.name for f in dl.DATASETS["mnist"].files)
    ds = load_dataset("mnist", split="test")  # found in the download cache
    assert ds.source == str(folder / "t10k-images-idx3-ubyte.gz") and len(ds) == 10_000
    # again: the files are verified and kept
    assert dl.main(["mnist", "--mirror", "file:///nonexistent/", "--quiet"]) == 0


def test_download_wrong_checksum_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "images_background.zip").write_bytes(b"not the real omniglot zip")
    out = tmp_path / "out"
    rc = dl.main(["omniglot", "--dir", str(out), "--mirror", mirror.as_uri(), "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "68d2efa1b9178cc56df9314c21c6e718" in err
    assert "images_evaluation.zip" in err  # missing on the mirror: reported too
    assert list((out / "omniglot").iterdir()) == []  # no file, no .part


def test_download_file_success_and_fallback(tmp_path: Path) -> None:
    payload = b"hello spiral" * 1000
    good = tmp_path / "good"
    good.mkdir()
    (good / "f.bin").write_bytes(payload)
    spec = dl.RemoteFile(
        "f.bin",
        hashlib.md5(payload).hexdigest(),
        hashlib.sha256(payload).hexdigest(),
        len(payload),
    )
    dest = tmp_path / "dest"
    # the first mirror is missing the file, the second (a plain folder path) serves it
    path = dl.download_file(spec, ["file:///nonexistent/", str(good)], dest, progress=False)
    assert path.read_bytes() == payload and sorted(os.listdir(dest)) == ["f.bin"]
    # already there and verified: no mirror needed
    assert dl.download_file(spec, [], dest, progress=False) == path
    # a wrong sha256 fails even when the md5 matches
    bad = dl.RemoteFile("f.bin", spec.md5, "0" * 64)
    with pytest.raises(dl.DownloadError, match="sha256"):
        dl.download_file(bad, [str(good)], tmp_path / "d2", progress=False)
    assert os.listdir(tmp_path / "d2") == []


def test_download_cli_misc(capsys: pytest.CaptureFixture) -> None:
    assert dl.main(["celeba", "faces"]) == 0
    out = capsys.readouterr().out
    assert "mmlab.ie.cuhk.edu.hk" in out and "ship with spiral-gym" in out
    with pytest.raises(SystemExit):
        dl.main(["cifar10"])


def test_download_module_runs_as_script(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "SPIRAL_CACHE_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "spiral_envs.datasets.download"]
    done = subprocess.run([*cmd, "celeba"], capture_output=True, text=True, env=env, check=True)
    assert "list_eval_partition.txt" in done.stdout
    bad = subprocess.run([*cmd, "nope"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
