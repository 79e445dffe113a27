"""The advantage actor-critic loss and its advantage estimators: small pure functions.

Time-major tensors ``(T, B)``. Episodes are whole (fixed length, terminated at ``T``), so no
bootstrap value is needed after the last step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["A2CLoss", "a2c_loss", "gae_advantages", "vtrace"]


class A2CLoss(NamedTuple):
    total: torch.Tensor
    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    gamma: float = 1.0,
    lam: float = 1.0,
    bootstrap: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over whole episodes.

    Args:
        rewards, values: ``(T, B)``.
        gamma, lam: Discount and GAE lambda (``lam = 1``: Monte-Carlo returns minus values).
        bootstrap: ``(B,)`` value after the last step; zero (terminal) when ``None``.

    Returns:
        ``(advantages, returns)``, both ``(T, B)``, ``returns = advantages + values``.
    """
    t_len = rewards.shape[0]
    nxt = torch.zeros_like(values[0]) if bootstrap is None else bootstrap
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(values[0])
    for t in reversed(range(t_len)):
        delta = rewards[t] + gamma * nxt - values[t]
        last = delta + gamma * lam * last
        adv[t] = last
        nxt = values[t]
    return adv, adv + values


def vtrace(
    behaviour_log_prob: torch.Tensor,
    target_log_prob: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    gamma: float = 1.0,
    bootstrap: torch.Tensor | None = None,
    rho_clip: float = 1.0,
    c_clip: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """V-trace targets and policy-gradient advantages (IMPALA, Espeholt et al. 2018).

    For trajectories acted by a stale policy ``mu`` and learned by ``pi``. With ``pi == mu``
    it reduces to Monte-Carlo returns (``lam = 1``).

    Returns:
        ``(vs, pg_advantages)``, both ``(T, B)`` and detached.
    """
    with torch.no_grad():
        ratio = (target_log_prob - behaviour_log_prob).exp()
        rho = ratio.clamp(max=rho_clip)
        c = ratio.clamp(max=c_clip)
        nxt_v = torch.cat(
            [values[1:], (torch.zeros_like(values[:1]) if bootstrap is None else bootstrap[None])],
            0,
        )
        deltas = rho * (rewards + gamma * nxt_v - values)
        acc = torch.zeros_like(values[0])
        vs_minus_v = torch.zeros_like(values)
        for t in reversed(range(values.shape[0])):
            acc = deltas[t] + gamma * c[t] * acc
            vs_minus_v[t] = acc
        vs = vs_minus_v + values
        nxt_vs = torch.cat(
            [vs[1:], (torch.zeros_like(vs[:1]) if bootstrap is None else bootstrap[None])], 0
        )
        pg_adv = rho * (rewards + gamma * nxt_vs - values)
    return vs, pg_adv


def a2c_loss(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    ent_coef: float,
    vf_coef: float,
    normalize_advantage: bool = True,
) -> A2CLoss:
    """Advantage actor-critic loss, as stable-baselines3's ``A2C.train``.

    ``policy = -mean(A * log pi(a|s))``, ``value = mean((R - V)^2)``,
    ``entropy = -mean(H)``, ``total = policy + ent_coef * entropy + vf_coef * value``.
    ``A`` is detached (and normalised to zero mean and unit std when asked); ``R`` is detached.
    """
    adv = advantages.detach()
    if normalize_advantage and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    policy = -(adv * log_prob).mean()
    value = F.mse_loss(values, returns.detach())
    ent = -entropy.mean()
    return A2CLoss(policy + ent_coef * ent + vf_coef * value, policy, value, ent)
