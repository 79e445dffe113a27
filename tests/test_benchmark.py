"""The benchmark's score API and ``spiral-bench``: the numbers are the ones computed by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import ROOT, run_script

import spiral_envs  # noqa: F401
from spiral_envs.benchmark import (
    EVAL_SEED,
    TracerPolicy,
    best_constant_image,
    held_out_baselines,
    iqm,
    iqm_interval,
    normalised_score,
    random_policy,
    score,
)
from spiral_envs.paint.scripted import ScriptedTracer
from spiral_envs.rewards import l2_distance

MNIST = "SpiralPaint-MNIST-Cond-v0"
PRETRAINED = Path(__file__).resolve().parents[1] / "agents" / "pretrained"


class Recording:
    """Wraps a batch policy and keeps every batch of actions it returned."""

    def __init__(self, policy) -> None:
        self.policy, self.batches = policy, []

    def __call__(self, obs):
        a = np.asarray(self.policy(obs))
        self.batches.append(a.copy())
        return a


def by_hand(env_id: str, episodes: int, act_of, **kwargs) -> tuple[list[float], list[float]]:
    """Each held-out episode in its own env: (final L2s, blank L2s). ``act_of(i, t, obs)``."""
    env = gym.make(env_id, split="test", **kwargs)
    finals, blanks = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        blanks.append(float(l2_distance(obs["canvas"], obs["target"])))
        t, done = 0, False
        while not done:
            obs, _, done, _, info = env.step(act_of(i, t, obs))
            t += 1
        finals.append(info["l2"])
    env.close()
    return finals, blanks


def test_score_of_a_random_policy_is_the_l2_of_its_episodes_by_hand():
    rec = Recording(random_policy(MNIST, seed=3))
    s = score(MNIST, rec, episodes=10, num_envs=4)  # 3 batches, the last one cut to 10
    assert s["episodes"] == 10 and s["seed"] == EVAL_SEED
    batches = [rec.batches[b * 20 : (b + 1) * 20] for b in range(3)]  # 20 steps an episode

    def replay(i, t, obs):
        return batches[i // 4][t][i % 4]

    finals, blanks = by_hand(MNIST, 10, replay)
    assert s["l2"] == pytest.approx(np.mean(finals), rel=1e-6)
    assert s["blank_l2"] == pytest.approx(np.mean(blanks), rel=1e-6)
    psnr = np.mean([-10 * np.log10(x) for x in finals])
    assert s["psnr"] == pytest.approx(psnr, rel=1e-5)
    # the score does not depend on the batch size
    rec2 = Recording(lambda obs: rec.batches[len(rec2.batches)])
    assert score(MNIST, rec2, episodes=4, num_envs=4)["l2"] == pytest.approx(np.mean(finals[:4]))


def test_score_of_the_scripted_tracer_matches_a_single_env_tracer():
    s = score(MNIST, TracerPolicy(seed=0), episodes=3, num_envs=3)
    env = gym.make(MNIST, split="test")
    finals = []
    for i in range(3):
        tracer = ScriptedTracer(env, seed=i)
        obs, _ = env.reset(seed=EVAL_SEED + i)
        tracer.reset(obs["target"])
        done = False
        while not done:
            obs, _, done, _, info = env.step(tracer.act(obs))
        finals.append(info["l2"])
    assert s["l2"] == pytest.approx(np.mean(finals), rel=1e-6)
    assert s["l2"] < s["blank_l2"]


def test_score_of_an_sb3_model_is_its_deterministic_l2_by_hand():
    sb3 = pytest.importorskip("stable_baselines3")
    bench = "SpiralBench-MNIST-Cond-v0"
    model = sb3.PPO("MultiInputPolicy", gym.make(bench), n_steps=32, batch_size=32, seed=0)
    model.learn(total_timesteps=32)
    s = score(bench, model, episodes=3, num_envs=2)

    def predict(i, t, obs):
        return model.predict(obs, deterministic=True)[0]

    finals, blanks = by_hand(bench, 3, predict)
    assert s["l2"] == pytest.approx(np.mean(finals), rel=1e-6)
    assert s["blank_l2"] == pytest.approx(np.mean(blanks), rel=1e-6)


def test_score_of_scenes_has_the_recovery_scores():
    s = score("SpiralMuJoCo-Scene-Cond-v0", random_policy("SpiralMuJoCo-Scene-Cond-v0"), 4)
    for k in ("l2", "blank_l2", "type_accuracy", "color_accuracy", "count_error"):
        assert s[k] is not None and np.isfinite(s[k]), k
    assert 0 <= s["type_accuracy"] <= 1


def test_score_rejects_bad_arguments_and_bad_policies():
    with pytest.raises(ValueError, match="episodes"):
        score(MNIST, random_policy(MNIST), episodes=0)
    with pytest.raises(ValueError, match="expected a function"):
        score(MNIST, object(), episodes=1)
    with pytest.raises(ValueError, match="returned 1 actions for 2"):
        score(MNIST, lambda obs: random_policy(MNIST)(obs)[:1], episodes=2, num_envs=2)


def test_the_best_constant_image_is_the_training_mean_and_beats_its_neighbours():
    c = best_constant_image(MNIST, samples=256)
    assert c.dtype == np.uint8 and c.shape == (64, 64, 1)
    env = gym.make(MNIST, split="train")
    targets = []
    for i in range(256):  # the same training targets, by hand
        env.reset(seed=i)
        targets.append(env.unwrapped.target.astype(np.float64))
    env.close()
    assert np.array_equal(c, np.round(np.mean(targets, 0)).astype(np.uint8))
    brighter, darker = (np.clip(c.astype(int) + d, 0, 255).astype(np.uint8) for d in (20, -20))
    tests = [t.astype(np.uint8) for t in targets[:64]]
    l2 = {n: np.mean([l2_distance(x, t) for t in tests]) for n, x in [("c", c), ("b", brighter)]}
    assert l2["c"] < l2["b"] and l2["c"] < np.mean([l2_distance(darker, t) for t in tests])


def test_the_normalised_score_is_0_for_the_constant_image_and_below_0_for_a_blank_canvas():
    assert normalised_score(0.0, 0.06) == 1.0 and normalised_score(0.06, 0.06) == 0.0
    move = np.zeros(5, np.int64)  # flag 0: a move paints nothing, the canvas stays blank
    s = score(MNIST, lambda obs: np.repeat(move[None], len(obs["step"]), 0), episodes=8)
    assert s["l2"] == pytest.approx(s["blank_l2"]) and s["constant_l2"] < s["blank_l2"]
    assert s["normalised"] == pytest.approx(1 - s["l2"] / s["constant_l2"]) and s["normalised"] < 0


def test_iqm_is_the_mean_of_the_middle_half_and_its_interval_covers_it():
    assert iqm([1, 2, 3]) == 2 and iqm([0, 1, 2, 100]) == 1.5  # 0 and 100 are cut
    assert iqm([5, 1, 3, 2, 4, 100, -50, 3]) == pytest.approx(np.mean([2, 3, 3, 4]))
    lo, hi = iqm_interval([0.1, 0.2, 0.3, 0.4, 0.5], reps=2000)
    assert 0.1 <= lo < iqm([0.1, 0.2, 0.3, 0.4, 0.5]) < hi <= 0.5
    assert iqm_interval([0.3, 0.3]) == (0.3, 0.3)


def test_held_out_baselines_are_the_ones_score_reports():
    move = np.zeros(5, np.int64)
    s = score(MNIST, lambda obs: np.repeat(move[None], len(obs["step"]), 0), episodes=6)
    b = held_out_baselines(MNIST, episodes=6)
    assert b["blank_l2"] == pytest.approx(s["blank_l2"]) and b["constant_l2"] == pytest.approx(
        s["constant_l2"]
    )


def test_agent_policy_scores_what_spiral_eval_reports():
    pytest.importorskip("torch")
    from agents.evaluate import AgentPolicy, evaluate_checkpoint

    ck = PRETRAINED / "mnist_cond_wgan.pt"
    m = evaluate_checkpoint(ck, None, episodes=8, num_envs=4)
    agent = AgentPolicy.from_checkpoint(ck)
    s = score(MNIST, agent, episodes=8, num_envs=4, env_kwargs=agent.env_kwargs)
    assert s["l2"] == pytest.approx(m["l2"], rel=1e-5) and s["l2"] < 0.6 * s["blank_l2"]
    assert s["constant_l2"] == pytest.approx(m["constant_l2"], rel=1e-5)
    assert s["normalised"] == pytest.approx(m["normalised"], rel=1e-4) and s["normalised"] > 0


def test_spiral_eval_temperature_goes_from_sampling_to_greedy(capsys):
    pytest.importorskip("torch")
    from agents.evaluate import evaluate_checkpoint, main

    ck = PRETRAINED / "mnist_cond_wgan.pt"
    run = lambda **kw: evaluate_checkpoint(ck, None, episodes=4, num_envs=4, **kw)  # noqa: E731
    greedy, cold, sampled = run(greedy=True), run(temperature=1e-4), run()
    assert cold["l2"] == pytest.approx(greedy["l2"], rel=1e-6) and cold["temperature"] == 1e-4
    assert sampled["l2"] != pytest.approx(greedy["l2"], rel=1e-3)
    assert main([str(ck), "--temperature", "0", "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spiral-eval: error: temperature 0.0: accepted > 0") and "\n" not in err
    with pytest.raises(SystemExit):
        main([str(ck), "--greedy", "--temperature", "0.5"])
    assert "--greedy with --temperature 0.5: give one" in capsys.readouterr().err


def test_spiral_bench_writes_a_result_and_refuses_bad_runs(tmp_path, capsys):
    from agents.bench import main

    assert (
        main(["--env_id", MNIST, "--agent", "tracer", "--episodes", "4", "--out", str(tmp_path)])
        == 0
    )
    (path,) = tmp_path.glob("*.json")
    assert path.name == f"{MNIST}__tracer__untrained__seed0.json"
    res = json.loads(path.read_text())
    assert res["score"]["episodes"] == 4 and res["score"]["l2"] < res["score"]["blank_l2"]
    assert res["command"].startswith("spiral-bench --env_id") and res["environment"]["python"]
    assert res["environment"]["cpu"] and res["environment"]["torch_cpu_capability"] in {
        "DEFAULT",
        "AVX2",
        "AVX512",
        "ZVECTOR",
        "VSX",
        "SVE256",
    }
    for argv, message in (
        (["--env_id", "SpiralPaint-MNIST-v0", "--agent", "ppo"], "no benchmark id"),
        (["--env_id", MNIST, "--agent", "ppo"], "give a budget"),
        (["--env_id", "SpiralMuJoCo-Scene-Cond-v0", "--agent", "tracer"], "no scene version"),
    ):
        with pytest.raises(SystemExit) as e:
            main([*argv, "--out", str(tmp_path / "no")])
        assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_spiral_bench_trains_sb3_and_the_spiral_agent_briefly(tmp_path):
    pytest.importorskip("stable_baselines3")
    from agents.bench import run

    for agent in ("a2c", "sac", "spiral"):
        res = run(MNIST, agent, steps=128, seed=0, episodes=2, threads=1, work_dir=tmp_path)
        assert res["frames"] >= 128 and 0 < res["score"]["l2"] < 1, agent


def test_spiral_bench_trains_the_spiral_agent_on_scenes_with_the_scene_reward(tmp_path):
    # the scene benchmark reward is the change similarity: the agent trains on it, not on L2
    from agents.bench import run
    from agents.checkpoint import load_checkpoint

    scene = "SpiralMuJoCo-Scene-Cond-v0"
    res = run(scene, "spiral", steps=160, seed=0, episodes=2, threads=1, work_dir=tmp_path)
    assert res["settings"]["reward"] == "similarity" and res["frames"] >= 160
    assert 0 <= res["score"]["type_accuracy"] <= 1
    ckpt = load_checkpoint(tmp_path / f"{scene}__spiral__s0" / "checkpoint.pt")
    assert ckpt["config"]["reward"] == "similarity"


def _result(env_id: str, agent: str, seed: int, l2: float, steps: int = 250_000) -> dict:
    score = {"l2": l2, "psnr": 10.0 + seed, "blank_l2": 0.11}
    budget = {"steps": steps, "minutes": 0.0}
    return {
        "env_id": env_id,
        "agent": agent,
        "seed": seed,
        "budget": budget,
        "frames": steps,
        "train_s": 60.0 * (seed + 1),
        "score": score,
    }


def test_bench_table_reports_mean_and_sample_sd_over_seeds_in_suite_order(tmp_path):
    for i, r in enumerate(
        [
            _result("SpiralMuJoCo-Scene-Cond-v0", "random", 0, 0.0133, steps=0),
            _result(MNIST, "ppo", 0, 0.09),
            _result(MNIST, "ppo", 1, 0.10),
            _result(MNIST, "ppo", 2, 0.11),
            _result(MNIST, "spiral", 0, 0.0654),
        ]
    ):
        (tmp_path / f"{i}.json").write_text(json.dumps(r))
    out = run_script("benchmarks/bench_table.py", tmp_path).stdout
    assert out.index(MNIST) < out.index("SpiralMuJoCo-Scene-Cond-v0")  # the suite's order
    ppo = next(line for line in out.splitlines() if "| ppo |" in line)
    # mean 0.10, sample sd 0.01 over three seeds; 2 train minutes on average
    assert (
        "| 250,000 steps | ppo | 3 | 250,000 | 2.0 | 0.1000 ± 0.0100 | 11.00 ± 1.00 | 0.1100 |"
        in ppo
    )
    # the normalised score's IQM over seeds (three: the mean) and its bootstrap interval
    constant = held_out_baselines(MNIST)["constant_l2"]
    lo, hi = iqm_interval([1 - x / constant for x in (0.09, 0.10, 0.11)])
    assert ppo.endswith(f"| {1 - 0.10 / constant:.3f} [{lo:.3f}, {hi:.3f}] |")
    assert lo < 1 - 0.10 / constant < hi and lo >= 1 - 0.11 / constant - 1e-9
    spiral = next(line for line in out.splitlines() if "| spiral |" in line)
    assert "| 0.0654 |" in spiral and "±" not in spiral  # one seed: no spread
    assert "| untrained | random | 1 |" in out

    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- bench-table -->\nold table\n<!-- /bench-table -->\nend\n")
    run_script("benchmarks/bench_table.py", tmp_path, "--into", doc, "--env_id", MNIST)
    text = doc.read_text()
    assert text.startswith("intro\n<!-- bench-table -->\n") and text.endswith("-->\nend\n")
    assert "old table" not in text and "| ppo |" in text and "Scene" not in text
    doc.write_text("no markers\n")
    bad = run_script("benchmarks/bench_table.py", tmp_path, "--into", doc, returncode=2)
    assert "needs one '<!-- bench-table -->'" in bad.stderr
    assert doc.read_text() == "no markers\n"  # nothing lost


def test_the_committed_untrained_rows_are_reproduced_by_their_commands(tmp_path):
    rows = sorted((ROOT / "docs" / "bench_results").glob(f"{MNIST}__*__untrained__seed0.json"))
    assert [p.name.split("__")[1] for p in rows] == ["random", "tracer"]
    out = run_script("benchmarks/bench_reproduce.py", *rows, "--out", tmp_path).stdout
    assert out.count("->") == 2 * 3 and out.rstrip().endswith("all reproduced"), out
    # a changed score is reported, and fails the run
    doctored = json.loads(rows[0].read_text())
    doctored["score"]["l2"] *= 1.01
    (tmp_path / "doctored.json").write_text(json.dumps(doctored))
    bad = run_script(
        "benchmarks/bench_reproduce.py", tmp_path / "doctored.json", "--out", tmp_path, returncode=1
    ).stdout
    assert "l2" in bad and "DIFFERS" in bad and "1 score(s) beyond" in bad


def test_reproduce_accepts_a_score_within_its_rows_spread_only_when_asked(tmp_path):
    """A trained row rerun on another CPU lands near, not on, its number: ``--sd`` judges it
    against the row's other seeds in the result's folder."""
    row = tmp_path / "row"
    row.mkdir()
    true = json.loads(
        (ROOT / "docs" / "bench_results" / f"{MNIST}__random__untrained__seed0.json").read_text()
    )
    for seed, factor in ((0, 1.01), (1, 1.03), (2, 0.97)):
        r = json.loads(json.dumps(true))
        r["seed"], r["score"]["l2"] = seed, true["score"]["l2"] * factor
        (row / f"seed{seed}.json").write_text(json.dumps(r))
    (row / "other.json").write_text(json.dumps({**true, "agent": "tracer"}))  # not in the row
    args = ("benchmarks/bench_reproduce.py", row / "seed0.json", "--out", tmp_path / "out")
    strict = run_script(*args, returncode=1).stdout
    assert "row 0.2781 ± 0.0085 (3 seeds): -0.11 sd  DIFFERS" in strict, strict
    assert run_script(*args, "--sd", "1").stdout.rstrip().endswith("all reproduced")
    assert "DIFFERS" in run_script(*args, "--sd", "0.05", returncode=1).stdout
    (row / "broken.json").write_text("{")
    bad = run_script(*args, returncode=2).stderr
    assert "broken.json (a result beside seed0.json)" in bad


AGENT_CHECKPOINTS = sorted(p for p in PRETRAINED.glob("*.pt") if p.name != "mnist_classifier.pt")


def test_every_shipped_agent_is_listed_in_the_pretrained_readme():
    text = (PRETRAINED / "README.md").read_text()
    assert AGENT_CHECKPOINTS and all(f"`{p.name}`" in text for p in AGENT_CHECKPOINTS)


@pytest.mark.parametrize("checkpoint", AGENT_CHECKPOINTS, ids=lambda p: p.name)
def test_spiral_eval_runs_on_every_shipped_agent(checkpoint, tmp_path):
    pytest.importorskip("torch")
    from agents.evaluate import main as eval_main

    out = tmp_path / "eval"
    assert (
        eval_main([str(checkpoint), "--episodes", "4", "--num_envs", "4", "--out", str(out)]) == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    assert m["episodes"] == 4 and np.isfinite(m["l2"])
    if "type_accuracy" in m:  # a scene agent finds exact cells that chance (1/256) does not
        assert m["position_accuracy"] > m["random_agent"]["position_accuracy"]
    elif "blank_l2" in m:  # conditional paint agents beat a blank canvas even on 4 targets
        assert m["l2"] < m["blank_l2"] and m["normalised"] == 1 - m["l2"] / m["constant_l2"]


def test_the_score_api_imports_neither_torch_nor_mujoco():

    code = (
        "import sys, spiral_envs.benchmark; "
        "print(sorted(m for m in ('torch', 'mujoco') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_spiral_eval_with_a_search_records_it_and_beats_the_blank_canvas(tmp_path, capsys):
    pytest.importorskip("torch")
    from agents.evaluate import main as eval_main

    ck = PRETRAINED / "mnist_cond_l2.pt"
    out = tmp_path / "eval"
    argv = [str(ck), "--episodes", "4", "--num_envs", "4", "--out", str(out), "--search"]
    assert eval_main([*argv, "--search_sizes", "2", "4", "2", "1"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["search"] == {"policy": 2, "prior": 4, "moves": 2, "lookahead": 1}
    assert m["l2"] < m["blank_l2"] and np.load(out / "canvases.npy").shape[0] == 4
    assert "the policy with a search a step" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # sizes without the search: said, not ignored
        eval_main([str(ck), "--search_sizes", "2", "4", "2", "1"])
    assert "add --search" in capsys.readouterr().err


def test_a_search_needs_a_target_to_search_towards():
    pytest.importorskip("torch")
    from agents.build import build_policy, make_envs, probe_env
    from agents.config import NetConfig, ProgramConfig
    from agents.evaluate import search_actor

    env_id = "SpiralPaint-MNIST-v0"
    envs = make_envs(env_id, 2)
    try:
        policy = build_policy(NetConfig(), probe_env(env_id), "cpu")
        with pytest.raises(ValueError, match="needs a conditional env"):
            search_actor(envs, policy, "cpu", ProgramConfig(), seed=0)
    finally:
        envs.close()
