"""Freeze a learned optimizer into a weight file and make golden vectors for parity (DESIGN §3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import safetensors_io as st
from .optimizer import LSTMOptimizer

WEIGHTS_FORMAT = "l2o/1"
GOLDEN_FORMAT = "l2o-golden/1"


def architecture_string(arch: dict) -> str:
    return json.dumps(arch, separators=(",", ":"), sort_keys=True)


def model_bytes(opt: LSTMOptimizer) -> bytes:
    tensors = {k: v.detach().to(torch.float32) for k, v in opt.state_dict().items()}
    meta = {"format": WEIGHTS_FORMAT, "architecture": architecture_string(opt.architecture())}
    return st.to_bytes(tensors, meta)


def export_model(opt: LSTMOptimizer, path) -> str:
    """Write model.safetensors; returns its digest ("sha256:<hex>")."""
    data = model_bytes(opt)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)
    return st.digest(data)


def load_model_bytes(data: bytes) -> LSTMOptimizer:
    tensors, meta = st.from_bytes(data)
    if meta.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"not an l2o weight file (format {meta.get('format')!r})")
    opt = LSTMOptimizer.from_architecture(json.loads(meta["architecture"]))
    expected = set(opt.state_dict())
    if set(tensors) != expected:
        raise ValueError(f"tensor names {sorted(tensors)} != {sorted(expected)}")
    opt.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    return opt


def load_model(path) -> LSTMOptimizer:
    return load_model_bytes(Path(path).read_bytes())


def golden_grads(steps: int = 5, n: int = 384, seed: int = 0) -> torch.Tensor:
    """[steps, n] float32 gradients mixing zeros, tiny (< exp(-10)), ordinary and huge values."""
    rng = np.random.default_rng(seed)
    special = np.array(
        [0.0, -0.0, 1e-6, -1e-6, 1e-30, -1e-30, 1e-38, 4e-5, -4e-5, 5e-5, -5e-5,
         1e4, -1e4, 1e10, -1e10, 1e20, -1e20, 1.0, -1.0],
        dtype=np.float64,
    )
    out = np.empty((steps, n), dtype=np.float32)
    for t in range(steps):
        kind = rng.choice(4, size=n, p=[0.1, 0.15, 0.6, 0.15])
        mag = 10.0 ** rng.uniform(-4, 1, size=n)  # ordinary: 1e-4 .. 10
        tiny = 10.0 ** rng.uniform(-30, -5, size=n)
        huge = 10.0 ** rng.uniform(3, 20, size=n)
        sign = rng.choice([-1.0, 1.0], size=n)
        g = np.where(kind == 0, 0.0, np.where(kind == 1, tiny, np.where(kind == 2, mag, huge))) * sign
        g[: len(special)] = np.roll(special, t)
        out[t] = g.astype(np.float32)
    return torch.from_numpy(out)


ALWAYS_ZERO = 6  # extended architectures: the last coordinates' gradients are exactly ±0 at every
LATE_START = 6  # step, and the ones before them are ±0 until step 2, then ordinary


@torch.no_grad()
def make_golden(opt: LSTMOptimizer, digest: str, path, steps: int = 5, n: int = 384, seed: int = 0):
    """Run the module over `steps` gradient vectors from a fresh state; write golden.safetensors.
    For extended architectures the last coordinates test the zero-gradient rule (ALWAYS_ZERO,
    LATE_START); the paper's architectures keep the vectors their shipped goldens were made with."""
    grads = golden_grads(steps, n, seed)
    if opt.extended:
        z, late = ALWAYS_ZERO, LATE_START
        grads[:, n - z :] = torch.tensor([0.0, -0.0] * (z // 2))
        grads[:2, n - z - late : n - z] = torch.tensor([-0.0, 0.0] * (late // 2))
    state = opt.init_state(n)
    states, updates = [state], []
    for t in range(steps):
        upd, state = opt(grads[t], state)
        updates.append(upd)
        states.append(state)
    tensors = {"grads": grads, "states": torch.stack(states), "updates": torch.stack(updates)}
    for k, v in tensors.items():
        if not torch.isfinite(v).all():
            raise ValueError(f"golden {k} has non-finite values")
    data = st.to_bytes(tensors, {"format": GOLDEN_FORMAT, "digest": digest})
    Path(path).write_bytes(data)
    return tensors
