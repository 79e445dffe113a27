"""Run outputs: CSV and TensorBoard scalars, sample grids (PNG) and episode GIFs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["RunLogger", "image_grid", "save_episode_gif", "save_grid"]


def image_grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 ``(N, H, W, C)`` -> one uint8 ``(rows*(H+pad)+pad, cols*(W+pad)+pad, 3)`` picture."""
    images = np.asarray(images)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    n, h, w, _ = images.shape
    cols = cols or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 128, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + c * (w + pad) : pad + c * (w + pad) + w,
        ] = img
    return out


def save_grid(
    path: str | Path,
    canvases: np.ndarray,
    targets: np.ndarray | None = None,
    n: int = 16,
    scale: int = 2,
    per_row: int | None = None,
) -> Path:
    """Saves a PNG grid of canvases; with targets, each target sits left of its canvas.

    ``per_row`` canvases (or pairs) per row; about a square grid when ``None``.
    """
    canvases = np.asarray(canvases)[:n]
    per_row = per_row or max(1, int(math.ceil(math.sqrt(len(canvases)))))
    per_row = min(per_row, len(canvases))
    if targets is not None:
        pairs = np.stack([np.asarray(targets)[:n], canvases], 1)
        imgs = pairs.reshape(-1, *canvases.shape[1:])
        cols = 2 * per_row
    else:
        imgs, cols = canvases, per_row
    grid = image_grid(imgs, cols=cols)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)
    return path


def save_episode_gif(
    path: str | Path,
    frames: np.ndarray,
    target: np.ndarray | None = None,
    scale: int = 4,
    ms: int = 150,
) -> Path:
    """Saves a GIF of an episode's canvases ``(T+1, H, W, C)`` (target alongside when given)."""
    frames = np.asarray(frames)
    pics = []
    for f in frames:
        row = f if target is None else np.concatenate([target, np.full_like(f[:, :2], 128), f], 1)
        if row.shape[-1] == 1:
            row = np.repeat(row, 3, -1)
        img = Image.fromarray(row)
        pics.append(img.resize((img.width * scale, img.height * scale), Image.NEAREST))
    pics += [pics[-1]] * 4  # linger on the result
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pics[0].save(path, save_all=True, append_images=pics[1:], duration=ms, loop=0)
    return path


class RunLogger:
    """Appends scalar rows to ``progress.csv`` and, optionally, TensorBoard under ``tb/``.

    The CSV header grows when a row brings new keys (earlier rows get empty cells). Resuming
    appends to the same files.
    """

    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.out_dir / "progress.csv"
        self._fields: list[str] | None = None
        if self.csv_path.exists() and self.csv_path.stat().st_size:
            with open(self.csv_path, newline="") as f:
                self._fields = next(csv.reader(f), None)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out_dir / "tb"))
            except Exception as e:  # pragma: no cover - tensorboard missing or broken
                print(f"TensorBoard disabled: {e}")

    def log(self, step: int, row: dict[str, float]) -> None:
        row = {"global_step": step, **row}
        if self._fields is None:
            self._fields = list(row)
            with open(self.csv_path, "w", newline="") as f:
                csv.writer(f).writerow(self._fields)
        elif any(k not in self._fields for k in row):  # new columns: rewrite with a wider header
            self._fields += [k for k in row if k not in self._fields]
            with open(self.csv_path, newline="") as f:
                rows = list(csv.reader(f))[1:]
            with open(self.csv_path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(self._fields)
                w.writerows(r + [""] * (len(self._fields) - len(r)) for r in rows)
        with open(self.csv_path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self._fields])
        if self.tb is not None:
            for k, v in row.items():
                if k != "global_step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)

    def truncate_after(self, step: int) -> None:
        """Drops CSV rows past ``step`` (written after the checkpoint a resumed run starts from)."""
        if not self.csv_path.exists():
            return
        with open(self.csv_path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        keep = [rows[0]] + [r for r in rows[1:] if r and float(r[0]) <= step]
        with open(self.csv_path, "w", newline="") as f:
            csv.writer(f).writerows(keep)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
