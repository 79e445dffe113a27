"""How digit-like unconditional samples are: a small MNIST classifier and the scores built on it.

A generator of digits is scored the way GANs are (FID, with a domain classifier in place of
Inception): the Fréchet distance between the classifier's penultimate features on the samples and
on held-out digits, and the histogram of predicted classes (mode coverage: a generator that
paints only ones has a low distance to the ones and misses nine classes).

    python -m agents.digits --data_dir ../shared/data/mnist   # trains, writes the shipped file
    spiral-eval runs/mnist_uncond/checkpoint.pt --episodes 500  # reports sample_fd, classes

The classifier (``agents/pretrained/mnist_classifier.pt``) is trained on the full MNIST
training set at canvas resolution (64 px, white paper, dark ink, as the env shows digits), with
small random shifts; its test accuracy is stored in the file and printed by training.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CLASSIFIER",
    "DigitNet",
    "class_histogram",
    "digit_scores",
    "frechet_distance",
    "is_digit_generator",
    "load_classifier",
    "sample_scores",
    "train_classifier",
]

#: The shipped classifier.
CLASSIFIER = Path(__file__).resolve().parent / "pretrained" / "mnist_classifier.pt"


class DigitNet(nn.Module):
    """Three strided convolutions, a 128-unit feature layer, 10 logits."""

    def __init__(self, size: int = 64) -> None:
        super().__init__()
        self.size = size
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.features = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * (size // 8) ** 2, 128), nn.ReLU()
        )
        self.head = nn.Linear(128, 10)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``float (N, 1, size, size)`` ink in [0, 1] -> the 128 penultimate features."""
        return self.features(self.conv(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))


def as_ink(images: np.ndarray) -> torch.Tensor:
    """``uint8 (N, H, W[, 1])`` canvases (white paper) -> ``float (N, 1, H, W)`` ink in [0, 1]."""
    x = np.asarray(images)
    if x.ndim == 4:
        if x.shape[-1] != 1:
            raise ValueError(f"greyscale images expected, got shape {x.shape}")
        x = x[..., 0]
    return torch.from_numpy(1.0 - x.astype(np.float32) / 255.0).unsqueeze(1)


@torch.no_grad()
def features_and_classes(
    net: DigitNet, images: np.ndarray, batch: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features ``(N, 128)`` and predicted classes ``(N,)`` of canvases."""
    net.eval()
    feats, classes = [], []
    for i in range(0, len(images), batch):
        f = net.embed(as_ink(images[i : i + batch]))
        feats.append(f.numpy().astype(np.float64))
        classes.append(net.head(f).argmax(1).numpy())
    return np.concatenate(feats), np.concatenate(classes)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature rows.

    ``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)``: the square roots are of
    symmetric positive semi-definite matrices, taken by eigendecomposition (negative round-off
    eigenvalues clipped to 0), so the result is real and at least 0.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"two (n >= 2, d) feature arrays expected, got {a.shape} and {b.shape}")
    mu = a.mean(0) - b.mean(0)
    ca, cb = (np.atleast_2d(np.cov(x, rowvar=False)) for x in (a, b))
    root_a = _psd_sqrt(ca)
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cb @ root_a), 0, None)))
    return float(max(mu @ mu + np.trace(ca) + np.trace(cb) - 2 * cross, 0.0))


def class_histogram(classes: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Fraction of samples predicted as each class, ``float (num_classes,)``, summing to 1."""
    classes = np.asarray(classes, np.int64)
    if classes.size == 0:
        raise ValueError("no samples")
    return np.bincount(classes, minlength=num_classes)[:num_classes] / classes.size


def sample_scores(net: DigitNet, samples: np.ndarray, reference: np.ndarray) -> dict:
    """``sample_fd`` (samples' features against the reference digits'), ``class_fractions``
    and ``min_class_fraction`` of the samples' predicted classes."""
    fs, cs = features_and_classes(net, samples)
    fr, _ = features_and_classes(net, reference)
    hist = class_histogram(cs)
    return {
        "sample_fd": frechet_distance(fs, fr),
        "class_fractions": [round(float(h), 4) for h in hist],
        "min_class_fraction": float(hist.min()),
    }


def is_digit_generator(env_id: str) -> bool:
    """Whether ``env_id`` is an unconditional MNIST env, whose samples these scores are for."""
    import gymnasium as gym

    kwargs = gym.spec(env_id).kwargs
    return kwargs.get("dataset") == "mnist" and not kwargs.get("conditional", False)


def digit_scores(samples: np.ndarray, env_id: str, env_kwargs: dict) -> dict:
    """:func:`sample_scores` of final canvases against the held-out digits of the env's test
    split (its whole test set), with the shipped classifier."""
    import gymnasium as gym

    env = gym.make(env_id, **{**env_kwargs, "split": "test"})
    reference = env.unwrapped.dataset.images
    env.close()
    return sample_scores(load_classifier(), samples, reference)


def load_classifier(path: str | Path = CLASSIFIER) -> DigitNet:
    """The shipped (or a given) classifier, in eval mode, on the CPU."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no digit classifier; train one: python -m agents.digits")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = DigitNet(int(state["size"]))
    net.load_state_dict({k: v.float() for k, v in state["weights"].items()})
    return net.eval()


# -- training ---------------------------------------------------------------------------------


def _shifted(x: torch.Tensor, rng: np.random.Generator, pixels: int) -> torch.Tensor:
    """Each image rolled by its own random shift of up to ``pixels`` (zero ink wraps in)."""
    out = torch.empty_like(x)
    for i, (dy, dx) in enumerate(rng.integers(-pixels, pixels + 1, size=(len(x), 2))):
        out[i] = torch.roll(x[i], (int(dy), int(dx)), dims=(1, 2))
    return out


def train_classifier(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    epochs: int = 2,
    batch: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    shift: int = 3,
    progress: bool = True,
) -> tuple[DigitNet, float]:
    """Trains a :class:`DigitNet` on ``(images, labels)``; returns it and its test accuracy."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images, labels = train
    net = DigitNet(images.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    y_all = torch.from_numpy(np.asarray(labels, np.int64))
    steps = epochs * (len(images) // batch)
    bar = tqdm(total=steps, desc="classifier", disable=not progress)
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for i in range(len(images) // batch):
            idx = order[i * batch : (i + 1) * batch]
            x = _shifted(as_ink(images[idx]), rng, shift)
            loss = F.cross_entropy(net(x), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    _, predicted = features_and_classes(net, test[0])
    return net, float(np.mean(predicted == np.asarray(test[1])))


def main(argv: list[str] | None = None) -> int:
    from spiral_envs.datasets import load_dataset

    p = argparse.ArgumentParser(
        prog="python -m agents.digits", description="Train the MNIST classifier of the scores."
    )
    p.add_argument("--data_dir", default=None, help="MNIST files (default: the usual lookup)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(CLASSIFIER))
    a = p.parse_args(argv)
    t = time.perf_counter()
    sets = [load_dataset("mnist", split=s, data_dir=a.data_dir) for s in ("train", "test")]
    data = [(d.images, d.labels) for d in sets]
    net, acc = train_classifier(data[0], data[1], epochs=a.epochs, seed=a.seed)
    weights = {k: v.half() for k, v in net.state_dict().items()}
    meta = {"size": net.size, "test_accuracy": acc, "train_images": len(data[0][0])}
    torch.save({"weights": weights, **meta, "source": sets[0].source}, a.out)
    minutes = (time.perf_counter() - t) / 60
    print(f"test accuracy {acc:.4f} on {len(data[1][0])} digits ({minutes:.1f} min): {a.out}")
    return 0


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


if __name__ == "__main__":
    raise SystemExit(main())
