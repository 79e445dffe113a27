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
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "L2Discriminator",
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

    Example:
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
