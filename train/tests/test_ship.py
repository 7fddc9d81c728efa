"""A card's words about how a stage was trained come from the stage's saved config; a derived version
is its parent's network with the output fields its preset names, and says so."""

import json
import shutil
from dataclasses import asdict, replace

import pytest

import train.ship as ship
from train import safetensors_io as st
from train.export import load_model
from train.metamix import MixConfig
from train.ship import PRESETS, _meta_objective


def test_an_imitation_stage_says_whose_runs_it_followed_and_how_it_drew_coordinates():
    base = asdict(replace(PRESETS["l2o-mlp"]["1.2.0"]["stages"][0]))
    plain = _meta_objective(base)
    assert "along its own 400-step runs" in plain and "drawn uniformly" in plain
    mixed = _meta_objective({**base, "driver": "mixed", "coord_sampling": "per-task"})
    assert "on every other task, the starting weights'" in mixed and "equal share per task" in mixed
    old = {k: v for k, v in base.items() if k not in ("driver", "coord_sampling")}  # a config saved before them
    assert _meta_objective(old) == plain


def test_a_pes_stage_names_its_weighting():
    c = asdict(MixConfig(estimator="pes", meta_weight="ramp"))
    assert "(2t / horizon)" in _meta_objective(c)
    assert "(2t / horizon)" not in _meta_objective({**c, "meta_weight": "mean"})


def test_a_derived_version_is_its_parents_network_with_the_named_output_fields(tmp_path, monkeypatch):
    parent = tmp_path / "weights" / "l2o-mlp" / "1.4.0"
    parent.mkdir(parents=True)
    shipped = ship.REPO_ROOT / "weights" / "l2o-mlp" / "1.4.0"
    for f in ("model.safetensors", "card.json", "training.png"):
        shutil.copyfile(shipped / f, parent / f)
    monkeypatch.setattr(ship, "REPO_ROOT", tmp_path)
    out = tmp_path / "weights" / "l2o-mlp" / "9.9.9"
    out.mkdir()
    changes = {"power": 0.45, "scale": 2.03}
    digest, training = ship._derive("l2o-mlp", {"version": "1.4.0", "output": changes}, out)

    data = (out / "model.safetensors").read_bytes()
    assert digest == st.digest(data)
    arch = json.loads(st.read(out / "model.safetensors")[1]["architecture"])["output"]
    assert arch == {"kind": "tanh-rms", "scale": 2.03, "power": 0.45, "decay": {"after": 200, "power": 0.5}}
    before, after = load_model(parent / "model.safetensors"), load_model(out / "model.safetensors")
    for (k, a), (_, b) in zip(before.state_dict().items(), after.state_dict().items()):
        assert a.equal(b), k  # the same network
    parent_card = json.loads((parent / "card.json").read_text())
    assert training["stages"] == parent_card["training"]["stages"]
    assert training["derivedFrom"]["version"] == "l2o-mlp@1.4.0"
    assert training["derivedFrom"]["digest"] == parent_card["digest"]
    assert training["derivedFrom"]["output"] == changes
    assert (out / "training.png").read_bytes() == (parent / "training.png").read_bytes()

    no_decay = ship._derive("l2o-mlp", {"version": "1.4.0", "output": {"decay": None}}, out)[0]
    assert no_decay != digest and "decay" not in json.loads(st.read(out / "model.safetensors")[1]["architecture"])["output"]
    gain = {"kind": "latch", "after": 10, "center": 0.02, "strength": 4.0, "cap": 0.4}
    with_gain = ship._derive("l2o-mlp", {"version": "1.4.0", "output": {"gain": gain}}, out)[0]
    arch = json.loads(st.read(out / "model.safetensors")[1]["architecture"])["output"]
    assert with_gain not in (digest, no_decay) and arch["gain"] == gain and arch["decay"] == {"after": 200, "power": 0.5}
    with pytest.raises(ValueError, match="power, scale, decay or gain only"):
        ship._derive("l2o-mlp", {"version": "1.4.0", "output": {"hidden": 16}}, out)
    with pytest.raises(ValueError, match="bound"):
        ship._derive("l2o-mlp", {"version": "1.4.0", "output": {"power": 1.0, "scale": 2.0}}, out)
