"""Batched reward math for the trainer: scores -> rewards, and stroke penalties.

Thin time-major wrappers over the pure functions of :mod:`spiral_envs.rewards` (the same math
the per-env wrappers use), for whole batches of episodes: the trainer scores every canvas of a
batch with one discriminator call.
"""

from __future__ import annotations

import numpy as np

from spiral_envs.actions import ActionSpec
from spiral_envs.rewards import (
    empty_canvas_penalty,
    final_step_rewards,
    l2_distance,
    per_step_rewards,
    psnr,
    stroke_penalty,
)

__all__ = ["l2_distance", "new_stroke_mask", "psnr", "score_rewards", "stroke_penalties"]


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
        terminated = np.zeros(scores[1:].shape, bool)
        terminated[-1] = True
        return final_step_rewards(scores[1:], terminated)
    if mode == "delta":
        return per_step_rewards(scores[1:], scores[:-1])
    raise ValueError(f"mode = {mode!r}: accepted 'final' or 'delta'")


def new_stroke_mask(spec: ActionSpec, actions: np.ndarray) -> np.ndarray:
    """``bool (T, B)``: paint steps that start a new disjoint stroke (the first paint, or a paint
    after a move), as the env's ``info["disjoint_strokes"]`` counts them."""
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
    disjoint stroke, ``-blank_penalty`` at the last step when the final canvas shows no ink."""
    pen = stroke_penalty(new_stroke_mask(spec, actions), new_stroke_penalty)
    if blank_penalty:
        pen[-1] += empty_canvas_penalty(final_canvases, blank_penalty)
    return pen.astype(np.float32)
