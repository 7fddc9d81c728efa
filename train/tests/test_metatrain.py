"""Meta-training smoke runs: the meta-loss goes down, checkpoints resume, non-finite is skipped."""

import csv
import warnings

import torch

from train.metatrain import MetaTrainConfig, load_best, load_checkpoint, meta_train, truncation, validate
from train.tasks import instance_seeds


def _tiny(**kw):
    base = dict(
        family="quadratic", preprocessing="none", layers=1, hidden=8, output_scale=0.1, meta_lr=0.01,
        batch=16, iterations=30, horizon=20, unroll=5, val_every=10, val_instances=32, patience=100,
    )
    base.update(kw)
    return MetaTrainConfig(**base)


def test_smoke_run_lowers_the_validation_meta_loss(tmp_path):
    cfg = _tiny()
    summary = meta_train(cfg, tmp_path, progress=False)
    fam = cfg.make_family()
    val = fam.sample(instance_seeds(cfg.seed + 1, cfg.val_instances), horizon=cfg.horizon + 1)
    torch.manual_seed(cfg.seed)
    before = validate(cfg.make_optimizer(), val, cfg.horizon)
    after = validate(load_best(cfg, tmp_path), val, cfg.horizon)
    assert after < 0.7 * before, (before, after)
    assert summary["bestValLoss"] == after
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert len(rows) == 30 and rows[-1]["val_loss"] != ""


def test_resume_continues_from_the_checkpoint(tmp_path):
    meta_train(_tiny(iterations=10), tmp_path, progress=False)
    summary = meta_train(_tiny(iterations=10), tmp_path, progress=False)
    assert summary["iterations"] == 10  # nothing left to do
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["iteration"] == 10


def test_gradients_fed_to_the_optimizer_are_detached():
    cfg = _tiny()
    opt = cfg.make_optimizer()
    prob = cfg.make_family().sample(instance_seeds(0, 4))
    seen = []
    orig = opt.forward

    def spy(g, s):
        seen.append(g.requires_grad)
        return orig(g, s)

    opt.forward = spy
    meta, *_ = truncation(opt, prob, prob.theta0, opt.init_state(40), 0, 3)
    meta.backward()
    assert seen == [False, False, False]
    assert all(p.grad is not None for p in opt.parameters())


def test_non_finite_losses_are_skipped_and_counted(tmp_path):
    cfg = _tiny(iterations=3, output_scale=1e30, val_every=3)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        summary = meta_train(cfg, tmp_path, progress=False)
    assert summary["skippedNonFinite"] >= 1
    for p in load_best(cfg, tmp_path).parameters():
        assert torch.isfinite(p).all()


def test_resume_may_change_stopping_rules_but_not_what_is_trained(tmp_path):
    import pytest

    meta_train(_tiny(iterations=5, val_every=5), tmp_path, progress=False)
    summary = meta_train(_tiny(iterations=10, val_every=5, max_minutes=60.0), tmp_path, progress=False)
    assert summary["iterations"] == 10
    with pytest.raises(ValueError, match="meta_lr"):
        meta_train(_tiny(iterations=15, val_every=5, meta_lr=0.5), tmp_path, progress=False)


def test_late_meta_loss_counts_only_the_last_fifth_of_the_horizon():
    cfg = _tiny()
    opt = cfg.make_optimizer()
    prob = cfg.make_family().sample(instance_seeds(0, 4))
    state = opt.init_state(40)
    early, theta, state2, _ = truncation(opt, prob, prob.theta0, state, 0, 5, "late", horizon=20)
    assert early is None  # steps 1-5 of 20: before the last fifth
    late, _, _, losses = truncation(opt, prob, prob.theta0, state, 15, 5, "late", horizon=20)
    # steps 16-20: only 17..20 are in the last fifth (20 - 20 // 5 + 1 = 17)
    assert abs(late.item() - sum(losses[1:]) / 4) < 1e-6
