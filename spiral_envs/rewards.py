"""SPIRAL reward math as small pure functions, and a numpy L2 "discriminator".

Used by the per-env wrappers (:mod:`spiral_envs.wrappers`) and by batched trainers alike, so the
reward is defined in one place. All functions take numpy arrays and broadcast over a leading batch
dimension; none imports torch.

* SPIRAL (Ganin et al. 2018): the discriminator's score of the final canvas is the reward of the
  last step, every other step gets 0 (:func:`final_step_rewards`).
* SPIRAL++ (Mellor et al. 2019): per-step differences ``r_t = D(c_t) - D(c_{t-1})``
  (:func:`per_step_rewards`); they sum to ``D(c_T) - D(c_0)``.
* The paper's penalties for unconditional agents: a cost for every new disjoint stroke
  (:func:`stroke_penalty`) and for an empty final canvas (:func:`empty_canvas_penalty`).
* Scores for conditional tasks: minus the pixel L2 (:class:`L2Discriminator`) and the blurred
  change similarity (:func:`change_similarity`, :class:`ChangeSimilarity`), the reward that
  makes the 3D scenes learnable.
"""

from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = [
    "SIMILARITY_SIGMAS",
    "ChangeSimilarity",
    "L2Discriminator",
    "change_similarity",
    "empty_canvas_penalty",
    "final_step_rewards",
    "ink_fraction",
    "l2_distance",
    "per_step_rewards",
    "psnr",
    "psnr_of_l2",
    "stroke_penalty",
]


def l2_distance(canvases: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean squared pixel difference in ``[0, 1]`` units, one value per image.

    Args:
        canvases: ``uint8 (..., H, W, C)``.
        targets: ``uint8 (..., H, W, C)``, broadcastable to ``canvases``.

    Returns:
        ``float32 (...)``: ``mean(((canvas - target) / 255) ** 2)`` over ``H, W, C``.
    """
    diff = (np.asarray(canvases, np.float32) - np.asarray(targets, np.float32)) / 255.0
    return np.mean(diff * diff, axis=(-3, -2, -1), dtype=np.float32)


def psnr(canvases: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB (peak 1), one value per image; ``inf`` when equal."""
    return psnr_of_l2(l2_distance(canvases, targets))


def psnr_of_l2(l2: np.ndarray) -> np.ndarray:
    """PSNR in dB (peak 1) of mean squared errors ``l2`` (:func:`l2_distance`); ``inf`` at 0."""
    with np.errstate(divide="ignore"):
        return (-10.0 * np.log10(np.asarray(l2, np.float64))).astype(np.float32)


def ink_fraction(canvases: np.ndarray, threshold: int = 8) -> np.ndarray:
    """Fraction of pixels darker than white by more than ``threshold``, per image."""
    ink = (255 - np.asarray(canvases).min(axis=-1)) > threshold
    return ink.mean(axis=(-2, -1), dtype=np.float32)


def final_step_rewards(scores: np.ndarray, terminated: np.ndarray) -> np.ndarray:
    """SPIRAL's reward: the final canvas's score at the last step, 0 elsewhere.

    Args:
        scores: ``(...)`` discriminator scores of the current canvases.
        terminated: ``bool (...)``, whether each step ended its episode.
    """
    return np.where(terminated, scores, 0.0).astype(np.float32)


def per_step_rewards(scores: np.ndarray, previous_scores: np.ndarray) -> np.ndarray:
    """SPIRAL++'s temporal credit assignment: ``r_t = D(c_t) - D(c_{t-1})``.

    For a whole episode pass ``scores[1:]`` and ``scores[:-1]`` of the scores of ``c_0 .. c_T``
    (``c_0`` the blank canvas).
    """
    return (np.asarray(scores, np.float32) - np.asarray(previous_scores, np.float32)).astype(
        np.float32
    )


def stroke_penalty(new_disjoint_strokes: np.ndarray, weight: float) -> np.ndarray:
    """The paper's cost for starting new continuous stroke sequences: ``-weight`` per new one.

    Args:
        new_disjoint_strokes: how many disjoint strokes each step started (0 or 1 per step;
            the difference of the env's ``info["disjoint_strokes"]``).
        weight: penalty per new sequence (the paper leaves the magnitude open).
    """
    return (-float(weight) * np.asarray(new_disjoint_strokes, np.float32)).astype(np.float32)


def empty_canvas_penalty(
    canvases: np.ndarray, weight: float, min_ink: float = 0.001, threshold: int = 8
) -> np.ndarray:
    """The paper's cost for drawing nothing visible: ``-weight`` where ink covers < ``min_ink``."""
    empty = ink_fraction(canvases, threshold) < min_ink
    return (-float(weight) * empty).astype(np.float32)


class L2Discriminator:
    """A numpy "discriminator" for conditional tasks: the score is minus the pixel L2 distance.

    It satisfies :class:`spiral_envs.protocols.Discriminator`, so reward wrappers and trainers
    can use it in place of a learned critic (the L2 baseline of the paper).

    Examples:
        >>> import numpy as np
        >>> d = L2Discriminator()
        >>> blank = np.full((1, 4, 4, 1), 255, np.uint8)
        >>> float(d(blank, blank)[0])
        -0.0
    """

    conditional = True

    def __call__(self, canvases: np.ndarray, targets: np.ndarray | None = None) -> np.ndarray:
        if targets is None:
            raise ValueError("L2Discriminator needs targets: use it with a conditional env")
        return -l2_distance(canvases, targets)


#: Blur scales (Gaussian sigma, in pixels) of :func:`change_similarity`; 0 is the image itself.
SIMILARITY_SIGMAS: tuple[float, ...] = (0.0, 2.0, 4.0)


def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """``float32 (n, n)``: a 1-D Gaussian blur with zero padding, taps out to 3 sigma, as a matrix
    (``blurred = M @ x``), so that a separable 2-D blur is two matrix products."""
    r = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps /= taps.sum()
    offset = np.arange(n)[None, :] - np.arange(n)[:, None]  # input index - output index
    return np.where(np.abs(offset) <= r, taps[np.clip(offset + r, 0, 2 * r)], 0.0).astype(
        np.float32
    )


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """The process's BLAS thread pools. The blurs are small matrix products, fastest on one BLAS
    thread: on several, beside the MuJoCo renderer's threads or other busy processes, they ran
    up to 30x slower (``benchmarks/bench_scene.py --env_id SpiralBench-Scene-Cond-v0``)."""
    return ThreadpoolController()


def _gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Blurs the ``H`` and ``W`` axes of ``float32 (..., H, W, C)`` (zero padding)."""
    if sigma <= 0:
        return x
    rows = np.tensordot(x, _blur_matrix(x.shape[-3], sigma), axes=([-3], [1]))  # (..., W, C, H)
    x = np.moveaxis(rows, -1, -3)
    cols = np.tensordot(x, _blur_matrix(x.shape[-2], sigma), axes=([-2], [1]))  # (..., H, C, W)
    return np.moveaxis(cols, -1, -2)


def change_similarity(
    canvases: np.ndarray,
    targets: np.ndarray,
    blanks: np.ndarray,
    sigmas: tuple[float, ...] = SIMILARITY_SIGMAS,
) -> np.ndarray:
    """How well what the agent changed matches what the target changes, in ``[-1, 1]``.

    The cosine similarity of the two changes from the blank canvas, ``canvas - blank`` and
    ``target - blank`` (signed, per pixel and channel), averaged over Gaussian blurs of
    ``sigmas`` pixels. 1 when the canvas equals the target; 0 for the blank canvas (nothing
    changed); the blurred terms give partial credit to a mark near, rather than on, the target's,
    so a reconstruction reward built on it is dense where pixel L2 is sparse (the 3D scenes:
    objects of a few pixels, and an object placed off target costs as much L2 as it can gain).
    Unlike L2 it does not score the blank canvas above a wrong mark: a first mark anywhere near
    the target's changes scores above nothing.

    Args:
        canvases: ``uint8 (..., H, W, C)``, broadcastable against ``targets`` and ``blanks``.
        targets: ``uint8 (..., H, W, C)``. The target's change (``targets - blanks``) is blurred
            at its own leading shape, so a target shared by many canvases (every step of an
            episode) is blurred once.
        blanks: ``uint8 (..., H, W, C)``, the canvas each episode started from.
        sigmas: Blur scales in pixels (0: no blur).

    Returns:
        ``float32`` of the broadcast leading shape (``(N,)`` for ``(N, H, W, C)`` inputs).

    Examples:
        >>> import numpy as np
        >>> blank = np.full((1, 16, 16, 3), 200, np.uint8)
        >>> target = blank.copy(); target[:, 4:8, 4:8] = 0
        >>> near = blank.copy(); near[:, 5:9, 5:9] = 0
        >>> far = blank.copy(); far[:, 10:14, 10:14] = 0
        >>> [round(float(change_similarity(c, target, blank)[0]), 2) for c in (target, blank)]
        [1.0, 0.0]
        >>> bool(change_similarity(near, target, blank) > change_similarity(far, target, blank))
        True
    """
    if not sigmas:
        raise ValueError("sigmas is empty: accepted one or more blur scales (0: no blur)")
    canvases, targets, blanks = (np.asarray(x, np.float32) for x in (canvases, targets, blanks))
    image = np.broadcast_shapes(canvases.shape, targets.shape, blanks.shape)[-3:]
    a = (canvases - blanks) / 255.0  # what the agent changed
    b = (targets - blanks) / 255.0  # what the target changes: not broadcast over the canvases
    a = np.broadcast_to(a, (*a.shape[:-3], *image))
    b = np.broadcast_to(b, (*b.shape[:-3], *image))
    out = 0.0
    with _blas_controller().limit(limits=1, user_api="blas"):
        for s in sigmas:
            ab, bb = _gaussian_blur(a, s), _gaussian_blur(b, s)
            num = (ab * bb).sum((-3, -2, -1))
            den = np.sqrt(np.square(ab).sum((-3, -2, -1)) * np.square(bb).sum((-3, -2, -1)))
            out = out + np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    return np.asarray(out / len(sigmas), np.float32)


class ChangeSimilarity:
    """:func:`change_similarity` as a :class:`~spiral_envs.protocols.Discriminator`.

    The score of a canvas is its change similarity to the target, from :attr:`blank`: the
    canvas episodes start from (white paper for the paint envs, the empty floor for the scenes).
    :class:`spiral_envs.wrappers.SimilarityReward` sets it from each episode's first observation.

    Examples:
        >>> import numpy as np
        >>> blank = np.full((16, 16, 1), 255, np.uint8)
        >>> target = blank.copy(); target[4:8, 4:8] = 0
        >>> score = ChangeSimilarity(blank)
        >>> [round(float(s), 2) for s in score(np.stack([target, blank]), target[None])]
        [1.0, 0.0]

    Args:
        blank: ``uint8 (H, W, C)``, or ``None`` until it is set.
        sigmas: Blur scales in pixels, as :func:`change_similarity`'s.
    """

    conditional = True

    def __init__(
        self, blank: np.ndarray | None = None, sigmas: tuple[float, ...] = SIMILARITY_SIGMAS
    ) -> None:
        if not sigmas:
            raise ValueError("sigmas is empty: accepted one or more blur scales (0: no blur)")
        self.blank = blank
        self.sigmas = tuple(float(s) for s in sigmas)

    def __call__(self, canvases: np.ndarray, targets: np.ndarray | None = None) -> np.ndarray:
        if targets is None:
            raise ValueError("ChangeSimilarity needs targets: use it with a conditional env")
        if self.blank is None:
            raise ValueError("ChangeSimilarity.blank is not set: the canvas episodes start from")
        return change_similarity(canvases, targets, self.blank, self.sigmas)
