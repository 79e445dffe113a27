"""Learning from the renderer: the maximum-likelihood loss, the prior, the search, kickstarting,
and the stages chained through checkpoints (agents.programs, agents.imitation)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import run_script  # noqa: E402
from fakes import register_fake_env, small_cfg  # noqa: E402

from agents.actor import Rollout  # noqa: E402
from agents.build import build_policy, load_init, make_envs, probe_env  # noqa: E402
from agents.config import NetConfig, TrainConfig  # noqa: E402
from agents.imitation import ImitationLearner, Kickstart, kl_to_teacher  # noqa: E402
from agents.networks import PolicyNet, as_tensor  # noqa: E402
from agents.programs import (  # noqa: E402
    PriorActor,
    ScenePrior,
    SearchActor,
    StrokePrior,
    own_targets,
)
from agents.train import train  # noqa: E402
from spiral_envs.rewards import L2Discriminator, l2_distance  # noqa: E402

torch.set_num_threads(1)
register_fake_env()

#: A small real paint env: the search and the prior need its painter.
PAINT = "SpiralPaint-MNIST-Cond-v0"
PAINT_KW = {"canvas_size": 16, "grid": 8, "episode_length": 4, "brush_sizes": [1, 2]}
TINY = NetConfig(channels=8, res_blocks=1, hidden=32, lstm=32, pointer=True, pointer_channels=4)


def _paint_policy(net: NetConfig = TINY) -> PolicyNet:
    info = probe_env(PAINT, PAINT_KW)
    return build_policy(net, info, torch.device("cpu"))


def _program_rollout(policy: PolicyNet, seed: int = 0, b: int = 3) -> Rollout:
    envs = make_envs(PAINT, b, PAINT_KW)
    try:
        return own_targets(PriorActor(envs, np.random.default_rng(seed)).collect(range(b)))
    finally:
        envs.close()


def _nll(policy: PolicyNet, r: Rollout) -> torch.Tensor:
    t = lambda x: as_tensor(x, "cpu")  # noqa: E731
    out = policy.evaluate(t(r.canvases[:-1]), t(r.targets), t(r.steps), t(r.actions), None)
    return -out.log_prob.mean()


# --- the maximum-likelihood loss ----------------------------------------------------------
def test_the_loss_is_the_masked_nll_and_ignored_sub_actions_add_nothing():
    torch.manual_seed(0)
    policy = _paint_policy()
    r = _program_rollout(policy)
    spec = policy.spec
    learner = ImitationLearner(policy)
    before = _nll(policy, r).item()
    m = learner.update(r, np.zeros(r.steps.shape, np.float32))
    assert m["losses/nll"] == pytest.approx(before, rel=1e-5)
    # the same programs with other values in the sub-actions a move ignores: the same loss
    moves = r.actions[..., spec.index("flag")] == 0
    assert moves.any(), "the prior's programs should hold moves (and rests)"
    changed = r.actions.copy()
    for name in ("control", "size", "pressure"):
        k = spec.index(name)
        changed[..., k] = np.where(moves, (changed[..., k] + 1) % spec[name].size, changed[..., k])
    policy2 = _paint_policy()
    policy2.load_state_dict(policy.state_dict())
    assert _nll(policy2, r._replace(actions=changed)).item() == pytest.approx(
        _nll(policy2, r).item(), rel=1e-6
    )
    # a painted stroke's control point does count
    paints = ~moves
    changed2 = r.actions.copy()
    k = spec.index("control")
    changed2[..., k] = np.where(
        paints, (changed2[..., k] + 1) % spec["control"].size, changed2[..., k]
    )
    assert _nll(policy2, r._replace(actions=changed2)).item() != pytest.approx(
        _nll(policy2, r).item(), rel=1e-6
    )


def test_the_loss_on_a_hand_built_program_is_its_minus_log_probability():
    torch.manual_seed(1)
    policy = _paint_policy()
    r = _program_rollout(policy, b=1)
    t = lambda x: as_tensor(x, "cpu")  # noqa: E731
    out, logits = policy.evaluate(
        t(r.canvases[:-1]), t(r.targets), t(r.steps), t(r.actions), None, return_logits=True
    )
    acts = r.actions.reshape(-1, r.actions.shape[-1])
    spec = policy.spec
    expected = 0.0
    for n, a in enumerate(acts):
        for k, lg in enumerate(logits):
            counts = not spec.components[k].gated or a[spec.index("flag")] == 1
            if counts:
                expected -= torch.log_softmax(lg[n], -1)[a[k]].item()
    assert -out.log_prob.sum().item() == pytest.approx(expected, rel=1e-5)


def test_a_pretraining_step_raises_the_log_probability_of_its_programs():
    torch.manual_seed(0)
    policy = _paint_policy()
    r = _program_rollout(policy)
    learner = ImitationLearner(
        policy, TrainConfig.from_dict({"total_steps": 1, "lr": 3e-3}).learner
    )
    before = _nll(policy, r).item()
    learner.update(r, np.zeros(r.steps.shape, np.float32))
    after_one = _nll(policy, r).item()
    assert after_one < before
    for _ in range(10):
        learner.update(r, np.zeros(r.steps.shape, np.float32))
    assert _nll(policy, r).item() < after_one - 0.5


# --- the prior --------------------------------------------------------------------------
def test_prior_programs_are_valid_start_from_the_pen_and_rest_after_their_length():
    info = probe_env(PAINT, PAINT_KW)
    spec = info.action_spec
    prior = StrokePrior(spec, np.random.default_rng(0))
    prog = prior.programs(64, 4, np.zeros(64, np.int64))
    assert prog.shape == (4, 64, len(spec))
    assert (prog >= 0).all() and (prog < spec.nvec).all()
    # a rest is a move to the pen's own cell, and once resting a program stays at rest
    end, flag = spec.index("end"), spec.index("flag")
    pen = np.concatenate([np.zeros((1, 64), np.int64), prog[:-1, :, end]])
    rest = (prog[..., flag] == 0) & (prog[..., end] == pen)
    assert rest.any() and not rest.all()
    # rests come after the painting: once a program rests it stays at rest (a suffix; a move
    # that happens to land on the pen's own cell looks like a rest too, 1 in 64 on this grid)
    trailing = np.cumprod(rest[::-1], 0).sum(0)
    assert (rest.sum(0) != trailing).mean() < 0.05
    lengths = 4 - trailing
    assert lengths.min() == 1 and lengths.max() == 4  # from one painting step to all of them
    # strokes end within reach of the pen
    rows, cols = spec["end"].grid
    paint = prog[..., flag] == 1
    dr = np.abs(prog[..., end] // cols - pen // cols)[paint]
    assert dr.max() <= np.ceil(prior.reach * rows)


def test_a_prior_on_a_non_paint_env_is_refused():
    from spiral_envs.actions import ActionComponent, ActionSpec

    spec = ActionSpec((ActionComponent("flag", 2, np.array([0, 1]), gated=False),))
    with pytest.raises(ValueError, match="paint env"):
        StrokePrior(spec, np.random.default_rng(0))


# --- the search -------------------------------------------------------------------------
class _Recording(L2Discriminator):
    """-L2, remembering the candidates' canvases it scored."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def __call__(self, canvases, targets=None):
        self.calls.append(np.array(canvases))
        return super().__call__(canvases, targets)


def test_the_search_keeps_the_best_candidate_and_leaves_the_env_as_it_found_it():
    torch.manual_seed(0)
    policy = _paint_policy()
    envs = make_envs(PAINT, 2, PAINT_KW)
    obs, _ = envs.reset(seed=[3, 4])
    envs.step(np.array([[1, 9, 10, 1, 3], [1, 40, 33, 0, 3]]))  # something on the canvas
    obs, *_ = envs.step(np.array([[0, 27, 0, 0, 0], [1, 20, 12, 1, 2]]))
    subs = [e.unwrapped for e in envs.envs]
    state = [(s.painter.snapshot(), s.pen, list(s.program.steps)) for s in subs]
    # strokes of the prior and "stay put", one image each: the best of them is played
    scorer = _Recording()
    search = SearchActor(envs, policy, scorer, np.random.default_rng(0), "cpu", 0, 12, 0, 0)
    chosen = search._choose(obs["canvas"], obs["target"], None)
    for s, (pixels, pen, steps) in zip(subs, state):  # nothing painted, nothing moved
        assert np.array_equal(s.painter.snapshot(), pixels)
        assert s.pen == pen and s.program.steps == steps
    tried = scorer.calls[-1].reshape(2, 13, *obs["canvas"].shape[1:])
    after, *_ = envs.step(chosen)
    for i in range(2):
        best = l2_distance(tried[i], obs["target"][i][None]).min()
        assert l2_distance(after["canvas"][i], obs["target"][i]) == pytest.approx(best, abs=1e-7)
        assert best <= l2_distance(obs["canvas"][i], obs["target"][i])
    # with the policy's samples, moves and the look-ahead past them: still nothing changed
    state = [(s.painter.snapshot(), s.pen, list(s.program.steps)) for s in subs]
    search = SearchActor(envs, policy, scorer, np.random.default_rng(0), "cpu", 4, 8, 3, 3)
    proposals = policy.sample_candidates(_step_inputs(policy, after), 4).numpy()
    search._choose(after["canvas"], after["target"], proposals)
    for s, (pixels, pen, steps) in zip(subs, state):
        assert np.array_equal(s.painter.snapshot(), pixels)
        assert s.pen == pen and s.program.steps == steps
    envs.close()


def _step_inputs(policy: PolicyNet, obs: dict):
    n = len(obs["canvas"])
    ctx, _ = policy.core_step(
        as_tensor(obs["canvas"], "cpu"),
        as_tensor(obs["target"], "cpu"),
        torch.zeros(n, dtype=torch.long),
        torch.zeros(n, len(policy.spec), dtype=torch.long),
        torch.zeros(n),
        None,
        policy.initial_state(n),
    )
    return ctx


def test_a_search_episode_is_no_worse_than_the_blank_canvas_and_is_seeded():
    torch.manual_seed(0)
    policy = _paint_policy()

    def run():
        torch.manual_seed(0)  # the policy's samples
        envs = make_envs(PAINT, 3, PAINT_KW)
        try:
            actor = SearchActor(
                envs, policy, L2Discriminator(), np.random.default_rng(5), "cpu", 2, 6, 2, 2
            )
            return actor.collect([10, 11, 12])
        finally:
            envs.close()

    a, b = run(), run()
    assert np.array_equal(a.actions, b.actions)
    blank = l2_distance(a.canvases[0], a.targets)
    assert (a.final_l2 <= blank + 1e-7).all()
    assert (a.final_l2 < blank).any()


def test_a_search_rolled_in_by_the_policy_labels_its_steps_with_the_search_s_best():
    torch.manual_seed(0)
    policy = _paint_policy()
    envs = make_envs(PAINT, 4, PAINT_KW)
    try:
        args = (envs, policy, L2Discriminator(), np.random.default_rng(5), "cpu", 2, 6, 2, 2)
        assert SearchActor(*args).collect([10, 11, 12, 13]).labels is None
        actor = SearchActor(*args, rollin=1.0)  # every step the policy's own sample
        r = actor.collect([10, 11, 12, 13])
    finally:
        envs.close()
    assert r.labels.shape == r.actions.shape
    assert (r.labels != r.actions).any(axis=-1).mean() > 0.25  # the search disagrees, often
    # the labels are scored, the played actions fed back: step 0 sees no earlier action
    t = lambda x: as_tensor(x, "cpu")  # noqa: E731
    inputs = (t(r.canvases[:-1]), t(r.targets), t(r.steps))
    mixed = policy.evaluate(*inputs, t(r.actions), None, labels=t(r.labels))
    on_labels = policy.evaluate(*inputs, t(r.labels), None)
    on_played = policy.evaluate(*inputs, t(r.actions), None)
    assert torch.equal(mixed.actions, t(r.labels))
    assert torch.allclose(mixed.log_prob[0], on_labels.log_prob[0], atol=1e-6)
    assert not torch.allclose(mixed.log_prob[1:], on_labels.log_prob[1:], atol=1e-4)
    assert not torch.allclose(mixed.log_prob, on_played.log_prob, atol=1e-4)
    with pytest.raises(ValueError, match="search_rollin = 0.5 plays the policy's samples"):
        TrainConfig.from_dict(
            {"total_steps": 1, "stage": "search", "search_rollin": 0.5, "search_policy": 0}
        )


# --- kickstarting -----------------------------------------------------------------------
def test_the_kl_weight_decays_linearly_and_the_kl_to_itself_is_zero():
    torch.manual_seed(0)
    policy = _paint_policy()
    ks = Kickstart(policy, 1.0, 0.1)
    assert [ks.weight(p) for p in (0.0, 0.5, 1.0, 2.0)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    r = _program_rollout(policy)
    t = lambda x: as_tensor(x, "cpu")  # noqa: E731
    _, logits = policy.evaluate(
        t(r.canvases[:-1]), t(r.targets), t(r.steps), t(r.actions), None, return_logits=True
    )
    assert ks.loss(r, logits, torch.device("cpu")).item() == pytest.approx(0.0, abs=1e-6)
    other = [lg + torch.randn_like(lg) for lg in logits]
    acts = t(r.actions).reshape(-1, r.actions.shape[-1])
    assert kl_to_teacher(policy, logits, other, acts).item() > 0.01


def test_kl_without_a_teacher_checkpoint_is_refused():
    with pytest.raises(ValueError, match="init_from"):
        TrainConfig.from_dict({"total_steps": 1, "kl_coef": 0.1})


def test_scene_prior_places_one_to_all_objects_then_skips():
    from spiral_envs.scene.program import scene_action_spec

    spec = scene_action_spec()
    prog = ScenePrior(spec, np.random.default_rng(0)).programs(500, 5)
    flags = prog[..., spec.index("flag")]
    n = flags.sum(0)
    assert n.min() == 1 and n.max() == 5 and len(set(n.tolist())) == 5
    # objects first, skips after: the flags never go from 0 back to 1
    assert (np.diff(flags, axis=0) <= 0).all()
    assert (prog >= 0).all() and (prog < spec.nvec).all()
    with pytest.raises(ValueError, match="scene env's actions"):
        ScenePrior(
            make_envs(PAINT, 1, PAINT_KW).envs[0].unwrapped.action_spec, np.random.default_rng(0)
        )


def test_the_sleep_stage_on_scenes_pairs_random_objects_with_their_renderings():
    envs = make_envs("SpiralMuJoCo-Scene-Cond-v0", 2, {})
    rollout = own_targets(PriorActor(envs, np.random.default_rng(1)).collect([0, 1]))
    placed = [len(p) for p in envs.get_attr("program")]
    envs.close()
    spec_flags = rollout.actions[..., 0]
    assert placed == spec_flags.sum(0).tolist()


# --- stages chained through checkpoints -----------------------------------------------------
def _stage_cfg(tmp_path, name, **kw):
    return TrainConfig.from_dict(
        dict(
            env_id=PAINT,
            env_kwargs=PAINT_KW,
            reward=kw.pop("reward", "l2"),
            reward_mode="per_step",
            num_envs=4,
            total_steps=48,
            out_dir=str(tmp_path / name),
            channels=8,
            res_blocks=1,
            hidden=32,
            lstm=32,
            pointer=True,
            pointer_channels=4,
            progress=False,
            tensorboard=False,
            sample_every=0,
            threads=1,
            **kw,
        )
    )


@pytest.mark.parametrize("stage", ["sleep", "wake", "search"])
def test_each_stage_trains_and_its_checkpoint_starts_rl_with_a_teacher(tmp_path, stage):
    first = _stage_cfg(tmp_path, stage, stage=stage, search_policy=2, search_prior=4)
    m = train(first)
    assert m["frames"] == 48 and np.isfinite(m["losses/nll"])
    ckpt = tmp_path / stage / "checkpoint.pt"
    rl = _stage_cfg(tmp_path, "rl", init_from=str(ckpt), kl_coef=0.5, kl_coef_final=0.0)
    # the RL run starts from exactly the stage's weights
    info = probe_env(PAINT, PAINT_KW)
    policy = build_policy(rl.net, info, torch.device("cpu"))
    from agents.build import load_init

    load_init(rl, policy, torch.device("cpu"))
    saved = torch.load(ckpt, weights_only=True)["learner"]["policy"]
    assert all(torch.equal(v, saved[k]) for k, v in policy.state_dict().items())
    m2 = train(rl)
    assert m2["frames"] == 48 and "losses/kl_teacher" in m2 and m2["charts/kl_coef"] < 0.5


@pytest.mark.parametrize("carry", [True, False])
def test_rl_after_a_stage_starts_from_its_critic_unless_told_not_to(tmp_path, carry):
    disc = dict(reward="discriminator", disc_channels=4)
    train(_stage_cfg(tmp_path, "s", stage="search", search_policy=2, search_prior=4, **disc))
    ckpt = str(tmp_path / "s" / "checkpoint.pt")
    rl = _stage_cfg(tmp_path, "rl", init_from=ckpt, init_critic=carry, **disc)
    info = probe_env(PAINT, PAINT_KW)
    from agents.build import build_discriminator

    learner = build_discriminator(rl, info, torch.device("cpu"))
    fresh = {k: v.clone() for k, v in learner.critic.state_dict().items()}
    line = load_init(
        rl, build_policy(rl.net, info, torch.device("cpu")), torch.device("cpu"), learner
    )
    saved = torch.load(ckpt, weights_only=True)["discriminator"]["critic"]
    now = learner.critic.state_dict()
    assert all(torch.equal(now[k], (saved if carry else fresh)[k]) for k in now)
    assert ("critic" in line) == carry
    # a critic of another size is not carried, and the line says so
    other = _stage_cfg(tmp_path, "rl2", init_from=ckpt, reward="discriminator", disc_channels=8)
    learner = build_discriminator(other, info, torch.device("cpu"))
    line = load_init(
        other, build_policy(other.net, info, torch.device("cpu")), torch.device("cpu"), learner
    )
    assert "starts untrained" in line
    # a sleep stage's critic saw its own renderings as the real images: not carried
    train(_stage_cfg(tmp_path, "z", stage="sleep", **disc))
    slept = _stage_cfg(tmp_path, "rl3", init_from=str(tmp_path / "z" / "checkpoint.pt"), **disc)
    learner = build_discriminator(slept, info, torch.device("cpu"))
    cpu = torch.device("cpu")
    line = load_init(slept, build_policy(slept.net, info, cpu), cpu, learner)
    assert "sleep stage's critic is not carried" in line


def test_init_from_a_checkpoint_of_another_network_says_what_differs(tmp_path):
    train(_stage_cfg(tmp_path, "a", stage="sleep"))
    cfg = _stage_cfg(tmp_path, "b", init_from=str(tmp_path / "a" / "checkpoint.pt")).replace(
        lstm=16
    )
    with pytest.raises(ValueError, match="same env_id, env_kwargs and net options"):
        train(cfg)


def test_init_from_may_change_what_the_weights_do_not_depend_on(tmp_path):
    """Fine-tuning with the pen starting elsewhere, or on another split, keeps the weights."""
    train(_stage_cfg(tmp_path, "a", stage="sleep"))
    ckpt = str(tmp_path / "a" / "checkpoint.pt")
    cfg = _stage_cfg(tmp_path, "b", init_from=ckpt)
    cfg = cfg.replace(env_kwargs={**cfg.env_kwargs, "pen_start": "centre", "split": "test"})
    info = probe_env(PAINT, PAINT_KW)
    cpu = torch.device("cpu")
    assert load_init(cfg, build_policy(cfg.net, info, cpu), cpu) == f"init_from {ckpt}: the policy"
    brushes = cfg.replace(env_kwargs={**PAINT_KW, "brush_sizes": [1, 9]})
    with pytest.raises(ValueError, match="only data_dir, pen_start, render_mode, render_size, "):
        load_init(brushes, build_policy(cfg.net, info, cpu), cpu)


def test_seeded_search_runs_are_reproducible(tmp_path):
    runs = []
    for name in ("x", "y"):
        cfg = _stage_cfg(tmp_path, name, stage="search", search_policy=2, search_prior=4)
        train(cfg)
        runs.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    assert runs[0]["losses/nll"] == runs[1]["losses/nll"]


@pytest.mark.parametrize("stage", ["sleep", "search"])
def test_a_stage_on_an_env_without_a_painter_names_the_problem(tmp_path, stage):
    with pytest.raises(ValueError, match="need a paint env .* FakePaintEnv has none"):
        train(small_cfg(tmp_path, stage=stage, reward="l2"))


# --- recipes ----------------------------------------------------------------------------
def _tiny_recipe() -> dict:
    return {
        "common": {
            "env_id": PAINT,
            "env_kwargs": PAINT_KW,
            "reward": "l2",
            "reward_mode": "per_step",
            "num_envs": 4,
            "total_steps": 32,
            "channels": 8,
            "res_blocks": 1,
            "hidden": 32,
            "lstm": 32,
            "pointer": True,
            "pointer_channels": 4,
            "progress": False,
            "tensorboard": False,
            "sample_every": 0,
            "threads": 1,
        },
        "stages": [
            {"name": "search", "minutes": 1, "stage": "search", "search_policy": 2},
            {"name": "finetune", "minutes": 1, "kl_coef": 0.1},
        ],
    }


def test_a_recipe_chains_its_stages_and_reports_the_held_out_score(tmp_path):
    from agents.recipe import run_recipe, stage_configs

    recipe = _tiny_recipe()
    cfgs = stage_configs(recipe, tmp_path, scale=0.5)
    assert [c.max_minutes for c in cfgs] == [0.5, 0.5]
    assert cfgs[0].programs.init_from == ""
    assert cfgs[1].programs.init_from == str(tmp_path / "search" / "checkpoint.pt")
    report = run_recipe(recipe, tmp_path, episodes=4)
    assert [s["name"] for s in report["stages"]] == ["search", "finetune"]
    ev = report["eval"]
    assert ev["episodes"] == 4 and ev["l2"] > 0 and ev["constant_l2"] > 0
    assert json.loads((tmp_path / "recipe.json").read_text())["eval"]["l2"] == ev["l2"]
    # run again: the finished stages are kept, not trained again
    mtime = (tmp_path / "search" / "metrics.json").stat().st_mtime
    run_recipe(recipe, tmp_path, episodes=4)
    assert (tmp_path / "search" / "metrics.json").stat().st_mtime == mtime


def test_an_unconditional_recipe_prints_its_sample_scores(tmp_path, capsys):
    from agents.recipe import main

    recipe = _tiny_recipe()
    recipe["common"].update(
        env_id="SpiralPaint-MNIST-v0", env_kwargs={"pen_start": "centre"}, reward="discriminator"
    )
    recipe["stages"][0]["search_score"] = "target_l2"
    path = tmp_path / "uncond.json"
    path.write_text(json.dumps(recipe))
    assert main([str(path), "--out_dir", str(tmp_path / "run"), "--episodes", "4"]) == 0
    out = capsys.readouterr().out
    assert "digit Frechet distance" in out and "(0-9)" in out
    ev = json.loads((tmp_path / "run" / "recipe.json").read_text())["eval"]
    assert ev["sample_fd"] > 0 and len(ev["class_fractions"]) == 10


def test_recipe_errors_are_one_line_with_exit_2(tmp_path, capsys):
    from agents.recipe import main, shipped_recipes

    assert main(["no_such_recipe"]) == 2
    err = capsys.readouterr().err
    assert "no shipped recipe" in err and str(shipped_recipes()[:1])[1:-1] in err
    bad = _tiny_recipe()
    bad["stages"][1]["lr"] = -1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main([str(path), "--out_dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "stage 'finetune'" in err and "lr" in err
    assert not (tmp_path / "x" / "search").exists()  # nothing ran: every stage checked first


def test_the_shipped_recipes_are_valid_configs(tmp_path):
    from agents.recipe import load_recipe, shipped_recipes, stage_configs

    assert shipped_recipes()
    for name in shipped_recipes():
        assert stage_configs(load_recipe(name), tmp_path / name)


def test_an_unconditional_search_infers_programs_for_the_hidden_real_images():
    torch.manual_seed(0)
    kw = {**PAINT_KW, "episode_length": 6}
    envs = make_envs("SpiralPaint-MNIST-v0", 4, kw)
    info = probe_env("SpiralPaint-MNIST-v0", kw)
    policy = build_policy(TINY, info, torch.device("cpu"))
    actor = SearchActor(
        envs, policy, L2Discriminator(), np.random.default_rng(0), "cpu", 2, 8, 2, 2, True
    )
    r = actor.collect([1, 2, 3, 4])
    hidden = np.stack([e.unwrapped.target for e in envs.envs])
    envs.close()
    assert r.targets is None  # the policy never sees them
    assert (l2_distance(r.canvases[-1], hidden) < l2_distance(r.canvases[0], hidden)).all()


def test_the_pointer_scores_each_grid_cell_from_the_ink_there():
    torch.manual_seed(0)
    policy = _paint_policy()
    n = 2
    canvas = torch.full((n, 16, 16, 1), 255, dtype=torch.uint8)
    target = canvas.clone()
    target[1, 4:6, 8:10] = 0  # ink in grid cell (2, 4) of the 8x8 grid, second sample only
    prev = torch.zeros(n, len(policy.spec), dtype=torch.long)
    pmap = policy.pointer_map(canvas, target, prev, torch.zeros(n))
    assert pmap.shape == (n, 64, 4)
    diff = (pmap[1] - pmap[0]).abs().sum(-1).view(8, 8)
    # the map changes around the inked cell only (two 3x3 convs: within 2 cells of it)
    assert diff[2, 4] > 0 and diff[7, 0] == 0 and diff[0, 7] == 0
    # without the option there is no map, and the head is the plain one
    plain = _paint_policy(dataclasses.replace(TINY, pointer=False))
    assert plain.pointer_map(canvas, target, prev, torch.zeros(n)) is None


def test_the_pointer_scores_backward_is_the_matrix_products():
    from agents.networks import _PointerScores

    feats = torch.randn(3, 5, 4, dtype=torch.double, requires_grad=True)
    query = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_PointerScores.apply, (feats, query))
    expect = torch.bmm(feats, query.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(_PointerScores.apply(feats, query), expect)


def test_the_pointer_map_averages_an_episodes_target_once_for_all_its_steps():
    torch.manual_seed(0)
    policy = _paint_policy()
    t, b = 3, 2
    canvas = torch.randint(0, 256, (t * b, 16, 16, 1), dtype=torch.uint8)
    target = torch.randint(0, 256, (b, 16, 16, 1), dtype=torch.uint8)
    prev = torch.zeros(t * b, len(policy.spec), dtype=torch.long)
    valid = torch.zeros(t * b)
    each = policy.pointer_map(canvas, target.repeat(t, 1, 1, 1), prev, valid)
    once = policy.pointer_map(canvas, target, prev, valid)
    assert torch.allclose(each, once)


def _ablation_doc(path, recipe, minutes, rows):
    path.write_text(json.dumps({"recipe": recipe, "seed": 0, "minutes": minutes, "rows": rows}))
    return path


def test_the_ablation_merges_earlier_rows_into_one_table_json_and_pictures(tmp_path):
    rows = {}
    for k, row in enumerate(("a2c", "search")):
        run = tmp_path / row
        (run / "eval").mkdir(parents=True)
        np.save(run / "eval/targets.npy", np.full((8, 8, 8, 3), 0.5, np.float32))
        np.save(run / "eval/canvases.npy", np.full((8, 8, 8, 3), 0.1 * k, np.float32))
        curve = [{"minutes": 1.0, "l2": 0.05}, {"minutes": 2.0, "l2": 0.04 - k / 100}]
        rows[row] = {"l2": 0.04 - k / 100, "psnr": 14.0, "constant_l2": 0.03, "minutes": 2.0}
        rows[row] |= {"frames": 100, "run": str(run), "curve": curve}
    a = _ablation_doc(tmp_path / "a.json", "faces", 30, {"a2c": rows["a2c"]})
    b = _ablation_doc(tmp_path / "b.json", "faces", 30, {"search": rows["search"]})
    out = tmp_path / "all.json"
    args = ("faces", "--minutes", 30, "--rows", "--with", a, b, "--out", out)
    table = run_script("benchmarks/renderer_ablation.py", *args).stdout
    assert "| a2c | 0.0400 |" in table and "| search | 0.0300 |" in table
    assert list(json.loads(out.read_text())["rows"]) == ["a2c", "search"]
    assert (tmp_path / "all.png").stat().st_size and (tmp_path / "all_rows.png").stat().st_size
    other = _ablation_doc(tmp_path / "c.json", "omniglot", 30, {})
    args = ("faces", "--minutes", 30, "--rows", "--with", a, other)
    err = run_script("benchmarks/renderer_ablation.py", *args, returncode=1).stderr
    assert "recipe 'omniglot' at 30 min, this ablation is 'faces' at 30 min" in err
    args = ("faces", "--minutes", 30, "--rows", "--with", tmp_path / "missing.json")
    err = run_script("benchmarks/renderer_ablation.py", *args, returncode=1).stderr
    assert len(err.strip().splitlines()) == 1 and "not a readable ablation JSON" in err
    assert "No such file" in err
