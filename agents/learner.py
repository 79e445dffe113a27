"""The policy learner: one A2C update from a batch of whole episodes and their rewards."""

from __future__ import annotations

import numpy as np
import torch

from agents.actor import Rollout
from agents.config import LearnerConfig
from agents.discriminator import NonFiniteLossError
from agents.losses import a2c_loss, gae_advantages, vtrace
from agents.networks import PolicyNet, as_tensor, autocast

__all__ = ["LearnerState", "PolicyLearner", "evaluate_rollout", "lr_and_entropy"]


def evaluate_rollout(policy: PolicyNet, rollout: Rollout, device: torch.device, logits=False):
    """The policy teacher-forced on a rollout's whole episodes (:meth:`PolicyNet.evaluate`),
    scoring its ``labels`` where it has them; with ``logits``, also each component's logits."""
    t = lambda x: as_tensor(x, device)  # noqa: E731
    return policy.evaluate(
        t(rollout.canvases[:-1]),
        t(rollout.targets),
        t(rollout.steps),
        t(rollout.actions),
        t(rollout.noise),
        return_logits=logits,
        labels=t(rollout.labels),
    )


class LearnerState:
    """A learner's part of a checkpoint: its policy's and optimiser's state and its update
    count, under the same keys for every learner (A2C, maximum likelihood)."""

    policy: torch.nn.Module
    optimizer: torch.optim.Optimizer
    version: int

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


def lr_and_entropy(cfg: LearnerConfig, progress: float) -> tuple[float, float]:
    """``(lr, ent_coef)`` at training ``progress`` in ``[0, 1]`` (linear schedules)."""
    p = min(max(progress, 0.0), 1.0)
    lr = cfg.lr if cfg.lr_final < 0 else cfg.lr + p * (cfg.lr_final - cfg.lr)
    return lr, cfg.ent_coef + p * (cfg.ent_coef_final - cfg.ent_coef)


class PolicyLearner(LearnerState):
    """Advantage actor-critic with an entropy bonus and a value baseline.

    Args:
        policy: The network being trained.
        cfg: Learning rate and entropy schedules, loss weights, discounting.
        off_policy: ``"vtrace"`` (importance-weighted targets for stale rollouts) or ``"none"``;
            default: ``cfg.off_policy``, with ``"auto"`` meaning ``"none"``.
        device: Torch device.
        precision: ``"fp32"`` or ``"bf16"`` (autocast of the forward pass).
        kickstart: A teacher whose KL term joins the loss (:class:`agents.imitation.Kickstart`).
    """

    def __init__(
        self,
        policy: PolicyNet,
        cfg: LearnerConfig = LearnerConfig(),
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        off_policy: str | None = None,
        kickstart=None,
    ) -> None:
        self.policy, self.cfg, self.device = policy, cfg, torch.device(device)
        self.kickstart = kickstart
        self.off_policy = off_policy or ("none" if cfg.off_policy == "auto" else cfg.off_policy)
        self.precision = precision
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr, eps=1e-5)
        self.version = 0

    def schedule(self, progress: float) -> tuple[float, float]:
        """``(lr, ent_coef)`` at training ``progress`` in ``[0, 1]``."""
        return lr_and_entropy(self.cfg, progress)

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
        dev, c = self.device, self.cfg
        lr, ent_coef = self.schedule(progress)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        t = lambda x: as_tensor(x, dev)  # noqa: E731
        with autocast(dev, self.precision):
            out, logits = evaluate_rollout(self.policy, rollout, dev, logits=True)
        rew = t(rewards).float()
        values = out.value.detach()
        if self.off_policy == "vtrace":
            returns, adv = vtrace(
                t(rollout.log_prob), out.log_prob.detach(), rew, values, gamma=c.gamma
            )
        else:
            adv, returns = gae_advantages(rew, values, c.gamma, c.gae_lambda)
        loss = a2c_loss(
            out.log_prob,
            out.entropy,
            out.value,
            adv,
            returns,
            ent_coef,
            c.vf_coef,
            c.normalize_advantage,
        )
        total, extra = loss.total, {}
        if self.kickstart is not None:
            kl_coef = self.kickstart.weight(progress)
            kl = self.kickstart.loss(rollout, logits, dev)
            total = total + kl_coef * kl
            extra = {"losses/kl_teacher": kl.item(), "charts/kl_coef": kl_coef}
        if not torch.isfinite(total):
            raise NonFiniteLossError(
                f"policy loss is {total.item()} (policy {loss.policy.item()}, value "
                f"{loss.value.item()}, entropy {loss.entropy.item()}) at update {self.version}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        clip = c.max_grad_norm if c.max_grad_norm > 0 else float("inf")
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
            "losses/total": total.item(),
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
            **extra,
        }
