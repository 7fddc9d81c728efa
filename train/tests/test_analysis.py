"""The card's analysis: plots are written and the least-squares fits explain what they should."""

import json

import torch

from train.analysis import analyze, regression, update_curves
from train.evalmix import MixTest
from train.optimizer import LSTMOptimizer
from train.tests.helpers import MOMENTS, randomized


def _module():
    return randomized(LSTMOptimizer(layers=1, hidden=4, features={**MOMENTS, "logRms": 10.0}, input_size=3,
                                    output={"kind": "tanh", "scale": 0.1}), seed=2, scale=0.4)


def test_update_curves_cover_each_history_and_a_fresh_coordinate_moves_with_its_gradient_sign():
    curves = update_curves(_module(), points=9)
    assert len(curves) == 4
    for gs, us in curves.values():
        assert len(gs) == len(us) == 9 and all(abs(u) <= 0.1 for u in us)


def test_a_regression_on_exact_adam_steps_is_explained_by_the_adam_term():
    module = _module()
    gen = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(20):
        g = torch.randn(500, generator=gen)
        r = 10 ** (3 * torch.rand(500, generator=gen) - 2)  # RMS over three decades
        ms = [torch.randn(500, generator=gen) * r for _ in MOMENTS["beta1"]]
        rows.append({"g": g, "r": r, "m": ms, "u": -0.01 * ms[1] / (r + 1e-8)})  # Adam with β1 = 0.9
    fits = regression({"t": rows}, module)["fits"]
    assert fits["Adam direction m0.9/r alone"]["r2"] > 0.999
    assert fits["raw momentum terms (g, m_k)"]["r2"] < 0.9


def test_analyze_writes_its_plots_and_numbers(tmp_path):
    test = MixTest("quadratic", "quadratic", hidden=(), activation="")
    summary = analyze(_module(), tmp_path, [test], {"quadratic": 0.03}, steps=12)
    assert (tmp_path / "analysis-update.png").stat().st_size > 1000
    assert (tmp_path / "analysis-steps.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "analysis.json").read_text())
    assert set(saved["stepSizes"]["quadratic"]["medianAbsUpdate"]) == {"1", "10", "12"}
    assert 0 <= summary["regression"]["fits"]["all of the above and sign(g)"]["r2"] <= 1
