"""Bad input a new user meets first gets one line that says what is wrong and what is accepted,
and exit status 2 from the console scripts: one test per row of the first-contact table."""

from __future__ import annotations

import gymnasium as gym
import pytest

torch = pytest.importorskip("torch")

from fakes import register_fake_env, small_cfg  # noqa: E402

import spiral_envs  # noqa: E402, F401
from agents import PRETRAINED  # noqa: E402
from agents.checkpoint import CheckpointError, load_agent_checkpoint  # noqa: E402
from agents.evaluate import main as eval_main  # noqa: E402
from agents.train import main as train_main  # noqa: E402
from agents.train import train  # noqa: E402

register_fake_env()
AGENT = PRETRAINED / "mnist_cond_l2.pt"


def _one_line_error(capsys, prog: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{prog}: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_eval_of_a_text_file_says_it_is_not_a_checkpoint(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert eval_main([str(text), "--out", str(tmp_path / "ev")]) == 2
    err = _one_line_error(capsys, "spiral-eval")
    assert "is not a checkpoint" in err and "accepted a checkpoint.pt" in err


def test_eval_of_the_shipped_classifier_says_it_is_not_an_agent(tmp_path, capsys):
    assert eval_main([str(PRETRAINED / "mnist_classifier.pt"), "--out", str(tmp_path)]) == 2
    err = _one_line_error(capsys, "spiral-eval")
    assert "is not an agent checkpoint" in err and "mnist_cond_l2.pt" in err
    assert (PRETRAINED / "mnist_cond_l2.pt").is_file()  # the advice names a file that exists


def test_eval_of_a_truncated_checkpoint_says_so(tmp_path, capsys):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(AGENT.read_bytes()[:30_000])
    assert eval_main([str(cut), "--out", str(tmp_path / "ev")]) == 2
    assert "is truncated or damaged" in _one_line_error(capsys, "spiral-eval")


def test_a_checkpoint_damaged_inside_is_called_damaged_not_unsafe(tmp_path):
    data = bytearray(AGENT.read_bytes())
    data[5000:6000] = bytes(1000)  # zeros in the middle: the archive's end is intact
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        load_agent_checkpoint(bad)
    assert load_agent_checkpoint(AGENT)["config"]["env_id"] == "SpiralPaint-MNIST-Cond-v0"


def test_train_with_an_unknown_env_id_lists_the_accepted_ids(tmp_path, capsys):
    argv = [
        "--env_id",
        "SpiralPaint-Nonexistent-v0",
        "--out_dir",
        str(tmp_path),
        "--max_minutes",
        "1",
    ]
    assert train_main(argv) == 2
    err = _one_line_error(capsys, "spiral-train")
    assert "doesn't exist" in err and all(i in err for i in spiral_envs.ENV_IDS)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_an_unknown_env_keyword_names_the_nearest_and_every_accepted_one(tmp_path, capsys):
    with pytest.raises(TypeError, match=r"'brush_size' \(did you mean 'brush_sizes'\?\)"):
        gym.make("SpiralPaint-MNIST-Cond-v0", brush_size=[2])
    with pytest.raises(TypeError, match="accepted: conditional, canvas_size"):
        gym.make("SpiralMuJoCo-Scene-v0", colour=1)
    argv = ["--env_kwargs", '{"brush_size": [2]}', "--out_dir", str(tmp_path), "--max_minutes", "1"]
    assert train_main(argv) == 2
    err = _one_line_error(capsys, "spiral-train")
    assert "did you mean 'brush_sizes'" in err and "pen_start" in err
    gym.make("SpiralPaint-MNIST-Cond-v0", brush_sizes=[2]).close()  # the advice works


def test_resume_without_a_checkpoint_is_an_error_not_a_new_run(tmp_path, capsys):
    out = tmp_path / "mistyped"
    assert train_main(["--out_dir", str(out), "--resume", "--max_minutes", "1"]) == 2
    err = _one_line_error(capsys, "spiral-train")
    assert "no checkpoint at" in err and "leave out --resume" in err
    assert not (out / "checkpoint.pt").exists()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(small_cfg(out, resume=True))
    # the advice: without --resume the same out_dir starts a run, which then resumes
    train(small_cfg(out, total_steps=16))
    assert train(small_cfg(out, total_steps=32, resume=True))["frames"] == 32


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--reward", "discriminator"], "add --backend ray"),
        (["--backend", "ray", "--reward", "l2"], "use it with --reward discriminator"),
    ],
)
def test_a_discriminator_actor_where_it_cannot_run_is_one_line(tmp_path, capsys, flags, said):
    argv = ["--total_steps", "40", "--out_dir", str(tmp_path / "run"), "--disc_placement"]
    assert train_main([*argv, "actor", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
