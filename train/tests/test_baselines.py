"""The baselines' update rules match torch.optim step for step."""

import pytest
import torch

from train.baselines import (
    NAG,
    SGD,
    Adam,
    AnnealedNesterovAdam,
    AnnealedPartiallyAdaptiveNAG,
    Learned,
    NesterovAdam,
    PartiallyAdaptiveNAG,
    RMSprop,
)
from train.kernel import BLOCK, native_available
from train.optimizer import LSTMOptimizer
from train.tests.helpers import GAIN, MOMENTS, randomized

CASES = [
    (SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (NAG(0.05, 0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    (RMSprop(0.01), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8)),
    (Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
]


@pytest.mark.parametrize("ours,theirs", CASES, ids=["sgd", "nag", "rmsprop", "adam"])
def test_update_rule_matches_torch_optim_over_several_steps(ours, theirs):
    gen = torch.Generator().manual_seed(0)
    n = 37
    ref = torch.nn.Parameter(torch.randn(n, generator=gen))
    theta = ref.detach().clone()
    topt = theirs([ref])
    state = ours.init(n)
    for _ in range(6):
        g = torch.randn(n, generator=gen) * 3
        ref.grad = g.clone()
        topt.step()
        before = state
        upd, state = ours.update(g, state)
        assert state is not before or isinstance(ours, SGD)
        theta = theta + upd
        torch.testing.assert_close(theta, ref.detach(), rtol=1e-5, atol=1e-6)


def test_partially_adaptive_nag_spans_nag_and_a_hand_computed_step():
    gen = torch.Generator().manual_seed(1)
    gs = [torch.randn(9, generator=gen) for _ in range(4)]
    nag, pnag0, pnag = NAG(0.1), PartiallyAdaptiveNAG(0.1, a=0.0), PartiallyAdaptiveNAG(0.1, a=0.5)
    s_nag, s0, s = nag.init(9), pnag0.init(9), pnag.init(9)
    buf, sq = torch.zeros(9), torch.zeros(9)
    for t, g in enumerate(gs, start=1):
        u_nag, s_nag = nag.update(g, s_nag)
        u0, s0 = pnag0.update(g, s0)
        torch.testing.assert_close(u0, u_nag)  # a = 0 is NAG
        u, s = pnag.update(g, s)
        sq = 0.99 * sq + 0.01 * g * g
        gn = g / (sq / (1 - 0.99**t)) ** 0.25
        buf = 0.9 * buf + gn
        torch.testing.assert_close(u, -0.1 * (gn + 0.9 * buf))


def test_nesterov_adam_limits_and_its_look_ahead():
    gen = torch.Generator().manual_seed(2)
    gs = [torch.randn(11, generator=gen) * 10 ** torch.randn(11, generator=gen) for _ in range(5)]
    # beta1 = 0: bias-corrected RMSprop; a constant gradient: steps of exactly lr * sign(g)
    flat, s_flat = NesterovAdam(0.1, betas=(0.0, 0.99)), None
    s_flat = flat.init(11)
    v = torch.zeros(11)
    for t, g in enumerate(gs, start=1):
        u, s_flat = flat.update(g, s_flat)
        v = 0.99 * v + 0.01 * g * g
        torch.testing.assert_close(u, -0.1 * g / ((v / (1 - 0.99**t)).sqrt() + 1e-8))
    # a constant gradient: a first step of (1 + b1) lr sign(g) (both terms bias-corrected), then
    # steps that settle at lr sign(g)
    const = NesterovAdam(0.02)
    s_const = const.init(11)
    u, s_const = const.update(gs[0], s_const)
    torch.testing.assert_close(u, -0.02 * 1.9 * gs[0].sign())
    for _ in range(300):
        u, s_const = const.update(gs[0], s_const)
    torch.testing.assert_close(u, -0.02 * gs[0].sign())
    # the look-ahead: the step after a sign flip is smaller than Adam's with the same moments
    nadam, adam = NesterovAdam(0.1, betas=(0.9, 0.999)), Adam(0.1)
    sn, sa = nadam.init(1), adam.init(1)
    for g in [1.0] * 5 + [-1.0]:
        un, sn = nadam.update(torch.tensor([g]), sn)
        ua, sa = adam.update(torch.tensor([g]), sa)
    assert abs(un.item()) < abs(ua.item()) and un.item() < 0


def test_annealed_nesterov_adam_shrinks_noisy_coordinates_only():
    gen = torch.Generator().manual_seed(3)
    n, steps = 64, 300
    signal = torch.ones(n)
    noise = torch.randn(steps, n, generator=gen)
    base, annealed = NesterovAdam(0.02), AnnealedNesterovAdam(0.02, k=4.0, lo=0.1)
    sb, sa = base.init(n), annealed.init(n)
    for t in range(steps):
        # the first half of the coordinates: a consistent gradient; the rest: zero-mean noise
        g = torch.cat([signal[: n // 2] + 0.1 * noise[t, : n // 2], noise[t, n // 2 :]])
        ub, sb = base.update(g, sb)
        ua, sa = annealed.update(g, sa)
    torch.testing.assert_close(ua[: n // 2], ub[: n // 2])  # k |snr| >= 1: the NesterovAdam step
    ratio = (ua[n // 2 :] / ub[n // 2 :]).abs()
    assert ratio.max() < 0.9 and ratio.min() >= 0.1 - 1e-6  # noise: shrunk, never below lo
    # by hand, one coordinate, two steps
    opt = AnnealedNesterovAdam(0.1, k=2.0, lo=0.05)
    s = opt.init(1)
    ref_base, rs = NesterovAdam(0.1), NesterovAdam(0.1).init(1)
    ms = 0.0
    for t, x in enumerate([1.0, -3.0], start=1):
        u, s = opt.update(torch.tensor([x]), s)
        ub, rs = ref_base.update(torch.tensor([x]), rs)
        ms = 0.99 * ms + 0.01 * x
        snr = abs(ms / (1 - 0.99**t)) / ((rs["v"].item() / (1 - 0.99**t)) ** 0.5 + 1e-8)
        torch.testing.assert_close(u, ub * min(max(2.0 * snr, 0.05), 1.0))


def test_annealed_pnag_is_pnag_times_the_annealing_and_grows_with_the_gradients_scale():
    gen = torch.Generator().manual_seed(3)
    n, steps = 64, 300
    noise = torch.randn(steps, n, generator=gen)
    base, annealed = PartiallyAdaptiveNAG(0.02, a=0.7), AnnealedPartiallyAdaptiveNAG(0.02)
    sb, sa = base.init(n), annealed.init(n)
    for t in range(steps):
        g = torch.cat([1.0 + 0.1 * noise[t, : n // 2], noise[t, n // 2 :]])
        ub, sb = base.update(g, sb)
        ua, sa = annealed.update(g, sa)
    torch.testing.assert_close(ua[: n // 2], ub[: n // 2])  # consistent gradients: pNAG's step
    ratio = (ua[n // 2 :] / ub[n // 2 :]).abs()
    assert ratio.max() < 0.9 and ratio.min() >= 0.1 - 1e-6
    # not scale-free: gradients 100x larger give steps 100^(1 - a) = 10x larger
    small, large = AnnealedPartiallyAdaptiveNAG(0.03, a=0.5), AnnealedPartiallyAdaptiveNAG(0.03, a=0.5)
    s1, s2 = small.init(n), large.init(n)
    for t in range(20):
        u1, s1 = small.update(noise[t] + 2.0, s1)
        u2, s2 = large.update(100 * (noise[t] + 2.0), s2)
    torch.testing.assert_close(u2, 10 * u1, rtol=1e-4, atol=0)


def test_update_leaves_input_state_untouched():
    opt = Adam(0.1)
    state = opt.init(4)
    m0 = state["m"].clone()
    opt.update(torch.ones(4), state)
    assert torch.equal(state["m"], m0) and state["t"] == 0


def test_learned_adapter_has_the_same_interface():
    opt = Learned(LSTMOptimizer(layers=1, hidden=4), native=False)
    state = opt.init(5)
    upd, new_state = opt.update(torch.randn(5), state)
    assert upd.shape == (5,) and new_state.shape == (8, 5) and torch.all(state == 0)  # feature-major


@pytest.mark.skipif(not native_available(), reason="no C compiler")
@pytest.mark.parametrize("arch", [
    {"layers": 2, "hidden": 4, "preprocessing": "log-sign"},
    {"layers": 1, "hidden": 3, "preprocessing": "none"},
    {"layers": 2, "hidden": 5, "features": MOMENTS, "input_size": 6, "output": {"kind": "tanh", "scale": 0.1}},
    {"layers": 1, "hidden": 4, "features": {**MOMENTS, "logRms": 8.0}, "output": {"kind": "linear", "scale": 0.1}},
    {"layers": 2, "hidden": 4, "features": {**MOMENTS, "logRms": 10.0}, "input_size": 4,
     "output": {"kind": "tanh-rms", "scale": 1.0, "power": 0.3}},
    {"layers": 1, "hidden": 4, "features": {**MOMENTS, "logRms": 10.0}, "input_size": 4,
     "output": {"kind": "tanh-rms", "scale": 1.0, "power": 0.3, "decay": {"after": 2, "power": 0.5}}},
    {"layers": 1, "hidden": 4, "features": {**MOMENTS, "logRms": 10.0}, "input_size": 4,
     "output": {"kind": "tanh-rms", "scale": 1.0, "power": 0.3, "decay": {"after": 2, "power": 0.5}, "gain": GAIN}},
    {"layers": 1, "hidden": 4, "features": MOMENTS,
     "output": {"kind": "tanh-rms", "scale": 1.0, "power": 0.3, "gain": GAIN}},
])
def test_native_kernel_follows_the_module_over_several_steps(arch):
    module = randomized(LSTMOptimizer(**arch), seed=3, scale=0.4)
    native, ref = Learned(module, native=True), module
    n = 2 * BLOCK + 77  # several blocks and a partial one
    g = torch.randn(n) * 10 ** torch.randint(-6, 2, (n,)).float()
    g[:9] = 0.0
    g[9:13] = torch.tensor([1e-35, -1e-39, 3e-38, -2e-30])  # r' below 1e-30, subnormal g: pow's exact path
    state, ref_state = native.init(n), module.init_state(n)
    for t in range(4):
        gt = g * (t % 3 - 1) if t else g  # zeros stay zero; some coordinates change sign
        u, state = native.update(gt, state)
        with torch.no_grad():
            ur, ref_state = ref(gt, ref_state)
        torch.testing.assert_close(u, ur, rtol=1e-4, atol=1e-6)
        blocked = state.permute(0, 2, 1).reshape(-1, module.state_size)[:n]
        torch.testing.assert_close(blocked, ref_state, rtol=1e-4, atol=1e-5)
    if module.features is not None:
        assert torch.all(u[:9] == 0)


@pytest.mark.parametrize("native", [False, True] if native_available() else [False])
def test_learned_adapter_pools_a_gain_over_each_instance(native):
    """A batch of instances steps as each instance alone would: the gain's mean is per instance."""
    out = {"kind": "tanh-rms", "scale": 1.0, "power": 0.3, "gain": GAIN}
    module = randomized(LSTMOptimizer(layers=1, hidden=4, features=MOMENTS, output=out), seed=3, scale=0.4)
    n, runs = BLOCK + 5, 3
    gen = torch.Generator().manual_seed(0)
    drift = torch.tensor([1.0, -1.0, 0.3]).repeat_interleave(n)  # the instances' autocorrelations differ
    grads = [torch.randn(runs * n, generator=gen) + drift * (-1) ** t for t in range(5)]
    batched, whole = Learned(module, native=native), Learned(module, native=native)
    batched.instances = runs
    alone = [Learned(module, native=native) for _ in range(runs)]
    state, whole_state, states = batched.init(runs * n), whole.init(runs * n), [a.init(n) for a in alone]
    for g in grads:
        u, state = batched.update(g, state)
        for i, a in enumerate(alone):
            ui, states[i] = a.update(g[i * n : (i + 1) * n], states[i])
            assert torch.equal(u[i * n : (i + 1) * n], ui)
        v, whole_state = whole.update(g, whole_state)
    assert not torch.equal(u, v)  # pooled over the whole batch instead: other gains


def test_learned_adapter_blocks_give_the_same_result_as_one_pass():
    module = LSTMOptimizer(layers=2, hidden=4)
    opt = Learned(module)
    opt.block = 7
    g, state = torch.randn(30), torch.randn(30, 16)
    u1, s1 = opt.update(g, state.t().contiguous())
    with torch.no_grad():
        u2, s2 = module(g, state)
    torch.testing.assert_close(u1, u2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s1.t(), s2, rtol=1e-5, atol=1e-6)
