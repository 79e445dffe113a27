"""The SPIRAL policy network, built from an environment's :class:`~spiral_envs.ActionSpec`.

Architecture (after SPIRAL's release, ``reference/spiral-notes.md`` section 3), sized by
:class:`NetConfig`::

    canvas (+ target) + x/y planes -> conv 4x4/2 -> (+ prev-action emb + noise emb + step emb)
        -> conv 4x4/2 -> conv 4x4/2 -> residual blocks -> linear -> LSTM -> z
    z -> value head (linear 1)
    z -> autoregressive head: for each sub-action in the env's order
            logits = head_k(z)           (spatial ones: a small deconvolution to a grid logit map)
            a_k ~ logits                 (or teacher-forced with given actions)
            z = relu(z + MLP([z, embed_k(a_k)]))

Log-probabilities and entropies count only the sub-actions that matter: the ``gated`` ones
(control, size, pressure, colour) are left out where the gate (``flag``) is 0 (a move).

Options of :class:`~agents.config.NetConfig` beyond the paper's network:

* ``stem_stride`` 2, 4 or 8 replaces the full-resolution 5x5 stem by a patchify conv (kernel =
  stride), then as many 4x4 stride-2 convs as reach ``H/8 x W/8``: much cheaper on CPU.
* ``pen_plane`` adds an input plane marking the pen's position (the previous action's ``end``
  cell; the top-left corner at the first step), so the encoder sees where the next stroke starts.
* ``spatial_skip`` adds the encoder's ``H/8 x W/8`` feature map (1x1 conv) to the spatial heads'
  deconvolution at the stage of the same resolution, a U-Net-like skip: "where to act" reads the
  canvas and target locally (the paper's heads see only the LSTM output).
* ``glimpse`` adds, after each spatial sub-action, the encoder's features at the chosen cell to the
  head's running vector, so the sub-actions after it (a colour, a size) can read what is there.
* ``pointer`` adds to each spatial head's logits a pointer score per grid cell: a small fully
  convolutional map at the grid's own resolution (the canvas and target ink averaged over each
  cell, the pen's cell, x/y planes; two 3x3 convs) plus the planes ``x, y, x^2 + y^2``, dotted with
  a query from the head's running vector. "Where the target has ink the canvas lacks" is then a
  local computation at full grid resolution, and the quadratic planes let a query peak anywhere
  (a control point near the chosen end), rather than something the 8x coarser encoder must learn
  to spell out through the LSTM (``docs/renderer.md`` measures it).
* ``spatial_first`` samples the spatial sub-actions right after the gate and the others after
  them (the actions and logits keep the env's order). The paint envs' order is already so; a
  scene's object is then placed at a cell first, and its type, size and colour, read through the
  glimpses, describe what is there.
* ``target_glimpse`` (conditional agents) adds the target's mean colour in the chosen cell and in
  the 5x5 cells around it, at full precision: the encoder's map is 8x coarser than the grid, and
  a stroke's colour is best read where it lands.
* ``target_patch`` (conditional agents) adds what a small CNN (two 3x3 stride-2 convs) reads in the
  target's pixels in a ``target_patch``-pixel window centred on the chosen cell: the mean colours
  say nothing of shape, and a scene object's type (a sphere, a cylinder seen from above) is a few
  pixels the 8x coarser encoder blurs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.config import NetConfig
from spiral_envs.actions import ActionSpec

__all__ = [
    "HeadInputs",
    "NetConfig",
    "as_tensor",
    "autocast",
    "PolicyNet",
    "PolicyOutput",
    "images_to_tensor",
    "masked_log_prob_entropy",
]


class PolicyOutput(NamedTuple):
    """What one policy call returns (shapes with a leading batch dim ``N``, ``N = T * B`` when
    evaluating sequences)."""

    actions: torch.Tensor  # int64 (N, K)
    log_prob: torch.Tensor  # float (N,), masked sum over sub-actions
    entropy: torch.Tensor  # float (N,), masked sum over sub-actions
    value: torch.Tensor  # float (N,)


def autocast(device: torch.device | str, precision: str = "fp32"):
    """A context for mixed precision: ``"bf16"`` runs convs and matmuls in bfloat16 (CPUs with
    AVX-512 BF16/AMX, recent GPUs); ``"fp32"`` is a no-op. Softmaxes, log-probabilities, the
    value head and the losses stay float32."""
    device = torch.device(device)
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision = {precision!r}: accepted 'fp32' or 'bf16'")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def as_tensor(x: np.ndarray | None, device: torch.device | str) -> torch.Tensor | None:
    """A numpy array on ``device`` (``None`` stays ``None``), without a copy on CPU unless it
    is read-only (arrays from Ray's object store are: torch wants writable memory)."""
    if x is None:
        return None
    x = np.ascontiguousarray(x)
    return torch.from_numpy(x if x.flags.writeable else x.copy()).to(device)


def images_to_tensor(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(..., H, W, C)`` white-paper images -> float ``(..., C, H, W)`` ink in ``[0, 1]``."""
    x = images.movedim(-1, -3).float()
    return (255.0 - x) * (1.0 / 255.0)


def cell_means(images: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` -> float ``(N, C, rows, cols)``: each grid cell's mean pixel value
    in ``[0, 1]`` (a channels-last view).

    When the grid divides the image, the cells are summed by adding strided slices, one pass
    per pixel row and column of a cell: torch's pooling and its reductions over such small
    strided dims ran about 10x slower on CPU.
    """
    n, h, w, c = images.shape
    rows, cols = grid
    if h % rows or w % cols:
        return F.adaptive_avg_pool2d(images.movedim(-1, -3).float(), grid) * (1.0 / 255.0)
    kh, kw = h // rows, w // cols
    x = images.float().view(n, rows, kh, w, c)
    s = x[:, :, 0]
    for i in range(1, kh):
        s = s + x[:, :, i]
    s = s.view(n, rows, cols, kw, c)
    t = s[:, :, :, 0]
    for j in range(1, kw):
        t = t + s[:, :, :, j]
    return (t * (1.0 / (kh * kw * 255.0))).permute(0, 3, 1, 2)


def _gate_mask(spec: ActionSpec, actions: torch.Tensor) -> torch.Tensor:
    """Torch twin of :meth:`ActionSpec.active_mask`: float ``(..., K)``, 1 where it counts."""
    gated = torch.tensor([c.gated for c in spec.components], device=actions.device)
    on = (actions[..., spec.index(spec.gate)] == 1).unsqueeze(-1)
    return torch.where(gated, on, torch.ones_like(on)).float()


def masked_log_prob_entropy(
    spec: ActionSpec, logits: list[torch.Tensor], actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-probability and entropy of autoregressive sub-actions, ignored ones left out.

    Args:
        spec: The action description (gate and gated components).
        logits: One ``(N, size_k)`` tensor per component, each already conditioned on the
            sub-actions before it.
        actions: int64 ``(N, K)``.

    Returns:
        ``(log_prob (N,), entropy (N,), mask (N, K))``: sums over the components that matter
        (mask 1). The entropy is that of each conditional distribution at the sampled prefix,
        the usual per-sample estimate of the joint entropy.
    """
    mask = _gate_mask(spec, actions)
    lps, ents = [], []
    for k, lg in enumerate(logits):
        logp = F.log_softmax(lg, dim=-1)
        lps.append(logp.gather(-1, actions[:, k : k + 1]).squeeze(-1))
        ents.append(-(logp.exp() * logp).sum(-1))
    lp = torch.stack(lps, -1)
    ent = torch.stack(ents, -1)
    return (lp * mask).sum(-1), (ent * mask).sum(-1), mask


def sample_categorical(logits: torch.Tensor) -> torch.Tensor:
    """One draw per row of ``(N, n)`` logits by inverse CDF (cheaper than ``multinomial``'s
    exponential race for 1024-way spatial distributions)."""
    cdf = F.softmax(logits, -1).cumsum(-1)
    u = torch.rand(cdf.shape[0], 1, device=cdf.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=logits.shape[-1] - 1)


class _PointerScores(torch.autograd.Function):
    """``bmm(features (N, cells, F), query (N, F))``: each cell's score, with a backward that
    forms the features' gradient as one broadcast product (autograd's own, a batch of
    ``cells x 1 @ 1 x F`` matrix products, ran 3x slower on CPU)."""

    @staticmethod
    def forward(ctx, feats: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(feats, query)
        return torch.bmm(feats, query.unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        feats, query = ctx.saved_tensors
        need_feats, need_query = ctx.needs_input_grad
        g_feats = grad.unsqueeze(-1) * query.unsqueeze(1) if need_feats else None
        g_query = torch.bmm(grad.unsqueeze(1), feats).squeeze(1) if need_query else None
        return g_feats, g_query


class HeadInputs(NamedTuple):
    """What the autoregressive head reads at one step (see :meth:`PolicyNet.head`)."""

    z: torch.Tensor  # (N, lstm)
    fmap: torch.Tensor  # (N, ch, H/8, W/8)
    pmap: torch.Tensor | None  # (N, cells, pointer_channels), with cfg.pointer
    target: torch.Tensor | None  # uint8 (N, H, W, C), conditional agents


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.relu(self.c1(F.relu(x)), inplace=True))


class SpatialHead(nn.Module):
    """z -> a ``rows x cols`` logit map through a small deconvolution (two 2x upsamplings).

    Each upsampling is a sub-pixel convolution (a conv to ``4 x`` channels, then pixel shuffle),
    the fast equivalent of a stride-2 transposed convolution on CPU: 3x3 for the first, 1x1 for
    the last (to the single logit channel).

    The parameters are those of that description (``fc`` to a ``ch x rows/4 x cols/4`` map,
    ``skip`` and ``up2`` 1x1 convs, ``up1`` 3x3); the computation runs channels-last, where the
    1x1 convs are matrix products over the channels: ``fc``'s rows are permuted to emit the map
    channels-last, the skip reads the encoder's channels-last map without a copy, and ``up2`` with
    both shuffles is one product by a block-diagonal ``(4 ch, 16)`` matrix followed by one
    permutation into the logit map's row-major order. The same numbers as the plain layers (up
    to float rounding), about 1.4x faster forward and backward on CPU (the 8-channel convs and
    the shuffles were memory-bound copies).
    """

    def __init__(
        self, zdim: int, grid: tuple[int, int], ch: int = 8, skip_channels: int = 0
    ) -> None:
        super().__init__()
        rows, cols = grid
        self.grid = grid
        self.deconv = rows % 4 == 0 and cols % 4 == 0
        self.skip = None
        if self.deconv:
            self.r0, self.c0, self.ch = rows // 4, cols // 4, ch
            self.fc = nn.Linear(zdim, ch * self.r0 * self.c0)
            if skip_channels:  # the encoder's feature map joins the deconvolution (U-Net-like)
                self.skip = nn.Conv2d(skip_channels, ch, 1)
            self.up1 = nn.Conv2d(ch, 4 * ch, 3, padding=1)
            self.up2 = nn.Conv2d(ch, 4, 1)  # 1x1, applied as a matmul (see forward)
        else:  # odd grids: a plain linear layer
            self.fc = nn.Linear(zdim, rows * cols)

    def forward(self, z: torch.Tensor, fmap: torch.Tensor | None = None) -> torch.Tensor:
        if not self.deconv:
            return self.fc(z)
        n, ch, r0, c0 = z.shape[0], self.ch, self.r0, self.c0
        # fc emits (ch, r0, c0); its rows permuted emit (r0, c0, ch): channels-last
        w = self.fc.weight.view(ch, r0, c0, -1).permute(1, 2, 0, 3).reshape(r0 * c0 * ch, -1)
        b = self.fc.bias.view(ch, r0, c0).permute(1, 2, 0).reshape(-1)
        x = F.linear(z, w, b).view(n, r0, c0, ch)
        skip = None if self.skip is None or fmap is None else fmap
        # the encoder's map joins at the stage of its own resolution (the logit map's quarter or
        # half), so no feature position is lost; any other size is average-pooled to the quarter
        at_half = skip is not None and skip.shape[-2:] == (2 * r0, 2 * c0)
        if skip is not None:
            if not at_half and skip.shape[-2:] != (r0, c0):
                skip = F.adaptive_avg_pool2d(skip, (r0, c0))
            # the 1x1 conv as a product over the channels of the (N, h, w, C) view
            skip = F.linear(skip.permute(0, 2, 3, 1), self.skip.weight.flatten(1), self.skip.bias)
            if not at_half:
                x = x + skip
        # in place: x is this call's own (linear and conv backwards keep their inputs only)
        x = F.relu(x, inplace=True).permute(0, 3, 1, 2)  # (N, ch, r0, c0), channels-last
        # (N, r0, c0, 4 ch): channel c * 4 + 2 * i + j -> half-resolution pixel (2h + i, 2w + j)
        x = F.conv2d(x, self.up1.weight, self.up1.bias, padding=1).permute(0, 2, 3, 1)
        if at_half:  # pixel-unshuffle the (N, 2 r0, 2 c0, ch) skip to the same channel order
            skip = skip.reshape(n, r0, 2, c0, 2, ch).permute(0, 1, 3, 5, 2, 4)
            x = x + skip.reshape(n, r0, c0, 4 * ch)
        x = F.relu(x, inplace=True)
        # up2 on each of the 4 sub-pixels (i, j): a block-diagonal (4 ch, 16) matrix whose
        # output (i, k, j, l) is logit pixel (4h + 2i + k, 4w + 2j + l); in that order the last
        # permutation moves runs of 4 logits (j, l), 4x faster than single ones
        w2 = self.up2.weight.view(2, 2, ch)  # (k, l, c)
        eye = torch.eye(2, dtype=w2.dtype, device=w2.device)
        big = torch.einsum("klc,ab,de->cadbkel", w2, eye, eye).reshape(4 * ch, 16)
        bias = self.up2.bias.view(1, 2, 1, 2).expand(2, 2, 2, 2).reshape(16)  # by (k, l)
        y = torch.addmm(bias, x.reshape(-1, 4 * ch), big)
        y = y.view(n, r0, c0, 4, 4).permute(0, 1, 3, 2, 4)  # n h (i k) w (j l)
        return y.reshape(n, 16 * r0 * c0)


class PolicyNet(nn.Module):
    """SPIRAL's recurrent policy with an autoregressive action head.

    Args:
        spec: The env's action description; the head has one branch per component.
        image_shape: ``(H, W, C)`` of the canvas.
        conditional: Whether the observation carries a ``target`` (fed as extra channels).
        cfg: Layer sizes.
        max_step: Episode length, to scale the ``step`` observation into ``[0, 1]``.
    """

    def __init__(
        self,
        spec: ActionSpec,
        image_shape: tuple[int, int, int],
        conditional: bool,
        cfg: NetConfig = NetConfig(),
        max_step: int = 20,
    ) -> None:
        super().__init__()
        self.spec, self.cfg, self.conditional = spec, cfg, conditional
        # Sampling's logits are divided by it (an evaluation setting: training samples at 1).
        self.temperature = 1.0
        spatial = [k for k, c in enumerate(spec.components) if c.spatial and k]
        rest = [k for k in range(1, len(spec)) if k not in spatial]
        self.order = [0, *spatial, *rest] if cfg.spatial_first else list(range(len(spec)))
        self.image_shape = tuple(image_shape)
        self.max_step = max(1, int(max_step))
        h, w, c = image_shape
        if h % 8 or w % 8:
            raise ValueError(f"image_shape {image_shape}: height and width must divide by 8")
        if cfg.target_glimpse and not conditional:
            raise ValueError(
                "target_glimpse reads the target, and this env has none: use a conditional id "
                "(SpiralPaint-MNIST-Cond-v0, ...) or leave target_glimpse off"
            )
        if cfg.target_patch and (not conditional or cfg.target_patch % 4):
            raise ValueError(
                f"target_patch = {cfg.target_patch}: accepted 0, or a multiple of 4 (pixels) "
                "with a conditional env id"
            )
        s = cfg.stem_stride
        if s not in (1, 2, 4, 8):
            raise ValueError(f"stem_stride = {s}: accepted 1, 2, 4 or 8")
        n_down = {1: 3, 2: 2, 4: 1, 8: 0}[s]
        ch = cfg.channels
        in_ch = c * (2 if conditional else 1)
        ys = torch.linspace(-1, 1, h).view(1, 1, h, 1).expand(1, 1, h, w)
        xs = torch.linspace(-1, 1, w).view(1, 1, 1, w).expand(1, 1, h, w)
        self.register_buffer("coords", torch.cat([xs, ys], 1).contiguous(), persistent=False)
        # the stem is linear: its response to the constant x/y planes is computed once per call
        # on one sample and broadcast, rather than convolving N copies of the planes
        if s == 1:
            self.stem = nn.Conv2d(in_ch, ch, 5, padding=2)
            self.stem_xy = nn.Conv2d(2, ch, 5, padding=2, bias=False)
            self.stem_pen = nn.Conv2d(1, ch, 5, padding=2, bias=False)
        else:
            self.stem = nn.Conv2d(in_ch, ch, s, stride=s)
            self.stem_xy = nn.Conv2d(2, ch, s, stride=s, bias=False)
            self.stem_pen = nn.Conv2d(1, ch, s, stride=s, bias=False)
        self.pen_index = None
        if cfg.pen_plane and "end" in spec and spec["end"].spatial:
            self.pen_index = spec.index("end")
            self.pen_grid = spec["end"].grid
        else:
            self.stem_pen = None
        # conditioning added to every pixel of the stem output
        self.prev_embed = nn.ModuleList(nn.Embedding(comp.size, ch) for comp in spec.components)
        use_noise = cfg.noise_dim > 0 and not conditional
        self.noise_fc = nn.Linear(cfg.noise_dim, ch) if use_noise else None
        self.step_fc = nn.Linear(1, ch)
        downs: list[nn.Module] = []
        for _ in range(n_down):
            downs += [nn.ReLU(), nn.Conv2d(ch, ch, 4, stride=2, padding=1)]
        self.down = nn.Sequential(*downs, *[ResBlock(ch) for _ in range(cfg.res_blocks)], nn.ReLU())
        self.flat = nn.Sequential(
            nn.Flatten(), nn.Linear(ch * (h // 8) * (w // 8), cfg.hidden), nn.ReLU()
        )
        self.core = nn.LSTM(cfg.hidden, cfg.lstm)
        self.value_head = nn.Linear(cfg.lstm, 1)
        heads, embeds, mixers = [], [], []
        skip = ch if cfg.spatial_skip else 0
        for comp in spec.components:
            if comp.spatial:
                heads.append(SpatialHead(cfg.lstm, comp.grid, skip_channels=skip))
            else:
                heads.append(nn.Linear(cfg.lstm, comp.size))
            embeds.append(nn.Embedding(comp.size, cfg.embed))
            mixers.append(
                nn.Sequential(
                    nn.Linear(cfg.lstm + cfg.embed, cfg.lstm),
                    nn.ReLU(),
                    nn.Linear(cfg.lstm, cfg.lstm),
                )
            )
        self.heads = nn.ModuleList(heads)
        self.pointer_net, self.pointer_query = self._pointer_layers(spec, cfg, in_ch)
        self.action_embed = nn.ModuleList(embeds)
        self.mixers = nn.ModuleList(mixers)
        # glimpses: after a spatial sub-action, the encoder's features at the chosen cell join
        # the running vector (what is there -- a colour, a stroke -- for the sub-actions after)
        self.glimpses = nn.ModuleDict(
            {
                str(k): nn.Linear(ch, cfg.lstm)
                for k, comp in enumerate(spec.components[:-1])
                if cfg.glimpse and comp.spatial and isinstance(heads[k], SpatialHead)
            }
        )
        self.target_glimpses = nn.ModuleDict(
            {
                str(k): nn.Linear(2 * c, cfg.lstm)
                for k, comp in enumerate(spec.components[:-1])
                if cfg.target_glimpse and conditional and comp.spatial
            }
        )
        self.target_patches = nn.ModuleDict(
            {
                str(k): self._patch_net(c, cfg.target_patch, cfg.lstm)
                for k, comp in enumerate(spec.components[:-1])
                if cfg.target_patch and comp.spatial
            }
        )

    @staticmethod
    def _patch_net(c: int, side: int, out: int) -> nn.Module:
        """A ``side``-pixel window of ``c`` channels -> ``(N, out)``."""
        return nn.Sequential(
            nn.Conv2d(c, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * (side // 4) ** 2, out),
        )

    def _pointer_layers(
        self, spec: ActionSpec, cfg: NetConfig, in_ch: int
    ) -> tuple[nn.Module | None, nn.ModuleDict]:
        """The pointer map's convs and one query per spatial component (``cfg.pointer``)."""
        spatial = [k for k, c in enumerate(spec.components) if c.spatial]
        if not cfg.pointer or not spatial:
            return None, nn.ModuleDict()
        grids = {spec.components[k].grid for k in spatial}
        if len(grids) != 1:
            raise ValueError(f"pointer needs one grid for all spatial sub-actions, got {grids}")
        self.pointer_grid = grids.pop()
        pc = cfg.pointer_channels
        extra = 1 if self.pen_index is not None else 0
        net = nn.Sequential(  # in-place ReLUs: the 32x32 maps are large, memory is slow
            nn.Conv2d(in_ch + extra + 2, pc, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(pc, pc, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        rows, cols = self.pointer_grid
        ys = torch.linspace(-1, 1, rows).view(rows, 1).expand(rows, cols)
        xs = torch.linspace(-1, 1, cols).view(1, cols).expand(rows, cols)
        planes = torch.stack([xs, ys, xs * xs + ys * ys])[None]  # (1, 3, rows, cols)
        self.register_buffer("pointer_planes", planes.contiguous(), persistent=False)
        queries = nn.ModuleDict({str(k): nn.Linear(cfg.lstm, pc + 3) for k in spatial})
        return net, queries

    # --- pieces ---------------------------------------------------------------------------
    def pointer_map(
        self,
        canvas: torch.Tensor,
        target: torch.Tensor | None,
        prev_action: torch.Tensor,
        prev_valid: torch.Tensor,
    ) -> torch.Tensor | None:
        """``(N, rows * cols, pointer_channels)``: the pointer features of each grid cell (``None``
        without ``cfg.pointer``); the head adds the planes ``x, y, x^2 + y^2`` itself.

        ``canvas`` is uint8 ``(N, H, W, C)``; ``target`` the same, or ``(B, H, W, C)`` when the
        ``N = T * B`` canvases are ``T`` time-major steps of ``B`` episodes (each episode's
        target is then averaged over the cells once).
        """
        if self.pointer_net is None:
            return None
        x = self._cell_ink(canvas)
        n = x.shape[0]
        parts = [x]
        if target is not None and self.conditional:
            t = self._cell_ink(target)
            parts.append(t if len(t) == n else t.repeat(n // len(t), 1, 1, 1))
        parts.append(self.pointer_planes[:, :2].expand(n, -1, -1, -1))
        if self.pen_index is not None:
            parts.append(self._pen_grid_plane(prev_action, prev_valid, x.dtype))
        # channels-last: oneDNN's 3x3 convs over a 32x32 grid with few channels run 2x (update)
        # to 5x (acting) faster on it than on NCHW (docs/speed.md)
        x = torch.cat(parts, 1).contiguous(memory_format=torch.channels_last)
        # float32 also under bf16 autocast: the scores place a query's peak
        return self.pointer_net(x).float().permute(0, 2, 3, 1).flatten(1, 2)  # no copy

    def _cell_ink(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, H, W, C)`` -> float ``(N, C, rows, cols)``: each grid cell's mean ink."""
        return 1.0 - cell_means(images, self.pointer_grid)

    def _pointer_scores(self, k: int, z: torch.Tensor, pmap: torch.Tensor) -> torch.Tensor:
        """``(N, cells)``: spatial component ``k``'s query from ``z`` dotted with each cell's
        pointer features and its ``x, y, x^2 + y^2`` planes."""
        query = self.pointer_query[str(k)](z)
        pc = pmap.shape[-1]
        planes = self.pointer_planes.flatten(2)[0]  # (3, cells)
        return _PointerScores.apply(pmap, query[:, :pc]) + query[:, pc:] @ planes

    def initial_state(self, batch: int, device: torch.device | str = "cpu"):
        z = torch.zeros(1, batch, self.cfg.lstm, device=device)
        return (z, z.clone())

    def encode(
        self,
        canvas: torch.Tensor,
        target: torch.Tensor | None,
        step: torch.Tensor,
        prev_action: torch.Tensor,
        prev_valid: torch.Tensor,
        noise: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Observation batch -> ``(N, hidden)`` features and the ``(N, ch, H/8, W/8)`` map.

        Args:
            canvas: uint8 ``(N, H, W, C)``. target: same or ``None``.
            step: ``(N,)`` step index. prev_action: int64 ``(N, K)``.
            prev_valid: float ``(N,)``, 0 at the first step (no previous action).
            noise: ``(N, noise_dim)`` or ``None``.
        """
        if self.conditional:
            if target is None:
                raise ValueError("a conditional policy needs the target observation")
            canvas = torch.cat([canvas, target], -1)
        # ink = (255 - pixel) / 255: the 1/255 is folded into the stem's weights (cheaper)
        ink = (255 - canvas).movedim(-1, -3).float()
        st = self.stem
        x = F.conv2d(ink, st.weight * (1.0 / 255.0), st.bias, st.stride, st.padding)
        x = x + self.stem_xy(self.coords)
        if self.pen_index is not None:
            x = x + self._pen_features(prev_action, prev_valid, canvas.shape[-3:-1])
        mask = _gate_mask(self.spec, prev_action) * prev_valid.unsqueeze(-1)
        cond = sum(
            emb(prev_action[:, k]) * mask[:, k : k + 1] for k, emb in enumerate(self.prev_embed)
        )
        cond = cond + self.step_fc(step.float().unsqueeze(-1) / self.max_step)
        if self.noise_fc is not None and noise is not None:
            cond = cond + self.noise_fc(noise)
        x = x + cond[:, :, None, None]
        fmap = self.down(x)
        return self.flat(fmap), fmap

    def head(
        self,
        z: torch.Tensor,
        actions: torch.Tensor | None = None,
        greedy: bool = False,
        fmap: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        pmap: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Autoregressive head: samples (or teacher-forces ``actions``) one component at a time.

        ``fmap`` is the encoder's ``(N, ch, H/8, W/8)`` map, used by the spatial heads when
        ``spatial_skip`` is on, and by the glimpses. ``target`` is the uint8 ``(N, H, W, C)``
        target, read by the target glimpses. ``pmap`` is :meth:`pointer_map`'s output.

        Runs in float32 also under bf16 autocast (as the value head): bf16 logits put about
        0.01 nats of error on each log-probability, the head is a small share of the cost.

        Returns:
            ``(actions int64 (N, K), logits list)``.
        """
        with torch.autocast(device_type=z.device.type, enabled=False):
            fmap = None if fmap is None else fmap.float()
            timg = target if self.target_glimpses or self.target_patches else None
            pmap = None if pmap is None else pmap.float()
            return self._head(z.float(), actions, greedy, fmap, timg, pmap)

    def _head(
        self,
        z: torch.Tensor,
        actions: torch.Tensor | None,
        greedy: bool,
        fmap: torch.Tensor | None,
        timg: torch.Tensor | None = None,
        pmap: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out: list = [None] * len(self.heads)
        logits: list = [None] * len(self.heads)
        last = self.order[-1]
        for k in self.order:
            head, emb, mix = self.heads[k], self.action_embed[k], self.mixers[k]
            lg = head(z, fmap) if isinstance(head, SpatialHead) else head(z)
            if pmap is not None and str(k) in self.pointer_query:
                lg = lg + self._pointer_scores(k, z, pmap)
            logits[k] = lg
            if actions is None:
                if greedy:
                    a = lg.argmax(-1)
                else:
                    a = sample_categorical(lg if self.temperature == 1.0 else lg / self.temperature)
            else:
                a = actions[:, k]
            out[k] = a
            if k != last:
                upd = mix(torch.cat([z, emb(a)], -1))
                if str(k) in self.glimpses and fmap is not None:
                    upd = upd + self.glimpses[str(k)](self._glimpse(fmap, a, head.grid))
                if str(k) in self.target_glimpses and timg is not None:
                    grid = self.spec.components[k].grid
                    look = self._target_glimpse(timg, a, grid)
                    upd = upd + self.target_glimpses[str(k)](look)
                if str(k) in self.target_patches and timg is not None:
                    look = self._patch(timg, a, self.spec.components[k].grid, self.cfg.target_patch)
                    upd = upd + self.target_patches[str(k)](look)
                z = F.relu(z + upd)
        return torch.stack(out, -1), logits

    @staticmethod
    def _glimpse(fmap: torch.Tensor, cell: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """The encoder's ``(N, ch)`` features under grid cell ``cell`` of a ``grid`` map."""
        rows, cols = grid
        fh, fw = fmap.shape[-2:]
        idx = (cell // cols) * fh // rows * fw + (cell % cols) * fw // cols
        flat = fmap.flatten(2)
        return flat.gather(2, idx.view(-1, 1, 1).expand(-1, flat.shape[1], 1)).squeeze(-1)

    @classmethod
    def _target_glimpse(
        cls, image: torch.Tensor, cell: torch.Tensor, grid: tuple[int, int]
    ) -> torch.Tensor:
        """``(N, 2C)``: the mean of uint8 ``(N, H, W, C)`` ``image`` (in ``[0, 1]``) over grid
        cell ``cell`` and over the 5x5 cells around it (those inside the image)."""
        cells = cell_means(image, grid)
        around = F.avg_pool2d(cells, 5, stride=1, padding=2, count_include_pad=False)
        return cls._glimpse(torch.cat([cells, around], 1), cell, grid)

    @staticmethod
    def _patch(
        image: torch.Tensor, cell: torch.Tensor, grid: tuple[int, int], side: int
    ) -> torch.Tensor:
        """float ``(N, C, side, side)`` in ``[0, 1]``: the window of uint8 ``(N, H, W, C)``
        ``image`` centred on grid cell ``cell`` (black beyond the image's edges)."""
        rows, cols = grid
        n, h, w, _ = image.shape
        half = side // 2
        # the cell's centre in the padded image, less half a window: the window's corner
        top = ((cell // cols) * 2 + 1) * h // (2 * rows)
        left = ((cell % cols) * 2 + 1) * w // (2 * cols)
        padded = F.pad(image, (0, 0, half, half, half, half))
        offs = torch.arange(side, device=image.device)
        r = (top[:, None] + offs)[:, :, None]
        c = (left[:, None] + offs)[:, None, :]
        patch = padded[torch.arange(n, device=image.device)[:, None, None], r, c]
        return patch.permute(0, 3, 1, 2).float() / 255.0

    def value(self, z: torch.Tensor) -> torch.Tensor:
        """The value head, always in float32 (also under bf16 autocast): ``(N, L) -> (N,)``."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self.value_head(z.float()).squeeze(-1)

    def _pen_features(
        self, prev_action: torch.Tensor, prev_valid: torch.Tensor, hw: tuple[int, int]
    ) -> torch.Tensor:
        """``stem_pen`` applied to the pen plane. When the stem's stride is a whole number of grid
        cells, the same result is computed on the grid-resolution plane with the kernel summed
        over each cell's pixels (exact, and ~16x fewer pixels)."""
        rows, cols = self.pen_grid
        h, w = hw
        conv = self.stem_pen
        ch, cw = h // rows, w // cols
        s = conv.stride[0]
        if (
            conv.kernel_size[0] == s
            and h == rows * ch
            and w == cols * cw
            and s % ch == 0
            and s % cw == 0
            and ch == cw
        ):
            k = s // ch
            weight = conv.weight.view(conv.out_channels, 1, k, ch, k, cw).sum((3, 5))
            plane = self._pen_grid_plane(prev_action, prev_valid, weight.dtype)
            return F.conv2d(plane, weight, stride=k)
        return conv(self._pen_plane(prev_action, prev_valid, hw))

    def _pen_plane(
        self, prev_action: torch.Tensor, prev_valid: torch.Tensor, hw: tuple[int, int]
    ) -> torch.Tensor:
        """``(N, 1, H, W)``: 1 on the grid cell of the pen (previous ``end``; cell 0 at first)."""
        plane = self._pen_grid_plane(prev_action, prev_valid, torch.float32)
        return F.interpolate(plane, size=tuple(hw), mode="nearest")

    def _pen_grid_plane(
        self, prev_action: torch.Tensor, prev_valid: torch.Tensor, dtype: torch.dtype
    ) -> torch.Tensor:
        """``(N, 1, rows, cols)``: one-hot of the pen's grid cell."""
        rows, cols = self.pen_grid
        idx = prev_action[:, self.pen_index] * (prev_valid > 0).long()
        plane = torch.zeros(len(idx), rows * cols, device=idx.device, dtype=dtype)
        plane.scatter_(1, idx[:, None], 1.0)
        return plane.view(-1, 1, rows, cols)

    # --- the two entry points ---------------------------------------------------------------
    def act(
        self,
        canvas: torch.Tensor,
        target: torch.Tensor | None,
        step: torch.Tensor,
        prev_action: torch.Tensor,
        prev_valid: torch.Tensor,
        noise: torch.Tensor | None,
        state: tuple[torch.Tensor, torch.Tensor],
        greedy: bool = False,
    ) -> tuple[PolicyOutput, tuple[torch.Tensor, torch.Tensor]]:
        """One step for a batch of ``B`` envs; returns the sampled actions and the new state."""
        ctx, state = self.core_step(canvas, target, step, prev_action, prev_valid, noise, state)
        actions, logits = self.head(
            ctx.z, greedy=greedy, fmap=ctx.fmap, target=target, pmap=ctx.pmap
        )
        lp, ent, _ = masked_log_prob_entropy(self.spec, logits, actions)
        return PolicyOutput(actions, lp, ent, self.value(ctx.z)), state

    def core_step(
        self,
        canvas: torch.Tensor,
        target: torch.Tensor | None,
        step: torch.Tensor,
        prev_action: torch.Tensor,
        prev_valid: torch.Tensor,
        noise: torch.Tensor | None,
        state: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[HeadInputs, tuple[torch.Tensor, torch.Tensor]]:
        """Everything before the head for one step: what :meth:`head` reads, and the new state."""
        feats, fmap = self.encode(canvas, target, step, prev_action, prev_valid, noise)
        z, state = self.core(feats.unsqueeze(0), state)
        pmap = self.pointer_map(canvas, target, prev_action, prev_valid)
        return HeadInputs(z.squeeze(0), fmap, pmap, target), state

    def sample_candidates(self, ctx: HeadInputs, k: int) -> torch.Tensor:
        """``k`` independent samples of the head per row: int64 ``(B, k, K)``."""
        rep = lambda x: None if x is None else x.repeat_interleave(k, 0)  # noqa: E731
        actions, _ = self.head(
            rep(ctx.z), fmap=rep(ctx.fmap), target=rep(ctx.target), pmap=rep(ctx.pmap)
        )
        return actions.view(ctx.z.shape[0], k, -1)

    def evaluate(
        self,
        canvas: torch.Tensor,
        target: torch.Tensor | None,
        step: torch.Tensor,
        actions: torch.Tensor,
        noise: torch.Tensor | None,
        return_logits: bool = False,
        labels: torch.Tensor | None = None,
    ) -> PolicyOutput | tuple[PolicyOutput, list[torch.Tensor]]:
        """Whole episodes from the zero state, teacher-forced.

        Args:
            canvas: uint8 ``(T, B, H, W, C)``, the canvas observed before each action.
            target: uint8 ``(B, H, W, C)`` or ``None``.
            step: ``(T, B)``. actions: int64 ``(T, B, K)``, as played (each step's input is the
                one before). noise: ``(B, noise_dim)`` or None.
            labels: int64 ``(T, B, K)``, the actions scored (log-probability, the autoregressive
                head's inputs) where they differ from the played ones (DAgger); default
                ``actions``.

        Returns:
            A :class:`PolicyOutput` with ``(T, B)`` fields (``actions`` is ``(T, B, K)``); with
            ``return_logits``, also each component's ``(T * B, size_k)`` logits at the given
            prefixes (a teacher's distributions, for a KL term).
        """
        t, b = canvas.shape[:2]
        k = actions.shape[-1]
        prev = torch.cat([torch.zeros_like(actions[:1]), actions[:-1]], 0)
        valid = torch.ones(t, b, device=canvas.device)
        valid[0] = 0
        flat = lambda x: x.reshape(t * b, *x.shape[2:])  # noqa: E731
        tgt = None if target is None else flat(target.unsqueeze(0).expand(t, *target.shape))
        nz = None if noise is None else flat(noise.unsqueeze(0).expand(t, *noise.shape))
        feats, fmap = self.encode(flat(canvas), tgt, flat(step), flat(prev), flat(valid), nz)
        z, _ = self.core(feats.view(t, b, -1), self.initial_state(b, canvas.device))
        z = z.reshape(t * b, -1)
        scored = actions if labels is None else labels
        acts = scored.reshape(t * b, k)
        pmap = self.pointer_map(flat(canvas), target, flat(prev), flat(valid))
        _, logits = self.head(z, actions=acts, fmap=fmap, target=tgt, pmap=pmap)
        lp, ent, _ = masked_log_prob_entropy(self.spec, logits, acts)
        v = self.value(z)
        out = PolicyOutput(scored, lp.view(t, b), ent.view(t, b), v.view(t, b))
        return (out, logits) if return_logits else out
