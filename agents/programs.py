"""Learning from the renderer: programs the agent writes itself, and a search over strokes.

Every program the agent writes is an exact example of "this image is made by these actions", and
the renderer can try many strokes a step for the price of one network forward. The pieces here
turn that into training data for the maximum-likelihood learner (:mod:`agents.imitation`); each is
a rollout source or an actor of the trainer's loop, chosen by ``TrainConfig.programs.stage``:

* ``sleep``: :class:`PriorActor` plays programs drawn from a prior over the env's own actions
  (:class:`StrokePrior` for paint envs, :class:`ScenePrior` for scene envs), and
  :class:`OwnTargets` pairs each with its own rendering as the target (wake-sleep; PLAD, Jones
  et al. 2022).
* ``wake``: the policy infers programs for real training targets (the A2C actor), and
  :class:`OwnTargets` pairs them with their renderings: exact however poor the inference.
* ``search``: :class:`SearchActor`, at each step, tries candidate actions (samples of the policy,
  and strokes of the prior) on each env's own painter and keeps the one the scorer likes best
  (the L2 decrease for reconstruction, a discriminator's score for generation): an expert whose
  programs the policy learns to imitate (expert iteration, Anthony et al. 2017).

Only programs the agent wrote or searched: never a dataset label, never a scene's hidden program.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agents.actor import Actor, Rollout, RolloutSource
from agents.networks import PolicyNet, PolicyOutput, as_tensor, masked_log_prob_entropy
from spiral_envs.actions import ActionSpec
from spiral_envs.protocols import Discriminator

__all__ = ["OwnTargets", "PriorActor", "ScenePrior", "SearchActor", "StrokePrior", "own_targets"]


def own_targets(rollout: Rollout) -> Rollout:
    """The rollout with each episode's final canvas as its target: the exact (image, program)
    pair, whatever target the program was written for."""
    final = rollout.canvases[-1]
    return rollout._replace(targets=np.array(final), final_l2=np.zeros(len(final), np.float32))


class OwnTargets:
    """A rollout source whose episodes are paired with their own renderings (:func:`own_targets`).

    Args:
        source: Any :class:`~agents.actor.RolloutSource` of a conditional env.
    """

    def __init__(self, source: RolloutSource) -> None:
        self.source = source

    def next(self) -> Rollout:
        return own_targets(self.source.next())

    def set_weights(self, state_dict: dict, version: int) -> None:
        self.source.set_weights(state_dict, version)

    def close(self) -> None:
        self.source.close()


class StrokePrior:
    """A prior over a paint env's actions that looks like drawing: short programs of local strokes.

    An episode paints ``n ~ U{1..T}`` steps and then rests (moves to the pen's own cell: nothing
    changes), so short programs are as common as long ones. A painting step is a stroke from the
    pen with probability ``1 - move_prob``, ending within ``reach`` of the pen (a fraction of the
    canvas per axis), its control point near the middle; otherwise the pen moves to a uniform cell.
    Brush sizes are uniform over the env's, pressures over the upper half of the levels (visible
    ink), colours uniform.

    Args:
        spec: The env's action description (``flag``, ``end``, ``control``, ``size``,
            ``pressure``, and optionally ``red``, ``green``, ``blue``).
        rng: Where the draws come from.
        move_prob, reach: As above.
    """

    def __init__(
        self,
        spec: ActionSpec,
        rng: np.random.Generator,
        move_prob: float = 0.25,
        reach: float = 0.3,
    ) -> None:
        for name in ("flag", "end", "control", "size", "pressure"):
            if name not in spec:
                raise ValueError(f"StrokePrior needs a paint env's actions; {name!r} is missing")
        self.spec, self.rng = spec, rng
        self.move_prob, self.reach = move_prob, reach
        self.rows, self.cols = spec["end"].grid

    def strokes(self, pen: np.ndarray, n: int, reach: float | None = None) -> np.ndarray:
        """int64 ``(B, n, K)``: ``n`` strokes from each pen cell of ``pen`` (``(B,)``)."""
        spec, rng = self.spec, self.rng
        b = len(pen)
        reach = self.reach if reach is None else reach
        out = np.zeros((b, n, len(spec)), np.int64)
        r0, c0 = (pen // self.cols)[:, None], (pen % self.cols)[:, None]
        dr = np.rint(rng.uniform(-1, 1, (b, n)) * reach * self.rows).astype(np.int64)
        dc = np.rint(rng.uniform(-1, 1, (b, n)) * reach * self.cols).astype(np.int64)
        r1, c1 = np.clip(r0 + dr, 0, self.rows - 1), np.clip(c0 + dc, 0, self.cols - 1)
        jitter = reach / 2
        rc = np.clip(
            np.rint((r0 + r1) / 2 + rng.uniform(-1, 1, (b, n)) * jitter * self.rows),
            0,
            self.rows - 1,
        )
        cc = np.clip(
            np.rint((c0 + c1) / 2 + rng.uniform(-1, 1, (b, n)) * jitter * self.cols),
            0,
            self.cols - 1,
        )
        out[..., spec.index("flag")] = 1
        out[..., spec.index("end")] = r1 * self.cols + c1
        out[..., spec.index("control")] = rc.astype(np.int64) * self.cols + cc.astype(np.int64)
        out[..., spec.index("size")] = rng.integers(spec["size"].size, size=(b, n))
        levels = spec["pressure"].size
        out[..., spec.index("pressure")] = rng.integers(levels // 2, levels, size=(b, n))
        for name in ("red", "green", "blue"):
            if name in spec:
                out[..., spec.index(name)] = rng.integers(spec[name].size, size=(b, n))
        return out

    def moves(self, b: int, n: int, weights: np.ndarray | None = None) -> np.ndarray:
        """int64 ``(B, n, K)`` moves to uniform cells, or to cells drawn by ``weights``
        ``(B, cells)``."""
        out = np.zeros((b, n, len(self.spec)), np.int64)
        cells = self.rows * self.cols
        if weights is None:
            dest = self.rng.integers(cells, size=(b, n))
        else:
            p = weights / weights.sum(1, keepdims=True)
            dest = np.stack([self.rng.choice(cells, size=n, p=row) for row in p])
        out[..., self.spec.index("end")] = dest
        return out

    def programs(self, b: int, steps: int, pen: np.ndarray) -> np.ndarray:
        """int64 ``(steps, B, K)``: one whole program per env, from pen cells ``pen``."""
        spec = self.spec
        lengths = self.rng.integers(1, steps + 1, size=b)
        pen = np.array(pen, np.int64)
        out = np.zeros((steps, b, len(spec)), np.int64)
        for t in range(steps):
            a = self.strokes(pen, 1)[:, 0]
            move = self.rng.random(b) < self.move_prob
            a[move] = self.moves(int(move.sum()), 1)[:, 0]
            rest = t >= lengths
            a[rest] = 0
            a[rest, spec.index("end")] = pen[rest]
            out[t] = a
            pen = a[:, spec.index("end")]
        return out


class ScenePrior:
    """A prior over a scene env's actions: ``n ~ U{1..T}`` objects, then skips.

    Each placed object's type, cell, size and colour are uniform over the env's levels: the
    env's own action space, not the scene generator (whose hidden programs the agent never
    sees). Objects may overlap, hiding some of their parameters, as the agent's own can.

    Args:
        spec: The env's action description (``flag``, ``type``, ``position``, ``size``, ``red``,
            ``green``, ``blue``).
        rng: Where the draws come from.
    """

    NAMES = ("flag", "type", "position", "size", "red", "green", "blue")

    def __init__(self, spec: ActionSpec, rng: np.random.Generator) -> None:
        for name in self.NAMES:
            if name not in spec:
                raise ValueError(f"ScenePrior needs a scene env's actions; {name!r} is missing")
        self.spec, self.rng = spec, rng

    def programs(self, b: int, steps: int, pen: np.ndarray | None = None) -> np.ndarray:
        """int64 ``(steps, B, K)``: one whole program per env (``pen`` is ignored)."""
        out = np.zeros((steps, b, len(self.spec)), np.int64)
        for c in self.spec.components:
            if c.name != "flag":
                out[..., self.spec.index(c.name)] = self.rng.integers(c.size, size=(steps, b))
        lengths = self.rng.integers(1, steps + 1, size=b)
        out[..., self.spec.index("flag")] = np.arange(steps)[:, None] < lengths[None]
        return out


def pen_cells(envs, spec: ActionSpec) -> np.ndarray:
    """int64 ``(B,)``: the grid cell nearest each env's pen."""
    points = spec["end"].values
    pens = np.array([e.unwrapped.pen for e in envs.envs], np.float64)
    return np.abs(points[None] - pens[:, None]).sum(-1).argmin(1)


def _sub_envs(envs) -> list:
    """The paint envs of a sync vector env (the prior and the search use their painters)."""
    if not hasattr(envs, "envs"):
        raise ValueError(
            "the renderer's stages (sleep, search) need the envs in this process: "
            "vector_mode 'sync'"
        )
    subs = [e.unwrapped for e in envs.envs]
    if not all(hasattr(s, n) for s in subs for n in ("painter", "pen", "program_step")):
        name = type(subs[0]).__name__
        raise ValueError(
            f"the renderer's stages need a paint env (a painter to try strokes on, a pen, "
            f"program_step; sleep also takes a scene env); {name} has none: use a "
            "SpiralPaint-* id"
        )
    return subs


class PriorActor:
    """Plays programs of the env's prior (:class:`StrokePrior`, :class:`ScenePrior`) in a sync
    vector env (``sleep``).

    The rollouts carry the env's targets; wrap the source in :class:`OwnTargets` to pair each
    program with its own rendering. ``log_prob`` and ``values`` are zeros (no policy acted).
    """

    def __init__(self, envs, rng: np.random.Generator, **prior_kwargs) -> None:
        if not hasattr(envs, "envs"):
            raise ValueError("the sleep stage needs the envs in this process: vector_mode 'sync'")
        self.envs, self.version = envs, 0
        self.subs = [e.unwrapped for e in envs.envs]
        self.spec: ActionSpec = self.subs[0].action_spec
        if "type" in self.spec:  # a scene env: objects, no pen
            self.prior = ScenePrior(self.spec, rng, **prior_kwargs)
        else:
            self.subs = _sub_envs(envs)
            self.prior = StrokePrior(self.spec, rng, **prior_kwargs)

    def set_weights(self, state_dict: dict | None, version: int) -> None:
        self.version = version

    def collect(self, seeds: Sequence[int] | None = None) -> Rollout:
        obs, _ = self.envs.reset(seed=None if seeds is None else list(seeds))
        b = len(obs["canvas"])
        steps = self.subs[0].episode_length
        pen = None if isinstance(self.prior, ScenePrior) else pen_cells(self.envs, self.spec)
        program = self.prior.programs(b, steps, pen)
        canvases, step_obs = [obs["canvas"]], []
        for t in range(steps):
            step_obs.append(np.asarray(obs["step"]).reshape(b).astype(np.int64))
            obs, *_ = self.envs.step(program[t])
            canvases.append(obs["canvas"])
        zeros = np.zeros((steps, b), np.float32)
        return Rollout(
            canvases=np.stack(canvases),
            targets=np.array(obs["target"]) if "target" in obs else None,
            steps=np.stack(step_obs),
            actions=program,
            log_prob=zeros,
            values=zeros.copy(),
            noise=None,
            final_l2=None,
            policy_version=self.version,
        )


class SearchActor(Actor):
    """Acts by search: at each step the best of the policy's and the prior's candidate actions.

    Each env's candidates are ``policy_candidates`` samples of the policy's head, "stay put" (a
    move to the pen's own cell), ``prior_candidates`` strokes of the :class:`StrokePrior` from the
    pen (in colour, coloured like the target under their control point) and ``move_candidates``
    moves to cells where the canvas differs from the target. Each is painted on the env's own
    painter and undone (snapshot/restore), and all are scored in one call of ``scorer`` (a
    :class:`~spiral_envs.protocols.Discriminator`: higher is better; ``-L2`` for reconstruction).
    A move changes nothing by itself, so it is scored by the best of ``lookahead`` prior strokes
    from its cell, at half its gain (two steps); without look-ahead it scores as staying put. The
    candidate with the largest gain per step is played; ties go to the earlier candidates (the
    policy's samples first). The rollout's ``log_prob`` is the policy's log-probability of the
    played action.

    Args:
        envs: A sync vector env of paint envs (the search needs their painters).
        policy: The network proposing candidates.
        scorer: Scores canvases (and targets, for conditional envs).
        rng: Draws the prior's candidates.
        device, precision: Where and how the policy runs.
        policy_candidates, prior_candidates, move_candidates, lookahead: The sizes above
            (:class:`~agents.config.ProgramConfig`'s ``search_*`` fields).
        hidden_targets: On an unconditional env, score against the target each env drew but
            does not show (``scorer`` an L2): programs inferred for real images.
        rollin: The chance that an env plays the policy's first sample at a step instead of
            the best candidate (DAgger's roll-in). The rollout's ``labels`` are then the best
            candidates and its ``actions`` what was played.
    """

    def __init__(
        self,
        envs,
        policy: PolicyNet,
        scorer: Discriminator,
        rng: np.random.Generator,
        device: torch.device | str,
        policy_candidates: int,
        prior_candidates: int,
        move_candidates: int,
        lookahead: int,
        hidden_targets: bool = False,
        rollin: float = 0.0,
        precision: str = "fp32",
    ) -> None:
        super().__init__(envs, policy, device, precision)
        if rollin and not policy_candidates:
            raise ValueError(f"rollin = {rollin} plays the policy's samples: policy_candidates 0")
        self.rng, self.rollin = rng, rollin
        self.labels: list[np.ndarray] = []
        self.subs, self.scorer = _sub_envs(envs), scorer
        self.spec: ActionSpec = self.subs[0].action_spec
        self.prior = StrokePrior(self.spec, rng)
        self.kp, self.kq, self.km, self.look = (
            policy_candidates,
            prior_candidates,
            move_candidates,
            lookahead,
        )
        self.hidden_targets = hidden_targets

    def collect(
        self, seeds: Sequence[int] | None = None, greedy: bool = False, max_steps: int = 10_000
    ) -> Rollout:
        """Whole episodes, as :meth:`Actor.collect`; with ``rollin``, the search's choices as the
        rollout's ``labels``."""
        self.labels = []
        rollout = super().collect(seeds, greedy, max_steps)
        return rollout._replace(labels=np.stack(self.labels)) if self.rollin else rollout

    def decide(
        self,
        obs: dict,
        target: torch.Tensor | None,
        step: torch.Tensor,
        prev: torch.Tensor,
        valid: torch.Tensor,
        noise: torch.Tensor | None,
        state: tuple[torch.Tensor, torch.Tensor],
        greedy: bool = False,
    ) -> tuple[PolicyOutput, tuple[torch.Tensor, torch.Tensor]]:
        """The best candidate of each env (``greedy`` is ignored: the search decides), with the
        policy's log-probability of it."""
        pol = self.policy
        ctx, state = pol.core_step(
            as_tensor(obs["canvas"], self.device), target, step, prev, valid, noise, state
        )
        proposals = pol.sample_candidates(ctx, self.kp).cpu().numpy() if self.kp else None
        scored_against = obs.get("target")
        if scored_against is None and self.hidden_targets:  # the real images the envs drew
            scored_against = np.stack([s.target for s in self.subs])
        best = self._choose(obs["canvas"], scored_against, proposals)
        played = best
        if self.rollin:
            self.labels.append(best)
            own = self.rng.random(len(best)) < self.rollin
            played = np.where(own[:, None], proposals[:, 0], best)
        chosen = torch.as_tensor(played).to(self.device)
        _, logits = pol.head(ctx.z, actions=chosen, fmap=ctx.fmap, target=ctx.target, pmap=ctx.pmap)
        lp, ent, _ = masked_log_prob_entropy(self.spec, logits, chosen)
        return PolicyOutput(chosen, lp, ent, pol.value(ctx.z)), state

    # -- one step's search -------------------------------------------------------------------
    def _candidates(self, canvas: np.ndarray, target: np.ndarray | None, proposals) -> np.ndarray:
        """int64 ``(B, n, K)``: the policy's samples, "stay put", the prior's strokes, the
        moves (in this order: ties go to the first)."""
        pen = pen_cells(self.envs, self.spec)
        rest = np.zeros((len(canvas), 1, len(self.spec)), np.int64)  # stay put: change nothing
        rest[:, 0, self.spec.index("end")] = pen
        parts = [rest] if proposals is None else [proposals, rest]
        if self.kq:
            strokes = self.prior.strokes(pen, self.kq // 2)
            wide = self.prior.strokes(pen, self.kq - self.kq // 2, reach=1.0)
            strokes = np.concatenate([strokes, wide], 1)
            if target is not None and "red" in self.spec:
                self._colour_like(strokes, target)
            parts.append(strokes)
        if self.km:
            parts.append(self.prior.moves(len(canvas), self.km, self._wrong_cells(canvas, target)))
        return np.concatenate(parts, 1)

    def _wrong_cells(self, canvas: np.ndarray, target: np.ndarray | None) -> np.ndarray | None:
        """``(B, cells)`` weights: how much each grid cell differs from the target (uniform
        without a target)."""
        if target is None:
            return None
        rows, cols = self.prior.rows, self.prior.cols
        diff = np.abs(canvas.astype(np.float32) - target.astype(np.float32)).mean(-1)
        b, h, w = diff.shape
        cells = diff.reshape(b, rows, h // rows, cols, w // cols).mean((2, 4)).reshape(b, -1)
        return cells + 1e-3 * cells.max(1, keepdims=True) + 1e-6

    def _colour_like(self, strokes: np.ndarray, target: np.ndarray) -> None:
        """Sets each stroke's colour to the target's, at its control point's cell (in place)."""
        rows, cols = self.prior.rows, self.prior.cols
        b, h, w, _ = target.shape
        cells = target.reshape(b, rows, h // rows, cols, w // cols, 3).mean((2, 4))
        ctrl = strokes[..., self.spec.index("control")]
        rgb = cells[np.arange(b)[:, None], ctrl // cols, ctrl % cols] / 255.0  # (B, n, 3)
        levels = self.spec["red"].values
        idx = np.abs(rgb[..., None] - levels).argmin(-1)
        for j, name in enumerate(("red", "green", "blue")):
            strokes[..., self.spec.index(name)] = idx[..., j]

    def _choose(self, canvas: np.ndarray, target: np.ndarray | None, proposals) -> np.ndarray:
        """int64 ``(B, K)``: the played action of each env."""
        cands = self._candidates(canvas, target, proposals)
        b, n, _ = cands.shape
        flag, end = self.spec.index("flag"), self.spec.index("end")
        images, owner, span = [], [], []
        pen = pen_cells(self.envs, self.spec)
        follow = (
            self.prior.strokes(cands[..., end].reshape(-1), self.look).reshape(b, n, self.look, -1)
            if self.look
            else None
        )
        if follow is not None and target is not None and "red" in self.spec:
            self._colour_like(follow.reshape(b, n * self.look, -1), target)
        for i, env in enumerate(self.subs):
            painter = env.painter
            before = painter.snapshot()
            for j in range(n):
                a = cands[i, j]
                if a[flag] == 1:
                    painter.draw(env.program_step(a))
                    images.append(painter.canvas())
                    painter.restore(before)
                    owner.append(i * n + j)
                    span.append(1.0)
                    continue
                if follow is None or a[end] == pen[i]:  # staying put changes nothing
                    images.append(canvas[i])
                    owner.append(i * n + j)
                    span.append(1.0)
                    continue
                for f in follow[i, j]:  # a move is worth half its best stroke after it
                    painter.draw(env.program_step(f, after_move_to=int(a[end])))
                    images.append(painter.canvas())
                    painter.restore(before)
                    owner.append(i * n + j)
                    span.append(2.0)
        owner_a = np.asarray(owner)
        rows = owner_a // n
        tg = None if target is None else target[rows]
        now = np.asarray(self.scorer(canvas, target), np.float32)
        gain = (np.asarray(self.scorer(np.stack(images), tg), np.float32) - now[rows]) / np.asarray(
            span
        )
        best = np.full(b * n, -np.inf, np.float32)
        np.maximum.at(best, owner_a, gain)
        pick = best.reshape(b, n).argmax(1)  # the first of equals: the policy's samples first
        return cands[np.arange(b), pick]
