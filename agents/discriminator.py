"""The discriminator (critic): WGAN-GP (SPIRAL) or SN-GAN (SPIRAL++), and its learner.

* :class:`Critic` is the torch network. Conditional critics see an (target, image) pair as
  ``2C`` channels: real pairs are (target, target), fake pairs (target, rendering). With the
  SPIRAL++ *complement* option they see ``((1 - m) * target, m * image)`` for a half-mask ``m``
  (left, right, top or bottom half), so they cannot win by testing pixel equality.
* :class:`TorchDiscriminator` wraps a critic into the envs' numpy
  :class:`~spiral_envs.protocols.Discriminator` protocol, so it plugs into the
  ``DiscriminatorReward`` wrapper of any env too. Complement critics score the mean over the four
  half-masks (deterministic).
* :class:`DiscriminatorLearner` owns the critic, its Adam optimiser and the replay buffer of past
  renderings: ``step(rollout)`` (or ``train_on(fakes, targets)``) trains it, calling it scores
  canvases; :mod:`agents.ray_discriminator` runs it as its own Ray actor behind the same methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from agents.config import CriticConfig
from agents.networks import as_tensor, autocast, images_to_tensor
from agents.replay import ReplayBuffer
from spiral_envs.protocols import ImageDataset

if TYPE_CHECKING:
    from agents.actor import Rollout

__all__ = [
    "Critic",
    "DiscriminatorLearner",
    "DiscriminatorMetrics",
    "NonFiniteLossError",
    "TorchDiscriminator",
    "critic_inputs",
    "final_canvases",
    "gradient_penalty",
    "half_masks",
]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf: training stops, keeping the last good checkpoint."""


class Critic(nn.Module):
    """A small DCGAN-style critic without normalisation layers (WGAN-GP forbids batch norm).

    Args:
        in_channels: ``C`` (unconditional) or ``2C`` (conditional pair).
        size: Image height/width (square, divisible by 16).
        ch: Channels of the first conv, doubled at each of the 4 stride-2 convs up to ``max_mult``
            times ``ch``.
        spectral: Wrap every layer in spectral normalisation (SN-GAN).
    """

    def __init__(
        self,
        in_channels: int,
        size: int = 64,
        ch: int = 16,
        spectral: bool = False,
        max_mult: int = 4,
    ):
        super().__init__()
        sn = spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = []
        c_in, c = in_channels, ch
        s = size
        for _ in range(4):
            layers += [sn(nn.Conv2d(c_in, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c_in, c, s = c, min(2 * c, max_mult * ch), s // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.out = sn(nn.Linear(c_in * s * s, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float ``(N, C, H, W)`` -> ``(N,)`` scores (logits for SN-GAN)."""
        return self.out(self.features(x)).squeeze(-1)


def half_masks(h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The four half-masks (left, right, top, bottom): float ``(4, 1, H, W)``."""
    m = torch.zeros(4, 1, h, w, device=device)
    m[0, :, :, : w // 2] = 1
    m[1, :, :, w // 2 :] = 1
    m[2, :, : h // 2, :] = 1
    m[3, :, h // 2 :, :] = 1
    return m


def critic_inputs(
    images: torch.Tensor, targets: torch.Tensor | None, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Builds the critic's input from float ``(N, C, H, W)`` ink images.

    Unconditional: the image. Conditional: ``cat(target, image)``. Complement (``mask`` given,
    ``(N, 1, H, W)``): ``cat((1 - m) * target, m * image)``.
    """
    if targets is None:
        return images
    if mask is None:
        return torch.cat([targets, images], 1)
    return torch.cat([(1 - mask) * targets, mask * images], 1)


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor | None = None
) -> torch.Tensor:
    """WGAN-GP penalty ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` at ``x_hat = a real + (1-a) fake``.

    Args:
        critic: Maps ``(N, ...)`` inputs to ``(N,)`` scores.
        real: Critic inputs from the data.
        fake: Critic inputs from the generator, of the same shape as ``real``.
        alpha: ``(N,)`` mixing weights; uniform random when ``None``.
    """
    n = real.shape[0]
    if alpha is None:
        alpha = torch.rand(n, device=real.device)
    a = alpha.view(n, *([1] * (real.dim() - 1)))
    x = (a * real + (1 - a) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


class TorchDiscriminator:
    """A torch critic behind the numpy ``Discriminator`` protocol of ``spiral_envs``.

    ``__call__(canvases uint8 (B, H, W, C), targets uint8 (B, H, W, C) | None) -> float32 (B,)``.
    """

    def __init__(
        self,
        critic: Critic,
        conditional: bool,
        complement: bool = False,
        device: torch.device | str = "cpu",
        batch: int = 512,
        precision: str = "fp32",
    ) -> None:
        self.critic, self.conditional, self.complement = critic, conditional, complement
        self.device, self.batch = torch.device(device), batch
        self.precision = precision

    @torch.no_grad()
    def score_tensor(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """float ink ``(N, C, H, W)`` images (and targets) -> ``(N,)`` scores."""
        if not self.conditional:
            targets = None
        elif targets is None:
            raise ValueError("this discriminator is conditional: pass the targets")
        if targets is not None and self.complement:
            masks = half_masks(*images.shape[-2:], device=images.device)
            s = [
                self.critic(critic_inputs(images, targets, m.expand(len(images), -1, -1, -1)))
                for m in masks
            ]
            return torch.stack(s).mean(0)
        return self.critic(critic_inputs(images, targets))

    def __call__(self, canvases: np.ndarray, targets: np.ndarray | None = None) -> np.ndarray:
        canvases = np.asarray(canvases)
        if canvases.ndim != 4 or canvases.dtype != np.uint8:
            raise ValueError(
                f"canvases must be uint8 (B, H, W, C), got {canvases.dtype} {canvases.shape}"
            )
        was_training = self.critic.training
        self.critic.eval()
        out = []
        for i in range(0, len(canvases), self.batch):
            c = images_to_tensor(as_tensor(canvases[i : i + self.batch], self.device))
            t = None
            if targets is not None and self.conditional:
                t = images_to_tensor(
                    as_tensor(np.asarray(targets)[i : i + self.batch], self.device)
                )
            with autocast(self.device, self.precision):
                out.append(self.score_tensor(c, t).float().cpu())
        self.critic.train(was_training)
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(0, np.float32)


def final_canvases(rollout: Rollout, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The first ``n`` final canvases of a batch of episodes, and their targets (or ``None``):
    what a discriminator step trains on."""
    targets = None if rollout.targets is None else rollout.targets[:n]
    return rollout.canvases[-1][:n], targets


class DiscriminatorMetrics(NamedTuple):
    loss: float
    real_score: float
    fake_score: float
    gradient_penalty: float


class DiscriminatorLearner:
    """Trains the critic on real data against the agent's renderings, with a replay buffer.

    It owns its iteration: :meth:`step` takes a batch of episodes and runs ``disc_updates``
    updates on their final canvases (the first ``disc_batch``), mixed with replayed renderings,
    against real images: the targets for a conditional critic, else a sample of ``reals``.

    Args:
        image_shape: ``(H, W, C)``.
        conditional: Pairs (target, image) instead of single images.
        cfg: Critic kind, width, optimiser, updates per step, batch and replay settings.
        reals: Where an unconditional critic's real images come from (the env's dataset; any
            :class:`~spiral_envs.protocols.ImageDataset`). Unused when conditional.
        device: Torch device.
        seed: Seed of the replay and real-image sampling.
        precision: ``"bf16"`` autocasts the scoring (``__call__``); updates stay float32.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        conditional: bool,
        cfg: CriticConfig = CriticConfig(),
        reals: ImageDataset | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        precision: str = "fp32",
    ) -> None:
        if not conditional and reals is None:
            raise ValueError("an unconditional discriminator needs a dataset of real images")
        h, w, c = image_shape
        self.cfg, self.conditional, self.reals = cfg, conditional, reals
        self.complement = cfg.disc_complement and conditional
        self.device = torch.device(device)
        self.critic = Critic(
            c * (2 if conditional else 1),
            size=h,
            ch=cfg.disc_channels,
            spectral=cfg.disc == "sngan",
        ).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.critic.parameters(), lr=cfg.disc_lr, betas=(cfg.disc_beta1, cfg.disc_beta2)
        )
        size = cfg.replay_size
        self.replay = ReplayBuffer(size, image_shape, conditional) if size else None
        self.rng = np.random.default_rng(seed)
        self.discriminator = TorchDiscriminator(
            self.critic, conditional, self.complement, self.device, precision=precision
        )
        self.version = 0

    def step(self, rollout: Rollout) -> dict[str, float]:
        """``disc_updates`` updates on a batch of episodes; the last update's metrics."""
        return self.train_on(*final_canvases(rollout, self.cfg.disc_batch))

    def train_on(self, fakes: np.ndarray, targets: np.ndarray | None) -> dict[str, float]:
        """``disc_updates`` updates on final canvases ``fakes`` (and their ``targets``, for a
        conditional critic); the last update's metrics."""
        reals = None if self.conditional else self.reals.sample(self.rng, self.cfg.disc_batch)
        out: dict[str, float] = {}
        for _ in range(self.cfg.disc_updates):
            m = self.update(fakes, targets, reals)
            out = {
                "disc/loss": m.loss,
                "disc/real": m.real_score,
                "disc/fake": m.fake_score,
                "disc/gp": m.gradient_penalty,
            }
        return out

    def __call__(self, canvases: np.ndarray, targets: np.ndarray | None = None) -> np.ndarray:
        """The ``Discriminator`` protocol: numpy scores of canvases."""
        return self.discriminator(canvases, targets)

    def loss(
        self, real: torch.Tensor, fake: torch.Tensor, targets: torch.Tensor | None
    ) -> tuple[torch.Tensor, DiscriminatorMetrics]:
        """The critic loss on float ink images ``(N, C, H, W)``.

        WGAN-GP: ``D(fake) - D(real) + gp_weight * GP``. SN-GAN: the standard (non-saturating)
        GAN loss ``softplus(-D(real)) + softplus(D(fake))`` on logits.
        """
        mask = None
        if self.complement and targets is not None:
            m = half_masks(*real.shape[-2:], device=real.device)
            mask = m[torch.randint(0, 4, (len(real),), device=real.device)]
        xr = critic_inputs(real, targets, mask)
        xf = critic_inputs(fake, targets, mask)
        dr, df = self.critic(xr), self.critic(xf)
        gp = torch.zeros((), device=real.device)
        if self.cfg.disc == "wgan-gp":
            loss = df.mean() - dr.mean()
            if self.cfg.gp_weight:
                gp = gradient_penalty(self.critic, xr, xf)
                loss = loss + self.cfg.gp_weight * gp
        else:
            loss = F.softplus(-dr).mean() + F.softplus(df).mean()
        return loss, DiscriminatorMetrics(
            loss.item(), dr.mean().item(), df.mean().item(), gp.item()
        )

    def update(
        self, fakes: np.ndarray, targets: np.ndarray | None, reals: np.ndarray | None = None
    ) -> DiscriminatorMetrics:
        """One critic step; ``fakes`` also go into the replay buffer.

        Args:
            fakes: uint8 ``(B, H, W, C)`` final renderings of the latest episodes.
            targets: uint8 ``(B, H, W, C)`` their targets (conditional), else ``None``.
            reals: uint8 ``(M, H, W, C)`` real images (unconditional); conditional critics use
                the targets as reals.

        Raises:
            NonFiniteLossError: when the loss is NaN or inf (no step is taken).
        """
        n = len(fakes)
        cond_targets = targets if self.conditional else None
        batch_f, batch_t = fakes, cond_targets
        if self.replay is not None:
            k = min(int(round(n * self.cfg.replay_fraction)), len(self.replay))
            if k:
                old = self.replay.sample(self.rng, k)
                keep = self.rng.permutation(n)[: n - k]
                batch_f = np.concatenate([fakes[keep], old.canvases])
                if self.conditional:
                    batch_t = np.concatenate([cond_targets[keep], old.targets])
            self.replay.add(fakes, cond_targets)
        dev = self.device
        fake = images_to_tensor(as_tensor(batch_f, dev))
        if self.conditional:
            tgt = images_to_tensor(as_tensor(batch_t, dev))
            real = tgt
        else:
            if reals is None:
                raise ValueError("an unconditional discriminator needs real images")
            tgt = None
            real = images_to_tensor(as_tensor(reals, dev))
            m = min(len(real), len(fake))
            real, fake = real[:m], fake[:m]
        loss, metrics = self.loss(real, fake, tgt)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"discriminator loss is {float(loss)} (real {metrics.real_score}, fake "
                f"{metrics.fake_score}, gp {metrics.gradient_penalty})"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.version += 1
        return metrics

    def state_dict(self) -> dict:
        """Tensors and plain values only, so the checkpoint loads with ``weights_only=True``."""
        replay = None
        if self.replay is not None:
            replay = {
                k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                for k, v in self.replay.state_dict().items()
            }
        return {
            "critic": self.critic.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "replay": replay,
            "rng": self.rng.bit_generator.state,
            "version": self.version,
        }

    def close(self) -> None:
        """Nothing to release (the actor placement's learner stops its Ray actor here)."""

    def load_state_dict(self, d: dict) -> None:
        self.critic.load_state_dict(d["critic"])
        self.optimizer.load_state_dict(d["optimizer"])
        if self.replay is not None and d["replay"] is not None:
            self.replay.load_state_dict(d["replay"])
        self.rng.bit_generator.state = d["rng"]
        self.version = d["version"]
