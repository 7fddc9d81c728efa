"""The step gains of train/regimes.py do what their formulas say, and validate-mix runs them."""

import math

import pytest
import torch

from train.baselines import SGD, Adam
from train.regimes import CorrelationGain, HypergradientGain, LatchedGain, make_gain


def test_sign_gain_grows_along_consistent_steps_and_shrinks_on_oscillation():
    # coordinate 0 sees the same gradient each step (every step too short), coordinate 1 one whose
    # sign flips each step (every step too long), coordinate 2 only zeros
    mu, rho = 0.1, 0.2
    rule = HypergradientGain(SGD(0.5), mu, rho)
    state = rule.init(3)
    logk = 0.0
    for t in range(40):
        g = torch.tensor([1.0, (-1.0) ** t, 0.0])
        u, state = rule.update(g, state)
        logk = (1 - rho) * logk + (mu if t > 0 else 0.0)  # no previous step at t = 0
        assert u[0].item() == pytest.approx(-0.5 * math.exp(logk), rel=1e-5)
        assert u[1].item() == pytest.approx(0.5 * (-1.0) ** (t + 1) * math.exp(-logk), rel=1e-5)
        assert u[2].item() == 0.0
    assert state["logk"][0].item() == pytest.approx(mu / rho, rel=1e-3)  # the bound exp(mu / rho)
    capped = HypergradientGain(SGD(0.5), mu, rho, cap=0.1)
    state = capped.init(1)
    for _ in range(10):
        _, state = capped.update(torch.tensor([1.0]), state)
    assert state["logk"].item() == pytest.approx(0.1)


def test_correlation_gain_per_coordinate_follows_the_lag1_autocorrelation():
    # constant gradients: x = g^2 / v_hat = 1 from step 2, so c_hat = 1 and the gain is exp(A (1 - C0));
    # alternating ones: x = -1, the gain exp(-A (1 + C0)), both within the cap
    beta, c0, a = 0.9, 0.1, 0.3
    rule = CorrelationGain(SGD(1.0), beta, c0, a, cap=1.0)
    state = rule.init(2)
    for t in range(30):
        g = torch.tensor([2.0, 2.0 * (-1.0) ** t])
        u, state = rule.update(g, state)
        if t == 0:
            assert u.tolist() == [-2.0, -2.0]  # no previous gradient yet
    assert u[0].item() == pytest.approx(-2.0 * math.exp(a * (1 - c0)), rel=1e-4)
    assert u[1].item() == pytest.approx(-2.0 * (-1.0) ** 29 * math.exp(-a * (1 + c0)), rel=1e-4)


def test_pooled_gain_integrates_each_instance_mean_apart():
    # two instances of two coordinates: instance 0's gradients are constant (mean c_hat 1), instance 1's
    # alternate (mean c_hat -1); L moves by MU (mean - C0) a step from the second step on, within the cap
    mu, c0, cap = 0.05, 0.0, 0.3
    rule = CorrelationGain(SGD(1.0), 0.9, c0, mu, cap, pooled=True)
    rule.instances = 2
    state = rule.init(4)
    for t in range(5):
        s = (-1.0) ** t
        u, state = rule.update(torch.tensor([1.0, 1.0, s, s]), state)
    assert state["L"].reshape(-1).tolist() == pytest.approx([4 * mu, -4 * mu], rel=1e-5)
    for t in range(5, 20):
        s = (-1.0) ** t
        u, state = rule.update(torch.tensor([1.0, 1.0, s, s]), state)
    assert state["L"].reshape(-1).tolist() == pytest.approx([cap, -cap])
    assert u[:2].tolist() == pytest.approx([-math.exp(cap)] * 2, rel=1e-5)


def test_latched_gain_sets_each_instance_multiplier_once_from_its_early_autocorrelation():
    # instance 0: constant gradients (x = 1 from step 2), instance 1: alternating (x = -1); T0 = 4
    # averages steps 2..4, then exp(clamp(A (mean - C0))) holds whatever comes after
    t0, c0, a, cap = 4, 0.2, 0.5, 0.5
    rule = LatchedGain(SGD(1.0), t0, c0, a, cap)
    rule.instances = 2
    state = rule.init(2)
    for t in range(1, 12):
        s = (-1.0) ** t if t <= t0 else 1.0  # instance 1 turns consistent after T0: no effect
        u, state = rule.update(torch.tensor([1.0, s]), state)
        if t < t0:
            assert u.tolist() == pytest.approx([-1.0, -s])
    assert state["L"].reshape(-1).tolist() == pytest.approx([a * (1 - c0), -cap])
    assert u.tolist() == pytest.approx([-math.exp(a * (1 - c0)), -math.exp(-cap)], rel=1e-5)


def test_a_sharded_latch_pools_each_run_of_shard_coordinates_apart():
    # one instance of 5 coordinates in shards of 2: [c0 c1] constant (x = 1), [c2 c3] alternating
    # (x = -1), [c4] constant: three multipliers; without SHARD, one from the mean (1 - 1 - 1 + 1 + 1) / 5
    t0, c0, a, cap = 3, 0.0, 0.5, 1.0
    sharded, whole = LatchedGain(SGD(1.0), t0, c0, a, cap, shard=2), LatchedGain(SGD(1.0), t0, c0, a, cap)
    states = [sharded.init(5), whole.init(5)]
    for t in range(1, 6):
        s = (-1.0) ** t if t <= t0 else 1.0
        g = torch.tensor([1.0, 1.0, s, s, 1.0])
        (u, states[0]), (w, states[1]) = sharded.update(g, states[0]), whole.update(g, states[1])
    assert states[0]["L"].reshape(-1).tolist() == pytest.approx([a, -a, a])
    assert u.tolist() == pytest.approx([-math.exp(a)] * 2 + [-math.exp(-a)] * 2 + [-math.exp(a)], rel=1e-5)
    assert states[1]["L"].reshape(-1).tolist() == pytest.approx([a * 0.2])
    assert w.tolist() == pytest.approx([-math.exp(a * 0.2)] * 5, rel=1e-5)
    # a shard at least as large as the model is the whole model
    big = LatchedGain(SGD(1.0), t0, c0, a, cap, shard=8)
    assert big.init(5)["L"].shape == (1, 1)


def test_latchr_reads_v_as_the_moments_features_keep_r_squared():
    # v = g^2 at a coordinate's first nonzero gradient, then an EMA at 0.99 (no bias correction):
    # with gradients 2, 1, 1, v is 4, then 3.97, then 3.9403, and x is 2 / 3.97, then 1 / 3.9403
    rule = make_gain(SGD(1.0), "latchr:3:0.0:1.0:5.0")
    state = rule.init(1)
    for g in (2.0, 1.0, 1.0):
        _, state = rule.update(torch.tensor([g]), state)
    assert state["v"].item() == pytest.approx(3.9403, rel=1e-6)
    assert state["L"].item() == pytest.approx((2 / 3.97 + 1 / 3.9403) / 2, rel=1e-5)
    # a coordinate that has only seen zeros keeps v = 0 and adds x = 0
    rule = make_gain(SGD(1.0), "latchr:3:0.0:1.0:5.0")
    state = rule.init(2)
    for _ in range(3):
        _, state = rule.update(torch.tensor([1.0, 0.0]), state)
    assert state["v"].tolist() == [1.0, 0.0]
    assert state["L"].item() == pytest.approx(0.5, rel=1e-6)  # the mean of x = 1 and x = 0


def test_gain_specs_and_their_checks():
    assert isinstance(make_gain(Adam(0.01), "sign:0.02:0.02"), HypergradientGain)
    assert make_gain(Adam(0.01), "sign:0.02:0.02:0.5").cap == 0.5
    assert make_gain(Adam(0.01), "pooled:0.95:0.02:0.05:0.7").pooled
    assert not make_gain(Adam(0.01), "corr:0.95:0.05:2.5:0.5").pooled
    assert make_gain(Adam(0.01), "latch:30:0.01:10:0.4").t0 == 30
    assert make_gain(Adam(0.01), "latch:30:0.01:10:0.4:4096").shard == 4096
    for bad in ("sign:0.02", "corr:0.95:0.05:2.5", "tilt:1:2", "sign:a:b", "sign:0.1:0", "latch:1:0:1:1", "latch:2.5:0:1:1", "latch:10:0:1:1:0.5"):
        with pytest.raises(ValueError):
            make_gain(Adam(0.01), bad)


def test_validate_mix_runs_a_pooled_gain_per_instance():
    from train.metamix import MixConfig, validate_mix, validation_set

    cfg = MixConfig(val_configs=2, val_instances=2, val_horizon=20, val_long=0, quadratic_prob=0.0,
                    max_layers=1, max_units=12)
    vs = validation_set(cfg)
    plain = validate_mix(Adam(0.01), vs)
    off = CorrelationGain(Adam(0.01), 0.9, 0.0, 0.0, cap=1.0, pooled=True)  # MU 0: always exp(0)
    assert validate_mix(off, vs) == pytest.approx(plain, abs=1e-9)
    assert off.instances == 2
    on = make_gain(Adam(0.01), "pooled:0.9:0.5:0.5:0.7")
    assert validate_mix(on, vs) != pytest.approx(plain, abs=1e-6)
