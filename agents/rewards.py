"""Batched reward math for the trainer: scores -> rewards, and stroke penalties.

Thin time-major wrappers over the pure functions of :mod:`spiral_envs.rewards` (the same math
the per-env wrappers use), for whole batches of episodes: the trainer scores the canvases of a
batch with one discriminator call. :func:`change_similarity` is re-exported from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.config import REWARD_MODE_ALIASES, RewardConfig
from spiral_envs.actions import ActionSpec
from spiral_envs.protocols import Discriminator
from spiral_envs.rewards import (
    SIMILARITY_SIGMAS,
    change_similarity,
    empty_canvas_penalty,
    final_step_rewards,
    l2_distance,
    per_step_rewards,
    psnr,
    stroke_penalty,
)

if TYPE_CHECKING:
    from agents.actor import Rollout

__all__ = [
    "SIMILARITY_SIGMAS",
    "change_similarity",
    "compute_rewards",
    "l2_distance",
    "new_stroke_mask",
    "psnr",
    "score_rewards",
    "stroke_penalties",
]


def score_rewards(scores: np.ndarray, mode: str = "final") -> np.ndarray:
    """Turns canvas scores into per-step rewards.

    Args:
        scores: ``(T + 1, B)`` scores of the canvas before each step and of the final canvas
            (``mode="final"`` only reads the last row).
        mode: ``"final"``: the final score at the last step, zeros before (SPIRAL).
            ``"per_step"`` (alias ``"delta"``): ``r_t = s_{t+1} - s_t`` (SPIRAL++); they sum to
            ``s_T - s_0``.

    Returns:
        float32 ``(T, B)`` rewards.
    """
    scores = np.asarray(scores, np.float32)
    if mode == "final":
        terminated = np.zeros(scores[1:].shape, bool)
        terminated[-1] = True
        return final_step_rewards(scores[1:], terminated)
    if REWARD_MODE_ALIASES.get(mode, mode) == "per_step":
        return per_step_rewards(scores[1:], scores[:-1])
    raise ValueError(f"mode = {mode!r}: accepted 'final' or 'per_step' (alias 'delta')")


def gate_mask(spec: ActionSpec, actions: np.ndarray) -> np.ndarray:
    """``bool (T, B)``: steps whose gate is 1 (a paint stroke, a placed object)."""
    return np.asarray(actions)[..., spec.index(spec.gate)] == 1


def new_stroke_mask(spec: ActionSpec, actions: np.ndarray) -> np.ndarray:
    """``bool (T, B)``: paint steps that start a new disjoint stroke (the first paint, or a paint
    after a move), as the env's ``info["disjoint_strokes"]`` counts them."""
    flag = gate_mask(spec, actions)
    prev = np.concatenate([np.zeros_like(flag[:1]), flag[:-1]], 0)
    return flag & ~prev


def stroke_penalties(
    spec: ActionSpec,
    actions: np.ndarray,
    final_canvases: np.ndarray,
    new_stroke_penalty: float = 0.0,
    blank_penalty: float = 0.0,
    place_penalty: float = 0.0,
) -> np.ndarray:
    """Negative rewards ``(T, B)``: ``-new_stroke_penalty`` at each step that starts a new
    disjoint stroke, ``-place_penalty`` at each step whose gate is 1 (a stroke, an object), and
    ``-blank_penalty`` at the last step when the final canvas shows no ink."""
    pen = stroke_penalty(new_stroke_mask(spec, actions), new_stroke_penalty)
    if place_penalty:
        pen += stroke_penalty(gate_mask(spec, actions), place_penalty)
    if blank_penalty:
        pen[-1] += empty_canvas_penalty(final_canvases, blank_penalty)
    return pen.astype(np.float32)


def _critic_scores(canvases: np.ndarray, targets: np.ndarray | None, critic) -> np.ndarray:
    """Critic scores ``(N, B)`` of canvases ``(N, B, H, W, C)``. A canvas a step left unchanged
    (a move) keeps the previous canvas's score: the critic is asked only about changed ones."""
    n, b = canvases.shape[:2]
    changed = np.ones((n, b), bool)
    if n > 1:
        changed[1:] = (canvases[1:] != canvases[:-1]).reshape(n - 1, b, -1).any(-1)
    t_idx, b_idx = np.nonzero(changed)
    scores = np.zeros((n, b), np.float32)
    scores[t_idx, b_idx] = critic(
        canvases[t_idx, b_idx], None if targets is None else targets[b_idx]
    )
    for t in range(1, n):
        scores[t] = np.where(changed[t], scores[t], scores[t - 1])
    return scores


def compute_rewards(
    rollout: Rollout,
    cfg: RewardConfig,
    spec: ActionSpec,
    discriminator: Discriminator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rewards ``(T, B)`` of a batch of episodes, and the final canvases' scores ``(B,)``.

    Scores are the discriminator's, ``-L2`` to the target or the change similarity;
    ``cfg.reward_mode`` turns them into final-step or per-step rewards; the stroke penalties are
    added. With per-step rewards the critic scores only the canvases that changed: a critic pass
    costs more than the policy's, and moves are common.

    ``cfg.l2_weight`` adds that multiple of the L2 reward to a similarity or critic reward.

    Raises:
        ValueError: an ``l2`` or ``similarity`` reward, or an ``l2_weight``, on episodes without
            targets.
    """
    canv = rollout.canvases[-1:] if cfg.reward_mode == "final" else rollout.canvases
    if (cfg.reward != "discriminator" or cfg.l2_weight) and rollout.targets is None:
        plain = cfg.reward != "discriminator"
        what = f"reward {cfg.reward!r}" if plain else f"l2_weight {cfg.l2_weight}"
        raise ValueError(f"{what} needs a conditional env (a target observed)")
    if cfg.reward == "discriminator":
        scores = _critic_scores(canv, rollout.targets, discriminator)
    elif cfg.reward == "l2":
        scores = -l2_distance(canv, rollout.targets[None])
    else:  # the episodes' first canvases are the blank ones; each target blurred once
        scores = change_similarity(canv, rollout.targets, rollout.canvases[:1])
    full = _full_scores(scores, rollout.actions.shape[:2])
    rewards = score_rewards(full, cfg.reward_mode) * cfg.reward_scale
    if cfg.l2_weight:
        l2 = _full_scores(-l2_distance(canv, rollout.targets[None]), rollout.actions.shape[:2])
        rewards += score_rewards(l2, cfg.reward_mode) * cfg.l2_weight
    rewards += stroke_penalties(
        spec,
        rollout.actions,
        rollout.canvases[-1],
        cfg.new_stroke_penalty,
        cfg.blank_penalty,
        cfg.place_penalty,
    )
    return rewards, full[-1]


def _full_scores(scores: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(T + 1, B)`` scores from the scores of the last ``n`` canvases (zeros before them)."""
    t_len, b = shape
    scores = np.asarray(scores, np.float32).reshape(-1, b)
    full = np.zeros((t_len + 1, b), np.float32)
    full[-len(scores) :] = scores
    return full
