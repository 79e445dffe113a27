"""Batched reward math for the trainer: scores -> rewards, and stroke penalties.

Pure numpy functions over time-major arrays. They mirror the per-env reward functions of
``spiral_envs.rewards`` for whole batches of episodes (the trainer scores all canvases of a batch
with one discriminator call).
"""

from __future__ import annotations

import numpy as np

from spiral_envs.actions import ActionSpec

__all__ = ["l2_distance", "new_stroke_mask", "score_rewards", "stroke_penalties"]


def l2_distance(canvases: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean over pixels of ``((canvas - target) / 255) ** 2``: float32 ``(..., )`` per image.

    Args:
        canvases, targets: uint8 ``(..., H, W, C)`` (broadcastable).
    """
    d = (canvases.astype(np.float32) - targets.astype(np.float32)) * (1.0 / 255.0)
    return (d * d).mean(axis=(-3, -2, -1)).astype(np.float32)


def score_rewards(scores: np.ndarray, mode: str = "final") -> np.ndarray:
    """Turns canvas scores into per-step rewards.

    Args:
        scores: ``(T + 1, B)`` scores of the canvas before each step and of the final canvas
            (``mode="final"`` only reads the last row).
        mode: ``"final"``: the final score at the last step, zeros before (SPIRAL).
            ``"delta"``: ``r_t = s_{t+1} - s_t`` (SPIRAL++); they sum to ``s_T - s_0``.

    Returns:
        float32 ``(T, B)`` rewards.
    """
    scores = np.asarray(scores, np.float32)
    if mode == "final":
        r = np.zeros((scores.shape[0] - 1, *scores.shape[1:]), np.float32)
        r[-1] = scores[-1]
        return r
    if mode == "delta":
        return np.diff(scores, axis=0).astype(np.float32)
    raise ValueError(f"mode = {mode!r}: accepted 'final' or 'delta'")


def new_stroke_mask(spec: ActionSpec, actions: np.ndarray) -> np.ndarray:
    """``bool (T, B)``: paint steps that start a new disjoint stroke (first paint, or after a
    move)."""
    flag = np.asarray(actions)[..., spec.index(spec.gate)] == 1
    prev = np.concatenate([np.zeros_like(flag[:1]), flag[:-1]], 0)
    return flag & ~prev


def stroke_penalties(
    spec: ActionSpec,
    actions: np.ndarray,
    final_canvases: np.ndarray,
    new_stroke_penalty: float = 0.0,
    blank_penalty: float = 0.0,
) -> np.ndarray:
    """Negative rewards ``(T, B)``: ``-new_stroke_penalty`` at each step that starts a new
    disjoint stroke, ``-blank_penalty`` at the last step when the final canvas has no ink."""
    pen = -new_stroke_penalty * new_stroke_mask(spec, actions).astype(np.float32)
    if blank_penalty:
        blank = (np.asarray(final_canvases) == 255).reshape(len(final_canvases), -1).all(1)
        pen[-1] -= blank_penalty * blank
    return pen.astype(np.float32)
