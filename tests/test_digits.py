"""The sample scores of unconditional digit generators: Fréchet distance and class histogram."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agents.digits import (  # noqa: E402
    DigitNet,
    class_histogram,
    frechet_distance,
    load_classifier,
    sample_scores,
    train_classifier,
)


def test_frechet_distance_of_one_dimensional_sets_by_hand():
    a = np.array([[0.0], [2.0]])  # mean 1, variance (n-1) 2
    b = np.array([[3.0], [3.0], [5.0], [5.0]])  # mean 4, variance 4/3
    expected = (1 - 4) ** 2 + 2 + 4 / 3 - 2 * math.sqrt(2 * 4 / 3)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_independent_dimensions_adds_up():
    rng = np.random.default_rng(0)
    # exact moments per dimension: columns of +-1 deviations, uncorrelated by construction
    signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float64)
    a = signs * [1.0, 2.0] + [0.0, 0.0]  # variances 4/3 * (1, 4)
    b = signs * [3.0, 1.0] + [1.0, -2.0]  # variances 4/3 * (9, 1)
    per_dim = [
        (0 - 1) ** 2 + 4 / 3 * (1 + 9) - 2 * 4 / 3 * 3,
        (0 + 2) ** 2 + 4 / 3 * (4 + 1) - 2 * 4 / 3 * 2,
    ]
    assert frechet_distance(a, b) == pytest.approx(sum(per_dim), rel=1e-12)
    x = rng.normal(size=(50, 8))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(x, x + 0.5) == pytest.approx(8 * 0.25, rel=1e-9)  # a shifted mean


def test_frechet_distance_rejects_bad_shapes():
    with pytest.raises(ValueError, match="feature arrays"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="feature arrays"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_class_histogram_counts_every_class():
    h = class_histogram(np.array([0, 0, 1, 9]))
    assert h.tolist() == [0.5, 0.25, 0, 0, 0, 0, 0, 0, 0, 0.25] and h.sum() == 1
    with pytest.raises(ValueError, match="no samples"):
        class_histogram(np.array([], np.int64))


def _stripes(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """White canvases with a dark vertical (class 0) or horizontal (class 1) bar."""
    images = np.full((n, 64, 64, 1), 255, np.uint8)
    labels = rng.integers(0, 2, size=n)
    for img, y, at in zip(images, labels, rng.integers(16, 48, size=n), strict=True):
        if y == 0:
            img[:, at - 3 : at + 3] = 0
        else:
            img[at - 3 : at + 3, :] = 0
    return images, labels


def test_classifier_learns_and_sample_scores_tell_samples_apart():
    rng = np.random.default_rng(0)
    train, test = _stripes(512, rng), _stripes(128, rng)
    net, acc = train_classifier(train, test, epochs=2, batch=32, progress=False)
    assert acc > 0.9
    verticals = test[0][test[1] == 0]
    same = sample_scores(net, verticals[: len(verticals) // 2], verticals[len(verticals) // 2 :])
    other = sample_scores(net, test[0][test[1] == 1], verticals)
    assert same["sample_fd"] < other["sample_fd"]
    assert same["class_fractions"][0] > 0.9 and other["class_fractions"][1] > 0.9
    assert other["min_class_fraction"] == 0.0


def test_the_shipped_classifier_reads_the_shipped_digits():
    import gymnasium as gym

    import spiral_envs  # noqa: F401

    net = load_classifier()
    assert isinstance(net, DigitNet)
    env = gym.make("SpiralPaint-MNIST-v0", split="test")
    ds = env.unwrapped.dataset
    images, labels = ds.images[:300], ds.labels[:300]
    _, _ = env.reset(seed=0)
    env.close()
    from agents.digits import features_and_classes

    _, predicted = features_and_classes(net, images)
    assert np.mean(predicted == labels) > 0.95


def test_spiral_eval_scores_an_unconditional_mnist_agent_with_the_classifier(tmp_path):
    import json

    from fakes import small_cfg

    from agents.evaluate import main as eval_main
    from agents.train import train

    run = tmp_path / "run"
    train(small_cfg(run, env_id="SpiralPaint-MNIST-v0", num_envs=2, total_steps=40))
    out = tmp_path / "eval"
    assert eval_main([str(run / "checkpoint.pt"), "--episodes", "8", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["sample_fd"] > 0 and len(m["class_fractions"]) == 10
    assert sum(m["class_fractions"]) == pytest.approx(1, abs=1e-3)
    assert np.load(out / "canvases.npy").shape == (8, 64, 64, 1)


def test_a_missing_classifier_says_how_to_train_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m agents.digits"):
        load_classifier(tmp_path / "none.pt")


def test_digit_scores_script_draws_disjoint_samples_with_the_checkpoints_env(tmp_path):
    import json

    from conftest import run_script
    from fakes import small_cfg

    from agents.evaluate import EVAL_SEED, evaluate_checkpoint
    from agents.train import train

    kwargs = {"brush_sizes": [2, 3], "pen_start": "centre"}
    run = tmp_path / "run"
    train(small_cfg(run, env_id="SpiralPaint-MNIST-v0", env_kwargs=kwargs, total_steps=40))
    ck = str(run / "checkpoint.pt")
    out = tmp_path / "scores.json"
    args = (ck, "--samples", 6, "--draws", 2, "--out", out)
    printed = run_script("benchmarks/digit_scores.py", *args).stdout
    result = json.loads(out.read_text())
    assert result["env_kwargs"] == kwargs  # the random agent painted with the agent's env
    row = result["rows"][ck]
    first, second = row["draws"]
    assert first["sample_fd"] != second["sample_fd"]  # disjoint episodes
    assert row["sample_fd_mean"] == pytest.approx((first["sample_fd"] + second["sample_fd"]) / 2)
    again = evaluate_checkpoint(ck, None, episodes=6, num_envs=50, seed=EVAL_SEED)
    assert row["sample_fd"] == pytest.approx(again["sample_fd"])
    assert "2 draws of 6" in printed
    bad = run_script("benchmarks/digit_scores.py", ck, "--temperature", "1", "0", returncode=2)
    assert "--temperature 1.0 0.0: accepted > 0" in bad.stderr
