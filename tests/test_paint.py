"""The painting env's semantics: stroke maths, the pen, pressure, programs, bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import gymnasium as gym
import numpy as np
import pytest

import spiral_envs  # noqa: F401
from spiral_envs import ImageDataset
from spiral_envs.paint import CairoPainter, PaintEnv, Stroke, StrokeProgram, render_program
from spiral_envs.paint.strokes import brush_alpha


def action(env, **parts):
    """An action vector from named components (unnamed ones 0)."""
    spec = env.unwrapped.action_spec
    a = np.zeros(len(spec), dtype=np.int64)
    for name, value in parts.items():
        a[spec.index(name)] = value
    return a


def cell(env, x, y):
    return y * env.unwrapped.grid + x


def ink(canvas):
    return 255 - canvas.astype(int).min(axis=-1)


@pytest.fixture
def env():
    e = gym.make("SpiralPaint-MNIST-v0")
    e.reset(seed=0)
    yield e
    e.close()


def test_action_space_order_and_tables():
    grey = PaintEnv("mnist")
    assert grey.action_spec.names == ("flag", "end", "control", "size", "pressure")
    np.testing.assert_array_equal(grey.action_space.nvec, [2, 1024, 1024, 6, 10])
    np.testing.assert_allclose(grey.action_spec["pressure"].values, np.linspace(0.1, 1, 10))
    np.testing.assert_array_equal(grey.action_spec["size"].values, [1, 2, 4, 8, 12, 24])
    # Grid index -> pixel: canvas * idx / grid, row-major flat index (row = y).
    end = grey.action_spec["end"]
    assert end.grid == (32, 32)
    np.testing.assert_allclose(end.values[cell(grey, 5, 9)] * 64, [10, 18])
    colour = PaintEnv("faces")
    assert colour.action_spec.names[-3:] == ("red", "green", "blue")
    np.testing.assert_allclose(colour.action_spec["red"].values, np.linspace(0, 1, 20))
    mask = colour.action_spec.active_mask(np.array([[0] * 8, [1] * 8]))
    np.testing.assert_array_equal(mask[0], [1, 1, 0, 0, 0, 0, 0, 0])
    assert mask[1].all()


def test_bezier_point():
    s = Stroke((0.0, 0.0), (0.5, 1.0), (1.0, 0.0), (1.0, 1.0), 0.01)
    np.testing.assert_allclose(s.point(0.0), [0, 0])
    np.testing.assert_allclose(s.point(1.0), [1, 0])
    np.testing.assert_allclose(s.point(0.5), [0.5, 0.5])  # 0.25 p0 + 0.5 c + 0.25 p2


def test_stroke_follows_the_curve():
    painter = CairoPainter(64, 1)
    s = Stroke((0.1, 0.1), (0.5, 0.9), (0.9, 0.1), (1.0, 1.0), 1.5 / 64)
    painter.draw(s)
    canvas = painter.canvas()[..., 0]
    for t in np.linspace(0.05, 0.95, 10):
        x, y = (s.point(t) * 64).astype(int)
        assert canvas[y - 1 : y + 2, x - 1 : x + 2].min() < 100, (t, x, y)
    # The chord between the end points is not painted (the curve bulges away from it).
    assert canvas[6, 32] == 255


def test_move_stores_x_and_y(env):
    """The original stored a move's target as (y, y); a stroke must start at the real (x, y)."""
    env.step(action(env, flag=0, end=cell(env, 24, 4)))
    assert env.unwrapped.pen == pytest.approx((24 / 32, 4 / 32))
    obs, *_ = env.step(
        action(env, flag=1, end=cell(env, 24, 28), control=cell(env, 24, 16), size=1, pressure=9)
    )
    column = ink(obs["canvas"])[:, 47:50].max(axis=1)  # x = 48 px
    assert column[12:52].min() > 10  # painted from y = 8 px down to y = 56 px (pressure ramps up)
    assert ink(obs["canvas"])[:, :40].max() == 0  # nothing near x = y = 8 px (the bug's start)
    assert env.unwrapped.program.steps[0].end == pytest.approx((0.75, 0.125))


def test_pen_starts_top_left_and_pressure_ramps(env):
    obs, *_ = env.step(
        action(env, flag=1, end=cell(env, 30, 0), control=cell(env, 15, 0), size=2, pressure=9)
    )
    band = ink(obs["canvas"])[0:3]
    # Pressure goes from 0 (pen just put down) to 1: ink grows along the stroke.
    start, middle, end = (band[:, x : x + 8].mean() for x in (2, 28, 52))
    assert start < middle < end
    # At full pressure the dry brush deposits alpha(1) through a grain of 0.45..1.
    assert 0.45 * 255 * brush_alpha(1.0) - 2 <= band[1, 61] <= 255 * brush_alpha(1.0)
    stroke = env.unwrapped.program.steps[0]
    assert stroke.start == (0.0, 0.0) and stroke.pressure == (0.0, 1.0)
    # The next stroke starts at the previous pressure.
    env.step(action(env, flag=1, end=cell(env, 30, 30), control=cell(env, 30, 15), pressure=0))
    assert env.unwrapped.program.steps[1].pressure == (1.0, 0.1)


def test_move_paints_nothing_and_ignores_other_components(env):
    obs0, *_ = env.step(
        action(env, flag=1, end=cell(env, 20, 20), control=cell(env, 9, 3), size=3, pressure=5)
    )
    a = action(env, flag=0, end=cell(env, 3, 30), control=77, size=5, pressure=9)
    b = action(env, flag=0, end=cell(env, 3, 30))
    e2 = gym.make("SpiralPaint-MNIST-v0")
    e2.reset(seed=0)
    e2.step(action(e2, flag=1, end=cell(e2, 20, 20), control=cell(e2, 9, 3), size=3, pressure=5))
    o1, *_ = env.step(a)
    o2, *_ = e2.step(b)
    np.testing.assert_array_equal(o1["canvas"], obs0["canvas"])
    np.testing.assert_array_equal(o1["canvas"], o2["canvas"])
    assert env.unwrapped.pen == e2.unwrapped.pen


def test_stroke_statistics_and_episode_end(env):
    paint = action(env, flag=1, end=cell(env, 10, 10), control=cell(env, 5, 5), pressure=9)
    move = action(env, flag=0, end=cell(env, 20, 20))
    seq = [paint, paint, move, paint, move, move, paint, paint] + [move] * 12
    for t, a in enumerate(seq, start=1):
        obs, reward, terminated, truncated, info = env.step(a)
        assert reward == 0.0 and not truncated
        assert obs["step"][0] == t
        assert terminated == (t == 20)
    assert info["strokes"] == 5 and info["disjoint_strokes"] == 3
    target = env.unwrapped.target
    expected = np.mean(((obs["canvas"].astype(float) - target) / 255) ** 2)
    assert info["l2"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(move)


def test_program_rerenders_exactly_and_at_any_size():
    env = gym.make("SpiralPaint-Faces-v0")
    env.reset(seed=1)
    env.action_space.seed(1)
    for _ in range(20):
        obs, *_ = env.step(env.action_space.sample())
    program = env.unwrapped.program
    np.testing.assert_array_equal(render_program(program), obs["canvas"])
    big = render_program(program, 256)
    assert big.shape == (256, 256, 3)
    small = big.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
    assert np.abs(small - obs["canvas"]).mean() < 6  # the same picture, sharper
    again = StrokeProgram.from_json(program.to_json())
    assert again == program
    json.loads(program.to_json())
    svg = ET.fromstring(program.to_svg(128))
    paths = [el for el in svg.iter() if el.tag.endswith("path")]
    assert len(paths) == len(program.strokes)
    assert svg.get("width") == "128"


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([2, 0, 0, 0, 0]), "flag.*accepted 0..1"),
        (np.array([1, 1024, 0, 0, 0]), "end.*accepted 0..1023"),
        (np.array([1, 0, 0, 0, -1]), "pressure"),
        (np.array([1, 0, 0, 0]), "5 components"),
        (np.array([1.5, 0, 0, 0, 0]), "not an integer"),
        ("paint", "5 components"),
    ],
)
def test_bad_actions_raise_clear_errors(env, bad, match):
    with pytest.raises(ValueError, match=match):
        env.step(bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dataset": "cifar"}, "unknown dataset 'cifar'.*accepted"),
        ({"grid": 0}, "grid must be in 2..64"),
        ({"canvas_size": "64"}, "canvas_size must be an integer"),
        ({"canvas_size": True}, r"canvas_size must be an integer in 8\.\.4096, got True"),
        ({"grid": 65}, r"grid must be in 2\.\.64, got 65"),
        ({"episode_length": 0}, r"episode_length must be in 1\.\.255"),
        ({"episode_length": 256}, r"episode_length must be in 1\.\.255, got 256"),
        ({"brush_sizes": []}, "brush_sizes must be a non-empty list"),
        ({"brush_sizes": [1, -2]}, "brush_sizes"),
        ({"render_mode": "human"}, "render_mode 'human' is not supported"),
        ({"color": "yes"}, "color must be"),
        ({"pressure_levels": 0}, "pressure_levels must be >= 1"),
    ],
)
def test_bad_kwargs_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PaintEnv(**kwargs)


@pytest.mark.parametrize("dataset, color", [("mnist", True), ("faces", False)])
def test_dataset_in_the_other_channel_count(dataset, color):
    data = PaintEnv(dataset, color=color, canvas_size=32).dataset
    assert isinstance(data, ImageDataset)
    assert data.image_shape == (32, 32, 3 if color else 1)
    batch = data.sample(np.random.default_rng(0), 3)
    idx = np.random.default_rng(0).integers(0, len(data), size=3)  # what ArrayDataset draws
    np.testing.assert_array_equal(batch, np.stack([data[int(i)] for i in idx]))
    assert data.sample(np.random.default_rng(0), 0).shape == (0, *data.image_shape)


def test_custom_configuration():
    env = PaintEnv(
        "mnist",
        conditional=True,
        canvas_size=48,
        grid=16,
        episode_length=5,
        brush_sizes=[2, 3],
        color=True,
    )
    obs, _ = env.reset(seed=0)
    assert obs["canvas"].shape == (48, 48, 3) and obs["target"].shape == (48, 48, 3)
    assert env.action_space.nvec.tolist() == [2, 256, 256, 2, 10, 20, 20, 20]
    for _ in range(5):
        obs, _, terminated, _, _ = env.step(env.action_space.sample())
    assert terminated


def test_canvas_not_a_multiple_of_the_grid_warns_and_render_mode_defaults_to_none():
    with pytest.warns(UserWarning, match=r"canvas_size=63 is not a multiple of grid=32"):
        env = PaintEnv("mnist", canvas_size=63)
    obs, _ = env.reset(seed=0)
    assert obs["canvas"].shape == (63, 63, 1)
    env.close()
    made = gym.make("SpiralPaint-MNIST-v0")
    assert made.render_mode is None and made.unwrapped.render_mode is None
    made.close()


def test_pen_start_centre_paints_the_first_stroke_from_the_centre():
    env = gym.make("SpiralPaint-MNIST-v0", pen_start="centre")
    env.reset(seed=0)
    assert env.unwrapped.pen == (0.5, 0.5)
    obs, *_ = env.step(
        action(env, flag=1, end=cell(env, 30, 16), control=cell(env, 23, 16), size=2, pressure=9)
    )
    assert env.unwrapped.program.steps[0].start == (0.5, 0.5)
    assert ink(obs["canvas"])[:, :28].max() == 0  # nothing left of the centre, none at the corner
    assert ink(obs["canvas"])[30:34, 40:60].min() > 0
    env.step(action(env, flag=0, end=cell(env, 3, 3)))
    env.reset(seed=1)  # a reset puts the pen back at the centre
    assert env.unwrapped.pen == (0.5, 0.5)


def test_bad_pen_start_is_refused_with_the_accepted_values():
    with pytest.raises(ValueError, match=r"pen_start must be one of \['centre', 'corner'\]"):
        gym.make("SpiralPaint-MNIST-v0", pen_start="center")
    with pytest.raises(ValueError, match="pen_start must be one of"):
        gym.make("SpiralPaint-MNIST-v0", pen_start=[0.5, 0.5])  # from JSON env kwargs


def test_program_step_is_what_step_adds_and_changes_nothing():
    env = gym.make("SpiralPaint-Faces-Cond-v0", split="test")
    env.reset(seed=3)
    env.action_space.seed(3)
    core = env.unwrapped
    for _ in range(12):
        a = env.action_space.sample()
        canvas, pen = core.canvas, core.pen
        item = core.program_step(a)
        assert np.array_equal(core.canvas, canvas) and core.pen == pen  # nothing painted yet
        env.step(a)
        assert core.program.steps[-1] == item
    with pytest.raises(ValueError, match="outside the action space"):
        core.program_step([2, 0, 0, 0, 0, 0, 0, 0])


def test_program_step_after_a_move_is_the_stroke_the_env_paints_after_that_move():
    env = gym.make("SpiralPaint-MNIST-Cond-v0", split="test")
    env.reset(seed=1)
    core = env.unwrapped
    env.step([1, 100, 50, 2, 9])  # a stroke: the pen is down, at full pressure
    paint = [1, 300, 200, 1, 5]
    ahead = core.program_step(paint, after_move_to=600)
    assert core.pen == tuple(core.action_spec["end"].values[100])  # nothing moved
    env.step([0, 600, 0, 0, 0])
    env.step(paint)
    assert core.program.steps[-1] == ahead and ahead.pressure[0] == 0.0
    with pytest.raises(ValueError, match="outside the action space"):
        core.program_step(paint, after_move_to=32 * 32)


def test_painter_snapshot_restores_the_pixels_exactly():
    painter = CairoPainter(32, channels=3)
    first = Stroke((0.1, 0.1), (0.5, 0.9), (0.9, 0.2), (1.0, 1.0), 0.1, (0.8, 0.1, 0.1))
    second = Stroke((0.9, 0.9), (0.2, 0.5), (0.1, 0.9), (0.5, 1.0), 0.2, (0.1, 0.2, 0.9))
    painter.draw(first)
    after_first = painter.canvas()
    snap = painter.snapshot()
    painter.draw(second)
    after_both = painter.canvas()
    assert not np.array_equal(after_both, after_first)
    painter.restore(snap)
    assert np.array_equal(painter.canvas(), after_first)
    painter.draw(second)  # cairo sees the restored pixels, not a cached surface
    assert np.array_equal(painter.canvas(), after_both)
