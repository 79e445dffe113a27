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
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "export_policy",
    "load_agent_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]


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


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint: another format, truncated, or not an agent's."""


def _check_archive(path: Path) -> None:
    """``torch.save`` writes a zip archive: anything else is refused before unpickling starts."""
    with open(path, "rb") as f:
        head = f.read(4)
    if zipfile.is_zipfile(path):
        return
    if head == b"PK\x03\x04":
        raise CheckpointError(
            f"{path} is truncated or damaged (a zip archive without its end): copy it again, or "
            "use the checkpoint of an earlier save"
        )
    raise CheckpointError(
        f"{path} is not a checkpoint (torch.save writes a zip archive; this file starts with "
        f"{head!r}): accepted a checkpoint.pt of spiral-train or a policy in agents/pretrained/"
    )


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
        CheckpointError: the file is not a zip archive of ``torch.save``, or is truncated.
        UnsafeCheckpointError: the file holds other objects and ``trusted`` is false.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    _check_archive(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=not trusted)
    except RuntimeError as e:  # a damaged archive: torch's reader names the record it lacks
        raise CheckpointError(
            f"{path} is damaged ({str(e).strip().splitlines()[0]}): copy it again, or use the "
            "checkpoint of an earlier save"
        ) from e
    except pickle.UnpicklingError as e:
        # torch wraps the unpickler's own error, which says whether a global was refused
        cause = (str(e.__context__ or e).strip() or type(e).__name__).splitlines()[0]
        if "unsupported global" not in cause.lower():  # a global refused, or a damaged file
            raise CheckpointError(
                f"{path} is damaged (unpickling failed: {cause[:120]}): copy it again, or use the "
                "checkpoint of an earlier save"
            ) from e
        raise UnsafeCheckpointError(
            f"{path} holds pickled objects other than tensors and plain values, refused "
            f"({cause.split(' was not')[0]}). If you made this file yourself (an older "
            "spiral-gym version), load it with load_checkpoint(path, trusted=True)."
        ) from e


def load_agent_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", trusted: bool = False
) -> dict:
    """:func:`load_checkpoint` for an agent: a training checkpoint or a policy export.

    Raises:
        CheckpointError: as :func:`load_checkpoint`, and a checkpoint without an agent's config
            and policy weights (for example the digit classifier shipped beside the agents).
    """
    ck = load_checkpoint(path, map_location, trusted)
    if not isinstance(ck, dict) or "config" not in ck or "policy" not in ck.get("learner", {}):
        found = sorted(map(str, ck))[:6] if isinstance(ck, dict) else type(ck).__name__
        raise CheckpointError(
            f"{path} is not an agent checkpoint (it has {found}, not 'config' and the policy's "
            "weights): accepted a checkpoint.pt of spiral-train or a policy in agents/pretrained/ "
            "such as mnist_cond_l2.pt"
        )
    return ck


def export_policy(
    src: str | os.PathLike, dst: str | os.PathLike, half: bool = True, trusted: bool = False
) -> Path:
    """Writes a slim copy of a training checkpoint: config, env description and policy weights
    only (no optimiser, discriminator or replay buffer), optionally in float16. ``spiral-eval``
    reads it like a full checkpoint (weights are cast back to float32 on load)."""
    ck = load_agent_checkpoint(src, trusted=trusted)
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
