"""The policy learner: one A2C update from a batch of whole episodes and their rewards."""

from __future__ import annotations

import numpy as np
import torch

from agents.actor import Rollout
from agents.discriminator import NonFiniteLossError
from agents.losses import a2c_loss, gae_advantages, vtrace
from agents.networks import PolicyNet, autocast

__all__ = ["PolicyLearner"]


class PolicyLearner:
    """Advantage actor-critic with an entropy bonus and a value baseline.

    Args:
        policy: The network being trained.
        lr, lr_final: Adam learning rate, linearly annealed to ``lr_final`` (``-1``: constant).
        ent_coef, ent_coef_final: Entropy bonus, linearly annealed.
        vf_coef: Value loss weight. max_grad_norm: gradient clip (0: none).
        gamma, gae_lambda: Discount and GAE lambda.
        normalize_advantage: Per-batch advantage normalisation.
        off_policy: ``"none"`` or ``"vtrace"`` (importance-weighted targets for stale rollouts).
        precision: ``"fp32"`` or ``"bf16"`` (autocast of the forward pass).
        device: Torch device.
    """

    def __init__(
        self,
        policy: PolicyNet,
        lr: float = 5e-4,
        lr_final: float = -1.0,
        ent_coef: float = 0.02,
        ent_coef_final: float = 0.002,
        vf_coef: float = 0.5,
        max_grad_norm: float = 1.0,
        gamma: float = 1.0,
        gae_lambda: float = 1.0,
        normalize_advantage: bool = True,
        off_policy: str = "none",
        device: torch.device | str = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.policy, self.device = policy, torch.device(device)
        self.precision = precision
        self.lr, self.lr_final = lr, lr_final
        self.ent_coef, self.ent_coef_final = ent_coef, ent_coef_final
        self.vf_coef, self.max_grad_norm = vf_coef, max_grad_norm
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.normalize_advantage, self.off_policy = normalize_advantage, off_policy
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=lr, eps=1e-5)
        self.version = 0

    def schedule(self, progress: float) -> tuple[float, float]:
        """``(lr, ent_coef)`` at training ``progress`` in ``[0, 1]``."""
        p = min(max(progress, 0.0), 1.0)
        lr = self.lr if self.lr_final < 0 else self.lr + p * (self.lr_final - self.lr)
        return lr, self.ent_coef + p * (self.ent_coef_final - self.ent_coef)

    def weights(self) -> dict:
        """The policy's state dict (what actors in other processes load)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.policy.state_dict().items()}

    def update(self, rollout: Rollout, rewards: np.ndarray, progress: float = 0.0) -> dict:
        """One gradient step.

        Args:
            rollout: Whole episodes acted by (a possibly stale version of) the policy.
            rewards: float32 ``(T, B)``.
            progress: Fraction of training done, for the schedules.

        Returns:
            Scalar metrics (``losses/*``, ``charts/*``).

        Raises:
            NonFiniteLossError: NaN or inf in the loss (no step is taken).
        """
        dev = self.device
        lr, ent_coef = self.schedule(progress)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        t = lambda x: None if x is None else torch.from_numpy(np.ascontiguousarray(x)).to(dev)  # noqa: E731
        with autocast(dev, self.precision):
            out = self.policy.evaluate(
                t(rollout.canvases[:-1]),
                t(rollout.targets),
                t(rollout.steps),
                t(rollout.actions),
                t(rollout.noise),
            )
        rew = t(rewards).float()
        values = out.value.detach()
        if self.off_policy == "vtrace":
            returns, adv = vtrace(
                t(rollout.log_prob), out.log_prob.detach(), rew, values, gamma=self.gamma
            )
        else:
            adv, returns = gae_advantages(rew, values, self.gamma, self.gae_lambda)
        loss = a2c_loss(
            out.log_prob,
            out.entropy,
            out.value,
            adv,
            returns,
            ent_coef,
            self.vf_coef,
            self.normalize_advantage,
        )
        if not torch.isfinite(loss.total):
            raise NonFiniteLossError(
                f"policy loss is {loss.total.item()} (policy {loss.policy.item()}, value "
                f"{loss.value.item()}, entropy {loss.entropy.item()}) at update {self.version}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        clip = self.max_grad_norm if self.max_grad_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), clip)
        if not torch.isfinite(grad_norm):
            raise NonFiniteLossError(
                f"policy gradient norm is {float(grad_norm)} at update {self.version}"
            )
        self.optimizer.step()
        self.version += 1
        with torch.no_grad():
            ratio = (out.log_prob.detach() - t(rollout.log_prob)).exp()
            flag = rollout.actions[..., self.policy.spec.index(self.policy.spec.gate)]
        return {
            "losses/total": loss.total.item(),
            "losses/policy": loss.policy.item(),
            "losses/value": loss.value.item(),
            "losses/entropy": -loss.entropy.item(),
            "losses/grad_norm": float(grad_norm),
            "losses/importance_ratio": float(ratio.mean()),
            "charts/lr": lr,
            "charts/ent_coef": ent_coef,
            "charts/value": float(values.mean()),
            "charts/return": float(rewards.sum(0).mean()),
            "charts/paint_fraction": float(flag.mean()),
        }

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "version": self.version,
        }

    def load_state_dict(self, d: dict) -> None:
        self.policy.load_state_dict(d["policy"])
        self.optimizer.load_state_dict(d["optimizer"])
        self.version = d["version"]
