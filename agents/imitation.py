"""Maximum likelihood of programs, and the teacher's pull during RL fine-tuning.

* :class:`ImitationLearner`: the update of the renderer's stages (``sleep``, ``wake``, ``search``):
  teacher forcing of whole episodes through the LSTM and the autoregressive head, the loss the
  negative log-likelihood of the given actions (sub-actions a move ignores count in no loss, as in
  the A2C loss), and the value head regressed on the batch's returns so a later RL stage starts
  with a critic. The same ``update(rollout, rewards, progress)`` as
  :class:`~agents.learner.PolicyLearner`, so the trainer's loop runs either.
* :class:`Kickstart`: ``KL(teacher || policy)`` on a batch's steps, its weight decayed over the
  run (kickstarting, Schmitt et al. 2018): the first RL updates do not undo the pretraining.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from agents.actor import Rollout
from agents.config import LearnerConfig, ProgramConfig
from agents.discriminator import NonFiniteLossError
from agents.learner import LearnerState, evaluate_rollout, lr_and_entropy
from agents.losses import gae_advantages
from agents.networks import PolicyNet, _gate_mask, as_tensor, autocast

__all__ = ["ImitationLearner", "Kickstart", "kl_to_teacher"]


class ImitationLearner(LearnerState):
    """Maximum likelihood of a batch's programs (see the module docstring).

    Args:
        policy: The network being trained.
        cfg: The learning-rate schedule, value weight, gradient clip and discount.
        device, precision: Where and how the forward pass runs.
        programs: ``updates_per_batch`` and ``replay_batches``.
        seed: Draws the replayed batches.
    """

    def __init__(
        self,
        policy: PolicyNet,
        cfg: LearnerConfig = LearnerConfig(),
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        programs: ProgramConfig = ProgramConfig(),
        seed: int = 0,
    ) -> None:
        self.policy, self.cfg, self.device = policy, cfg, torch.device(device)
        self.precision = precision
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr, eps=1e-5)
        self.version = 0
        self.updates_per_batch = programs.updates_per_batch
        self.replay: deque[tuple[Rollout, np.ndarray]] = deque(maxlen=programs.replay_batches)
        self.rng = np.random.default_rng([seed, 29])

    def update(self, rollout: Rollout, rewards: np.ndarray, progress: float = 0.0) -> dict:
        """``updates_per_batch`` gradient steps on ``-log pi(actions | observations)`` (mean over
        steps): the first on this batch, the others on batches drawn from the last
        ``replay_batches``. Returns the first step's metrics.

        Raises:
            NonFiniteLossError: NaN or inf in the loss (no step is taken).
        """
        if self.updates_per_batch > 1:  # kept only to be replayed
            self.replay.append((rollout, rewards))
        metrics = self._step(rollout, rewards, progress)
        for _ in range(self.updates_per_batch - 1):
            self._step(*self.replay[int(self.rng.integers(len(self.replay)))], progress)
        return metrics

    def _step(self, rollout: Rollout, rewards: np.ndarray, progress: float) -> dict:
        c = self.cfg
        lr, _ = lr_and_entropy(c, progress)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        with autocast(self.device, self.precision):
            out = evaluate_rollout(self.policy, rollout, self.device)
        rew = as_tensor(rewards, self.device).float()
        _, returns = gae_advantages(rew, torch.zeros_like(rew), c.gamma, 1.0)
        nll = -out.log_prob.mean()
        value = F.mse_loss(out.value, returns)
        loss = nll + c.vf_coef * value
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"imitation loss is {loss.item()} at update {self.version}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = c.max_grad_norm if c.max_grad_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), clip)
        self.optimizer.step()
        self.version += 1
        flag = rollout.actions[..., self.policy.spec.index(self.policy.spec.gate)]
        return {
            "losses/total": loss.item(),
            "losses/nll": nll.item(),
            "losses/value": value.item(),
            "losses/entropy": -float(out.entropy.detach().mean()),
            "losses/grad_norm": float(grad_norm),
            "charts/lr": lr,
            "charts/return": float(rewards.sum(0).mean()),
            "charts/paint_fraction": float(flag.mean()),
        }


def kl_to_teacher(
    policy: PolicyNet,
    teacher_logits: list[torch.Tensor],
    student_logits: list[torch.Tensor],
    actions: torch.Tensor,
) -> torch.Tensor:
    """Mean over steps of ``KL(teacher || student)``, summed over the sub-actions that count
    (each conditional distribution at the batch's own prefix; ``actions`` int64 ``(N, K)``)."""
    mask = _gate_mask(policy.spec, actions)
    kls = []
    for lt, ls in zip(teacher_logits, student_logits, strict=True):
        pt = F.log_softmax(lt.float(), -1)
        kls.append((pt.exp() * (pt - F.log_softmax(ls.float(), -1))).sum(-1))
    return (torch.stack(kls, -1) * mask).sum(-1).mean()


class Kickstart:
    """The pull towards a frozen teacher policy during RL fine-tuning.

    Args:
        teacher: The pretrained policy (kept frozen, in eval mode).
        coef, coef_final: The KL weight at the start and the end of the run (linear between).
    """

    def __init__(self, teacher: PolicyNet, coef: float, coef_final: float = 0.0) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.coef, self.coef_final = coef, coef_final

    def weight(self, progress: float) -> float:
        p = min(max(progress, 0.0), 1.0)
        return self.coef + p * (self.coef_final - self.coef)

    def loss(
        self, rollout: Rollout, student_logits: list[torch.Tensor], device: torch.device
    ) -> torch.Tensor:
        """``KL(teacher || student)`` on the rollout's steps (no gradient to the teacher)."""
        with torch.no_grad():
            _, teacher_logits = evaluate_rollout(self.teacher, rollout, device, logits=True)
        actions = as_tensor(rollout.actions, device).reshape(-1, rollout.actions.shape[-1])
        return kl_to_teacher(self.teacher, teacher_logits, student_logits, actions)
