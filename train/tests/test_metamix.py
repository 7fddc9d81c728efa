"""Meta-training on the task distribution: the cheap meta-gradient is the truncated-BPTT one."""

import math
import random
from dataclasses import replace

import pytest
import torch

from train.baselines import Learned
from train.metamix import MixConfig, Worker, meta_train_mix, validate_mix, validation_set
from train.metatrain import load_checkpoint
from train.tasks import QuadraticFamily, instance_seeds
from train.tests.helpers import randomized


def _config(**kw):
    base = dict(hidden=4, input_size=3, workers=2, instances=2, unroll=5, subset=64, quadratic_prob=1.0,
                min_horizon=10, max_horizon=20, val_configs=2, val_instances=2, val_horizon=10, val_long=0,
                iterations=6, val_every=3)
    return MixConfig(**{**base, **kw})


def _direct_meta_gradient(module, problem, steps):
    """Truncated BPTT by autograd through theta and the optimizer state, gradients fed detached:
    the paper's estimator, on the mean over steps of log(f + 1e-4 f_0), averaged over instances."""
    theta = problem.theta0.clone()
    state = module.init_state(theta.numel())
    f0, g = problem.loss_and_grad(theta, 0)
    total = 0.0
    for t in range(steps):
        u, state = module(g.reshape(-1), state)
        theta = theta + u.reshape(theta.shape)
        f = problem.loss(theta, t + 1)
        (g,) = torch.autograd.grad(f.sum(), theta, retain_graph=True)
        total = total + torch.log(f + 1e-4 * f0) / steps
    module.zero_grad()
    total.mean().backward()
    return [p.grad.clone() for p in module.parameters()]


def test_the_subset_meta_gradient_is_exactly_truncated_bptt_when_the_subset_is_everything():
    cfg = _config(unroll=6)
    module = randomized(cfg.make_optimizer(), seed=4, scale=0.3)
    problem = QuadraticFamily().sample(instance_seeds(3, 2))
    expected = _direct_meta_gradient(module, problem, 6)
    worker = Worker.__new__(Worker)
    worker.cfg, worker.rng, worker.learned = cfg, random.Random(0), Learned(module, native=False)
    worker.start(QuadraticFamily().sample(instance_seeds(3, 2)), horizon=100)
    module.zero_grad()
    sur, _, _ = worker.truncation(module, subset=problem.dim)  # every coordinate
    sur.backward()
    for got, want in zip([p.grad for p in module.parameters()], expected):
        torch.testing.assert_close(got, want, rtol=2e-3, atol=1e-7)


def test_a_subset_estimate_is_unbiased():
    cfg = _config(unroll=4)
    module = randomized(cfg.make_optimizer(), seed=5, scale=0.3)
    problem = QuadraticFamily().sample(instance_seeds(9, 2))
    want = torch.cat([g.reshape(-1) for g in _direct_meta_gradient(module, problem, 4)])
    draws = []
    rng = random.Random(1)
    for _ in range(400):
        worker = Worker.__new__(Worker)
        worker.cfg, worker.rng, worker.learned = cfg, rng, Learned(module, native=False)
        worker.start(QuadraticFamily().sample(instance_seeds(9, 2)), horizon=100)
        module.zero_grad()
        sur, _, _ = worker.truncation(module, subset=3)  # 3 of 10 coordinates per instance
        sur.backward()
        draws.append(torch.cat([p.grad.reshape(-1) for p in module.parameters()]))
    mean = torch.stack(draws).mean(dim=0)
    assert torch.nn.functional.cosine_similarity(mean, want, dim=0) > 0.98
    assert (mean.norm() / want.norm() - 1).abs() < 0.1


@pytest.mark.parametrize("stage", ["meta-training"])
def test_a_smoke_run_lowers_the_validation_loss_and_resumes(tmp_path, stage):
    cfg = _config(iterations=30, val_every=15, meta_lr=1e-2, workers=4, seed=2)
    summary = meta_train_mix(cfg, tmp_path, progress=False)
    assert summary["iterations"] == 30
    report = __import__("json").loads((tmp_path / "validation.json").read_text())
    assert report["best"]["score"] < report["start"]["score"]
    assert report["instances"] == 4
    # the best's losses kept when it was validated are what validating best.pt again gives
    best = cfg.make_optimizer()
    best.load_state_dict(load_checkpoint(tmp_path / "best.pt")["model"])
    score, rows = validate_mix(best, validation_set(cfg), details=True)
    assert report["best"]["score"] == pytest.approx(score, rel=1e-9)
    assert [list(r) for r in report["best"]["configs"]] == [list(r) for r in rows]
    # resuming a finished run trains no further and keeps the same best weights
    again = meta_train_mix(cfg, tmp_path, progress=False)
    assert again["bestIteration"] == summary["bestIteration"]


def test_validation_floor_counts_a_loss_far_below_the_initial_one_as_solved():
    """floor F: log(loss + F * initial loss). A huge floor leaves the initial losses alone (the score
    is their mean log plus log F, whatever the optimizer did); a tiny one changes nothing visible."""
    from train.baselines import Adam

    vs = validation_set(_config(val_configs=2, val_horizon=30))
    log_f0 = torch.cat([torch.log(p.full_loss(p.theta0).double()) for _, _, p in vs]).mean().item()
    for lr in (0.001, 0.1):
        assert validate_mix(Adam(lr), vs, floor=1e9) == pytest.approx(log_f0 + math.log(1e9), abs=1e-6)
    solved, floored = validate_mix(Adam(0.1), vs), validate_mix(Adam(0.1), vs, floor=1e-2)
    assert floored > solved  # the floor only ever raises a log loss
    assert validate_mix(Adam(0.1), vs, floor=1e-15) == pytest.approx(solved, abs=1e-3)


def test_validation_scores_a_baseline_and_a_learned_optimizer_alike():
    from train.baselines import Adam

    cfg = _config()
    vs = validation_set(cfg)
    assert len(vs) == 2 and all(p.num == 2 for _, _, p in vs)
    module = cfg.make_optimizer()
    assert isinstance(validate_mix(module, vs), float)
    score, rows = validate_mix(Adam(0.01), vs, details=True)
    assert len(rows) == 2 and score < 10
    # validate-mix --scaled: training's random scaling of parameters and loss, drawn per instance within
    # its ranges; inputs stay as they are (an MLP's whole-pool loss is of the pool itself)
    assert all(p.lscale is None and p.pscale is None for _, _, p in vs)
    scaled = validation_set(cfg, scaled=True)
    assert len(scaled) == 2
    for _, _, p in scaled:
        assert 1 / cfg.lscale <= float(p.lscale.min()) and float(p.lscale.max()) <= cfg.lscale
        assert 1 / cfg.pscale <= float(p.pscale.min()) and float(p.pscale.max()) <= cfg.pscale
        assert getattr(p, "xscale", None) is None
    assert isinstance(validate_mix(Adam(0.01), scaled), float)
    mlp = replace(cfg, quadratic_prob=0.0)
    assert all(t.family == "mnist-mlp" for t, _, _ in validation_set(mlp, scaled=True))
    assert isinstance(validate_mix(Adam(0.01), validation_set(mlp, scaled=True)), float)


def test_pes_pairs_are_antithetic_copies_of_one_instance():
    from train.kernel import NativeStep, native_available, pack_params
    from train.metamix import PESPair

    if not native_available():
        pytest.skip("no C compiler")
    cfg = _config()
    module = randomized(cfg.make_optimizer(), seed=3, scale=0.3)
    native = NativeStep(module)
    pair = PESPair(cfg, random.Random(0), native, pack_params(module).numel())
    assert torch.equal(pair.theta[0], pair.theta[1])
    phi = pack_params(module)
    est, _, _ = pair.truncation(phi, torch.Generator().manual_seed(0))
    assert est.shape == phi.shape and torch.isfinite(est).all()
    # the copies differ only through the perturbation: the same weights give the same steps
    fresh = PESPair(cfg, random.Random(0), native, phi.numel())
    u0 = native(fresh.grad[0], fresh.states[0], params=phi)
    u1 = native(fresh.grad[1], fresh.states[1], params=phi)
    assert torch.equal(u0, u1)


def test_a_pes_smoke_run_lowers_the_validation_loss(tmp_path):
    from train.kernel import native_available

    if not native_available():
        pytest.skip("no C compiler")
    cfg = _config(estimator="pes", iterations=40, val_every=20, meta_lr=2e-2, sigma=0.05, workers=8, seed=3)
    meta_train_mix(cfg, tmp_path, progress=False)
    report = __import__("json").loads((tmp_path / "validation.json").read_text())
    assert report["best"]["score"] < report["start"]["score"]


def test_pes_ramp_weighs_a_truncation_by_how_late_it_is_in_the_horizon():
    from train.kernel import NativeStep, native_available, pack_params
    from train.metamix import PESPair

    if not native_available():
        pytest.skip("no C compiler")
    module = randomized(_config().make_optimizer(), seed=3, scale=0.3)
    native = NativeStep(module)
    phi = pack_params(module)
    metas = {}
    for weight in ("mean", "ramp"):
        cfg = _config(meta_weight=weight)
        pair = PESPair(cfg, random.Random(0), native, phi.numel())
        pair.horizon = 4 * cfg.unroll  # four truncations of one instance
        metas[weight] = [pair.truncation(phi, torch.Generator().manual_seed(k))[1] for k in range(4)]
    # the same steps (same seeds), the k-th truncation's steps weighted about 2(k + 1/2) / 4
    for k, (mean, ramp) in enumerate(zip(metas["mean"], metas["ramp"])):
        assert ramp == pytest.approx(mean * (2 * k + 1) / 4, rel=0.25)
    with pytest.raises(ValueError):
        meta_train_mix(_config(estimator="pes", meta_weight="last"), "/nonexistent", progress=False)


@pytest.mark.parametrize("form", ["checkpoint", "weight file"])
def test_an_imitation_stage_starts_from_init_from(tmp_path, form):
    """`init_from` names an earlier stage's checkpoint or a shipped weight file; a weight file
    whose output fields differ from the stage's (here tanh-rms's power and scale) gives its network
    only."""
    from train.export import export_model
    from train.metamix import imitate_mix

    cfg = _config(stage="imitation", teacher="adam", iterations=1, val_every=1, meta_lr=0.0, coords=64,
                  teacher_configs=2, teacher_horizon=10, output_power=0.3, output_scale=1.0)
    start = randomized(cfg.make_optimizer(), seed=5, scale=0.3)
    if form == "checkpoint":
        path = tmp_path / "start.pt"
        torch.save({"model": start.state_dict()}, path)
    else:
        path = tmp_path / "model.safetensors"
        other = replace(cfg, output_power=0.5, output_scale=2.0).make_optimizer()
        other.load_state_dict(start.state_dict())
        export_model(other, path)
    imitate_mix(replace(cfg, init_from=str(path)), tmp_path / "run", progress=False)
    # lr 0: the stage hands on exactly the weights it started from
    kept = load_checkpoint(tmp_path / "run" / "best.pt")["model"]
    for name, value in start.state_dict().items():
        assert torch.equal(kept[name], value), name


def test_imitation_trajectories_follow_the_driver_the_config_names():
    """driver "teacher": the teacher's own trajectory; "student": the student's, with the teacher
    run alongside on the same gradients; "mixed": every other task. A student that never moves
    leaves every recorded gradient of a quadratic (no minibatches) equal to the one at theta_0,
    while the teacher's updates are still its own on that history (Adam: -lr sign-like, nonzero)."""
    from train.metamix import teacher_data

    cfg = _config(stage="imitation", teacher="adam", teacher_lr=0.1, teacher_configs=2, teacher_horizon=6)
    still = cfg.make_optimizer()
    with torch.no_grad():
        for p in still.head.parameters():
            p.zero_()  # tanh(0) = 0: never moves
    student = Learned(still)
    dims = [cfg.sample_task(random.Random(0)) for _ in range(2)]  # quadratics: quadratic_prob 1
    assert all(t.family == "quadratic" for t in dims)

    def moved(grads):  # per task (10 coordinates each): did the gradient change over the run?
        return [not torch.allclose(grads[:, 10 * k : 10 * (k + 1)], grads[:1, 10 * k : 10 * (k + 1)].expand(6, 10))
                for k in range(2)]

    g_t, u_t, _, sizes = teacher_data(cfg)
    g_s, u_s, _, _ = teacher_data(replace(cfg, driver="student"), student=student)
    g_m, _, _, _ = teacher_data(replace(cfg, driver="mixed"), student=student)
    assert sizes == [10, 10]
    assert moved(g_t) == [True, True]
    assert moved(g_s) == [False, False]
    assert moved(g_m) == [True, False]
    assert torch.equal(g_s[0], g_t[0]) and torch.equal(u_s[0], u_t[0]), "same tasks, same first step"
    assert (u_s.abs() > 0).all(), "the teacher's own updates, not the student's zeros"
    with pytest.raises(ValueError):
        teacher_data(replace(cfg, driver="student"))
    with pytest.raises(ValueError):
        teacher_data(replace(cfg, driver="both"), student=student)


def test_per_task_sampling_gives_a_quadratic_as_many_draws_as_an_mlp():
    """coord_sampling "per-task": each task an equal share of an iteration's coordinates, and a
    quadratic runs enough instances to have TASK_COORDS of them; "uniform" is the old draw."""
    from train.metamix import TASK_COORDS, draw_coords, teacher_data

    cfg = _config(stage="imitation", teacher="adam", teacher_configs=2, teacher_horizon=3, coords=4000)
    _, _, _, sizes = teacher_data(replace(cfg, coord_sampling="per-task"))
    assert sizes == [-(-TASK_COORDS // 10) * 10] * 2
    gen = torch.Generator().manual_seed(0)
    per_task = draw_coords(replace(cfg, coord_sampling="per-task"), [10, 100_000], gen)
    assert per_task.min() >= 0 and per_task.max() < 100_010
    assert 0.45 < (per_task < 10).float().mean() < 0.55
    assert len(set((per_task[per_task < 10]).tolist())) == 10
    uniform = draw_coords(cfg, [10, 100_000], torch.Generator().manual_seed(0))
    assert torch.equal(uniform, torch.randint(0, 100_010, (4000,), generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError):
        teacher_data(replace(cfg, coord_sampling="balanced"))


def test_validate_mix_cli_scores_a_hand_rule_config_by_config(monkeypatch, capsys):
    """`validate-mix --rule NAME --rule-lr LR --details` prints the rule's score and one line per
    validation config; it takes weights or a rule, not both or neither."""
    from train import cli, metamix

    tiny = _config()
    monkeypatch.setattr(metamix, "validation_set",
                        lambda cfg, scaled=False: validation_set(replace(tiny, seed=cfg.seed), scaled=scaled))
    assert cli.main(["validate-mix", "--rule", "adam", "--rule-lr", "0.1", "--details"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("adam lr 0.1, validation set of seed 0: ")
    assert len(out) == 1 + tiny.val_configs and all("mean whole-pool loss" in line for line in out[1:])
    for argv in (["validate-mix"], ["validate-mix", "--rule", "adam", "--weights", "w.safetensors"]):
        with pytest.raises(SystemExit):
            cli.main(argv)


def test_validate_mix_cli_tries_decays_on_a_weight_file_with_every_config_long(tmp_path, monkeypatch, capsys):
    """`validate-mix --weights W --decay none T:P --long` scores W without and with the step decay,
    on a validation set whose every config runs to the longest horizon."""
    from train import cli, metamix
    from train.export import export_model

    tiny = _config()
    seen = []

    def fake_set(cfg, scaled=False):
        seen.append(cfg.val_long == cfg.val_configs)
        return validation_set(replace(tiny, seed=cfg.seed), scaled=scaled)

    monkeypatch.setattr(metamix, "validation_set", fake_set)
    weights = tmp_path / "model.safetensors"
    export_model(replace(tiny, output_scale=1.0, output_power=0.3).make_optimizer(), weights)
    assert cli.main(["validate-mix", "--weights", str(weights), "--decay", "none", "3:0.5", "--long"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert seen == [True]
    assert [line.split(", validation set")[0] for line in out] == [
        f"{weights} output x1, decay none", f"{weights} output x1, decay 3:0.5"]
    with pytest.raises(SystemExit):
        cli.main(["validate-mix", "--weights", str(weights), "--decay", "3-0.5"])
    # --power sets tanh-rms's power for every run (here with two scales)
    assert cli.main(["validate-mix", "--weights", str(weights), "--power", "0.4", "--scale", "1", "1.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(", validation set")[0] for line in out] == [
        f"{weights} output x1, power 0.4", f"{weights} output x1.5, power 0.4"]
    with pytest.raises(SystemExit):  # 2 * FLT_MAX^1 is not a float32
        cli.main(["validate-mix", "--weights", str(weights), "--power", "1", "--scale", "2"])


def test_export_cli_reads_a_metamix_stage(tmp_path):
    """`export --checkpoint RUN/best.pt` of an l2o-mlp stage (imitation or meta-training) writes the
    weights that stage kept; it used to read the config as the older ImitationConfig and fail."""
    from train import cli
    from train.export import load_model
    from train.metamix import imitate_mix

    cfg = _config(stage="imitation", teacher="adam", iterations=2, val_every=2, coords=64, teacher_configs=2,
                  teacher_horizon=6)
    imitate_mix(cfg, tmp_path / "run", progress=False)
    assert cli.main(["export", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--out",
                     str(tmp_path / "model.safetensors")]) == 0
    kept = load_checkpoint(tmp_path / "run" / "best.pt")["model"]
    exported = load_model(tmp_path / "model.safetensors").state_dict()
    for name, value in kept.items():
        assert torch.equal(exported[name], value), name
