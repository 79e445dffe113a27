"""Target-image datasets for the painting environments.

:func:`load_dataset` finds MNIST, Omniglot, CelebA or the bundled faces in the layouts users
already have (see ``DESIGN.md``, "Dataset layouts a loader accepts"), converts them once to the
canvas resolution and the package's ink convention (white paper, dark ink: 255 is blank), caches
the result and returns an :class:`~spiral_envs.protocols.ImageDataset`. Without any files it falls
back to small subsets shipped in the package (not for CelebA, whose licence forbids it).

Files are fetched with ``spiral-download mnist omniglot`` (see
:mod:`spiral_envs.datasets.download`).

Examples:
    >>> import numpy as np
    >>> from spiral_envs.datasets import load_dataset
    >>> ds = load_dataset("mnist", split="test", size=64)
    >>> batch = ds.sample(np.random.default_rng(0), 8)
    >>> batch.shape, batch.dtype
    ((8, 64, 64, 1), dtype('uint8'))
"""

from spiral_envs.datasets._base import ArrayDataset, DatasetFormatError
from spiral_envs.datasets._cache import cache_root
from spiral_envs.datasets.loader import available_datasets, load_dataset

__all__ = ["ArrayDataset", "DatasetFormatError", "available_datasets", "cache_root", "load_dataset"]
