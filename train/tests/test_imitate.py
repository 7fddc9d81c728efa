"""Behaviour cloning of a baseline: the teacher's data is right, the regression learns, resume works."""

import math

import pytest
import torch

from train.baselines import NAG
from train.imitate import ImitationConfig, coordinate_scale, imitate, imitation_loss, teacher_trajectories
from train.metatrain import load_best
from train.runner import run
from train.tasks import instance_seeds


def _tiny(**kw):
    base = dict(
        family="quadratic", preprocessing="none", layers=1, hidden=8, output_scale=0.1, meta_lr=0.02,
        batch=16, iterations=60, horizon=20, unroll=10, val_every=20, val_instances=16, patience=100,
        teacher="nag", teacher_lr=0.01, coords=160,
    )
    base.update(kw)
    return ImitationConfig(**base)


def test_teacher_trajectories_are_the_teachers_own_run():
    cfg = _tiny()
    grads, updates = teacher_trajectories(cfg, "cpu")
    assert grads.shape == updates.shape == (cfg.horizon, cfg.batch * 10)
    problem = cfg.make_family().sample(instance_seeds(cfg.seed + 7, cfg.batch), horizon=cfg.horizon + 1)
    expected = run(NAG(cfg.teacher_lr), problem, cfg.horizon)
    theta = problem.theta0 + updates.sum(dim=0).reshape(problem.theta0.shape)
    torch.testing.assert_close(problem.loss(theta, cfg.horizon), expected[-1], rtol=1e-5, atol=1e-6)
    # NAG's first step from a zero buffer is -lr (1 + momentum) g
    torch.testing.assert_close(updates[0], -cfg.teacher_lr * 1.9 * grads[0])


def test_cloning_lowers_the_imitation_loss(tmp_path):
    cfg = _tiny()
    grads, targets = teacher_trajectories(cfg, "cpu")
    scale = coordinate_scale(targets)
    torch.manual_seed(cfg.seed)
    with torch.no_grad():
        before = imitation_loss(cfg.make_optimizer(), grads, targets, scale, cfg.unroll)
    summary = imitate(cfg, tmp_path, progress=False)
    with torch.no_grad():
        after = imitation_loss(load_best(cfg, tmp_path), grads, targets, scale, cfg.unroll)
    assert after < 0.5 * before, (before, after)
    assert summary["iterations"] == cfg.iterations and summary["skippedNonFinite"] == 0


def test_resume_and_refusal_of_another_config(tmp_path):
    imitate(_tiny(iterations=20), tmp_path, progress=False)
    assert imitate(_tiny(iterations=20), tmp_path, progress=False)["iterations"] == 20
    with pytest.raises(ValueError, match="teacher_lr"):
        imitate(_tiny(iterations=20, teacher_lr=0.1), tmp_path, progress=False)


def test_tune_teacher_ranks_candidates_by_loss():
    from train.imitate import tune_teacher

    fam = _tiny().make_family()
    rows = tune_teacher(fam, instances=4, steps=10, grid={0.5: [0.01, 0.1]}, log=lambda _: None)
    keys = [r[3] if math.isfinite(r[3]) else math.inf for r in rows]
    assert keys == sorted(keys)
    assert {r[0] for r in rows} == {"nag", "pnag"} and len(rows) == 9 + 2


def test_a_saved_config_rebuilds_its_stage():
    from dataclasses import asdict

    from train.imitate import stage_config
    from train.metatrain import MetaTrainConfig

    cfg = _tiny()
    assert stage_config(asdict(cfg)) == cfg
    assert type(stage_config(asdict(MetaTrainConfig()))) is MetaTrainConfig


def test_select_final_hands_on_the_last_iterate(tmp_path):
    from train.metatrain import load_checkpoint

    imitate(_tiny(iterations=20), tmp_path, progress=False)  # best on validation
    summary = imitate(_tiny(iterations=20, select="final"), tmp_path, progress=False)  # resumes: done
    best, ck = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "checkpoint.pt")
    assert summary["bestIteration"] == 20 and best["iteration"] == 20
    assert all(torch.equal(best["model"][k], v) for k, v in ck["model"].items())
    with pytest.raises(ValueError, match="select"):
        imitate(_tiny(select="last"), tmp_path / "x", progress=False)
