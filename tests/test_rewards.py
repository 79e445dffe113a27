"""Reward math (pure functions, hand-computed) and the reward wrappers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import spiral_envs  # noqa: F401
from spiral_envs.protocols import Discriminator
from spiral_envs.rewards import (
    L2Discriminator,
    empty_canvas_penalty,
    final_step_rewards,
    ink_fraction,
    l2_distance,
    per_step_rewards,
    psnr,
    stroke_penalty,
)
from spiral_envs.wrappers import DiscriminatorReward, L2Reward


def test_l2_and_psnr_by_hand():
    a = np.full((2, 2, 2, 1), 255, np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 0  # one of four pixels fully wrong -> 0.25
    b[1] = 255 - 51  # every pixel off by 0.2 -> 0.04
    np.testing.assert_allclose(l2_distance(a, b), [0.25, 0.04], rtol=1e-6)
    np.testing.assert_allclose(psnr(a, b), [-10 * np.log10(0.25), -10 * np.log10(0.04)], rtol=1e-5)
    assert np.isinf(psnr(a, a)).all()


def test_final_and_per_step_rewards():
    scores = np.array([0.5, 0.7, 0.2], np.float32)
    np.testing.assert_allclose(
        final_step_rewards(scores, np.array([False, False, True])), [0, 0, 0.2]
    )
    episode = np.array([0.1, 0.4, 0.3, 0.9], np.float32)  # D(c_0) .. D(c_3)
    r = per_step_rewards(episode[1:], episode[:-1])
    np.testing.assert_allclose(r, [0.3, -0.1, 0.6], rtol=1e-6)
    assert r.sum() == pytest.approx(episode[-1] - episode[0])


def test_penalties():
    np.testing.assert_allclose(stroke_penalty(np.array([0, 1, 1]), 0.5), [0, -0.5, -0.5])
    blank = np.full((2, 8, 8, 1), 255, np.uint8)
    blank[1, 3, 3] = 0
    assert ink_fraction(blank)[1] == pytest.approx(1 / 64)
    np.testing.assert_allclose(empty_canvas_penalty(blank, 2.0), [-2.0, 0.0])


def test_l2_discriminator_is_a_discriminator():
    d = L2Discriminator()
    assert isinstance(d, Discriminator)
    blank = np.full((3, 4, 4, 1), 255, np.uint8)
    np.testing.assert_array_equal(d(blank, blank), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="needs targets"):
        d(blank, None)


class CountInk:
    """An unconditional toy discriminator: the score is the ink fraction."""

    def __init__(self):
        self.calls = []

    def __call__(self, canvases, targets=None):
        self.calls.append((canvases.shape, targets is None))
        return ink_fraction(canvases)


def run(env, seed=0, n=20):
    env.reset(seed=seed)
    env.action_space.seed(seed)
    out = []
    for _ in range(n):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append((r, info))
    return out, obs


def test_discriminator_reward_final():
    d = CountInk()
    env = DiscriminatorReward(gym.make("SpiralPaint-MNIST-v0"), d, mode="final")
    out, obs = run(env)
    rewards = [r for r, _ in out]
    assert rewards[:-1] == [0.0] * 19
    assert rewards[-1] == pytest.approx(float(ink_fraction(obs["canvas"][None])[0]))
    assert d.calls == [((1, 64, 64, 1), True)]  # scored once, unconditionally


def test_discriminator_reward_per_step_sums_to_final_score():
    env = DiscriminatorReward(gym.make("SpiralPaint-MNIST-v0"), CountInk(), mode="per_step")
    out, obs = run(env)
    total = sum(r for r, _ in out)
    assert total == pytest.approx(float(ink_fraction(obs["canvas"][None])[0]), abs=1e-5)


def test_stroke_and_empty_penalties_in_wrapper():
    base = gym.make("SpiralPaint-MNIST-v0")
    env = DiscriminatorReward(
        base, lambda c, t=None: np.zeros(len(c), np.float32), stroke_penalty=0.1, empty_penalty=1.0
    )
    env.reset(seed=0)
    move = np.zeros(5, np.int64)
    paint = np.array([1, 40, 50, 2, 9])
    rewards = [env.step(a)[1] for a in [paint, paint, move, paint] + [move] * 16]
    assert rewards[0] == pytest.approx(-0.1) and rewards[1] == 0.0
    assert rewards[3] == pytest.approx(-0.1)
    assert rewards[-1] == 0.0  # something was drawn: no empty penalty
    env.reset(seed=0)
    rewards = [env.step(move)[1] for _ in range(20)]
    assert rewards[-1] == pytest.approx(-1.0)


def test_l2_reward_conditional():
    env = L2Reward(gym.make("SpiralPaint-MNIST-Cond-v0"))
    out, obs = run(env)
    assert out[-1][0] == pytest.approx(-out[-1][1]["l2"], rel=1e-5)
    per = L2Reward(gym.make("SpiralPaint-MNIST-Cond-v0"), mode="per_step")
    out, obs = run(per)
    blank = np.full_like(obs["canvas"], 255)
    start = float(l2_distance(blank, obs["target"]))
    assert sum(r for r, _ in out) == pytest.approx(start - out[-1][1]["l2"], abs=1e-5)


def test_delta_is_an_alias_of_per_step():
    delta = L2Reward(gym.make("SpiralPaint-MNIST-Cond-v0"), mode="delta")
    assert delta.mode == "per_step"
    per = L2Reward(gym.make("SpiralPaint-MNIST-Cond-v0"), mode="per_step")
    assert [r for r, _ in run(delta)[0]] == [r for r, _ in run(per)[0]]
    wrapped = DiscriminatorReward(gym.make("SpiralPaint-MNIST-v0"), CountInk(), mode="delta")
    assert wrapped.mode == "per_step"
    with pytest.raises(ValueError, match="accepted 'final', 'per_step', 'delta'"):
        DiscriminatorReward(gym.make("SpiralPaint-MNIST-v0"), CountInk(), mode="deltas")


def test_wrapper_bad_input():
    with pytest.raises(ValueError, match="conditional env"):
        L2Reward(gym.make("SpiralPaint-MNIST-v0"))
    with pytest.raises(ValueError, match="mode 'last'"):
        DiscriminatorReward(gym.make("SpiralPaint-MNIST-v0"), CountInk(), mode="last")
    with pytest.raises(ValueError, match="stroke_penalty must be"):
        DiscriminatorReward(gym.make("SpiralPaint-MNIST-v0"), CountInk(), stroke_penalty=-1)
    with pytest.raises(ValueError, match="callable"):
        DiscriminatorReward(gym.make("SpiralPaint-MNIST-v0"), 3)
