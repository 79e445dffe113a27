"""Unit and smoke tests of the SPIRAL agent (agents/). Fast: a tiny fake paint env, 1 thread."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal

import numpy as np
import pytest

F = pytest.importorskip("torch.nn.functional")
torch = pytest.importorskip("torch")

from fakes import (  # noqa: E402
    FakeDataset,
    FakePaintEnv,
    interrupt,
    on_nth_reward_call,
    register_fake_env,
    small_cfg,
)

from agents.actor import Actor  # noqa: E402
from agents.build import make_envs, probe_env  # noqa: E402
from agents.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from agents.config import CriticConfig, TrainConfig  # noqa: E402
from agents.discriminator import (  # noqa: E402
    DiscriminatorLearner,
    NonFiniteLossError,
    critic_inputs,
    gradient_penalty,
    half_masks,
)
from agents.losses import a2c_loss, gae_advantages, vtrace  # noqa: E402
from agents.networks import (  # noqa: E402
    NetConfig,
    PolicyNet,
    SpatialHead,
    masked_log_prob_entropy,
)
from agents.replay import ReplayBuffer  # noqa: E402
from agents.rewards import (  # noqa: E402
    change_similarity,
    compute_rewards,
    score_rewards,
    stroke_penalties,
)
from spiral_envs.protocols import Discriminator  # noqa: E402
from spiral_envs.rewards import l2_distance  # noqa: E402

torch.set_num_threads(1)
register_fake_env()

SMALL = [
    "--channels",
    "8",
    "--res_blocks",
    "1",
    "--hidden",
    "32",
    "--lstm",
    "32",
    "--disc_channels",
    "8",
    "--progress",
    "false",
    "--tensorboard",
    "false",
]


# --- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field,value,msg",
    [
        ("num_envs", 0, "num_envs = 0: accepted >= 1"),
        ("gamma", 1.5, "gamma = 1.5: accepted 0.0..1.0"),
        ("reward", "psnr", "reward = 'psnr': accepted one of"),
        ("disc", "wgan", "disc = 'wgan': accepted one of"),
        ("lr", float("nan"), "lr = nan: accepted a finite number"),
        ("device", "tpu", "device = 'tpu'"),
    ],
)
def test_config_validation_names_field_and_range(field, value, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(".", r"\.")):
        TrainConfig.from_dict({"total_steps": 1, field: value})


def test_config_roundtrip_and_unknown_field():
    c = TrainConfig.from_dict({"num_envs": 3, "total_steps": 9, "env_kwargs": {"brush_sizes": [2]}})
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="unknown config fields"):
        TrainConfig.from_dict({"num_env": 3})


# --- losses -----------------------------------------------------------------------------------
def test_a2c_loss_matches_hand_computation():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -1.5]])
    ent = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    val = torch.tensor([[0.5, 0.0], [1.0, -1.0]])
    rew = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    adv, ret = gae_advantages(rew, val, gamma=1.0, lam=1.0)
    # returns-to-go: [[1, 2], [1, 2]]; advantages = returns - values
    assert torch.allclose(ret, torch.tensor([[1.0, 2.0], [1.0, 2.0]]))
    assert torch.allclose(adv, torch.tensor([[0.5, 2.0], [0.0, 3.0]]))
    loss = a2c_loss(logp, ent, val, adv, ret, ent_coef=0.1, vf_coef=0.5, normalize_advantage=False)
    policy = -(0.5 * -1 + 2 * -2 + 0 * -0.5 + 3 * -1.5) / 4  # = 9/4
    value = ((1 - 0.5) ** 2 + 2**2 + 0**2 + 3**2) / 4  # = 13.25/4
    entropy = -(1 + 2 + 3 + 4) / 4
    assert loss.policy.item() == pytest.approx(policy)
    assert loss.value.item() == pytest.approx(value)
    assert loss.entropy.item() == pytest.approx(entropy)
    assert loss.total.item() == pytest.approx(policy + 0.1 * entropy + 0.5 * value)
    # normalised advantages: zero mean, unit (unbiased) std
    a = adv.flatten()
    an = (a - a.mean()) / a.std()
    ln = a2c_loss(logp, ent, val, adv, ret, 0.1, 0.5, normalize_advantage=True)
    assert ln.policy.item() == pytest.approx(-(an * logp.flatten()).mean().item(), rel=1e-5)


def test_gae_discount_and_lambda():
    rew = torch.tensor([[1.0], [1.0], [1.0]])
    val = torch.zeros(3, 1)
    _, ret = gae_advantages(rew, val, gamma=0.5, lam=1.0)
    assert ret.flatten().tolist() == pytest.approx([1.75, 1.5, 1.0])
    val = torch.tensor([[1.0], [2.0], [3.0]])
    adv, _ = gae_advantages(rew, val, gamma=1.0, lam=0.0)  # one-step TD errors
    assert adv.flatten().tolist() == pytest.approx([2.0, 2.0, -2.0])


def test_vtrace_on_policy_equals_monte_carlo():
    g = torch.Generator().manual_seed(0)
    rew, val = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    lp = torch.randn(5, 3, generator=g)
    vs, pg = vtrace(lp, lp, rew, val, gamma=1.0)
    adv, ret = gae_advantages(rew, val, 1.0, 1.0)
    assert torch.allclose(vs, ret, atol=1e-5)
    assert torch.allclose(pg, adv, atol=1e-5)
    # a stale, much less likely action gets its importance weight clipped/reduced
    vs2, pg2 = vtrace(lp + 3.0, lp, rew, val, gamma=1.0)
    assert torch.allclose(
        pg2, math.exp(-3.0) * (rew + torch.cat([vs2[1:], torch.zeros(1, 3)]) - val), atol=1e-5
    )


def test_gradient_penalty_of_linear_critic():
    w = torch.tensor([3.0, 4.0])  # ||grad|| = 5 everywhere -> penalty (5 - 1)^2 = 16
    critic = lambda x: x @ w  # noqa: E731
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(16.0)
    w2 = torch.tensor([0.6, 0.8])  # unit gradient -> zero penalty
    assert gradient_penalty(lambda x: x @ w2, real, fake).item() == pytest.approx(0.0, abs=1e-6)
    # and it is differentiable in the critic's weights (create_graph)
    wp = torch.tensor([3.0, 4.0], requires_grad=True)
    gradient_penalty(lambda x: x @ wp, real, fake).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert torch.allclose(wp.grad, 2 * 4 * torch.tensor([3.0, 4.0]) / 5)


# --- masked autoregressive log-probs ------------------------------------------------------------
def test_masked_log_prob_and_entropy_leave_out_ignored_subactions():
    spec = FakePaintEnv().action_spec  # flag, end (ungated), control, size, pressure (gated)
    g = torch.Generator().manual_seed(1)
    logits = [torch.randn(2, c.size, generator=g) for c in spec.components]
    actions = torch.tensor([[0, 5, 7, 1, 2], [1, 5, 7, 1, 2]])
    lp, ent, mask = masked_log_prob_entropy(spec, logits, actions)
    assert mask.tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    np.testing.assert_array_equal(mask.numpy().astype(bool), spec.active_mask(actions.numpy()))
    for i in range(2):
        want_lp, want_ent = 0.0, 0.0
        for k, lg in enumerate(logits):
            if not mask[i, k]:
                continue
            p = torch.softmax(lg[i], -1)
            want_lp += torch.log(p[actions[i, k]]).item()
            want_ent += -(p * p.log()).sum().item()
        assert lp[i].item() == pytest.approx(want_lp, rel=1e-5)
        assert ent[i].item() == pytest.approx(want_ent, rel=1e-5)
    # changing an ignored sub-action of a move changes nothing
    a2 = actions.clone()
    a2[0, 2:] = torch.tensor([1, 0, 0])
    lp2, ent2, _ = masked_log_prob_entropy(spec, logits, a2)
    assert lp2[0].item() == pytest.approx(lp[0].item())


@pytest.mark.parametrize(
    "conditional,color,glimpse", [(True, False, False), (False, True, False), (True, True, True)]
)
def test_policy_act_and_evaluate_agree(conditional, color, glimpse):  # glimpse: all three kinds
    torch.manual_seed(0)
    env = FakePaintEnv(conditional=conditional, color=color)
    import gymnasium as gym

    envs = gym.vector.SyncVectorEnv(
        [lambda: FakePaintEnv(conditional=conditional, color=color)] * 3
    )
    pol = PolicyNet(
        env.action_spec,
        env.observation_space["canvas"].shape,
        conditional,
        NetConfig(
            channels=8,
            res_blocks=1,
            hidden=16,
            lstm=16,
            glimpse=glimpse,
            target_glimpse=glimpse,
            target_patch=8 if glimpse else 0,
        ),
        max_step=4,
    )
    assert len(pol.glimpses) == (2 if glimpse else 0)  # after "end" and "control"
    assert len(pol.target_glimpses) == (2 if glimpse and conditional else 0)
    assert len(pol.target_patches) == (2 if glimpse and conditional else 0)
    r = Actor(envs, pol).collect(seeds=[0, 1, 2])
    t, b, k = r.actions.shape
    assert (t, b, k) == (4, 3, len(env.action_spec))
    assert r.canvases.shape == (5, 3, 16, 16, 3 if color else 1)
    assert (r.targets is not None) == conditional and (r.noise is not None) != conditional
    tt = lambda x: None if x is None else torch.from_numpy(x)  # noqa: E731
    out = pol.evaluate(tt(r.canvases[:-1]), tt(r.targets), tt(r.steps), tt(r.actions), tt(r.noise))
    np.testing.assert_allclose(out.log_prob.detach().numpy(), r.log_prob, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.value.detach().numpy(), r.values, rtol=1e-4, atol=1e-5)
    assert np.all(r.actions < env.action_spec.nvec)
    envs.close()


@pytest.mark.parametrize("first", [False, True])
def test_spatial_first_places_a_scene_object_before_its_type(first):
    """With ``spatial_first`` the type's logits read the chosen cell (through the glimpse);
    sampling and teacher forcing agree either way, and actions keep the env's order."""
    from agents.build import make_envs

    torch.manual_seed(0)
    envs = make_envs("SpiralMuJoCo-Scene-Cond-v0", 2, {})
    spec = envs.envs[0].unwrapped.action_spec
    cfg = NetConfig(channels=8, res_blocks=1, hidden=16, lstm=16, glimpse=True, spatial_first=first)
    pol = PolicyNet(spec, (64, 64, 3), True, cfg, max_step=5)
    assert pol.order == ([0, 2, 1, 3, 4, 5, 6] if first else list(range(7)))
    r = Actor(envs, pol).collect(seeds=[0, 1])
    tt = lambda x: None if x is None else torch.from_numpy(x)  # noqa: E731
    out = pol.evaluate(tt(r.canvases[:-1]), tt(r.targets), tt(r.steps), tt(r.actions), None)
    np.testing.assert_allclose(out.log_prob.detach().numpy(), r.log_prob, rtol=1e-4, atol=1e-5)
    envs.close()
    # the same state, two different cells: the type's logits differ only when the cell comes first
    z = torch.randn(1, 16).repeat(2, 1)
    fmap = torch.randn(1, 8, 8, 8).repeat(2, 1, 1, 1)
    acts = torch.zeros(2, 7, dtype=torch.int64)
    acts[:, 0], acts[1, 2] = 1, 255
    _, logits = pol.head(z, acts, fmap=fmap)
    assert torch.allclose(logits[1][0], logits[1][1]) != first


# --- discriminator and replay -------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,conditional,complement",
    [
        ("wgan-gp", True, False),
        ("sngan", True, True),
        ("sngan", False, False),
        ("wgan-gp", False, False),
    ],
)
def test_discriminator_protocol_and_update(kind, conditional, complement):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = CriticConfig(disc=kind, disc_complement=complement, disc_channels=8, replay_size=10)
    reals = None if conditional else FakeDataset(16)
    d = DiscriminatorLearner((16, 16, 1), conditional, cfg, reals=reals)
    assert isinstance(d, Discriminator) and isinstance(d.discriminator, Discriminator)
    fakes = rng.integers(0, 256, (6, 16, 16, 1), dtype=np.uint8)
    targets = rng.integers(0, 256, (6, 16, 16, 1), dtype=np.uint8)
    s = d(fakes, targets if conditional else None)
    assert s.shape == (6,) and s.dtype == np.float32
    before = [p.detach().clone() for p in d.critic.parameters()]
    for _ in range(3):
        m = d.update(fakes, targets if conditional else None, None if conditional else targets)
        assert np.isfinite(m.loss)
    assert len(d.replay) == 10
    assert any(not torch.equal(a, b) for a, b in zip(before, d.critic.parameters(), strict=True))
    assert (m.gradient_penalty > 0) == (kind == "wgan-gp")


def test_complement_inputs_show_halves():
    img = torch.ones(1, 1, 4, 4)
    tgt = 2 * torch.ones(1, 1, 4, 4)
    m = half_masks(4, 4)
    x = critic_inputs(img, tgt, m[0:1])  # left half of the image, right half of the target
    assert x.shape == (1, 2, 4, 4)
    assert x[0, 0, :, :2].sum() == 0 and x[0, 0, :, 2:].eq(2).all()
    assert x[0, 1, :, :2].eq(1).all() and x[0, 1, :, 2:].sum() == 0


def test_replay_buffer_ring_sample_and_state():
    buf = ReplayBuffer(5, (2, 2, 1), conditional=True)

    def mk(v):
        return (
            np.full((3, 2, 2, 1), v, np.uint8) + np.arange(3, dtype=np.uint8)[:, None, None, None]
        )

    buf.add(mk(0), mk(100))
    assert len(buf) == 3
    buf.add(mk(10), mk(110))  # 6 items into 5 slots: the oldest (value 0) is overwritten
    assert len(buf) == 5
    assert sorted(buf.canvases[:, 0, 0, 0].tolist()) == [1, 2, 10, 11, 12]
    assert np.array_equal(buf.targets[:, 0, 0, 0] - 100, buf.canvases[:, 0, 0, 0])
    b = buf.sample(np.random.default_rng(0), 7)
    assert b.canvases.shape == (7, 2, 2, 1) and np.array_equal(b.targets - 100, b.canvases)
    buf2 = ReplayBuffer(5, (2, 2, 1), conditional=True)
    buf2.load_state_dict(buf.state_dict())
    assert np.array_equal(buf2.canvases, buf.canvases) and buf2.next == buf.next
    buf.add(mk(20)[:1], mk(120)[:1])
    buf2.add(mk(20)[:1], mk(120)[:1])
    assert np.array_equal(buf2.canvases, buf.canvases)
    with pytest.raises(ValueError, match="targets must be given"):
        buf.add(mk(0))
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(2, (2, 2, 1), False).sample(np.random.default_rng(), 1)


# --- reward math -------------------------------------------------------------------------------
def test_score_rewards_and_stroke_penalties():
    s = np.array([[0.0, 1.0], [0.5, 1.0], [2.0, 0.0]], np.float32)  # (T+1, B), T = 2
    assert score_rewards(s, "final").tolist() == [[0, 0], [2, 0]]
    d = score_rewards(s, "delta")
    assert d.tolist() == [[0.5, 0.0], [1.5, -1.0]]
    assert np.allclose(d.sum(0), s[-1] - s[0])
    spec = FakePaintEnv().action_spec
    acts = np.zeros((3, 2, len(spec)), np.int64)
    acts[:, 0, 0] = [1, 1, 0]  # one connected stroke
    acts[:, 1, 0] = [1, 0, 1]  # two disjoint strokes
    final = np.full((2, 4, 4, 1), 255, np.uint8)
    final[0, 0, 0] = 0  # env 0 has ink, env 1 is blank
    pen = stroke_penalties(spec, acts, final, new_stroke_penalty=0.1, blank_penalty=1.0)
    np.testing.assert_allclose(pen, [[-0.1, -0.1], [0, 0], [0, -1.1]], rtol=1e-6)
    # the place penalty costs every gated step, connected or not
    pen = stroke_penalties(spec, acts, final, place_penalty=0.25)
    np.testing.assert_allclose(pen, [[-0.25, -0.25], [-0.25, 0], [0, -0.25]], rtol=1e-6)


def _square(size: int, at: tuple[int, int], value, blank: np.ndarray) -> np.ndarray:
    img = blank.copy()
    img[at[0] : at[0] + size, at[1] : at[1] + size] = value
    return img


def test_change_similarity_scores_changes_from_the_blank_canvas():
    blank = np.full((24, 24, 3), 150, np.uint8)
    target = _square(4, (4, 4), (250, 20, 20), blank)
    exact = change_similarity(target[None], target[None], blank[None])
    assert exact[0] == pytest.approx(1.0, abs=1e-6)
    assert change_similarity(blank[None], target[None], blank[None])[0] == 0.0  # nothing changed
    # a mark on the target's place but of the opposite change scores below nothing
    opposite = _square(4, (4, 4), (50, 250, 250), blank)
    assert change_similarity(opposite[None], target[None], blank[None])[0] < 0
    # blur gives credit by distance: on target > near > far (which the sharp term alone
    # cannot tell apart: both have no overlap)
    marks = np.stack([_square(4, at, (250, 20, 20), blank) for at in [(4, 4), (9, 9), (18, 18)]])
    s = change_similarity(marks, target[None], blank[None])
    assert s[0] > s[1] > s[2] >= 0
    sharp = change_similarity(marks, target[None], blank[None], sigmas=(0.0,))
    assert sharp[1] == sharp[2] == 0
    # the right colour beats a wrong one at the same place
    wrong = _square(4, (4, 4), (20, 20, 250), blank)
    assert s[0] > change_similarity(wrong[None], target[None], blank[None])[0]
    # an extra mark away from the target lowers the score (unlike a reward that ignores misses)
    extra = _square(4, (18, 18), (250, 20, 20), target)
    assert change_similarity(extra[None], target[None], blank[None])[0] < exact[0]
    # leading dims broadcast (steps x episodes against one target each), and so do the channels
    steps = np.stack([np.stack([blank, target]), np.stack([target, marks[2]])])  # (2, 2, ...)
    grid = change_similarity(steps, np.stack([target, target]), blank[None, None])
    assert grid.shape == (2, 2)
    np.testing.assert_allclose(grid[:, 1], [exact[0], s[2]], rtol=1e-6)
    grey = target[..., :1]
    copy = np.repeat(grey, 3, -1)[None]
    assert change_similarity(copy, grey[None], blank[None, ..., :1])[0] == pytest.approx(1.0)


def test_discriminator_delta_rewards_score_each_changed_canvas_once(tmp_path):
    """Per-step critic rewards: canvases a step left unchanged (moves) are not re-scored, and the
    rewards equal scoring every canvas."""
    cfg = small_cfg(tmp_path, env_id="SpiralPaint-MNIST-Cond-v0", reward_mode="per_step")
    info = probe_env(cfg.env_id)
    net = NetConfig(channels=8, hidden=32, lstm=32, res_blocks=1)
    policy = PolicyNet(info.action_spec, info.image_shape, True, net)
    rollout = Actor(make_envs(cfg.env_id, 4, {}), policy).collect(seeds=[1, 2, 3, 4])

    def score(canvases, targets):  # deterministic, depends on both images
        c = canvases.reshape(len(canvases), -1).astype(np.float32)
        t = targets.reshape(len(targets), -1).astype(np.float32)
        return (c * (1 + t / 255)).mean(1) / 255

    rows = []

    def critic(canvases, targets):
        rows.append(len(canvases))
        return score(canvases, targets)

    rewards, final = compute_rewards(rollout, cfg.rewards, info.action_spec, critic)
    every = np.stack([score(c, rollout.targets) for c in rollout.canvases])
    np.testing.assert_allclose(rewards, np.diff(every, axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(final, every[-1], rtol=1e-6)
    c = rollout.canvases
    distinct = 4 + int((c[1:] != c[:-1]).reshape(len(c) - 1, 4, -1).any(-1).sum())
    assert sum(rows) == distinct < c.shape[0] * 4  # the random policy's moves were not scored


def test_trainer_similarity_reward(tmp_path):
    from agents.train import train

    cfg = small_cfg(tmp_path, reward="similarity", reward_mode="delta")
    assert cfg.rewards.reward_mode == "per_step"  # the old name is an alias
    s = train(cfg)
    assert np.isfinite(s["losses/total"])
    # per-step rewards are the differences of the similarity of successive canvases
    envs = make_envs(cfg.env_id, 3, {})
    info = probe_env(cfg.env_id)
    net = NetConfig(channels=8, hidden=32, lstm=32, res_blocks=1)
    policy = PolicyNet(info.action_spec, info.image_shape, True, net)
    rollout = Actor(envs, policy).collect(seeds=[1, 2, 3])
    rewards, final = compute_rewards(rollout, cfg.rewards, info.action_spec)
    t_len = rollout.actions.shape[0]
    sim = np.stack(
        [
            change_similarity(rollout.canvases[t], rollout.targets, rollout.canvases[0])
            for t in range(t_len + 1)
        ]
    )
    np.testing.assert_allclose(rewards, np.diff(sim, axis=0), atol=1e-6)
    np.testing.assert_allclose(final, sim[-1], atol=1e-6)
    with pytest.raises(ValueError, match="'similarity' needs a conditional env"):
        train(small_cfg(tmp_path, env_id="FakePaint-Uncond-v0", reward="similarity"))


def test_l2_weight_adds_the_l2_rewards_to_the_similarity_rewards(tmp_path):
    cfg = small_cfg(tmp_path, reward="similarity", reward_mode="per_step")
    info = probe_env(cfg.env_id)
    net = NetConfig(channels=8, hidden=32, lstm=32, res_blocks=1)
    policy = PolicyNet(info.action_spec, info.image_shape, True, net)
    rollout = Actor(make_envs(cfg.env_id, 3, {}), policy).collect(seeds=[1, 2, 3])
    plain, _ = compute_rewards(rollout, cfg.rewards, info.action_spec)
    mixed = dataclasses.replace(cfg.rewards, l2_weight=50.0, place_penalty=0.1)
    rewards, final = compute_rewards(rollout, mixed, info.action_spec)
    l2 = l2_distance(rollout.canvases, rollout.targets[None])
    gate = rollout.actions[..., info.action_spec.index("flag")] == 1
    np.testing.assert_allclose(rewards, plain - 50.0 * np.diff(l2, axis=0) - 0.1 * gate, atol=1e-5)
    assert np.abs(np.diff(l2, axis=0)).max() > 0  # the L2 term is not vacuous here
    final_cfg = dataclasses.replace(mixed, reward_mode="final")
    rewards, _ = compute_rewards(rollout, final_cfg, info.action_spec)
    sim = change_similarity(rollout.canvases[-1], rollout.targets, rollout.canvases[0])
    np.testing.assert_allclose(rewards[-1] + 0.1 * gate[-1], sim - 50.0 * l2[-1], atol=1e-5)
    with pytest.raises(ValueError, match="with reward 'l2' set reward_scale instead"):
        dataclasses.replace(cfg.rewards, reward="l2", l2_weight=1.0)
    from agents.train import train

    uncond = small_cfg(tmp_path, env_id="FakePaint-Uncond-v0", l2_weight=1.0)
    with pytest.raises(ValueError, match="l2_weight 1.0 needs a conditional env"):
        train(uncond)


def test_glimpse_reads_the_encoder_map_at_the_chosen_cell():
    fmap = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    cells = torch.tensor([0, 8 * 3 + 7])  # an 8x8 grid: cell (0, 0), and (3, 7) -> map (1, 3)
    g = PolicyNet._glimpse(fmap, cells, (8, 8))
    assert g.shape == (2, 3)
    assert g[0].tolist() == fmap[0, :, 0, 0].tolist()
    assert g[1].tolist() == fmap[1, :, 1, 3].tolist()


def test_cell_means_are_the_pooled_pixels_on_any_grid():
    from agents.networks import cell_means

    images = torch.randint(0, 256, (3, 12, 20, 2), dtype=torch.uint8)
    for grid in [(6, 10), (3, 5), (12, 20), (5, 7)]:  # the last one does not divide the image
        pooled = F.adaptive_avg_pool2d(images.movedim(-1, -3).float() / 255, grid)
        assert torch.allclose(cell_means(images, grid), pooled, atol=1e-6)


def test_target_patch_reads_the_target_pixels_around_the_chosen_cell():
    image = torch.zeros(2, 16, 16, 1, dtype=torch.uint8)
    image[0, 5, 6, 0] = 255  # a pixel of grid cell (2, 3) of an 8x8 grid (2 px a cell)
    image[1, 0, 0, 0] = 255  # a pixel of the corner cell
    cells = torch.tensor([2 * 8 + 3, 0])
    p = PolicyNet._patch(image, cells, (8, 8), 4)
    assert p.shape == (2, 1, 4, 4)
    # cell (2, 3) spans rows 4-5, cols 6-7; its centre is pixel (5, 7), the window rows 3-6
    # and cols 5-8, so the lit pixel (5, 6) sits at (2, 1)
    assert p[0, 0].nonzero().tolist() == [[2, 1]]
    # the corner cell's window (rows and cols -1 to 2) reaches past the image's edges
    assert p[1, 0].nonzero().tolist() == [[1, 1]]
    # later sub-actions read it: two targets that differ only in one cell's pixel pattern (the
    # same mean colour) give different logits when that cell is chosen
    torch.manual_seed(0)
    env = FakePaintEnv(conditional=True, color=False)
    cfg = NetConfig(channels=8, res_blocks=1, hidden=16, lstm=16, target_patch=4)
    pol = PolicyNet(env.action_spec, (16, 16, 1), True, cfg, max_step=4)
    two = torch.zeros(2, 16, 16, 1, dtype=torch.uint8)
    two[0, 4, 0, 0] = two[1, 5, 1, 0] = 255  # cell (2, 0): one lit pixel, a different one
    acts = torch.zeros(2, len(env.action_spec), dtype=torch.long)
    acts[:, 1] = 2 * env.action_spec.components[1].grid[1]  # "end" at cell (2, 0)
    _, logits = pol.head(torch.zeros(2, 16), actions=acts, target=two)
    assert not torch.allclose(logits[-1][0], logits[-1][1])
    with pytest.raises(ValueError, match="multiple of 4"):
        PolicyNet(env.action_spec, (16, 16, 1), True, NetConfig(target_patch=6), max_step=4)
    with pytest.raises(ValueError, match="conditional env id"):
        PolicyNet(env.action_spec, (16, 16, 1), False, NetConfig(target_patch=8), max_step=4)


def test_target_glimpse_reads_the_target_colour_at_and_around_the_chosen_cell():
    image = torch.zeros(1, 16, 16, 3, dtype=torch.uint8)
    image[0, 4:6, 6:8, 0] = 255  # red fills grid cell (2, 3) of an 8x8 grid (2 px a cell)
    cells = torch.tensor([2 * 8 + 3, 0])
    g = PolicyNet._target_glimpse(image.expand(2, -1, -1, -1), cells, (8, 8))
    assert g.shape == (2, 6)
    assert g[0, :3].tolist() == [1.0, 0.0, 0.0]  # the cell itself
    assert g[0, 3].item() == pytest.approx(1 / 25)  # one red cell of the 5x5 around it
    assert g[1].abs().sum() == 0  # cell (0, 0): nothing red within two cells
    # the glimpse changes what the later sub-actions sample: a red target vs a black one
    torch.manual_seed(0)
    env = FakePaintEnv(conditional=True, color=True)
    cfg = NetConfig(channels=8, res_blocks=1, hidden=16, lstm=16, target_glimpse=True)
    pol = PolicyNet(env.action_spec, (16, 16, 3), True, cfg, max_step=4)
    z = torch.zeros(2, 16)
    acts = torch.zeros(2, len(env.action_spec), dtype=torch.long)
    red = torch.zeros(2, 16, 16, 3, dtype=torch.uint8)
    red[1, ..., 0] = 255
    _, logits = pol.head(z, actions=acts, target=red)
    assert torch.equal(logits[1][0], logits[1][1])  # "end" comes before any glimpse
    assert not torch.allclose(logits[-1][0], logits[-1][1])  # the last sub-action reads it
    with pytest.raises(ValueError, match="conditional id"):
        PolicyNet(env.action_spec, (16, 16, 3), False, cfg, max_step=4)


def test_spatial_head_skip_joins_at_its_own_resolution():
    """The encoder's map reaches the logit map where its resolution matches (here the half),
    so two inputs differing at one map position give logits differing around that position."""
    torch.manual_seed(0)
    head = SpatialHead(16, (16, 16), skip_channels=4)
    z = torch.zeros(1, 16)
    fmap = torch.zeros(1, 4, 8, 8)
    poked = fmap.clone()
    poked[0, :, 2, 5] = 5.0
    diff = (head(z, poked) - head(z, fmap)).view(16, 16).abs()
    rows, cols = torch.nonzero(diff > 1e-6, as_tuple=True)
    assert len(rows) > 0
    # the 3x3 sub-pixel conv spreads one half-resolution position over +-1 half cells (+-3 cells)
    assert rows.min() >= 2 * 2 - 2 and rows.max() <= 2 * 2 + 3
    assert cols.min() >= 2 * 5 - 2 and cols.max() <= 2 * 5 + 3


def _plain_spatial_head(head: SpatialHead, z, fmap):
    """The head as its docstring describes it, with plain layers and pixel shuffles."""
    x = head.fc(z).view(-1, head.ch, head.r0, head.c0)
    at_half = fmap is not None and fmap.shape[-2:] == (2 * head.r0, 2 * head.c0)
    if fmap is not None and not at_half:
        x = x + head.skip(F.adaptive_avg_pool2d(fmap, (head.r0, head.c0)))
    x = head.up1(F.relu(x))
    if at_half:
        x = x + F.pixel_unshuffle(head.skip(fmap), 2)
    x = head.up2(F.pixel_shuffle(F.relu(x), 2))
    return F.pixel_shuffle(x, 2).flatten(1)


@pytest.mark.parametrize(
    "grid,fmap_size",
    [
        ((32, 32), (8, 8)),  # the skip at the quarter (paint)
        ((16, 16), (8, 8)),  # at the half (scenes)
        ((16, 16), (4, 4)),
        ((32, 32), (4, 4)),  # pooled
        ((12, 12), (8, 8)),
        ((16, 32), (4, 8)),  # non-square: quarter
        ((16, 32), (8, 16)),  # non-square: half
    ],
)
def test_spatial_head_equals_its_plain_layer_form(grid, fmap_size):
    """The channels-last matmul formulation computes the documented deconvolution: same logits
    and same gradients, for skips at the quarter, at the half and pooled."""
    torch.manual_seed(0)
    head = SpatialHead(12, grid, skip_channels=5)
    z = torch.randn(3, 12)
    for fmap in (torch.randn(3, 5, *fmap_size), None):
        fast = head(z, fmap)
        plain = _plain_spatial_head(head, z, fmap)
        assert fast.shape == (3, grid[0] * grid[1])
        torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)
        params = list(head.parameters())
        g_fast = torch.autograd.grad(fast.square().sum(), params, allow_unused=True)
        g_plain = torch.autograd.grad(plain.square().sum(), params, allow_unused=True)
        for a, b in zip(g_fast, g_plain, strict=True):
            if a is None or b is None:
                assert a is None and b is None
            else:
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # a channels-last encoder map (what the encoder emits) gives the same logits
    fmap = torch.randn(3, 5, *fmap_size)
    torch.testing.assert_close(
        head(z, fmap.contiguous(memory_format=torch.channels_last)), head(z, fmap)
    )


# --- checkpoints, determinism, NaN, CLIs --------------------------------------------------------
def test_checkpoint_is_atomic_and_roundtrips(tmp_path):
    p = tmp_path / "c.pt"
    save_checkpoint(p, {"a": torch.arange(3), "b": 1})
    save_checkpoint(p, {"a": torch.arange(4), "b": 2})
    d = load_checkpoint(p)
    assert d["b"] == 2 and d["a"].tolist() == [0, 1, 2, 3]
    assert [f.name for f in tmp_path.iterdir()] == ["c.pt"]  # no temporary files left
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def _params(path):
    return load_checkpoint(path)["learner"]["policy"]


def test_seeded_runs_are_deterministic(tmp_path):
    from agents.train import train

    train(small_cfg(tmp_path / "a"))
    train(small_cfg(tmp_path / "b"))
    pa, pb = _params(tmp_path / "a" / "checkpoint.pt"), _params(tmp_path / "b" / "checkpoint.pt")
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    train(small_cfg(tmp_path / "c", seed=1))
    pc = _params(tmp_path / "c" / "checkpoint.pt")
    assert any(not torch.equal(pa[k], pc[k]) for k in pa)


@pytest.mark.parametrize("reward", ["discriminator", "l2"])
def test_resume_continues_exactly(tmp_path, monkeypatch, reward):
    import agents.train as tr

    kw = dict(total_steps=64, reward=reward, reward_mode="delta", checkpoint_every=2, log_every=1)
    tr.train(small_cfg(tmp_path / "full", **kw))
    on_nth_reward_call(monkeypatch, 3, interrupt)  # killed in the third iteration
    cfg = small_cfg(tmp_path / "half", **kw)
    with pytest.raises(KeyboardInterrupt):
        tr.train(cfg)
    ck = load_checkpoint(tmp_path / "half" / "checkpoint.pt")
    assert ck["iteration"] == 2 and ck["frames"] == 32
    tr.train(cfg.replace(resume=True))
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "half" / "checkpoint.pt")
    assert a["frames"] == b["frames"] == 64
    pa, pb = a["learner"]["policy"], b["learner"]["policy"]
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    if reward == "discriminator":
        ca, cb = a["discriminator"]["critic"], b["discriminator"]["critic"]
        assert all(torch.equal(ca[k], cb[k]) for k in ca)
        assert np.array_equal(
            a["discriminator"]["replay"]["canvases"], b["discriminator"]["replay"]["canvases"]
        )
    rows = (tmp_path / "half" / "progress.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header + one row per iteration, none duplicated
    assert rows == (tmp_path / "full" / "progress.csv").read_text().splitlines()[:1] + rows[1:]


def ctrl_c() -> None:
    """A real SIGINT to this process, as the terminal sends on Ctrl-C."""
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_finishes_the_iteration_saves_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    import agents.train as tr

    kw = dict(total_steps=64, reward="discriminator", reward_mode="per_step", checkpoint_every=100)
    tr.train(small_cfg(tmp_path / "full", **kw))
    on_nth_reward_call(monkeypatch, 2, ctrl_c)  # Ctrl-C in the second of four iterations
    out = str(tmp_path / "half")
    config = tmp_path / "half.json"
    config.write_text(json.dumps(small_cfg(out, **kw).to_dict()))
    assert tr.main(["--config", str(config)]) == 130
    err = capsys.readouterr().err
    assert "stopped by Ctrl-C at 32 frames" in err and f"--out_dir {out} --resume" in err
    assert json.loads((tmp_path / "half" / "metrics.json").read_text())["interrupted"] is True
    assert load_checkpoint(tmp_path / "half" / "checkpoint.pt")["frames"] == 32
    monkeypatch.undo()
    assert tr.main(["--out_dir", out, "--resume", "--progress", "false"]) == 0
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["learner"]["policy"]
    b = load_checkpoint(tmp_path / "half" / "checkpoint.pt")["learner"]["policy"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    import agents.train as tr

    def twice():
        ctrl_c()
        ctrl_c()

    on_nth_reward_call(monkeypatch, 3, twice)
    cfg = small_cfg(tmp_path, total_steps=64, checkpoint_every=1)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the suite runs in the background
    with pytest.raises(KeyboardInterrupt):
        tr.train(cfg)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["frames"] == 32
    assert signal.getsignal(signal.SIGINT) is before  # the handler it found is restored


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(tmp_path, monkeypatch, capsys):
    import agents.train as tr

    calls = {"n": 0}
    real = tr.compute_rewards

    def poisoned(*a, **k):
        r, s = real(*a, **k)
        calls["n"] += 1
        if calls["n"] >= 3:
            r = r * np.nan
        return r, s

    monkeypatch.setattr(tr, "compute_rewards", poisoned)
    cfg = small_cfg(tmp_path, total_steps=160, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match="policy loss is nan.*last good checkpoint"):
        tr.train(cfg)
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in ck["learner"]["policy"].values())
    calls["n"] = 2  # the next call is poisoned
    rc = tr.main(
        [
            "--out_dir",
            str(tmp_path / "cli"),
            "--env_id",
            "FakePaint-v0",
            "--num_envs",
            "2",
            "--total_steps",
            "40",
            *SMALL,
        ]
    )
    assert rc == 1
    assert "training stopped" in capsys.readouterr().err


def test_train_and_eval_commands_smoke(tmp_path, capsys):
    from agents.evaluate import main as eval_main
    from agents.train import main as train_main

    out = tmp_path / "run"
    rc = train_main(
        [
            "--env_id",
            "FakePaint-v0",
            "--num_envs",
            "4",
            "--total_steps",
            "48",
            "--out_dir",
            str(out),
            "--sample_every",
            "1",
            "--eval_every",
            "2",
            "--eval_episodes",
            "4",
            "--disc",
            "sngan",
            "--disc_complement",
            *SMALL,
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "final metrics" in text and "eval/l2=" in text
    for f in ("checkpoint.pt", "samples.png", "episode.gif", "progress.csv", "metrics.json"):
        assert (out / f).is_file(), f
    rc = eval_main(
        [
            str(out / "checkpoint.pt"),
            "--episodes",
            "6",
            "--num_envs",
            "4",
            "--out",
            str(tmp_path / "ev"),
        ]
    )
    assert rc == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert 0 <= m["l2"] <= 1 and m["psnr"] > 0 and m["episodes"] == 6
    progs = json.loads((tmp_path / "ev" / "programs.json").read_text())["programs"]
    assert len(progs) == 6 and len(progs[0]["actions"]) == 4  # the fake env keeps no program
    # the final canvases and targets as arrays: their L2 is the reported one
    canvases = np.load(tmp_path / "ev" / "canvases.npy")
    targets = np.load(tmp_path / "ev" / "targets.npy")
    assert canvases.shape == targets.shape and canvases.shape[0] == 6 and canvases.dtype == np.uint8
    assert abs(float(l2_distance(canvases, targets).mean()) - m["l2"]) < 1e-6
    assert m["blank_l2"] > m["l2"] * 0 and "blank canvas: l2=" in capsys.readouterr().out
    # a slim policy-only export evaluates the same
    from agents.checkpoint import export_policy

    slim = export_policy(out / "checkpoint.pt", tmp_path / "slim.pt", half=False)
    assert slim.stat().st_size < (out / "checkpoint.pt").stat().st_size
    assert (
        eval_main([str(slim), "--episodes", "6", "--num_envs", "4", "--out", str(tmp_path / "ev2")])
        == 0
    )
    m2 = json.loads((tmp_path / "ev2" / "metrics.json").read_text())
    assert m2["l2"] == pytest.approx(m["l2"])
    assert train_main(["--num_envs", "0"]) == 2
    assert "num_envs = 0: accepted >= 1" in capsys.readouterr().err


def test_unconditional_l2_is_refused(tmp_path):
    from agents.train import train

    with pytest.raises(ValueError, match="needs a conditional env"):
        train(small_cfg(tmp_path, env_id="FakePaint-Uncond-v0", reward="l2"))


def test_pen_plane_marks_previous_end_cell():
    env = FakePaintEnv()  # 16 px canvas, 8x8 grid: one cell is 2x2 px
    pol = PolicyNet(env.action_spec, (16, 16, 1), True, NetConfig(channels=8, hidden=16, lstm=16))
    prev = torch.zeros(2, len(env.action_spec), dtype=torch.long)
    prev[:, 1] = 8 * 3 + 5  # end cell row 3, col 5
    plane = pol._pen_plane(prev, torch.tensor([1.0, 0.0]), (16, 16))
    assert plane.shape == (2, 1, 16, 16)
    assert plane[0, 0].nonzero().tolist() == [[6, 10], [6, 11], [7, 10], [7, 11]]
    assert plane[1, 0].nonzero().tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]  # first step: 0, 0


def test_bf16_falls_back_to_fp32_on_a_cpu_without_native_bfloat16(tmp_path, monkeypatch, capsys):
    import json

    import agents.build as build
    from agents.train import train

    amd = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n"
    assert build.cpu_has_native_bf16(amd) is False
    assert build.cpu_has_native_bf16(amd.replace("avx512bw", "avx512bw avx512_bf16")) is True
    assert build.cpu_has_native_bf16("Features\t: fp asimd bf16 i8mm\n") is True  # Arm
    monkeypatch.setattr(build, "cpu_has_native_bf16", lambda: False)
    train(small_cfg(tmp_path, precision="bf16", total_steps=8))
    assert "no native bfloat16" in capsys.readouterr().out
    assert json.loads((tmp_path / "config.json").read_text())["precision"] == "fp32"
    monkeypatch.setattr(build, "cpu_has_native_bf16", lambda: True)
    assert build.resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_bf16_precision_runs_and_stays_close(tmp_path, monkeypatch):
    import agents.build as build
    from agents.train import train

    monkeypatch.setattr(build, "cpu_has_native_bf16", lambda: True)  # bf16 here, whatever CPU
    s = train(small_cfg(tmp_path, precision="bf16", eval_every=1, eval_episodes=4))
    assert np.isfinite(s["losses/total"]) and 0 <= s["eval/l2"] <= 1
    import gymnasium as gym

    from agents.networks import autocast

    torch.manual_seed(0)
    env = FakePaintEnv()
    envs = gym.vector.SyncVectorEnv([FakePaintEnv] * 3)
    pol = PolicyNet(env.action_spec, (16, 16, 1), True, NetConfig(channels=8, hidden=16, lstm=16))
    r = Actor(envs, pol, precision="bf16").collect(seeds=[0, 1, 2])
    assert r.log_prob.dtype == np.float32 and r.values.dtype == np.float32
    with autocast("cpu", "bf16"):
        out = pol.evaluate(
            *(torch.from_numpy(x) for x in (r.canvases[:-1], r.targets, r.steps, r.actions)), None
        )
    assert out.value.dtype == torch.float32
    np.testing.assert_allclose(out.log_prob.float().detach().numpy(), r.log_prob, atol=0.3)
    envs.close()


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_pen_features_fast_path_is_exact(stride):
    env = FakePaintEnv()  # 16 px, 8x8 grid
    cfg = NetConfig(channels=4, hidden=8, lstm=8, stem_stride=stride)
    pol = PolicyNet(env.action_spec, (16, 16, 1), True, cfg)
    prev = torch.randint(0, 64, (5, len(env.action_spec)))
    valid = torch.tensor([1.0, 1, 0, 1, 1])
    fast = pol._pen_features(prev, valid, (16, 16))
    slow = pol.stem_pen(pol._pen_plane(prev, valid, (16, 16)))
    assert torch.allclose(fast, slow, atol=1e-6)


def test_critic_plugs_into_the_envs_discriminator_reward_wrapper():
    import gymnasium as gym

    import spiral_envs  # noqa: F401
    from spiral_envs.wrappers import DiscriminatorReward

    env = gym.make("SpiralPaint-MNIST-Cond-v0")
    critic = DiscriminatorLearner((64, 64, 1), True, CriticConfig(disc_channels=4, replay_size=0))
    env = DiscriminatorReward(env, critic, mode="per_step")
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        obs, reward, terminated, _, info = env.step(env.action_space.sample())
        assert np.isfinite(reward) and reward == pytest.approx(
            info["score"] - info["previous_score"], abs=1e-5
        )
    assert terminated
    env.close()


def test_train_smoke_on_the_real_mnist_env(tmp_path):
    from agents.train import train

    s = train(
        small_cfg(
            tmp_path,
            env_id="SpiralPaint-MNIST-Cond-v0",
            num_envs=2,
            total_steps=40,
            reward_mode="delta",
            sample_every=1,
        )
    )
    assert s["frames"] == 40 and np.isfinite(s["losses/total"])
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "episode.gif").is_file()


def test_train_mnist_example_smoke(tmp_path):
    from conftest import run_script

    out = tmp_path / "mnist"
    res = run_script(
        "examples/train_mnist.py",
        *("--minutes", 0.005, "--episodes", 4, "--threads", 1, "--out", out),
        timeout=120,
    )
    assert "held-out L2" in res.stdout and "blank canvas" in res.stdout
    for f in ("samples.png", "episode.gif", "metrics.json", "programs.json"):
        assert (out / "eval" / f).is_file(), f


def test_async_actor_with_vtrace_trains(tmp_path):
    from agents.train import train

    s = train(
        small_cfg(tmp_path, async_actor=True, off_policy="vtrace", total_steps=64, log_every=1)
    )
    assert s["frames"] == 64 and np.isfinite(s["losses/total"])
    # acted one update behind: the importance ratio is logged and finite
    assert np.isfinite(s["losses/importance_ratio"])


def _registry_ids():
    import gymnasium as gym

    import spiral_envs

    # the benchmark ids are envs in reward (and action) wrappers: the trainer scores rewards
    # itself and acts in the MultiDiscrete, so it drives the envs underneath them
    bench = set(spiral_envs.BENCH_IDS)
    return sorted(i for i in gym.registry if i.startswith("Spiral") and i not in bench)


@pytest.mark.parametrize("env_id", _registry_ids())
def test_the_same_trainer_drives_every_registered_env(tmp_path, env_id, celeba_dir):
    from conftest import env_kwargs

    from agents.train import train

    cond = "Cond" in env_id
    s = train(
        small_cfg(
            tmp_path,
            env_id=env_id,
            env_kwargs=env_kwargs(env_id, celeba_dir),
            num_envs=2,
            total_steps=40 if "Paint" in env_id else 10,
            reward="l2" if cond else "discriminator",
        )
    )
    assert np.isfinite(s["losses/total"])


def test_resume_from_the_command_line_uses_the_saved_config(tmp_path, capsys):
    from agents.train import main

    out = str(tmp_path / "r")
    assert (
        main(
            [
                "--env_id",
                "FakePaint-v0",
                "--num_envs",
                "2",
                "--total_steps",
                "16",
                "--out_dir",
                out,
                "--seed",
                "3",
                *SMALL,
            ]
        )
        == 0
    )
    # only the budget is given again: env, sizes and seed come from the checkpoint
    assert main(["--out_dir", out, "--resume", "--total_steps", "32", "--progress", "false"]) == 0
    assert "resumed" in capsys.readouterr().out
    ck = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    assert ck["frames"] == 32 and ck["config"]["seed"] == 3 and ck["config"]["channels"] == 8
