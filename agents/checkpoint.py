"""Checkpoints: written atomically, read without running code.

A checkpoint holds only tensors and plain Python values (dicts, lists, numbers, strings): the
config, counters, the policy's and critic's weights, the optimisers' state, the replay buffer
(as uint8 tensors) and the random generators' states. :func:`load_checkpoint` reads it with
``torch.load(weights_only=True)``, which refuses any other pickled object, so a checkpoint that
someone shared cannot run code on your machine. Checkpoints of older versions that pickled numpy
arrays load only with ``trusted=True``: do that for files you made yourself.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["UnsafeCheckpointError", "export_policy", "load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Writes ``payload`` with ``torch.save`` atomically: a crash leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects other than tensors and plain values."""


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", trusted: bool = False
) -> dict:
    """Reads a checkpoint written by :func:`save_checkpoint`, running none of its code.

    Args:
        path: The file.
        map_location: Where tensors go.
        trusted: Also unpickle arbitrary objects (older checkpoints with numpy arrays). Only for
            files you made yourself: unpickling can run any code.

    Raises:
        FileNotFoundError: naming the missing file.
        UnsafeCheckpointError: the file holds other objects and ``trusted`` is false.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=not trusted)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsafeCheckpointError(
            f"{path} holds pickled objects other than tensors and plain values, refused "
            f"({first}). If you made this file yourself (an older spiral-gym version), load it "
            "with load_checkpoint(path, trusted=True)."
        ) from e


def export_policy(
    src: str | os.PathLike, dst: str | os.PathLike, half: bool = True, trusted: bool = False
) -> Path:
    """Writes a slim copy of a training checkpoint: config, env description and policy weights
    only (no optimiser, discriminator or replay buffer), optionally in float16. ``spiral-eval``
    reads it like a full checkpoint (weights are cast back to float32 on load)."""
    ck = load_checkpoint(src, trusted=trusted)
    policy = ck["learner"]["policy"]
    if half:
        policy = {k: v.half() if v.is_floating_point() else v for k, v in policy.items()}
    slim = {
        "config": ck["config"],
        "iteration": ck["iteration"],
        "frames": ck["frames"],
        "elapsed": ck["elapsed"],
        "env": ck.get("env"),
        "net_config": ck.get("net_config"),
        "learner": {"policy": policy},
    }
    return save_checkpoint(dst, slim)


def main(argv: list[str] | None = None) -> int:
    """``python -m agents.checkpoint SRC DST``: export a slim policy-only checkpoint."""
    import argparse

    p = argparse.ArgumentParser(description=export_policy.__doc__.split("\n")[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--float32", action="store_true", help="keep float32 weights")
    p.add_argument(
        "--trusted", action="store_true", help="read an older checkpoint you made yourself"
    )
    a = p.parse_args(argv)
    path = export_policy(a.src, a.dst, half=not a.float32, trusted=a.trusted)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
