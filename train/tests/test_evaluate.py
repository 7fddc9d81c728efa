"""Evaluation: tuned baselines, standard errors, caches, table, plots; the CLI end to end."""

import json
import math

import torch

from train import evaluate as ev
from train.cli import main
from train.export import export_model
from train.optimizer import LSTMOptimizer


def test_mean_se_is_the_standard_error_of_the_mean():
    r = ev.mean_se(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert r["mean"] == 2.5 and r["n"] == 4
    assert math.isclose(r["se"], torch.tensor([1.0, 2.0, 3.0, 4.0]).std().item() / 2, rel_tol=1e-6)


def test_baseline_lr_is_the_grid_point_with_the_lowest_tuning_loss():
    spec = ev.TestSpec("q", "quadratic", instances=20, tune_instances=8, chunk=20)
    out = ev.evaluate_baselines(spec, steps=ev.HORIZONS[-1], log=lambda *_: None)
    for name, tuning in out["tuning"].items():
        for h in ev.HORIZONS:
            losses = tuning[str(h)]
            assert out["tunedLr"][name][str(h)] == tuning["lr"][losses.index(min(losses))]
            assert out["results"][name][str(h)]["n"] == 20


def test_evaluate_cli_writes_results_curves_and_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "HORIZONS", (3, 6))
    monkeypatch.setattr(ev, "LR_GRIDS", {k: [0.01, 0.1] for k in ev.LR_GRIDS})
    weights = tmp_path / "model.safetensors"
    export_model(LSTMOptimizer(layers=1, hidden=4, preprocessing="none"), weights)
    args = ["evaluate", "--weights", str(weights), "--suite", "quadratic", "--out", str(tmp_path / "e"),
            "--instances", "10", "--tune-instances", "4"]
    assert main(args) == 0
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    q = res["tests"]["quadratic"]
    assert set(q["results"]) == {"learned", "sgd", "nag", "rmsprop", "adam"}
    assert len(q["curves"]["learned"]) == 7 and res["digest"].startswith("sha256:")
    assert (tmp_path / "e" / "loss.png").stat().st_size > 1000
    assert (tmp_path / "e" / "curves.csv").read_text().startswith("test,optimizer,step,mean_loss")
    table = ev.markdown_table(res)
    assert table.count("\n") == 3 and "| quadratic | 3 |" in table
    # a second run is served from the per-test caches
    mtime = (tmp_path / "e" / "learned-quadratic.json").stat().st_mtime
    assert main(args) == 0
    assert (tmp_path / "e" / "learned-quadratic.json").stat().st_mtime == mtime


def test_a_teacher_is_a_reference_column_run_at_its_own_lr(tmp_path, monkeypatch):
    from train.baselines import NAG
    from train.plots import plot_results

    monkeypatch.setattr(ev, "HORIZONS", (3, 6))
    monkeypatch.setattr(ev, "LR_GRIDS", {k: [0.01, 0.1] for k in ev.LR_GRIDS})
    monkeypatch.setattr(ev, "SUITES", {"q": [ev.TestSpec("q", "quadratic", instances=10, tune_instances=4, chunk=10)]})
    module = LSTMOptimizer(layers=1, hidden=4, preprocessing="none")
    res = ev.evaluate_suite(module, "q", tmp_path, teacher=("nag", 0.05), log=lambda *_: None)
    q = res["tests"]["q"]
    assert q["teacher"] == {"name": "nag", "lr": 0.05}
    family = ev.SUITES["q"][0].make_family()
    direct = ev.run_set(NAG(0.05), family, ev.instance_seeds(ev.TEST_SEED, 10), "test", 6, "cpu", 10)
    assert math.isclose(q["results"]["teacher"]["6"]["mean"], direct[6].double().mean().item(), rel_tol=1e-9)
    assert "| teacher |" in ev.markdown_table(res).splitlines()[0] + "|"
    plot_results(res, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
