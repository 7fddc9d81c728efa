"""Helpers shared by the train/ tests."""

import torch


def randomized(opt, seed: int, scale: float):
    """`opt` with every parameter drawn N(0, scale²) from `seed`: weights unlike the initial ones."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in opt.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return opt


# The feature kind l2o-mlp uses (docs/optimizer-math.md), for tests of the extended architecture.
MOMENTS = {"kind": "moments", "beta1": [0.5, 0.9, 0.99], "beta2": 0.99, "eps": 1e-8}
GAIN = {"kind": "latch", "after": 3, "center": 0.02, "strength": 4.0, "cap": 0.4}  # tanh-rms's gain, soon latched
