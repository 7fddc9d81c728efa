"""Test fixtures for the TypeScript side: extended-architecture weight files with random weights and
their golden vectors (test/fixtures/extended/<case>/), so parity covers every feature kind and output
transform before a shipped version uses them. `python3 -m train fixtures` rewrites them."""

from __future__ import annotations

from pathlib import Path

import torch

from .export import export_model, load_model, make_golden
from .optimizer import LSTMOptimizer
from .tests.helpers import MOMENTS, randomized

ROOT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "extended"

CASES = {
    # l2o-mlp's shape: moments at three time scales, an ELU input layer, 0.1 * tanh
    "moments-elu-tanh": dict(layers=2, hidden=8, features=MOMENTS, input_size=8,
                             output={"kind": "tanh", "scale": 0.1}),
    # l2o-mlp's shape with the gradient's scale as an input (logRms)
    "moments-logrms-elu-tanh": dict(layers=2, hidden=8, features={**MOMENTS, "logRms": 10.0}, input_size=8,
                                    output={"kind": "tanh", "scale": 0.1}),
    # the gradient's scale as an input and in the output: tanh(head) * r'^0.3 (l2o-mlp@1.2.0's shape)
    "moments-logrms-elu-tanhrms": dict(layers=2, hidden=8, features={**MOMENTS, "logRms": 10.0}, input_size=8,
                                       output={"kind": "tanh-rms", "scale": 1.0, "power": 0.3}),
    # l2o-mlp@1.4.0's shape: tanh-rms with a step decay after 3 steps (its count in two state slots)
    "moments-logrms-elu-tanhrms-decay": dict(
        layers=2, hidden=8, features={**MOMENTS, "logRms": 10.0}, input_size=8,
        output={"kind": "tanh-rms", "scale": 1.0, "power": 0.3, "decay": {"after": 3, "power": 0.5}}),
    # l2o-mlp@1.6.0's shape: 1.4.0's with the latched gain, here latched after 3 steps
    "moments-logrms-elu-tanhrms-decay-gain": dict(
        layers=2, hidden=8, features={**MOMENTS, "logRms": 10.0}, input_size=8,
        output={"kind": "tanh-rms", "scale": 1.0, "power": 0.3, "decay": {"after": 3, "power": 0.5},
                "gain": {"kind": "latch", "after": 3, "center": 0.02, "strength": 4.0, "cap": 0.4}}),
    # the gain without a decay (the step count kept for the gain alone), strong enough to reach its cap
    "moments-tanhrms-gain": dict(
        layers=1, hidden=6, features=MOMENTS,
        output={"kind": "tanh-rms", "scale": 0.5, "power": 0.5,
                "gain": {"kind": "latch", "after": 2, "center": -0.05, "strength": 30.0, "cap": 0.7}}),
    # one time scale, no input layer, a linear output, one cell
    "moments-linear": dict(layers=1, hidden=5, features={"kind": "moments", "beta1": [0.9], "beta2": 0.999,
                                                         "eps": 1e-8},
                           output={"kind": "linear", "scale": 0.05}),
}


def write_fixtures(root: Path = ROOT) -> dict:
    digests = {}
    for name, arch in CASES.items():
        module = randomized(LSTMOptimizer(**arch), seed=11, scale=0.6)
        d = root / name
        digests[name] = export_model(module, d / "model.safetensors")
        make_golden(load_model(d / "model.safetensors"), digests[name], d / "golden.safetensors", steps=8)
    return digests


if __name__ == "__main__":
    torch.set_num_threads(1)
    for k, v in write_fixtures().items():
        print(k, v)
