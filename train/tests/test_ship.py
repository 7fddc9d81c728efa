"""A card's words about how a stage was trained come from the stage's saved config."""

from dataclasses import asdict, replace

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
