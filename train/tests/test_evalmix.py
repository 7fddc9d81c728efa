"""The user-facing evaluation: grids extend at their edges, results assemble into the bar's figures."""

import json
import math

import pytest

from train import evalmix
from train.export import export_model
from train.metamix import MixConfig
from train.tests.helpers import randomized


def _tiny(name="quadratic"):
    return evalmix.MixTest(name, "quadratic", hidden=(), activation="", instances=6, long_instances=3,
                           tune_instances=3, long_tune_instances=2, chunk=8)


def test_a_tuned_lr_on_the_edge_of_the_grid_extends_it(monkeypatch):
    # SGD on these quadratics wants an lr near 1e-2; a grid of 1e-5..1e-4 must grow upwards to it.
    monkeypatch.setitem(evalmix.BASE_GRID, "sgd", (-5.0, -4.0))
    out = evalmix.tune("sgd", _tiny(), (100,), 3)
    best = out["bestLog10"][100]
    tried = sorted(float(e) for e in out["grid"])
    assert best > -4.0, "the grid must have been extended past its upper edge"
    assert tried[0] < best < tried[-1], "the tuned lr must end up inside the grid"


@pytest.mark.parametrize("name", ["nag", "adam"])
def test_a_grid_tuned_as_one_batch_scores_each_lr_as_its_own_run_would(name):
    """`tune` runs every lr of its grid side by side (one lr per instance); each lr's score is the
    one a separate run at that lr gives (up to float32 rounding of lr), whichever chunk its
    instances land in."""
    test = _tiny()
    test.chunk = 4  # 3 instances per lr: lrs straddle chunks
    out = evalmix.tune(name, test, (100, 200), 3)
    seeds = evalmix.instance_seeds(evalmix.TUNE_SEED, 3)
    for e, scores in out["grid"].items():
        _, full = evalmix.run_instances(evalmix.BASELINES[name](10.0 ** float(e)), test, seeds, 200, {100, 200})
        for h in (100, 200):
            assert scores[str(h)] == pytest.approx(evalmix._mean_or_inf(full[h]), rel=1e-4), (e, h)


def test_the_suite_reports_ratios_geometric_means_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(evalmix, "TESTS", [_tiny("q1"), _tiny("q2")])
    weights = tmp_path / "model.safetensors"
    export_model(randomized(MixConfig(hidden=4, input_size=3).make_optimizer(), seed=1, scale=0.2), weights)
    res = evalmix.evaluate_mix(weights, tmp_path / "eval", jobs=1, progress=False)
    assert set(res["tests"]) == {"q1", "q2"} and res["horizons"] == [100, 200, 1000]
    for name, r in res["tests"].items():
        for h in ("100", "200", "1000"):
            best = r["ratios"][h]["bestBaseline"]
            assert r["ratios"][h]["ratio"] == pytest.approx(
                r["results"]["learned"][h]["mean"] / r["results"][best][h]["mean"])
            assert all(r["results"][best][h]["mean"] <= r["results"][b][h]["mean"] for b in evalmix.BASELINES)
        assert r["defaults"]["adam"]["lr"] == 0.001 and r["results"]["learned"]["100"]["n"] == 6
        for h in ("100", "200", "1000"):  # beside the baselines at their usual lr, untuned
            q, learned = r["ratios"][h], r["results"]["learned"][h]["mean"]
            assert q["vsAdamDefault"] == pytest.approx(learned / r["defaults"]["adam"][h]["mean"])
            assert q["vsBestDefault"] == pytest.approx(learned / min(r["defaults"][b][h]["mean"] for b in evalmix.BASELINES))
        assert r["results"]["learned"]["1000"]["n"] == 3
    for h in ("100", "200", "1000"):
        logs = [math.log(r["ratios"][h]["ratio"]) for r in res["tests"].values()]
        assert res["geoMean"][h] == pytest.approx(math.exp(sum(logs) / 2))
        logs = [math.log(r["ratios"][h]["vsAdamDefault"]) for r in res["tests"].values()]
        assert res["geoMeanVsDefaults"]["adam"][h] == pytest.approx(math.exp(sum(logs) / 2))
    # a second call reuses every cached job, and reports the wall time of the call that ran them
    assert res["wallSeconds"] > 0
    again = evalmix.evaluate_mix(weights, tmp_path / "eval", jobs=1, progress=False)
    assert again["geoMean"] == res["geoMean"] and again["wallSeconds"] == res["wallSeconds"]
    # ...not another call's: a cached job that took another time makes it this call's again
    job = tmp_path / "eval" / "adam-q1.json"
    data = json.loads(job.read_text())
    data["result"]["wallSeconds"] += 5.0
    job.write_text(json.dumps(data))
    assert evalmix.evaluate_mix(weights, tmp_path / "eval", jobs=1, progress=False)["wallSeconds"] < res["wallSeconds"]
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["digest"].startswith("sha256:")
    assert "learned ÷ best" in evalmix.markdown(res)
    assert "| adam 0.001 |" in evalmix.markdown_defaults(res).splitlines()[0]


def test_a_hand_rule_runs_in_the_learned_optimizers_place_beside_the_same_baselines(tmp_path, monkeypatch):
    from train.baselines import Adam

    monkeypatch.setattr(evalmix, "TESTS", [_tiny("q1")])
    res = evalmix.evaluate_mix(None, tmp_path / "eval", jobs=1, progress=False, rule=("adam", 0.05))
    assert res["rule"] == {"name": "adam", "lr": 0.05} and res["digest"] is None
    # the rule's own figures: Adam 0.05 run directly on the same held-out instances
    test = evalmix.TESTS[0]
    _, _, full = evalmix.run_horizons(Adam(0.05), test)
    assert res["tests"]["q1"]["results"]["learned"]["200"]["mean"] == pytest.approx(full[200].double().mean().item())
    assert (tmp_path / "eval" / "rule-adam-0.05-q1.json").exists()
    assert "adam 0.05 ÷ best" in evalmix.markdown(res)
    # the baselines' jobs are shared with a learned optimizer's evaluation in the same folder
    baseline_files = sorted(p.name for p in (tmp_path / "eval").glob("sgd-*.json"))
    assert baseline_files == ["sgd-q1.json"]


def test_a_hand_rules_other_arguments_reach_it_and_key_its_cache(tmp_path, monkeypatch):
    from train.baselines import AnnealedPartiallyAdaptiveNAG

    monkeypatch.setattr(evalmix, "TESTS", [_tiny("q1")])
    res = evalmix.evaluate_mix(None, tmp_path / "eval", jobs=1, progress=False, rule=("snr-pnag", 0.03, {"a": 0.5}))
    assert res["rule"] == {"name": "snr-pnag", "lr": 0.03, "args": {"a": 0.5}}
    _, _, full = evalmix.run_horizons(AnnealedPartiallyAdaptiveNAG(0.03, a=0.5), evalmix.TESTS[0])
    assert res["tests"]["q1"]["results"]["learned"]["200"]["mean"] == pytest.approx(full[200].double().mean().item())
    assert (tmp_path / "eval" / "rule-snr-pnag-0.03-a0.5-q1.json").exists()
    assert "snr-pnag 0.03 a=0.5 ÷ best" in evalmix.markdown(res)
    # the default a (0.7) is another rule: its own jobs, other figures
    default = evalmix.evaluate_mix(None, tmp_path / "eval", jobs=1, progress=False, rule=("snr-pnag", 0.03))
    assert (tmp_path / "eval" / "rule-snr-pnag-0.03-q1.json").exists()
    assert default["tests"]["q1"]["results"]["learned"]["200"]["mean"] != res["tests"]["q1"]["results"]["learned"]["200"]["mean"]


def test_a_gain_multiplies_the_step_per_instance_and_keys_its_cache(tmp_path, monkeypatch):
    from train.baselines import Adam
    from train.regimes import make_gain

    monkeypatch.setattr(evalmix, "TESTS", [_tiny("q1")])
    spec = "latch:5:0.0:3:0.5"
    res = evalmix.evaluate_mix(None, tmp_path / "eval", jobs=1, progress=False, rule=("adam", 0.05), gain=spec)
    assert res["gain"] == spec
    assert (tmp_path / "eval" / "rule-adam-0.05-gain-latch_5_0.0_3_0.5-q1.json").exists()
    # the same as running the gain directly, one multiplier per instance of each chunk
    _, _, full = evalmix.run_horizons(make_gain(Adam(0.05), spec), evalmix.TESTS[0])
    assert res["tests"]["q1"]["results"]["learned"]["200"]["mean"] == pytest.approx(full[200].double().mean().item())
    plain = evalmix.evaluate_mix(None, tmp_path / "eval", jobs=1, progress=False, rule=("adam", 0.05))
    assert plain["tests"]["q1"]["results"]["learned"]["200"]["mean"] != res["tests"]["q1"]["results"]["learned"]["200"]["mean"]


def test_a_cheap_test_keeps_the_protocols_counts_when_a_run_lowers_them(tmp_path, monkeypatch):
    cheap = _tiny("q-cheap")
    cheap.full_counts = True
    monkeypatch.setattr(evalmix, "TESTS", [_tiny("q1"), cheap])
    res = evalmix.evaluate_mix(None, tmp_path / "eval", jobs=1, progress=False, rule=("adam", 0.05),
                               instances=2, long_instances=1, tune_instances=2)
    assert res["tests"]["q1"]["results"]["learned"]["100"]["n"] == 2
    assert res["tests"]["q1"]["results"]["learned"]["1000"]["n"] == 1
    assert res["tests"]["q-cheap"]["results"]["learned"]["100"]["n"] == 6
    assert res["tests"]["q-cheap"]["results"]["learned"]["1000"]["n"] == 3
    assert res["tests"]["q-cheap"]["tuneInstances"] == 3


def test_evaluate_mix_with_scale_evaluates_the_weights_with_their_output_scaled(tmp_path, monkeypatch):
    """`evaluate-mix --scale K` writes the weight file with its output scale times K into OUT and
    evaluates that file (its own digest, so its jobs are cached apart from the unscaled file's)."""
    from train import cli, safetensors_io as st
    from train.export import load_model

    monkeypatch.setattr(evalmix, "TESTS", [_tiny("q1")])
    weights = tmp_path / "model.safetensors"
    export_model(randomized(MixConfig(hidden=4, input_size=3).make_optimizer(), seed=1, scale=0.2), weights)
    out = tmp_path / "eval"
    assert cli.main(["evaluate-mix", "--weights", str(weights), "--out", str(out), "--jobs", "1", "--scale", "0.5"]) == 0
    scaled = out / "model-x0.5.safetensors"
    assert load_model(scaled).output_scale == pytest.approx(0.5 * load_model(weights).output_scale)
    results = json.loads((out / "results.json").read_text())
    assert results["digest"] == st.digest(scaled.read_bytes()) != st.digest(weights.read_bytes())


def test_evaluate_mix_with_decay_evaluates_the_weights_with_tanh_rms_decay_set(tmp_path, monkeypatch):
    """`evaluate-mix --decay T:P` writes the tanh-rms weight file with that step decay into OUT (its
    own digest) and evaluates it; `none` removes one; a weight file without tanh-rms is refused."""
    from train import cli, safetensors_io as st
    from train.export import load_model

    monkeypatch.setattr(evalmix, "TESTS", [_tiny("q1")])
    weights = tmp_path / "model.safetensors"
    cfg = MixConfig(hidden=4, input_size=3, output_scale=1.0, output_power=0.3)
    export_model(randomized(cfg.make_optimizer(), seed=1, scale=0.2), weights)
    out = tmp_path / "eval"
    assert cli.main(["evaluate-mix", "--weights", str(weights), "--out", str(out), "--jobs", "1", "--decay", "3:0.5"]) == 0
    decayed = out / "model-x1-decay3-0.5.safetensors"
    assert load_model(decayed).architecture()["output"]["decay"] == {"after": 3, "power": 0.5}
    results = json.loads((out / "results.json").read_text())
    assert results["digest"] == st.digest(decayed.read_bytes()) != st.digest(weights.read_bytes())
    assert cli.main(["evaluate-mix", "--weights", str(decayed), "--out", str(out), "--jobs", "1", "--decay", "none"]) == 0
    assert (out / "model-x1-decaynone.safetensors").read_bytes() == weights.read_bytes()
    # --power with --scale: both in the file's name and its architecture, the decay kept
    assert cli.main(["evaluate-mix", "--weights", str(decayed), "--out", str(out), "--jobs", "1",
                     "--scale", "1.5", "--power", "0.4"]) == 0
    varied = load_model(out / "model-x1.5-p0.4.safetensors").architecture()["output"]
    assert varied == {"kind": "tanh-rms", "scale": 1.5, "power": 0.4, "decay": {"after": 3, "power": 0.5}}
    # --latch: tanh-rms's latched gain, in the file's name and its architecture; none removes it
    assert cli.main(["evaluate-mix", "--weights", str(decayed), "--out", str(out), "--jobs", "1",
                     "--latch", "2:0.02:4:0.4"]) == 0
    latched = out / "model-x1-latch2-0.02-4-0.4.safetensors"
    assert load_model(latched).architecture()["output"]["gain"] == {
        "kind": "latch", "after": 2, "center": 0.02, "strength": 4.0, "cap": 0.4}
    assert cli.main(["evaluate-mix", "--weights", str(latched), "--out", str(out), "--jobs", "1", "--latch", "none"]) == 0
    assert (out / "model-x1-latchnone.safetensors").read_bytes() == decayed.read_bytes()
    plain = tmp_path / "tanh.safetensors"
    export_model(MixConfig(hidden=4, input_size=3).make_optimizer(), plain)
    for flags in (["--decay", "3:0.5"], ["--power", "0.4"], ["--latch", "2:0.02:4:0.4"], ["--latch", "2:0.02"]):
        with pytest.raises(SystemExit):
            cli.main(["evaluate-mix", "--weights", str(plain), "--out", str(out), *flags])
