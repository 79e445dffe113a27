"""Batched reward math for the trainer: scores -> rewards, and stroke penalties.

Thin time-major wrappers over the pure functions of :mod:`spiral_envs.rewards` (the same math
the per-env wrappers use), for whole batches of episodes: the trainer scores the canvases of a
batch with one discriminator call.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from agents.config import REWARD_MODE_ALIASES, RewardConfig
from spiral_envs.actions import ActionSpec
from spiral_envs.protocols import Discriminator
from spiral_envs.rewards import (
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

#: Blur scales (Gaussian sigma, in pixels) of :func:`change_similarity`; 0 is the image itself.
SIMILARITY_SIGMAS: tuple[float, ...] = (0.0, 2.0, 4.0)


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


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)``, zero padding, taps out to 3 sigma."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, r), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(r, 0), groups=c)


@torch.no_grad()
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
        canvases, targets, blanks: ``uint8 (..., H, W, C)``, broadcastable against each other
            (``blanks``: the canvas each episode started from). The target's change
            (``targets - blanks``) is blurred at its own leading shape, so a target shared by many
            canvases (every step of an episode) is blurred once.
        sigmas: Blur scales in pixels (0: no blur).

    Returns:
        ``float32`` of the broadcast leading shape (``(N,)`` for ``(N, H, W, C)`` inputs).

    Example:
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
    to = lambda x: torch.from_numpy(np.ascontiguousarray(x, np.float32))  # noqa: E731
    canvases, targets, blanks = to(canvases), to(targets), to(blanks)
    image = torch.broadcast_shapes(canvases.shape, targets.shape, blanks.shape)[-3:]
    a = (canvases - blanks) / 255.0  # what the agent changed
    b = (targets - blanks) / 255.0  # what the target changes: not broadcast over the canvases
    a, b = a.expand(*a.shape[:-3], *image), b.expand(*b.shape[:-3], *image)

    def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
        flat = x.reshape(-1, *x.shape[-3:]).movedim(-1, -3)
        return _gaussian_blur(flat, sigma).movedim(-3, -1).reshape(x.shape)

    out = 0.0
    for s in sigmas:
        ab, bb = blur(a, s), blur(b, s)
        num = (ab * bb).sum((-3, -2, -1))
        den = (ab.square().sum((-3, -2, -1)) * bb.square().sum((-3, -2, -1))).sqrt()
        out = out + torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))
    return (out / len(sigmas)).numpy().astype(np.float32)


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

    Raises:
        ValueError: an ``l2`` or ``similarity`` reward on episodes without targets.
    """
    t_len, b = rollout.actions.shape[:2]
    canv = rollout.canvases[-1:] if cfg.reward_mode == "final" else rollout.canvases
    if cfg.reward == "discriminator":
        scores = _critic_scores(canv, rollout.targets, discriminator)
    elif rollout.targets is None:
        raise ValueError(f"reward {cfg.reward!r} needs a conditional env (a target observed)")
    elif cfg.reward == "l2":
        scores = -l2_distance(canv, rollout.targets[None])
    else:  # the episodes' first canvases are the blank ones; each target blurred once
        scores = change_similarity(canv, rollout.targets, rollout.canvases[:1])
    n = len(canv)
    full = np.zeros((t_len + 1, b), np.float32)
    full[-n:] = np.asarray(scores, np.float32).reshape(n, b)
    rewards = score_rewards(full, cfg.reward_mode) * cfg.reward_scale
    rewards += stroke_penalties(
        spec, rollout.actions, rollout.canvases[-1], cfg.new_stroke_penalty, cfg.blank_penalty
    )
    return rewards, full[-1]
