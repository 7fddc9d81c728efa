"""The optimizer module implements DESIGN.md §2 exactly."""

import math

import pytest
import torch

from train.optimizer import LSTMOptimizer
from train.tests.helpers import randomized


def _randomized(opt):
    return randomized(opt, seed=1, scale=0.5)


def test_state_dict_names_are_the_weight_file_names():
    opt = LSTMOptimizer(layers=2, hidden=20, preprocessing="log-sign")
    shapes = {k: list(v.shape) for k, v in opt.state_dict().items()}
    assert shapes == {
        "cells.0.weight_ih": [80, 2], "cells.0.weight_hh": [80, 20],
        "cells.0.bias_ih": [80], "cells.0.bias_hh": [80],
        "cells.1.weight_ih": [80, 20], "cells.1.weight_hh": [80, 20],
        "cells.1.bias_ih": [80], "cells.1.bias_hh": [80],
        "head.weight": [1, 20], "head.bias": [1],
    }
    assert list(LSTMOptimizer(preprocessing="none").state_dict()["cells.0.weight_ih"].shape) == [80, 1]


def test_log_sign_preprocessing_follows_the_paper():
    opt = LSTMOptimizer(p=10.0)
    g = torch.tensor([0.0, 1e-30, -1e-6, 1.0, -2.0, 1e10])
    x = opt.preprocess(g)
    assert x[0].tolist() == [-1.0, 0.0]
    assert x[1, 0] == -1.0 and x[1, 1] == pytest.approx(1e-30 * math.exp(10), rel=1e-6)
    assert x[2, 0] == -1.0 and x[2, 1] == pytest.approx(-1e-6 * math.exp(10), rel=1e-6)
    assert x[3].tolist() == [0.0, 1.0]
    assert x[4, 0] == pytest.approx(math.log(2) / 10) and x[4, 1] == -1.0
    assert x[5, 0] == pytest.approx(math.log(1e10) / 10, rel=1e-6) and x[5, 1] == 1.0


def test_forward_matches_a_hand_written_lstm_with_gate_order_ifgo():
    opt = _randomized(LSTMOptimizer(layers=2, hidden=3, preprocessing="log-sign", output_scale=0.1))
    g = torch.tensor([0.5, -1e-7, 3.0])
    state = torch.randn(3, 12, generator=torch.Generator().manual_seed(2))
    upd, new = opt(g, state)
    x = opt.preprocess(g).double()
    parts = []
    for k, cell in enumerate(opt.cells):
        h, c = state[:, 6 * k : 6 * k + 3].double(), state[:, 6 * k + 3 : 6 * k + 6].double()
        z = x @ cell.weight_ih.double().T + cell.bias_ih.double() + h @ cell.weight_hh.double().T + cell.bias_hh.double()
        i, f, gg, o = z.split(3, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
        h = torch.sigmoid(o) * torch.tanh(c)
        parts += [h, c]
        x = h
    ref_upd = 0.1 * (x @ opt.head.weight.double().T + opt.head.bias.double()).reshape(-1)
    torch.testing.assert_close(upd.double(), ref_upd, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(new.double(), torch.cat(parts, dim=1), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("pre", ["log-sign", "none"])
def test_fast_forward_equals_forward(pre):
    opt = _randomized(LSTMOptimizer(layers=2, hidden=5, preprocessing=pre))
    g = torch.randn(50) * 10 ** torch.randint(-8, 3, (50,)).float()
    state = torch.randn(50, 20)
    u1, s1 = opt(g, state)
    u2, s2 = opt.fast_forward(g, state.t().contiguous())  # feature-major state
    torch.testing.assert_close(u1, u2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s1, s2.t(), rtol=1e-5, atol=1e-6)


def test_coordinates_are_independent_and_state_is_coordinate_major():
    opt = _randomized(LSTMOptimizer(layers=2, hidden=4))
    g = torch.randn(10)
    state = opt.init_state(10)
    u_all, s_all = opt(g, state)
    u_part, s_part = opt(g[3:7], state[3:7])
    torch.testing.assert_close(u_all[3:7], u_part)
    torch.testing.assert_close(s_all[3:7], s_part)
    assert torch.all(state == 0), "forward must not mutate its input state"


def test_architecture_round_trips():
    opt = LSTMOptimizer(layers=1, hidden=7, preprocessing="none", output_scale=0.5)
    arch = opt.architecture()
    assert arch == {"kind": "lstm-cw", "layers": 1, "hidden": 7, "preprocessing": "none", "outputScale": 0.5}
    assert LSTMOptimizer.from_architecture(arch).architecture() == arch
    assert LSTMOptimizer(p=5.0).architecture()["p"] == 5.0


def test_tanh_rms_output_scales_tanh_by_the_rms_to_a_power_and_refuses_unbounded_records():
    from train.tests.helpers import MOMENTS

    out = {"kind": "tanh-rms", "scale": 0.5, "power": 0.3}
    opt = _randomized(LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output=out))
    assert opt.architecture()["output"] == out
    assert LSTMOptimizer.from_architecture(opt.architecture()).architecture() == opt.architecture()
    g = torch.tensor([1e-3, -2.0, 0.0, 3e38])
    with torch.no_grad():
        u, state = opt(g, opt.init_state(4))
        y = opt.head(opt.cells[0](opt.inputs(g, opt.init_state(4))[0])[0]).reshape(-1)
    r = state[:, opt.lstm_size + len(MOMENTS["beta1"])]
    torch.testing.assert_close(r, g.abs())  # the first nonzero gradient initialises the RMS
    expected = 0.5 * torch.tanh(y) * r.double().pow(0.3).float()
    torch.testing.assert_close(u, expected, rtol=1e-6, atol=0)
    assert u[2].item() == 0.0 and torch.isfinite(u).all()
    for bad in ({**out, "power": 0.0}, {**out, "power": 1.5}, {**out, "scale": 2.0, "power": 1.0}):
        with pytest.raises(ValueError):
            LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output=bad)


def test_decay_counts_steps_since_the_first_nonzero_gradient_and_scales_the_step_after_t_of_them():
    from train.tests.helpers import MOMENTS

    base = {"kind": "tanh-rms", "scale": 0.5, "power": 0.3}
    out = {**base, "decay": {"after": 3, "power": 0.5}}
    opt = _randomized(LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output=out))
    plain = LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output=base)
    plain.load_state_dict(opt.state_dict())
    assert opt.architecture()["output"] == out and opt.state_size == plain.state_size + 2
    assert LSTMOptimizer.from_architecture(opt.architecture()).architecture() == opt.architecture()
    lo = opt.state_size - 2
    g = torch.tensor([1e-3, -2.0, 0.0, 5.0])
    state, pstate = opt.init_state(4), plain.init_state(4)
    with torch.no_grad():
        for t in range(1, 7):
            gt = g.clone()
            if t == 1:
                gt[3] = 0.0  # coordinate 3 starts counting one step later
            u, state = opt(gt, state)
            up, pstate = plain(gt, pstate)
            torch.testing.assert_close(state[:, :lo], pstate)  # the rest of the state is plain tanh-rms's
            count = (256 * state[:, lo + 1] + state[:, lo]).tolist()
            assert count == [t, t, 0, t - 1]
            factor = torch.tensor([min(1.0, (3 / c) ** 0.5) if c else 1.0 for c in count], dtype=torch.float64)
            assert torch.equal(u, (up.double() * factor).float())  # exactly tanh-rms for the first 3 steps
            assert u[2].item() == 0.0
    # the count's digits are integers below 256: a bfloat16 or float16 state carries them exactly
    wide = opt.init_state(2)
    wide[:, lo], wide[:, lo + 1] = torch.tensor([255.0, 254.0]), torch.tensor([3.0, 255.0])
    wide[:, opt.lstm_size + len(MOMENTS["beta1"]) + 1] = 1.0  # seen
    with torch.no_grad():
        _, nxt = opt(torch.ones(2), wide.bfloat16().float())
    assert (256 * nxt[:, lo + 1] + nxt[:, lo]).tolist() == [1024.0, 65535.0]  # carries, then stops
    # whatever finite values a client sends read as a count from 0 to 65535
    junk = opt.init_state(3)
    junk[:, lo], junk[:, lo + 1] = torch.tensor([-7.5, 300.2, 2.9]), torch.tensor([1e30, -1.0, 0.5])
    with torch.no_grad():
        _, nxt = opt(torch.ones(3), junk)
    assert (256 * nxt[:, lo + 1] + nxt[:, lo]).tolist() == [65280.0 + 1, 255.0 + 1, 2.0 + 1]
    for bad in ({"after": 0, "power": 0.5}, {"after": 2.5, "power": 0.5}, {"after": 70000, "power": 0.5},
                {"after": 3, "power": 0.0}, {"after": 3, "power": 1.5}):
        with pytest.raises(ValueError):
            LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output={**base, "decay": bad})
    with pytest.raises(ValueError):
        LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output={"kind": "tanh", "scale": 0.1, "decay": out["decay"]})


def test_fast_forward_equals_forward_with_decay():
    from train.tests.helpers import MOMENTS

    out = {"kind": "tanh-rms", "scale": 1.0, "power": 0.3, "decay": {"after": 2, "power": 1.0}}
    opt = _randomized(LSTMOptimizer(layers=2, hidden=4, features=MOMENTS, input_size=5, output=out))
    state = opt.init_state(40)
    fm = state.t().contiguous()
    for t in range(5):
        g = torch.randn(40) * 10 ** torch.randint(-6, 2, (40,)).float()
        g[:4] = 0.0
        with torch.no_grad():
            u1, state = opt(g, state)
        u2, fm = opt.fast_forward(g, fm)
        torch.testing.assert_close(u1, u2, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(state, fm.t(), rtol=1e-5, atol=1e-6)


def test_set_output_changes_the_fields_without_weights_and_refuses_what_a_file_may_not_hold():
    from train.tests.helpers import MOMENTS

    out = {"kind": "tanh-rms", "scale": 1.0, "power": 0.3, "decay": {"after": 200, "power": 0.5}}
    opt = LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output=out)
    weights = {k: v.clone() for k, v in opt.state_dict().items()}
    opt.set_output(scale=1.5, power=0.4)
    assert opt.architecture()["output"] == {**out, "scale": 1.5, "power": 0.4}  # the decay kept
    opt.set_output(decay=(100, 0.3))
    assert opt.architecture()["output"]["decay"] == {"after": 100, "power": 0.3}
    opt.set_output(decay=None)
    assert "decay" not in opt.architecture()["output"]
    assert all(torch.equal(weights[k], v) for k, v in opt.state_dict().items())
    with pytest.raises(ValueError, match="bound"):
        opt.set_output(scale=2.0, power=1.0)
    with pytest.raises(ValueError, match="decay.power"):
        opt.set_output(decay=(100, 1.5))
    plain = LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output={"kind": "tanh", "scale": 0.1})
    plain.set_output(scale=0.2)
    assert plain.architecture()["output"] == {"kind": "tanh", "scale": 0.2}
    for change in ({"power": 0.4}, {"decay": None}):
        with pytest.raises(ValueError, match="tanh-rms"):
            plain.set_output(**change)


def test_gain_latches_the_groups_mean_lag1_autocorrelation_per_coordinate_count():
    """docs/optimizer-math.md §6, `gain`: written out by hand beside the module."""
    from train.tests.helpers import GAIN, MOMENTS

    base = {"kind": "tanh-rms", "scale": 0.5, "power": 0.3, "decay": {"after": 4, "power": 0.5}}
    opt = _randomized(LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output={**base, "gain": GAIN}))
    plain = LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output=base)
    plain.load_state_dict(opt.state_dict())
    assert opt.architecture()["output"]["gain"] == GAIN and opt.state_size == plain.state_size + 2
    assert LSTMOptimizer.from_architecture(opt.architecture()).architecture() == opt.architecture()
    count, r_slot = plain.state_size - 2, opt.lstm_size + len(MOMENTS["beta1"])
    gen = torch.Generator().manual_seed(5)
    n = 6
    state, pstate = opt.init_state(n), plain.init_state(n)
    prev, a = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float32)
    for t in range(1, 8):
        g = torch.randn(n, generator=gen) * torch.tensor([1.0, 1e-3, 10.0, 1.0, 0.0, 1.0])
        g[0] = abs(g[0]) + 0.5  # one steady coordinate
        if t < 3:
            g[5] = 0.0  # coordinate 5 starts two steps later: its own count, its own latch
        with torch.no_grad():
            u, state = opt(g, state)
            up, pstate = plain(g, pstate)
        assert torch.equal(state[:, :count + 2], pstate)  # the rest is tanh-rms with decay
        r = state[:, r_slot].double()
        x = torch.where(r > 0, g.double() * prev / (r * r), torch.zeros_like(r)).clamp(-1, 1)
        t_own = (256 * state[:, count + 1] + state[:, count]).double()
        a = torch.where((t_own >= 2) & (t_own <= 3), (a.double() + x.mean()).float(), a)
        k = torch.where(t_own >= 3, (4.0 * (a.double() / 2 - 0.02)).clamp(-0.4, 0.4).exp(), torch.ones_like(r))
        assert torch.equal(state[:, count + 2], g) and torch.equal(state[:, count + 3], a)
        assert torch.equal(u, (up.double() * k).float())
        assert u[4].item() == 0.0 and str(u[4].item()) == "0.0"  # never a nonzero gradient: exactly +0
        prev = g.double()
    assert state[0, count + 3] != state[5, count + 3]  # coordinate 5 latched later, on other means
    # a fresh state's coordinates keep gain 1 (and a = 0) until their count reaches 2
    with torch.no_grad():
        u1, s1 = opt(torch.ones(3), opt.init_state(3))
        p1, _ = plain(torch.ones(3), plain.init_state(3))
    assert torch.equal(u1, p1) and torch.all(s1[:, count + 3] == 0)
    for bad in ({**GAIN, "kind": "pooled"}, {**GAIN, "after": 1}, {**GAIN, "after": 2.5}, {**GAIN, "after": 70000},
                {**GAIN, "strength": -1.0}, {**GAIN, "cap": 0.0}, {**GAIN, "cap": 21.0}, {**GAIN, "center": math.inf}):
        with pytest.raises(ValueError):
            LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output={**base, "gain": bad})
    with pytest.raises(ValueError, match="e\\^gain.cap"):  # e^cap counts in the bound
        LSTMOptimizer(layers=1, hidden=3, features=MOMENTS,
                      output={"kind": "tanh-rms", "scale": 1.0, "power": 1.0, "gain": GAIN})
    with pytest.raises(ValueError):
        LSTMOptimizer(layers=1, hidden=3, features=MOMENTS, output={"kind": "tanh", "scale": 0.1, "gain": GAIN})


def test_gain_pools_over_each_group_and_fast_forward_equals_forward():
    from train.tests.helpers import GAIN, MOMENTS

    out = {"kind": "tanh-rms", "scale": 1.0, "power": 0.3, "gain": GAIN}
    opt = _randomized(LSTMOptimizer(layers=2, hidden=4, features=MOMENTS, input_size=5, output=out))
    n = 40
    state, fm = opt.init_state(2 * n), opt.init_state(2 * n).t().contiguous()
    halves = [opt.init_state(n), opt.init_state(n)]
    gen = torch.Generator().manual_seed(2)
    for t in range(5):
        g = torch.randn(2 * n, generator=gen) + torch.tensor([1.0, -1.0]).repeat_interleave(n) * (-1) ** t
        g[:4] = 0.0
        with torch.no_grad():
            u1, state = opt(g, state, groups=2)
            parts = [opt(g[i * n : (i + 1) * n], halves[i]) for i in range(2)]
        halves = [p[1] for p in parts]
        assert torch.equal(u1, torch.cat([p[0] for p in parts]))
        u2, fm = opt.fast_forward(g, fm, groups=2)
        torch.testing.assert_close(u1, u2, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(state, fm.t(), rtol=1e-5, atol=1e-6)
    assert state[0, -1] != state[-1, -1]  # the two groups latched apart
