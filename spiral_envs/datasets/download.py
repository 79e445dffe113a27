"""``spiral-download``: fetch the official MNIST and Omniglot files, checksums verified.

Usage::

    spiral-download mnist omniglot              # into ~/.cache/spiral_gym/<name>
    spiral-download mnist --dir ~/data          # into ~/data/mnist (use SPIRAL_DATA_DIR=~/data)
    spiral-download mnist --mirror https://example.org/mnist/
    python -m spiral_envs.datasets.download celeba   # prints how to get CelebA

Each file is downloaded to ``<name>.part``, its size and checksums (MD5, and SHA-256 where known)
are verified, and only then is it renamed into place: an interrupted or corrupt download never
leaves a file that the loaders would pick up. Mirrors are tried in order. Files already present
with the right checksums are kept. :func:`spiral_envs.datasets.load_dataset` finds the files in
the default folder with no further setting.

CelebA is not downloaded: its licence forbids redistribution; the command prints where to get it
and where to put it. The faces dataset ships with the package.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spiral_envs.datasets._cache import cache_root
from spiral_envs.datasets.celeba import celeba_instructions

__all__ = ["DATASETS", "DownloadError", "RemoteFile", "download_file", "main"]

CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A file could not be fetched from any mirror, or failed its checksum everywhere."""


@dataclass(frozen=True)
class RemoteFile:
    """A file to fetch and the checksums it must have."""

    name: str
    md5: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class RemoteDataset:
    """The files of a dataset and the base URLs that serve them (tried in order)."""

    mirrors: tuple[str, ...]
    files: tuple[RemoteFile, ...]


DATASETS: dict[str, RemoteDataset] = {
    "mnist": RemoteDataset(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        files=(
            RemoteFile(
                "train-images-idx3-ubyte.gz",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                9_912_422,
            ),
            RemoteFile(
                "train-labels-idx1-ubyte.gz",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                28_881,
            ),
            RemoteFile(
                "t10k-images-idx3-ubyte.gz",
                "9fb629c4189551a2d022fa330f9573f3",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                1_648_877,
            ),
            RemoteFile(
                "t10k-labels-idx1-ubyte.gz",
                "ec29112dd5afa0611ce80d1b7f02629c",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                4_542,
            ),
        ),
    ),
    "omniglot": RemoteDataset(
        mirrors=("https://raw.githubusercontent.com/brendenlake/omniglot/master/python/",),
        files=(
            RemoteFile("images_background.zip", "68d2efa1b9178cc56df9314c21c6e718"),
            RemoteFile("images_evaluation.zip", "6b91aef0f799c5bb55b94e3f2daec811"),
        ),
    ),
}
NOT_DOWNLOADED = ("celeba", "faces")


def _check(path: Path, spec: RemoteFile) -> str | None:
    """Returns why ``path`` does not match ``spec``, or ``None`` if it does."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    if spec.size is not None and size != spec.size:
        return f"size {size} bytes, expected {spec.size}"
    if md5.hexdigest() != spec.md5:
        return f"md5 {md5.hexdigest()}, expected {spec.md5}"
    if spec.sha256 is not None and sha.hexdigest() != spec.sha256:
        return f"sha256 {sha.hexdigest()}, expected {spec.sha256}"
    return None


def _url(mirror: str, name: str) -> str:
    if "://" not in mirror:  # a local folder
        return Path(mirror).expanduser().resolve().as_uri() + "/" + name
    return mirror.rstrip("/") + "/" + name


def download_file(
    spec: RemoteFile,
    mirrors: Sequence[str],
    folder: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Downloads one file into ``folder``, trying ``mirrors`` in order, verifying checksums.

    The data goes to ``<name>.part`` first and is renamed to ``<name>`` only once its size and
    checksums match; on failure nothing is left behind.

    Args:
        spec: The file name and its expected checksums.
        mirrors: Base URLs (``https://``, ``file://``, or a local folder) serving ``spec.name``.
        folder: Destination folder (created if needed).
        force: Download even if a verified file is already there.
        progress: Show a tqdm progress bar.
        timeout: Socket timeout in seconds.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: If no mirror gave a file with the right checksums (the message lists
            each URL tried and what went wrong).
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / spec.name
    if dest.is_file() and not force:
        if _check(dest, spec) is None:
            return dest
    part = folder / (spec.name + ".part")
    errors = []
    for mirror in mirrors:
        url = _url(mirror, spec.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as f:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else spec.size
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=spec.name,
                    disable=not progress,
                ) as bar:
                    while chunk := resp.read(CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
            problem = _check(part, spec)
            if problem is None:
                os.replace(part, dest)
                return dest
            errors.append(f"{url}: checksum mismatch ({problem})")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if part.exists():
                part.unlink()
    raise DownloadError(
        f"could not download {spec.name} (with the expected checksum) from any mirror:\n  "
        + "\n  ".join(errors)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``spiral-download``; returns the exit status (0 if all succeeded)."""
    parser = argparse.ArgumentParser(
        prog="spiral-download",
        description="Download the official MNIST and Omniglot files for spiral-gym "
        "(checksums verified). CelebA: prints how to get it.",
    )
    parser.add_argument(
        "datasets",
        nargs="+",
        choices=sorted([*DATASETS, *NOT_DOWNLOADED]),
        help="datasets to fetch",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="put files in DIR/<dataset> (then set SPIRAL_DATA_DIR=DIR or pass data_dir); "
        f"default: the cache, {cache_root()}/<dataset>",
    )
    parser.add_argument(
        "--mirror",
        action="append",
        metavar="URL",
        help="base URL (or local folder) to fetch the files from instead of the default "
        "mirrors; may be given several times, tried in order",
    )
    parser.add_argument("--force", action="store_true", help="download even if files are there")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout, seconds")
    args = parser.parse_args(argv)

    status = 0
    for name in dict.fromkeys(args.datasets):
        if name == "celeba":
            print(celeba_instructions())
            continue
        if name == "faces":
            print("faces: the 244 faces ship with spiral-gym; nothing to download.")
            continue
        remote = DATASETS[name]
        folder = (args.dir.expanduser() if args.dir else cache_root()) / name
        mirrors = tuple(args.mirror) if args.mirror else remote.mirrors
        for spec in remote.files:
            try:
                path = download_file(
                    spec,
                    mirrors,
                    folder,
                    force=args.force,
                    progress=not args.quiet,
                    timeout=args.timeout,
                )
            except DownloadError as exc:
                print(f"spiral-download: {name}: {exc}", file=sys.stderr)
                status = 1
                continue
            if not args.quiet:
                print(f"{name}: {path} (checksum OK)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
